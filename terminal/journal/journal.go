// Package journal is the terminal's durable memory: one SQLite file (WAL,
// synchronous=FULL, one connection) holding every transaction and its
// state, the outbox of finished transactions (journal entries numbered per
// terminal from 1 without gaps) that terminal/link uploads, the connection
// counter, the cached retained config, static-QR notices and the local
// cache of seen payment codes.
//
// The rule it serves is "journal first": a transaction's row is written
// before its request is sent, and each state change is durable before the
// next action, so that a crash at any point loses nothing and charges
// nothing twice. Transitions are checked against an explicit table.
//
// No secret is stored: not the water or payment password (sealed or
// not), not the code text, not the card UID — only the credential's kind
// (and, for the last tap of each card, a keyed hash of its UID: tap.go).
// The one exception is a code accepted offline (offline.go): the signed
// code is the student's authorisation the authorizer settles against, so
// it is kept until uploaded; by then it has expired and was used.
// Recovery never needs them: an in-doubt payment is reversed by its ID and
// a shower is captured by its ID.
package journal

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite driver

	"campuspay/protocol"
	"campuspay/terminal"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrTransition is returned for a state change the table does not allow.
var ErrTransition = errors.New("journal: transition not allowed")

// ErrNotFound is returned for an unknown transaction.
var ErrNotFound = errors.New("journal: no such transaction")

// Options configure Open.
type Options struct {
	Terminal string           // this terminal's id, stamped on entries
	Now      func() time.Time // nil = time.Now
	// OnState, when set, is called after every durable state change (after
	// COMMIT). The daemon uses it for metrics and its crash-test hook.
	OnState func(tx protocol.TxID, s State)
}

// Journal is the terminal's SQLite journal. It is safe for concurrent use.
type Journal struct {
	db   *sql.DB
	opts Options
	mu   sync.Mutex // serialises writers (one connection, explicit order)
}

var _ terminal.Outbox = (*Journal)(nil)

// Open opens (creating if needed) the journal at path and migrates it.
func Open(path string, opts Options) (*Journal, error) {
	if !protocol.ValidID(opts.Terminal) {
		return nil, fmt.Errorf("journal: open %s: bad terminal id %q", path, opts.Terminal)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil { // owner-only; SQLite gives -wal and -shm the same mode
		f.Chmod(0o600)
		f.Close()
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; WAL pragmas are per connection
	db.SetConnMaxLifetime(0)
	j := &Journal{db: db, opts: opts}
	if err := j.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal: open %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("journal: open %s: journal_mode %q: %v", path, mode, err)
	}
	return j, nil
}

// Close closes the database (checkpointing the WAL).
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("journal: close: %w", err)
	}
	return nil
}

func (j *Journal) migrate() error {
	if _, err := j.db.Exec(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migrate: bad file name %s", name)
		}
		var n int
		if err := j.db.QueryRow(`SELECT count(*) FROM schema_version WHERE version = ?`, v).Scan(&n); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		tx, err := j.db.Begin()
		if err != nil {
			return fmt.Errorf("migrate %s: %w", base, err)
		}
		if _, err := tx.Exec(string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", base, err)
		}
		if _, err := tx.Exec(`INSERT INTO schema_version(version) VALUES (?)`, v); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", base, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", base, err)
		}
	}
	return nil
}

// Tx is one transaction's row.
type Tx struct {
	ID       protocol.TxID
	Flow     Flow
	State    State
	Amount   int64 // pay: requested cents; shower: captured cents
	CredKind protocol.CredKind
	Status   protocol.Status // last authorizer status
	Code     string          // reason code of a refusal
	Channel  string
	Hold     int64     // shower: cents held
	Pulses0  uint32    // shower: meter counter when the valve opened
	Pulses   int64     // shower: pulses since Pulses0 (last persisted)
	ML       int64     // shower: millilitres metered
	Cost     int64     // shower: cents metered
	Deadline time.Time // USERPAYING: reverse after this
	EntrySeq uint64    // its journal entry, once finished
	Created  time.Time
	Updated  time.Time
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// Create writes a new transaction in StateCreated.
func (j *Journal) Create(ctx context.Context, t *Tx) error {
	return j.create(ctx, t, nil)
}

// create writes t and runs also (if set) in the same commit.
func (j *Journal) create(ctx context.Context, t *Tx, also func(*sql.Tx, time.Time) error) error {
	if _, err := protocol.ParseTxID(string(t.ID)); err != nil {
		return fmt.Errorf("journal: create: %w", err)
	}
	if t.Flow != FlowPay && t.Flow != FlowShower {
		return fmt.Errorf("journal: create %s: bad flow %d", t.ID, t.Flow)
	}
	now := j.opts.Now().UTC()
	t.State, t.Created, t.Updated = StateCreated, now, now
	err := j.write(ctx, func(q *sql.Tx) error {
		if _, err := q.ExecContext(ctx, `INSERT INTO tx (id, flow, state, amount, cred_kind, hold, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, t.ID, t.Flow, t.State, t.Amount, t.CredKind, t.Hold, ms(now), ms(now)); err != nil {
			return err
		}
		if also != nil {
			if err := also(q, now); err != nil {
				return err
			}
		}
		return history(ctx, q, t.ID, t.State, now)
	})
	if err != nil {
		return fmt.Errorf("journal: create %s: %w", t.ID, err)
	}
	j.notify(t.ID, t.State)
	return nil
}

// Advance durably moves t to state to, writing t's mutable fields with it.
// The move is checked against the state on disk, not t.State.
func (j *Journal) Advance(ctx context.Context, t *Tx, to State) error {
	return j.advance(ctx, t, to, "")
}

// Finish durably moves t to a final state (or Reversed) and appends its
// journal entry of the given kind in the same commit. t.EntrySeq is set.
func (j *Journal) Finish(ctx context.Context, t *Tx, to State, kind protocol.EntryKind) error {
	if kind == "" {
		return fmt.Errorf("journal: finish %s: no entry kind", t.ID)
	}
	return j.advance(ctx, t, to, kind)
}

func (j *Journal) advance(ctx context.Context, t *Tx, to State, kind protocol.EntryKind) error {
	now := j.opts.Now().UTC()
	err := j.write(ctx, func(q *sql.Tx) error {
		var cur State
		if err := q.QueryRowContext(ctx, `SELECT state FROM tx WHERE id = ?`, t.ID).Scan(&cur); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if !CanMove(cur, to) {
			return fmt.Errorf("%w: %v → %v", ErrTransition, cur, to)
		}
		var seq uint64
		if kind != "" {
			var err error
			if seq, err = appendEntry(ctx, q, protocol.JournalEntry{
				Tx: t.ID, Kind: kind, Status: t.Status, Code: t.Code, Amount: t.Amount,
				Channel: t.Channel, CredKind: t.CredKind, ML: t.ML, At: now,
			}); err != nil {
				return err
			}
		}
		if seq == 0 {
			seq = t.EntrySeq
		}
		if _, err := q.ExecContext(ctx, `UPDATE tx SET state=?, amount=?, status=?, code=?, channel=?, hold=?,
			pulses0=?, pulses=?, ml=?, cost=?, deadline=?, entry_seq=?, updated_at=? WHERE id=?`,
			to, t.Amount, t.Status, t.Code, t.Channel, t.Hold, t.Pulses0, t.Pulses, t.ML, t.Cost,
			ms(t.Deadline), seq, ms(now), t.ID); err != nil {
			return err
		}
		t.EntrySeq = seq
		return history(ctx, q, t.ID, to, now)
	})
	if err != nil {
		return fmt.Errorf("journal: %s → %v: %w", t.ID, to, err)
	}
	t.State, t.Updated = to, now
	j.notify(t.ID, to)
	return nil
}

// Meter durably records the shower's latest meter values (Pulses, ML,
// Cost) while it is Metering. It is not a state change.
func (j *Journal) Meter(ctx context.Context, t *Tx) error {
	now := j.opts.Now().UTC()
	err := j.write(ctx, func(q *sql.Tx) error {
		r, err := q.ExecContext(ctx, `UPDATE tx SET pulses0=?, pulses=?, ml=?, cost=?, updated_at=? WHERE id=? AND state=?`,
			t.Pulses0, t.Pulses, t.ML, t.Cost, ms(now), t.ID, StateMetering)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: not metering", ErrTransition)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: meter %s: %w", t.ID, err)
	}
	t.Updated = now
	return nil
}

func history(ctx context.Context, q *sql.Tx, id protocol.TxID, s State, at time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO tx_history (tx, state, at) VALUES (?, ?, ?)`, id, s, ms(at))
	return err
}

func appendEntry(ctx context.Context, q *sql.Tx, e protocol.JournalEntry) (uint64, error) {
	var seq uint64
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM entry`).Scan(&seq); err != nil {
		return 0, err
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO entry (seq, tx, kind, status, code, amount, channel, cred_kind, ml, at, cred)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, seq, e.Tx, e.Kind, e.Status, e.Code, e.Amount, e.Channel,
		e.CredKind, e.ML, ms(e.At), e.Cred); err != nil {
		return 0, err
	}
	return seq, nil
}

func (j *Journal) notify(id protocol.TxID, s State) {
	if j.opts.OnState != nil {
		j.opts.OnState(id, s)
	}
}

// write runs fn in one immediate transaction and commits it.
func (j *Journal) write(ctx context.Context, fn func(*sql.Tx) error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	q, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(q); err != nil {
		q.Rollback()
		return err
	}
	return q.Commit()
}

const txCols = `id, flow, state, amount, cred_kind, status, code, channel, hold, pulses0, pulses, ml, cost, deadline, entry_seq, created_at, updated_at`

func scanTx(s interface{ Scan(...any) error }) (*Tx, error) {
	var t Tx
	var deadline, created, updated int64
	if err := s.Scan(&t.ID, &t.Flow, &t.State, &t.Amount, &t.CredKind, &t.Status, &t.Code, &t.Channel,
		&t.Hold, &t.Pulses0, &t.Pulses, &t.ML, &t.Cost, &deadline, &t.EntrySeq, &created, &updated); err != nil {
		return nil, err
	}
	t.Deadline, t.Created, t.Updated = fromMS(deadline), fromMS(created), fromMS(updated)
	return &t, nil
}

// Get returns one transaction.
func (j *Journal) Get(ctx context.Context, id protocol.TxID) (*Tx, error) {
	t, err := scanTx(j.db.QueryRowContext(ctx, `SELECT `+txCols+` FROM tx WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("journal: get %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("journal: get %s: %w", id, err)
	}
	return t, nil
}

func (j *Journal) list(ctx context.Context, query string, args ...any) ([]*Tx, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT `+txCols+` FROM tx `+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Tx
	for rows.Next() {
		t, err := scanTx(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Unfinished returns every transaction not in a final state, oldest first:
// what recovery must resolve.
func (j *Journal) Unfinished(ctx context.Context) ([]*Tx, error) {
	out, err := j.list(ctx, `WHERE state NOT IN (?, ?, ?, ?, ?, ?) ORDER BY created_at, id`,
		StateApproved, StateDeclined, StateReversed, StateAbandoned, StateCaptured, StateOffline)
	if err != nil {
		return nil, fmt.Errorf("journal: unfinished: %w", err)
	}
	return out, nil
}

// Recent returns the n most recently changed transactions, newest first.
func (j *Journal) Recent(ctx context.Context, n int) ([]*Tx, error) {
	out, err := j.list(ctx, `ORDER BY updated_at DESC, id DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("journal: recent: %w", err)
	}
	return out, nil
}

// History returns every state t went through, in order.
func (j *Journal) History(ctx context.Context, id protocol.TxID) ([]State, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT state FROM tx_history WHERE tx = ? ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("journal: history %s: %w", id, err)
	}
	defer rows.Close()
	var out []State
	for rows.Next() {
		var s State
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("journal: history %s: %w", id, err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Pending implements terminal.Outbox.
func (j *Journal) Pending(ctx context.Context, after uint64, limit int) ([]protocol.JournalEntry, error) {
	out, err := j.entries(ctx, `WHERE acked = 0 AND seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("journal: pending: %w", err)
	}
	return out, nil
}

// Entries returns every entry (acknowledged or not) in Seq order.
func (j *Journal) Entries(ctx context.Context) ([]protocol.JournalEntry, error) {
	out, err := j.entries(ctx, `ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("journal: entries: %w", err)
	}
	return out, nil
}

func (j *Journal) entries(ctx context.Context, query string, args ...any) ([]protocol.JournalEntry, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT seq, tx, kind, status, code, amount, channel, cred_kind, ml, at, cred FROM entry `+query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []protocol.JournalEntry
	for rows.Next() {
		e := protocol.JournalEntry{V: protocol.Version, Terminal: j.opts.Terminal}
		var at int64
		if err := rows.Scan(&e.Seq, &e.Tx, &e.Kind, &e.Status, &e.Code, &e.Amount, &e.Channel, &e.CredKind, &e.ML, &at, &e.Cred); err != nil {
			return nil, err
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Acked implements terminal.Outbox. Acknowledging an entry twice is a no-op.
func (j *Journal) Acked(ctx context.Context, seq uint64, ack protocol.JournalAck) error {
	err := j.write(ctx, func(q *sql.Tx) error {
		r, err := q.ExecContext(ctx, `UPDATE entry SET acked = 1, ack_ok = ?, ack_code = ? WHERE seq = ? AND acked = 0`,
			ack.OK, ack.Code, seq)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			var exists int
			if err := q.QueryRowContext(ctx, `SELECT count(*) FROM entry WHERE seq = ?`, seq).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				return fmt.Errorf("no entry %d", seq)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: ack %d: %w", seq, err)
	}
	return nil
}

// Depth returns how many entries are not yet acknowledged.
func (j *Journal) Depth(ctx context.Context) (int, error) {
	var n int
	if err := j.db.QueryRowContext(ctx, `SELECT count(*) FROM entry WHERE acked = 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("journal: depth: %w", err)
	}
	return n, nil
}

func getMeta(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, key string) (string, bool, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

func setMeta(ctx context.Context, q *sql.Tx, key, value string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}

// NextConnSeq durably increments and returns the connection counter
// (StatusMsg.ConnSeq): called once per broker connection.
func (j *Journal) NextConnSeq(ctx context.Context) (uint64, error) {
	var next uint64
	err := j.write(ctx, func(q *sql.Tx) error {
		v, _, err := getMeta(ctx, q, "conn_seq")
		if err != nil {
			return err
		}
		cur, _ := strconv.ParseUint(v, 10, 64)
		next = cur + 1
		return setMeta(ctx, q, "conn_seq", strconv.FormatUint(next, 10))
	})
	if err != nil {
		return 0, fmt.Errorf("journal: conn seq: %w", err)
	}
	return next, nil
}

// SaveConfig caches the retained config so that a box booting offline
// still has its static QR, keys and tariff. An older revision than the one
// cached is ignored.
func (j *Journal) SaveConfig(ctx context.Context, c *protocol.Config) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("journal: save config: %w", err)
	}
	err = j.write(ctx, func(q *sql.Tx) error {
		v, ok, err := getMeta(ctx, q, "config")
		if err != nil {
			return err
		}
		if ok {
			var old protocol.Config
			if json.Unmarshal([]byte(v), &old) == nil && old.Revision > c.Revision {
				return nil
			}
		}
		return setMeta(ctx, q, "config", string(b))
	})
	if err != nil {
		return fmt.Errorf("journal: save config: %w", err)
	}
	return nil
}

// Config returns the cached config, or nil if none was ever received.
func (j *Journal) Config(ctx context.Context) (*protocol.Config, error) {
	v, ok, err := getMeta(ctx, j.db, "config")
	if err != nil {
		return nil, fmt.Errorf("journal: config: %w", err)
	}
	if !ok {
		return nil, nil
	}
	var c protocol.Config
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return nil, fmt.Errorf("journal: config: %w", err)
	}
	return &c, nil
}

// NoticeCursor returns the highest static-QR notice cursor recorded.
func (j *Journal) NoticeCursor(ctx context.Context) (uint64, error) {
	v, _, err := getMeta(ctx, j.db, "notice_cursor")
	if err != nil {
		return 0, fmt.Errorf("journal: notice cursor: %w", err)
	}
	c, _ := strconv.ParseUint(v, 10, 64)
	return c, nil
}

// RecordNotice records each static-QR payment of n once (with a notice
// journal entry, so the authorizer knows the cashier saw it) and advances
// the cursor, in one commit. It returns the payments not seen before.
func (j *Journal) RecordNotice(ctx context.Context, n *protocol.Notice) ([]protocol.StaticQRPayment, error) {
	var fresh []protocol.StaticQRPayment
	now := j.opts.Now().UTC()
	err := j.write(ctx, func(q *sql.Tx) error {
		fresh = fresh[:0]
		cursor := n.Cursor
		for _, p := range n.Payments {
			if _, err := protocol.ParseTxID(string(p.Tx)); err != nil {
				continue // a malformed notice item is not the cashier's business
			}
			r, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO notice (tx, seq, amount, user, at, recorded) VALUES (?, ?, ?, ?, ?, ?)`,
				p.Tx, p.Seq, p.Amount, p.User, ms(p.At), ms(now))
			if err != nil {
				return err
			}
			if k, _ := r.RowsAffected(); k == 1 {
				if _, err := appendEntry(ctx, q, protocol.JournalEntry{Tx: p.Tx, Kind: protocol.EntryNotice,
					Status: protocol.StatusApproved, Amount: p.Amount, At: now}); err != nil {
					return err
				}
				fresh = append(fresh, p)
			}
			cursor = max(cursor, p.Seq)
		}
		v, _, err := getMeta(ctx, q, "notice_cursor")
		if err != nil {
			return err
		}
		if old, _ := strconv.ParseUint(v, 10, 64); old > cursor {
			cursor = old
		}
		return setMeta(ctx, q, "notice_cursor", strconv.FormatUint(cursor, 10))
	})
	if err != nil {
		return nil, fmt.Errorf("journal: record notice: %w", err)
	}
	return fresh, nil
}

// SeeCode records a payment code ID as seen on this terminal until
// expires. It reports false if the code had already been seen (a
// screenshot shown twice). Expired IDs are pruned on the way.
func (j *Journal) SeeCode(ctx context.Context, id string, expires time.Time) (fresh bool, err error) {
	now := j.opts.Now()
	err = j.write(ctx, func(q *sql.Tx) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM seen_code WHERE expires < ?`, ms(now)); err != nil {
			return err
		}
		r, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO seen_code (id, expires) VALUES (?, ?)`, id, ms(expires))
		if err != nil {
			return err
		}
		n, _ := r.RowsAffected()
		fresh = n == 1
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("journal: see code: %w", err)
	}
	return fresh, nil
}
