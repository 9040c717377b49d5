package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

const allowanceCols = `id, user_id, device_id, amount, valid_until, state, created, updated`

func scanAllowance(row pgx.Row) (*wallet.Allowance, error) {
	var a wallet.Allowance
	var id, user, device int64
	var until, created, updated int64
	if err := row.Scan(&id, &user, &device, &a.Amount, &until, &a.State, &created, &updated); err != nil {
		return nil, err
	}
	a.ID, a.UserID, a.DeviceID = uint32(id), uint32(user), uint32(device)
	a.ValidUntil, a.Created, a.Updated = fromNanos(until), fromNanos(created), fromNanos(updated)
	return &a, nil
}

// PutAllowance implements wallet.Store.
func (s *Store) PutAllowance(ctx context.Context, a *wallet.Allowance) error {
	if a.ID != 0 {
		if err := s.exec(ctx, `UPDATE allowances SET state=$1, updated=$2 WHERE id=$3`, int(a.State), nanos(a.Updated), int64(a.ID)); err != nil {
			return fmt.Errorf("wallet/postgres: update allowance %d: %w", a.ID, err)
		}
		return nil
	}
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO allowances (user_id, device_id, amount, valid_until, state, created, updated)
		VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING id`, int64(a.UserID), int64(a.DeviceID), a.Amount, nanos(a.ValidUntil),
		int(a.State), nanos(a.Created), nanos(a.Updated)).Scan(&id)
	if err != nil {
		return fmt.Errorf("wallet/postgres: add allowance: %w", s.fail(err))
	}
	a.ID = uint32(id)
	return nil
}

// Allowance implements wallet.Store.
func (s *Store) Allowance(ctx context.Context, id uint32) (*wallet.Allowance, error) {
	a, err := scanAllowance(s.pool.QueryRow(ctx, `SELECT `+allowanceCols+` FROM allowances WHERE id=$1`, int64(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, protocol.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: allowance %d: %w", id, s.fail(err))
	}
	return a, nil
}

// Allowances implements wallet.Store.
func (s *Store) Allowances(ctx context.Context, user uint32, after time.Time) ([]wallet.Allowance, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+allowanceCols+` FROM allowances WHERE user_id=$1 AND valid_until > $2 ORDER BY id DESC`,
		int64(user), nanos(after))
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: allowances of %d: %w", user, s.fail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wallet.Allowance, error) {
		a, err := scanAllowance(r)
		if err != nil {
			return wallet.Allowance{}, err
		}
		return *a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: allowances of %d: %w", user, s.fail(err))
	}
	return out, nil
}

// RevokedAllowances implements wallet.Store.
func (s *Store) RevokedAllowances(ctx context.Context, now time.Time) ([]uint32, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM allowances WHERE state <> 1 AND valid_until > $1 ORDER BY id`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: revoked allowances: %w", s.fail(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: revoked allowances: %w", s.fail(err))
	}
	return out, nil
}
