package journal

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"campuspay/protocol"
)

// Offline is one code accepted offline under an allowance.
type Offline struct {
	Allowance uint32
	Device    uint32
	Code      string    // the signed code: uploaded in the entry for settlement
	At        time.Time // the terminal's corrected clock at acceptance
}

// OfflineSpend reports what this terminal accepted offline under an
// allowance: the cents in all and the payments in the hour before now.
func (j *Journal) OfflineSpend(ctx context.Context, allowance uint32, now time.Time) (protocol.OfflineSpend, error) {
	s, err := offlineSpend(ctx, j.db, allowance, now)
	if err != nil {
		return s, fmt.Errorf("journal: offline spend of %d: %w", allowance, err)
	}
	return s, nil
}

func offlineSpend(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, allowance uint32, now time.Time) (protocol.OfflineSpend, error) {
	var s protocol.OfflineSpend
	err := q.QueryRowContext(ctx, `SELECT coalesce(sum(amount), 0), coalesce(sum(at > ?), 0) FROM offline WHERE allowance_id = ?`,
		ms(now.Add(-time.Hour)), allowance).Scan(&s.Total, &s.LastHour)
	return s, err
}

// AcceptOffline durably records t (a payment of t.Amount) as accepted
// offline under o, with its journal entry (kind offline, carrying the
// code), in one commit — but only if check, given the allowance's spend
// at this terminal as of that commit, returns nil; its error is returned
// and nothing is written otherwise. t ends in StateOffline, its EntrySeq
// set.
func (j *Journal) AcceptOffline(ctx context.Context, t *Tx, o Offline, check func(protocol.OfflineSpend) error) error {
	if _, err := protocol.ParseTxID(string(t.ID)); err != nil {
		return fmt.Errorf("journal: accept offline: %w", err)
	}
	now := j.opts.Now().UTC()
	var refused error
	err := j.write(ctx, func(q *sql.Tx) error {
		spend, err := offlineSpend(ctx, q, o.Allowance, o.At)
		if err != nil {
			return err
		}
		if refused = check(spend); refused != nil {
			return refused
		}
		t.Flow, t.State, t.Status, t.Channel, t.Created, t.Updated = FlowPay, StateOffline, protocol.StatusApproved, ChannelOffline, now, now
		seq, err := appendEntry(ctx, q, protocol.JournalEntry{Tx: t.ID, Kind: protocol.EntryOffline, Status: t.Status,
			Amount: t.Amount, Channel: t.Channel, CredKind: protocol.CredCode, Cred: o.Code, At: o.At})
		if err != nil {
			return err
		}
		t.EntrySeq = seq
		if _, err := q.ExecContext(ctx, `INSERT INTO tx (id, flow, state, amount, cred_kind, status, channel, entry_seq, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.ID, t.Flow, t.State, t.Amount, protocol.CredCode, t.Status, t.Channel, seq, ms(now), ms(now)); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO offline (tx, allowance_id, device_id, amount, at) VALUES (?, ?, ?, ?, ?)`,
			t.ID, o.Allowance, o.Device, t.Amount, ms(o.At)); err != nil {
			return err
		}
		return history(ctx, q, t.ID, StateOffline, now)
	})
	if refused != nil {
		return refused
	}
	if err != nil {
		return fmt.Errorf("journal: accept offline %s: %w", t.ID, err)
	}
	t.CredKind = protocol.CredCode
	j.notify(t.ID, StateOffline)
	return nil
}

// ChannelOffline is the channel a terminal journals for a payment it
// accepted offline: the authorizer decides the real one on settlement.
const ChannelOffline = "offline"
