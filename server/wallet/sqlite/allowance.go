package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// allowancesSchema is migration 9: offline allowances (wallet/allowance.go).
const allowancesSchema = `CREATE TABLE allowances (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id INTEGER NOT NULL, device_id INTEGER NOT NULL,
	amount INTEGER NOT NULL, valid_until INTEGER NOT NULL,
	state INTEGER NOT NULL, -- wallet.AllowanceState
	created INTEGER NOT NULL, updated INTEGER NOT NULL
);
CREATE INDEX allowances_user ON allowances(user_id, valid_until);
CREATE INDEX allowances_ended ON allowances(valid_until) WHERE state <> 1`

const allowanceCols = `id, user_id, device_id, amount, valid_until, state, created, updated`

func scanAllowance(row interface{ Scan(...any) error }) (*wallet.Allowance, error) {
	var a wallet.Allowance
	var until, created, updated int64
	if err := row.Scan(&a.ID, &a.UserID, &a.DeviceID, &a.Amount, &until, &a.State, &created, &updated); err != nil {
		return nil, err
	}
	a.ValidUntil, a.Created, a.Updated = fromNanos(until), fromNanos(created), fromNanos(updated)
	return &a, nil
}

// PutAllowance implements wallet.Store.
func (s *Store) PutAllowance(ctx context.Context, a *wallet.Allowance) error {
	if a.ID != 0 {
		if err := s.exec(ctx, `UPDATE allowances SET state=?, updated=? WHERE id=?`, a.State, nanos(a.Updated), a.ID); err != nil {
			return fmt.Errorf("wallet/sqlite: update allowance %d: %w", a.ID, err)
		}
		return nil
	}
	var id int64
	err := s.write(ctx, func(tx writeTx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO allowances (user_id, device_id, amount, valid_until, state, created, updated)
			VALUES (?,?,?,?,?,?,?)`, a.UserID, a.DeviceID, a.Amount, nanos(a.ValidUntil), a.State, nanos(a.Created), nanos(a.Updated))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: add allowance: %w", err)
	}
	a.ID = uint32(id)
	return nil
}

// Allowance implements wallet.Store.
func (s *Store) Allowance(ctx context.Context, id uint32) (*wallet.Allowance, error) {
	a, err := scanAllowance(s.queryRow(ctx, `SELECT `+allowanceCols+` FROM allowances WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, protocol.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: allowance %d: %w", id, err)
	}
	return a, nil
}

// Allowances implements wallet.Store.
func (s *Store) Allowances(ctx context.Context, user uint32, after time.Time) ([]wallet.Allowance, error) {
	rows, err := s.query(ctx, `SELECT `+allowanceCols+` FROM allowances WHERE user_id=? AND valid_until > ? ORDER BY id DESC`, user, nanos(after))
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: allowances of %d: %w", user, err)
	}
	defer rows.Close()
	var out []wallet.Allowance
	for rows.Next() {
		a, err := scanAllowance(rows)
		if err != nil {
			return nil, fmt.Errorf("wallet/sqlite: allowances of %d: %w", user, err)
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

// RevokedAllowances implements wallet.Store.
func (s *Store) RevokedAllowances(ctx context.Context, now time.Time) ([]uint32, error) {
	rows, err := s.query(ctx, `SELECT id FROM allowances WHERE state <> 1 AND valid_until > ? ORDER BY id`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: revoked allowances: %w", err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: revoked allowances: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
