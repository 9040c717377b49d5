package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"campuspay/server/ledger"
)

// Outcomes of the ledger_* functions (see migrations/0001_init.sql).
const (
	stApplied      = 0
	stDuplicate    = 1
	stInsufficient = 2
	stConflict     = 3
	stNotFound     = 4
	stInvalid      = 5
	stClosed       = 6
	stOverCapture  = 7
)

// nanos stores a time as Unix nanoseconds; the zero time is stored as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// storable reports whether PostgreSQL's text type can hold s: valid UTF-8
// without NUL bytes. Keys and memos come from outside.
func storable(ss ...string) error {
	for _, s := range ss {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%w: %q is not valid UTF-8 text", ledger.ErrInvalid, s)
		}
	}
	return nil
}

// errNull reports a ledger_* function that left out a value it must
// return: a bug in the schema, reported rather than panicking the writer.
var errNull = errors.New("ledger/postgres: function returned NULL where a value was due")

// detail formats a function's explanation after the sentinel error.
func detail(err error, d *string) error {
	if d == nil || *d == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, *d)
}

// Post implements ledger.Store.
func (s *Store) Post(ctx context.Context, t ledger.Transfer) (ledger.Result, error) {
	if err := t.Validate(); err != nil {
		return ledger.Result{}, err
	}
	accounts := make([]string, len(t.Postings))
	amounts := make([]int64, len(t.Postings))
	constrained := make([]bool, len(t.Postings))
	for i, p := range t.Postings {
		accounts[i], amounts[i], constrained[i] = string(p.Account), p.Amount, p.Account.Constrained()
	}
	if err := storable(append([]string{t.Key, t.Kind, t.Memo}, accounts...)...); err != nil {
		return ledger.Result{}, fmt.Errorf("transfer %q: %w", t.Key, err)
	}
	hash := t.ContentHash()
	var status int32
	var id, at *int64
	var why *string
	var res ledger.Result
	err := s.submit(ctx, &op{
		lock: accounts,
		sql:  "SELECT o_status, o_id, o_at, o_detail FROM ledger_post($1, $2, $3, $4, $5, $6, $7, $8)",
		args: []any{t.Key, t.Kind, t.Memo, nanos(t.At), hash[:], accounts, amounts, constrained},
		dest: []any{&status, &id, &at, &why},
		result: func() error {
			switch status {
			case stApplied, stDuplicate:
				if id == nil || at == nil {
					return errNull
				}
				res = ledger.Result{ID: *id, Key: t.Key, Duplicate: status == stDuplicate, At: fromNanos(*at)}
				return nil
			case stInsufficient:
				return detail(ledger.ErrInsufficient, why)
			case stConflict:
				return fmt.Errorf("%w: transfer %q", ledger.ErrKeyConflict, t.Key)
			}
			return fmt.Errorf("ledger/postgres: post %q: unexpected status %d", t.Key, status)
		},
	})
	if err != nil {
		return ledger.Result{}, err
	}
	return res, nil
}

// PlaceHold implements ledger.Store. Repeating it with the same key,
// account and amount returns the hold in whatever state it is now.
func (s *Store) PlaceHold(ctx context.Context, h ledger.Hold) (ledger.HoldInfo, error) {
	if err := h.Validate(); err != nil {
		return ledger.HoldInfo{}, err
	}
	if err := storable(h.Key, h.Memo, string(h.Account)); err != nil {
		return ledger.HoldInfo{}, fmt.Errorf("hold %q: %w", h.Key, err)
	}
	var status int32
	var why, memo *string
	var state *int16
	var captured, expires, at *int64
	var info ledger.HoldInfo
	err := s.submit(ctx, &op{
		lock: []string{string(h.Account)},
		sql: `SELECT o_status, o_detail, o_state, o_captured, o_expires, o_memo, o_at
			FROM ledger_place_hold($1, $2, $3, $4, $5, $6)`,
		args: []any{h.Key, string(h.Account), h.Amount, nanos(h.Expires), h.Memo, nanos(h.At)},
		dest: []any{&status, &why, &state, &captured, &expires, &memo, &at},
		result: func() error {
			switch status {
			case stApplied, stDuplicate:
				if state == nil || captured == nil || expires == nil || memo == nil || at == nil {
					return errNull
				}
				info = ledger.HoldInfo{
					Hold: ledger.Hold{Key: h.Key, Account: h.Account, Amount: h.Amount,
						Expires: fromNanos(*expires), Memo: *memo, At: fromNanos(*at)},
					State:    ledger.HoldState(*state),
					Captured: *captured,
				}
				return nil
			case stInsufficient:
				return detail(ledger.ErrInsufficient, why)
			case stConflict:
				return fmt.Errorf("%w: hold %q", ledger.ErrKeyConflict, h.Key)
			}
			return fmt.Errorf("ledger/postgres: hold %q: unexpected status %d", h.Key, status)
		},
	})
	if err != nil {
		return ledger.HoldInfo{}, err
	}
	return info, nil
}

// holdRow is a hold as the capture and void functions return it.
type holdRow struct {
	account, memo             *string
	amount, captured, expires *int64
	at                        *int64
	state                     *int16
}

func (r *holdRow) dest() []any {
	return []any{&r.account, &r.amount, &r.state, &r.captured, &r.expires, &r.memo, &r.at}
}

func (r *holdRow) info(key string) (ledger.HoldInfo, error) {
	if r.account == nil || r.memo == nil || r.amount == nil || r.captured == nil ||
		r.expires == nil || r.at == nil || r.state == nil {
		return ledger.HoldInfo{}, errNull
	}
	return ledger.HoldInfo{
		Hold: ledger.Hold{Key: key, Account: ledger.AccountID(*r.account), Amount: *r.amount,
			Expires: fromNanos(*r.expires), Memo: *r.memo, At: fromNanos(*r.at)},
		State:    ledger.HoldState(*r.state),
		Captured: *r.captured,
	}, nil
}

// holdError maps the outcomes common to capture and void.
func holdError(status int32, key string, why *string) error {
	switch status {
	case stNotFound:
		return fmt.Errorf("%w: %q", ledger.ErrHoldNotFound, key)
	case stInvalid:
		return detail(ledger.ErrInvalid, why)
	case stClosed:
		return detail(ledger.ErrHoldClosed, why)
	case stOverCapture:
		return detail(ledger.ErrOverCapture, why)
	case stConflict:
		return detail(fmt.Errorf("%w: hold %q", ledger.ErrKeyConflict, key), why)
	}
	return fmt.Errorf("ledger/postgres: hold %q: unexpected status %d", key, status)
}

// CaptureHold implements ledger.Store. It posts CaptureKey(holdKey), kind
// "capture", moving amount from the hold's account to to, and releases the
// rest of the hold, in one step. A capture of 0 voids the hold (no
// transfer; the returned Result is zero). Repeating a capture with the same
// amount and counter-account returns the original with Duplicate=true; a
// different amount is ErrHoldClosed, a different counter-account
// ErrKeyConflict.
func (s *Store) CaptureHold(ctx context.Context, holdKey string, amount int64, to ledger.AccountID, memo string, at time.Time) (ledger.HoldInfo, ledger.Result, error) {
	if holdKey == "" || len(holdKey) > ledger.MaxKeyLen || len(memo) > ledger.MaxMemoLen || amount < 0 || amount > ledger.MaxAmount {
		return ledger.HoldInfo{}, ledger.Result{}, fmt.Errorf("%w: capture %q of %d", ledger.ErrInvalid, holdKey, amount)
	}
	if err := to.Validate(); err != nil {
		return ledger.HoldInfo{}, ledger.Result{}, fmt.Errorf("capture %q: %w", holdKey, err)
	}
	captureKey := ledger.CaptureKey(holdKey)
	if len(captureKey) > ledger.MaxKeyLen {
		return ledger.HoldInfo{}, ledger.Result{}, fmt.Errorf("%w: capture key of %d bytes", ledger.ErrInvalid, len(captureKey))
	}
	if err := storable(holdKey, memo, string(to)); err != nil {
		return ledger.HoldInfo{}, ledger.Result{}, fmt.Errorf("capture %q: %w", holdKey, err)
	}
	var status int32
	var why *string
	var id, tat *int64
	var row holdRow
	var info ledger.HoldInfo
	var res ledger.Result
	err := s.submit(ctx, &op{
		lock:    []string{string(to)},
		holdKey: holdKey,
		sql: `SELECT o_status, o_detail, o_id, o_at, o_account, o_amount, o_state, o_captured, o_expires, o_memo, o_hold_at
			FROM ledger_capture($1, $2, $3, $4, $5, $6, $7)`,
		args: []any{holdKey, amount, string(to), to.Constrained(), memo, nanos(at), captureKey},
		dest: append([]any{&status, &why, &id, &tat}, row.dest()...),
		result: func() error {
			if status != stApplied && status != stDuplicate {
				return holdError(status, holdKey, why)
			}
			var err error
			if info, err = row.info(holdKey); err != nil {
				return err
			}
			if id != nil {
				res = ledger.Result{ID: *id, Key: captureKey, Duplicate: status == stDuplicate, At: fromNanos(*tat)}
			}
			return nil
		},
	})
	if err != nil {
		return ledger.HoldInfo{}, ledger.Result{}, err
	}
	return info, res, nil
}

// VoidHold implements ledger.Store. Voiding a voided or expired hold
// returns it unchanged; voiding a captured one is ErrHoldClosed.
func (s *Store) VoidHold(ctx context.Context, holdKey string, at time.Time) (ledger.HoldInfo, error) {
	if holdKey == "" || len(holdKey) > ledger.MaxKeyLen {
		return ledger.HoldInfo{}, fmt.Errorf("%w: void of key of %d bytes", ledger.ErrInvalid, len(holdKey))
	}
	if err := storable(holdKey); err != nil {
		return ledger.HoldInfo{}, fmt.Errorf("void %q: %w", holdKey, err)
	}
	var status int32
	var why *string
	var row holdRow
	var info ledger.HoldInfo
	err := s.submit(ctx, &op{
		holdKey: holdKey,
		sql: `SELECT o_status, o_detail, o_account, o_amount, o_state, o_captured, o_expires, o_memo, o_hold_at
			FROM ledger_void($1, $2)`,
		args: []any{holdKey, nanos(at)},
		dest: append([]any{&status, &why}, row.dest()...),
		result: func() error {
			if status != stApplied {
				return holdError(status, holdKey, why)
			}
			var err error
			info, err = row.info(holdKey)
			return err
		},
	})
	if err != nil {
		return ledger.HoldInfo{}, err
	}
	return info, nil
}

// ExpireHolds implements ledger.Store. An active hold past its expiry can
// still be captured until ExpireHolds runs: the caller decides the grace.
// A hold placed by another authorizer while this runs may be left for the
// next run.
func (s *Store) ExpireHolds(ctx context.Context, now time.Time) (int, error) {
	t := nanos(now)
	var n int32
	err := s.submit(ctx, &op{
		expire: &t,
		sql:    "SELECT ledger_expire($1)",
		args:   []any{t},
		dest:   []any{&n},
		result: func() error { return nil },
	})
	return int(n), err
}
