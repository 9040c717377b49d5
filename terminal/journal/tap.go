package journal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"campuspay/protocol"
)

// Card taps. The journal remembers, for each card, its last tap that
// started a transaction and when, in the same commit as the
// transaction's row (CreateForTap), so that after a crash the terminal
// can tell a card still lying on the reader from a new tap (LastTap). The
// UID itself is never stored: rows are keyed by an HMAC of it under a
// random key kept in this journal.

// TapRetention is how long a card's last tap is kept.
const TapRetention = 24 * time.Hour

// Tap is a card's last recorded tap.
type Tap struct {
	At time.Time
	Tx protocol.TxID
}

// tapKey returns the journal's UID key, creating it on first use.
func (j *Journal) tapKey(ctx context.Context, q *sql.Tx) ([]byte, error) {
	v, ok, err := getMeta(ctx, q, "tap_key")
	if err != nil {
		return nil, err
	}
	if ok {
		return hex.DecodeString(v)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, setMeta(ctx, q, "tap_key", hex.EncodeToString(k))
}

func uidMAC(key []byte, uid string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(strings.ToUpper(strings.TrimSpace(uid))))
	return hex.EncodeToString(h.Sum(nil))
}

// CreateForTap is Create for a transaction started by a tap of card uid:
// in the same commit it records the tap as the card's last. Taps older
// than TapRetention are pruned on the way.
func (j *Journal) CreateForTap(ctx context.Context, t *Tx, uid string) error {
	if strings.TrimSpace(uid) == "" {
		return fmt.Errorf("journal: create %s: empty card UID", t.ID)
	}
	return j.create(ctx, t, func(q *sql.Tx, now time.Time) error {
		key, err := j.tapKey(ctx, q)
		if err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM card_tap WHERE at < ?`, ms(now.Add(-TapRetention))); err != nil {
			return err
		}
		_, err = q.ExecContext(ctx, `INSERT INTO card_tap (uid_mac, at, tx) VALUES (?, ?, ?)
			ON CONFLICT(uid_mac) DO UPDATE SET at = excluded.at, tx = excluded.tx`, uidMAC(key, uid), ms(now), t.ID)
		return err
	})
}

// LastTap returns card uid's last recorded tap (ok false if none is
// kept).
func (j *Journal) LastTap(ctx context.Context, uid string) (tap Tap, ok bool, err error) {
	err = j.write(ctx, func(q *sql.Tx) error {
		key, err := j.tapKey(ctx, q)
		if err != nil {
			return err
		}
		var at int64
		err = q.QueryRowContext(ctx, `SELECT at, tx FROM card_tap WHERE uid_mac = ?`, uidMAC(key, uid)).Scan(&at, &tap.Tx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		tap.At, ok = fromMS(at), true
		return nil
	})
	if err != nil {
		return Tap{}, false, fmt.Errorf("journal: last tap: %w", err)
	}
	return tap, ok, nil
}
