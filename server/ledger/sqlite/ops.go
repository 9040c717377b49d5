package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"campuspay/server/ledger"
)

const holdColumns = "key, account, amount, state, captured, expires, memo, at"

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

// Post implements ledger.Store.
func (s *Store) Post(ctx context.Context, t ledger.Transfer) (ledger.Result, error) {
	if err := t.Validate(); err != nil {
		return ledger.Result{}, err
	}
	hash := t.ContentHash()
	var res ledger.Result
	err := s.submit(ctx, func(w *writer) error {
		var err error
		res, _, err = w.post(t, hash[:])
		return err
	})
	if err != nil {
		return ledger.Result{}, err
	}
	return res, nil
}

// post applies a validated transfer, or reports the earlier application of
// its key. It must run inside a savepoint (every caller's is: the writer's
// applyOne, the host's write around PostIn): a refusal comes after its
// first writes, and only that savepoint undoes them. payer is, for a
// transfer applied now, the available balance after it of the constrained
// account it debits (the first, in posting order, if it debits several; 0
// if none): read anyway for the check.
func (w *writer) post(t ledger.Transfer, hash []byte) (res ledger.Result, payer int64, err error) {
	// The insert is the key's look-up: a key applied before inserts
	// nothing, and is then compared. A refusal below undoes the insert
	// (the savepoint every post runs in).
	ins, err := w.insTransfer.Exec(t.Key, t.Kind, t.Memo, nanos(t.At), hash)
	if err != nil {
		return ledger.Result{}, 0, fmt.Errorf("ledger/sqlite: insert transfer %q: %w", t.Key, err)
	}
	id, err := InsertedID(ins)
	switch {
	case err != nil:
		return ledger.Result{}, 0, fmt.Errorf("ledger/sqlite: insert transfer %q: %w", t.Key, err)
	case id == 0: // the key was there: nothing inserted
		var at int64
		var have []byte
		if err := w.transferByKey.QueryRow(t.Key).Scan(&id, &have, &at); err != nil {
			return ledger.Result{}, 0, fmt.Errorf("ledger/sqlite: look up %q: %w", t.Key, err)
		}
		if !bytes.Equal(have, hash) {
			return ledger.Result{}, 0, fmt.Errorf("%w: transfer %q", ledger.ErrKeyConflict, t.Key)
		}
		return ledger.Result{ID: id, Key: t.Key, Duplicate: true, At: fromNanos(at)}, 0, nil
	}

	// Net effect per account, so that a transfer naming an account twice
	// is checked on its total.
	type delta struct {
		account ledger.AccountID
		amount  int64
	}
	var buf [4]delta
	debited := false
	deltas := buf[:0]
next:
	for _, p := range t.Postings {
		for i := range deltas {
			if deltas[i].account == p.Account {
				deltas[i].amount += p.Amount
				continue next
			}
		}
		deltas = append(deltas, delta{p.Account, p.Amount})
	}
	// A constrained account's debit is its check: one statement applies
	// it only if the available balance covers it (no row otherwise, or
	// when the account does not exist).
	for _, d := range deltas {
		if d.amount >= 0 || !d.account.Constrained() {
			continue
		}
		var n int64
		res, err := w.debit.Exec(d.amount, string(d.account))
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return ledger.Result{}, 0, fmt.Errorf("ledger/sqlite: transfer %q: debit %s: %w", t.Key, d.account, err)
		}
		bal, held, err := w.balance(d.account)
		if err != nil {
			return ledger.Result{}, 0, err
		}
		if n == 0 {
			return ledger.Result{}, 0, fmt.Errorf("%w: %s has %d available, transfer %q needs %d",
				ledger.ErrInsufficient, d.account, bal-held, t.Key, -d.amount)
		}
		if !debited {
			payer, debited = bal-held, true
		}
	}

	for _, d := range deltas {
		if d.amount < 0 && d.account.Constrained() {
			continue // debited above
		}
		if err := w.addToBalance(d.account, d.amount); err != nil {
			return ledger.Result{}, 0, fmt.Errorf("ledger/sqlite: transfer %q: %w", t.Key, err)
		}
	}
	if p := t.Postings; len(p) == 2 { // a payment, a top-up: one statement
		if _, err := w.insPostings2.Exec(id, string(p[0].Account), p[0].Amount, string(p[1].Account), p[1].Amount); err != nil {
			return ledger.Result{}, 0, fmt.Errorf("ledger/sqlite: transfer %q: insert postings: %w", t.Key, err)
		}
		return ledger.Result{ID: id, Key: t.Key, At: t.At}, payer, nil
	}
	for i, p := range t.Postings {
		if _, err := w.insPosting.Exec(id, i, string(p.Account), p.Amount); err != nil {
			return ledger.Result{}, 0, fmt.Errorf("ledger/sqlite: transfer %q: insert posting: %w", t.Key, err)
		}
	}
	return ledger.Result{ID: id, Key: t.Key, At: t.At}, payer, nil
}

// addToBalance changes an account's stored balance, creating the account
// on its first posting.
func (w *writer) addToBalance(a ledger.AccountID, by int64) error {
	r, err := w.addBalance.Exec(by, string(a))
	if err != nil {
		return fmt.Errorf("update %s: %w", a, err)
	}
	if n, err := r.RowsAffected(); err != nil || n == 1 {
		return err
	}
	if _, err := w.insAccount.Exec(string(a), a.Constrained(), by); err != nil {
		return fmt.Errorf("create %s: %w", a, err)
	}
	return nil
}

// InsertedID returns the rowid an INSERT … ON CONFLICT DO NOTHING added,
// or 0 when the conflict left the table as it was: what RETURNING id
// would say, without the temporary table SQLite runs RETURNING through.
func InsertedID(r sql.Result) (int64, error) {
	n, err := r.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	return r.LastInsertId()
}

// balance reads an account inside the writer's transaction; an account
// that has never been posted to has zero balance.
func (w *writer) balance(a ledger.AccountID) (balance, held int64, err error) {
	err = w.account.QueryRow(string(a)).Scan(&balance, &held)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("ledger/sqlite: read %s: %w", a, err)
	}
	return balance, held, nil
}

type scanner interface{ Scan(...any) error }

func scanHold(row scanner) (ledger.HoldInfo, error) {
	var h ledger.HoldInfo
	var account string
	var expires, at int64
	if err := row.Scan(&h.Key, &account, &h.Amount, &h.State, &h.Captured, &expires, &h.Memo, &at); err != nil {
		return ledger.HoldInfo{}, err
	}
	h.Account = ledger.AccountID(account)
	h.Expires = fromNanos(expires)
	h.At = fromNanos(at)
	return h, nil
}

// hold reads a hold by key; ErrHoldNotFound if there is none.
func (w *writer) hold(key string) (ledger.HoldInfo, error) {
	h, err := scanHold(w.holdByKey.QueryRow(key))
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.HoldInfo{}, fmt.Errorf("%w: %q", ledger.ErrHoldNotFound, key)
	}
	if err != nil {
		return ledger.HoldInfo{}, fmt.Errorf("ledger/sqlite: read hold %q: %w", key, err)
	}
	return h, nil
}

// PlaceHold implements ledger.Store. Repeating it with the same key,
// account and amount returns the hold in whatever state it is now.
func (s *Store) PlaceHold(ctx context.Context, h ledger.Hold) (ledger.HoldInfo, error) {
	if err := h.Validate(); err != nil {
		return ledger.HoldInfo{}, err
	}
	var info ledger.HoldInfo
	err := s.submit(ctx, func(w *writer) error {
		old, err := w.hold(h.Key)
		switch {
		case err == nil:
			if old.Account != h.Account || old.Amount != h.Amount {
				return fmt.Errorf("%w: hold %q", ledger.ErrKeyConflict, h.Key)
			}
			info = old
			return nil
		case !errors.Is(err, ledger.ErrHoldNotFound):
			return err
		}
		bal, held, err := w.balance(h.Account)
		if err != nil {
			return err
		}
		if bal-held < h.Amount {
			return fmt.Errorf("%w: %s has %d available, hold %q needs %d",
				ledger.ErrInsufficient, h.Account, bal-held, h.Key, h.Amount)
		}
		if _, err := w.insHold.Exec(h.Key, string(h.Account), h.Amount, ledger.HoldActive,
			nanos(h.Expires), h.Memo, nanos(h.At)); err != nil {
			return fmt.Errorf("ledger/sqlite: insert hold %q: %w", h.Key, err)
		}
		if err := w.changeHeld(h.Account, h.Amount); err != nil {
			return err
		}
		info = ledger.HoldInfo{Hold: h, State: ledger.HoldActive}
		return nil
	})
	if err != nil {
		return ledger.HoldInfo{}, err
	}
	return info, nil
}

func (w *writer) changeHeld(a ledger.AccountID, by int64) error {
	r, err := w.addHeld.Exec(by, string(a))
	if err == nil {
		var n int64
		if n, err = r.RowsAffected(); err == nil && n != 1 {
			err = fmt.Errorf("account missing")
		}
	}
	if err != nil {
		return fmt.Errorf("ledger/sqlite: change held of %s by %d: %w", a, by, err)
	}
	return nil
}

// releaseHold closes an active hold in the given final state and gives
// its amount back to the account's available balance.
func (w *writer) releaseHold(h *ledger.HoldInfo, state ledger.HoldState, captured int64, at time.Time) error {
	r, err := w.closeHold.Exec(state, captured, nanos(at), h.Key)
	if err == nil {
		var n int64
		if n, err = r.RowsAffected(); err == nil && n != 1 {
			err = fmt.Errorf("hold is not active")
		}
	}
	if err != nil {
		return fmt.Errorf("ledger/sqlite: close hold %q: %w", h.Key, err)
	}
	if err := w.changeHeld(h.Account, -h.Amount); err != nil {
		return err
	}
	h.State, h.Captured = state, captured
	return nil
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
	var info ledger.HoldInfo
	var res ledger.Result
	err := s.submit(ctx, func(w *writer) error {
		h, err := w.hold(holdKey)
		if err != nil {
			return err
		}
		if to == h.Account {
			return fmt.Errorf("%w: capture %q to its own account", ledger.ErrInvalid, holdKey)
		}
		t := ledger.Transfer{
			Key:      ledger.CaptureKey(holdKey),
			Kind:     "capture",
			Postings: []ledger.Posting{{Account: h.Account, Amount: -amount}, {Account: to, Amount: amount}},
			Memo:     memo,
			At:       at,
		}
		switch {
		case h.State == ledger.HoldCaptured && h.Captured == amount:
			hash := t.ContentHash()
			res, _, err = w.post(t, hash[:]) // already there: a duplicate or a conflict
			if err == nil && !res.Duplicate {
				return fmt.Errorf("ledger/sqlite: captured hold %q has no capture transfer", holdKey)
			}
			info = h
			return err
		case h.State == ledger.HoldVoided && amount == 0:
			info = h
			return nil
		case h.State != ledger.HoldActive:
			return fmt.Errorf("%w: hold %q is %s (captured %d), capture of %d refused",
				ledger.ErrHoldClosed, holdKey, h.State, h.Captured, amount)
		case amount > h.Amount:
			return fmt.Errorf("%w: capture %d of hold %q for %d", ledger.ErrOverCapture, amount, holdKey, h.Amount)
		case amount == 0:
			info = h
			return w.releaseHold(&info, ledger.HoldVoided, 0, at)
		}
		info = h
		if err := w.releaseHold(&info, ledger.HoldCaptured, amount, at); err != nil {
			return err
		}
		hash := t.ContentHash()
		if res, _, err = w.post(t, hash[:]); err != nil {
			return err
		}
		if res.Duplicate {
			return fmt.Errorf("%w: transfer %q exists but hold %q was not captured", ledger.ErrKeyConflict, t.Key, holdKey)
		}
		if _, err := w.linkHold.Exec(res.ID, holdKey); err != nil {
			return fmt.Errorf("ledger/sqlite: link hold %q to transfer %d: %w", holdKey, res.ID, err)
		}
		return nil
	})
	if err != nil {
		return ledger.HoldInfo{}, ledger.Result{}, err
	}
	return info, res, nil
}

// VoidHold implements ledger.Store. Voiding a voided or expired hold
// returns it unchanged; voiding a captured one is ErrHoldClosed.
func (s *Store) VoidHold(ctx context.Context, holdKey string, at time.Time) (ledger.HoldInfo, error) {
	if holdKey == "" {
		return ledger.HoldInfo{}, fmt.Errorf("%w: void with empty key", ledger.ErrInvalid)
	}
	var info ledger.HoldInfo
	err := s.submit(ctx, func(w *writer) error {
		h, err := w.hold(holdKey)
		if err != nil {
			return err
		}
		info = h
		switch h.State {
		case ledger.HoldActive:
			return w.releaseHold(&info, ledger.HoldVoided, 0, at)
		case ledger.HoldCaptured:
			return fmt.Errorf("%w: hold %q was captured (%d), void refused", ledger.ErrHoldClosed, holdKey, h.Captured)
		}
		return nil
	})
	if err != nil {
		return ledger.HoldInfo{}, err
	}
	return info, nil
}

// ExpireHolds implements ledger.Store. An active hold past its expiry can
// still be captured until ExpireHolds runs: the caller decides the grace.
func (s *Store) ExpireHolds(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.submit(ctx, func(w *writer) error {
		rows, err := w.expiring.Query(nanos(now))
		if err != nil {
			return fmt.Errorf("ledger/sqlite: list expiring holds: %w", err)
		}
		var due []ledger.HoldInfo
		for rows.Next() {
			h, err := scanHold(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("ledger/sqlite: list expiring holds: %w", err)
			}
			due = append(due, h)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("ledger/sqlite: list expiring holds: %w", err)
		}
		for i := range due {
			if err := w.releaseHold(&due[i], ledger.HoldExpired, 0, now); err != nil {
				return err
			}
		}
		n = len(due)
		return nil
	})
	return n, err
}

// PostIn applies t, as Post would, in the transaction the host's writer
// has open (the ledger's statements are prepared on its connection; the
// Tx argument only marks where it may be called): for a host whose write
// must commit with a transfer or not at all (wallet/sqlite's payment).
// With the result it returns the payer's available balance after t
// (writer.post's payer), which the terminal's answer shows. It
// is called only from inside Host.Write's function, on the host's writer,
// in a savepoint (never a plain write): the host's savepoint undoes t,
// and whatever of it was written before a refusal, if that function
// fails.
func (s *Store) PostIn(_ Tx, t ledger.Transfer) (res ledger.Result, payer int64, err error) {
	if s.host == nil {
		return ledger.Result{}, 0, errors.New("ledger/sqlite: PostIn on a ledger with its own file")
	}
	if err := t.Validate(); err != nil {
		return ledger.Result{}, 0, err
	}
	// TryRLock: Close, waiting for the lock, must not block the host's
	// writer, which the operations Close waits for are queued behind.
	if !s.hostMu.TryRLock() {
		return ledger.Result{}, 0, ledger.ErrClosed
	}
	defer s.hostMu.RUnlock()
	if s.hostClosed {
		return ledger.Result{}, 0, ledger.ErrClosed
	}
	s.ops.Add(1)
	hash := t.ContentHash()
	return s.w.post(t, hash[:])
}
