package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"campuspay/server/ledger"
)

// MaxPage bounds Transfers' limit.
const MaxPage = 1000

// Balance implements ledger.Store. An account never posted to has a zero
// balance. It reads the last committed state, not queued operations.
func (s *Store) Balance(ctx context.Context, a ledger.AccountID) (ledger.Balance, error) {
	b := ledger.Balance{Account: a}
	if storable(string(a)) != nil {
		return b, nil // no such account can exist
	}
	err := s.reads.with(ctx, func(c *pgx.Conn) error {
		err := c.QueryRow(ctx, "SELECT balance, held FROM accounts WHERE id = $1", string(a)).Scan(&b.Posted, &b.Held)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return ledger.Balance{}, fmt.Errorf("ledger/postgres: balance of %s: %w", a, err)
	}
	b.Available = b.Posted - b.Held
	return b, nil
}

// GetHold implements ledger.Store; ErrHoldNotFound if there is none.
func (s *Store) GetHold(ctx context.Context, holdKey string) (ledger.HoldInfo, error) {
	if storable(holdKey) != nil {
		return ledger.HoldInfo{}, fmt.Errorf("%w: %q", ledger.ErrHoldNotFound, holdKey)
	}
	var h ledger.HoldInfo
	err := s.reads.with(ctx, func(c *pgx.Conn) error {
		var account string
		var expires, at int64
		err := c.QueryRow(ctx, "SELECT account, amount, state, captured, expires, memo, at FROM holds WHERE key = $1", holdKey).
			Scan(&account, &h.Amount, &h.State, &h.Captured, &expires, &h.Memo, &at)
		h.Key, h.Account, h.Expires, h.At = holdKey, ledger.AccountID(account), fromNanos(expires), fromNanos(at)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.HoldInfo{}, fmt.Errorf("%w: %q", ledger.ErrHoldNotFound, holdKey)
	}
	if err != nil {
		return ledger.HoldInfo{}, fmt.Errorf("ledger/postgres: read hold %q: %w", holdKey, err)
	}
	return h, nil
}

// Lookup implements ledger.Store. The returned Result has Duplicate=false.
func (s *Store) Lookup(ctx context.Context, key string) (ledger.Transfer, ledger.Result, bool, error) {
	if storable(key) != nil {
		return ledger.Transfer{}, ledger.Result{}, false, nil
	}
	es, err := s.entries(ctx, `SELECT t.id, t.key, t.kind, t.memo, t.at, p.account, p.amount
		FROM transfers t JOIN postings p ON p.transfer_id = t.id
		WHERE t.key = $1 ORDER BY p.leg`, key)
	if err != nil {
		return ledger.Transfer{}, ledger.Result{}, false, fmt.Errorf("ledger/postgres: look up %q: %w", key, err)
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
	if storable(string(a)) != nil {
		return nil, nil
	}
	limit = min(limit, MaxPage)
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	es, err := s.entries(ctx, `WITH page AS (
			SELECT DISTINCT transfer_id AS id FROM postings
			WHERE account = $1 AND transfer_id < $2
			ORDER BY transfer_id DESC LIMIT $3)
		SELECT t.id, t.key, t.kind, t.memo, t.at, p.account, p.amount
		FROM page JOIN transfers t ON t.id = page.id JOIN postings p ON p.transfer_id = t.id
		ORDER BY t.id DESC, p.leg`, string(a), beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("ledger/postgres: transfers of %s: %w", a, err)
	}
	return es, nil
}

// entries runs a query of (transfer columns, one posting) rows and folds
// them into entries, in row order.
func (s *Store) entries(ctx context.Context, sql string, args ...any) ([]ledger.Entry, error) {
	var es []ledger.Entry
	err := s.reads.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, at, amount int64
			var key, kind, memo, account string
			if err := rows.Scan(&id, &key, &kind, &memo, &at, &account, &amount); err != nil {
				return err
			}
			es = ledger.AppendEntryRow(es, id, key, kind, memo, fromNanos(at), account, amount)
		}
		return rows.Err()
	})
	return es, err
}

// ActiveHolds implements ledger.Store.
func (s *Store) ActiveHolds(ctx context.Context) (int, int64, error) {
	var n int
	var held int64
	err := s.reads.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT COUNT(*), COALESCE(SUM(amount), 0)::bigint FROM holds WHERE state = $1", int16(ledger.HoldActive)).Scan(&n, &held)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("ledger/postgres: active holds: %w", err)
	}
	return n, held, nil
}
