package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"campuspay/server/wallet"
)

// LoginFails returns the lockout rows of those keys that have one.
func (s *Store) LoginFails(ctx context.Context, keys ...string) ([]wallet.LoginFail, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := s.query(ctx, `SELECT lock_key, fails, last_fail, locked_until FROM login_fails WHERE lock_key IN (?`+
		strings.Repeat(",?", len(keys)-1)+`) ORDER BY lock_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: login fails: %w", err)
	}
	defer rows.Close()
	var out []wallet.LoginFail
	for rows.Next() {
		var f wallet.LoginFail
		var last, until int64
		if err := rows.Scan(&f.Key, &f.Fails, &last, &until); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: login fails: %w", err)
		}
		f.Last, f.Until = fromNanos(last), fromNanos(until)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("wallet/sqlite: login fails: %w", err)
	}
	return out, nil
}

// UpdateLoginFail changes key's row with f in the writer's transaction:
// the one writer serialises every update of the store.
func (s *Store) UpdateLoginFail(ctx context.Context, key string, f func(*wallet.LoginFail)) (wallet.LoginFail, error) {
	var out wallet.LoginFail
	err := s.write(ctx, func(tx writeTx) error {
		cur := wallet.LoginFail{Key: key}
		var last, until int64
		err := tx.QueryRowContext(ctx, `SELECT fails, last_fail, locked_until FROM login_fails WHERE lock_key=?`, key).Scan(&cur.Fails, &last, &until)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			cur.Last, cur.Until = fromNanos(last), fromNanos(until)
		}
		f(&cur)
		cur.Key = key
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_fails (lock_key, fails, last_fail, locked_until) VALUES (?,?,?,?)
			ON CONFLICT (lock_key) DO UPDATE SET fails=excluded.fails, last_fail=excluded.last_fail, locked_until=excluded.locked_until`,
			key, cur.Fails, nanos(cur.Last), nanos(cur.Until)); err != nil {
			return err
		}
		out = cur
		return nil
	})
	if err != nil {
		return wallet.LoginFail{}, fmt.Errorf("wallet/sqlite: update login fail: %w", err)
	}
	return out, nil
}

// ClearLoginFails deletes the keys' rows.
func (s *Store) ClearLoginFails(ctx context.Context, keys ...string) error {
	err := s.write(ctx, func(tx writeTx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM login_fails WHERE lock_key=?`, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: clear login fails: %w", err)
	}
	return nil
}

// PruneLoginFails deletes the rows that lock nothing at now and whose last
// failure is before lastBefore.
func (s *Store) PruneLoginFails(ctx context.Context, now, lastBefore time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx writeTx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM login_fails WHERE locked_until <= ? AND last_fail < ?`, nanos(now), nanos(lastBefore))
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("wallet/sqlite: prune login fails: %w", err)
	}
	return int(n), nil
}
