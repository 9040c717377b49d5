package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"campuspay/server/ledger"
)

// MaxPage bounds Transfers' limit.
const MaxPage = 1000

// Balance implements ledger.Store. An account never posted to has a zero
// balance. It reads the last committed state, not queued operations.
func (s *Store) Balance(ctx context.Context, a ledger.AccountID) (ledger.Balance, error) {
	b := ledger.Balance{Account: a}
	// Not cancelled with ctx: a one-row read on every payment, where a
	// cancellable context costs database/sql a goroutine per result set.
	err := s.readBalance.QueryRowContext(context.WithoutCancel(ctx), string(a)).Scan(&b.Posted, &b.Held)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return ledger.Balance{}, fmt.Errorf("ledger/sqlite: balance of %s: %w", a, err)
	}
	b.Available = b.Posted - b.Held
	return b, nil
}

// GetHold implements ledger.Store; ErrHoldNotFound if there is none.
func (s *Store) GetHold(ctx context.Context, holdKey string) (ledger.HoldInfo, error) {
	h, err := scanHold(s.readHold.QueryRowContext(ctx, holdKey))
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.HoldInfo{}, fmt.Errorf("%w: %q", ledger.ErrHoldNotFound, holdKey)
	}
	if err != nil {
		return ledger.HoldInfo{}, fmt.Errorf("ledger/sqlite: read hold %q: %w", holdKey, err)
	}
	return h, nil
}

// Lookup implements ledger.Store. The returned Result has Duplicate=false.
func (s *Store) Lookup(ctx context.Context, key string) (ledger.Transfer, ledger.Result, bool, error) {
	rows, err := s.rdb.QueryContext(ctx, qLookup, key)
	if err != nil {
		return ledger.Transfer{}, ledger.Result{}, false, fmt.Errorf("ledger/sqlite: look up %q: %w", key, err)
	}
	es, err := scanEntries(rows)
	if err != nil {
		return ledger.Transfer{}, ledger.Result{}, false, fmt.Errorf("ledger/sqlite: look up %q: %w", key, err)
	}
	if len(es) == 0 {
		return ledger.Transfer{}, ledger.Result{}, false, nil
	}
	return es[0].Transfer, es[0].Result, true, nil
}

// Transfers implements ledger.Store. limit must be positive; more than
// MaxPage is cut to MaxPage.
func (s *Store) Transfers(ctx context.Context, a ledger.AccountID, beforeID int64, limit int) ([]ledger.Entry, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: page size %d", ledger.ErrInvalid, limit)
	}
	limit = min(limit, MaxPage)
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	rows, err := s.rdb.QueryContext(ctx, `WITH page AS (
			SELECT DISTINCT transfer_id AS id FROM postings
			WHERE account = ? AND transfer_id < ?
			ORDER BY transfer_id DESC LIMIT ?)
		SELECT t.id, t.key, t.kind, t.memo, t.at, p.account, p.amount
		FROM page JOIN transfers t ON t.id = page.id JOIN postings p ON p.transfer_id = t.id
		ORDER BY t.id DESC, p.leg`, string(a), beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger/sqlite: transfers of %s: %w", a, err)
	}
	es, err := scanEntries(rows)
	if err != nil {
		return nil, fmt.Errorf("ledger/sqlite: transfers of %s: %w", a, err)
	}
	return es, nil
}

// scanEntries folds rows of (transfer columns, one posting) into entries,
// in row order.
func scanEntries(rows *sql.Rows) ([]ledger.Entry, error) {
	defer rows.Close()
	var es []ledger.Entry
	for rows.Next() {
		var id, at, amount int64
		var key, kind, memo, account string
		if err := rows.Scan(&id, &key, &kind, &memo, &at, &account, &amount); err != nil {
			return nil, err
		}
		es = ledger.AppendEntryRow(es, id, key, kind, memo, fromNanos(at), account, amount)
	}
	return es, rows.Err()
}

// ActiveHolds implements ledger.Store.
func (s *Store) ActiveHolds(ctx context.Context) (int, int64, error) {
	var n int
	var held int64
	err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM holds WHERE state = ?`, int(ledger.HoldActive)).Scan(&n, &held)
	if err != nil {
		return 0, 0, fmt.Errorf("ledger/sqlite: active holds: %w", err)
	}
	return n, held, nil
}
