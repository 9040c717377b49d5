package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"campuspay/server/wallet"
)

// LoginFails returns the lockout rows of those keys that have one.
func (s *Store) LoginFails(ctx context.Context, keys ...string) ([]wallet.LoginFail, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT lock_key, fails, last_fail, locked_until FROM login_fails
		WHERE lock_key = ANY($1) AND last_fail <> 0 ORDER BY lock_key`, keys)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: login fails: %w", s.fail(err))
	}
	defer rows.Close()
	var out []wallet.LoginFail
	for rows.Next() {
		var f wallet.LoginFail
		var last, until int64
		if err := rows.Scan(&f.Key, &f.Fails, &last, &until); err != nil {
			return nil, fmt.Errorf("wallet/postgres: login fails: %w", err)
		}
		f.Last, f.Until = fromNanos(last), fromNanos(until)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("wallet/postgres: login fails: %w", s.fail(err))
	}
	return out, nil
}

// UpdateLoginFail changes key's row with f in one transaction holding the
// row's lock, so that authorizers counting the same key one at a time
// each see the other's count. A read-only server (a demoted primary) is
// tried once more on fresh connections: f only computes.
func (s *Store) UpdateLoginFail(ctx context.Context, key string, f func(*wallet.LoginFail)) (wallet.LoginFail, error) {
	var out wallet.LoginFail
	update := func() error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// An empty row to lock when there is none (last_fail 0: read as
			// absent).
			if _, err := tx.Exec(ctx, `INSERT INTO login_fails (lock_key, fails, last_fail, locked_until) VALUES ($1, 0, 0, 0)
				ON CONFLICT (lock_key) DO NOTHING`, key); err != nil {
				return err
			}
			cur := wallet.LoginFail{Key: key}
			var last, until int64
			if err := tx.QueryRow(ctx, `SELECT fails, last_fail, locked_until FROM login_fails WHERE lock_key=$1 FOR UPDATE`, key).
				Scan(&cur.Fails, &last, &until); err != nil {
				return err
			}
			cur.Last, cur.Until = fromNanos(last), fromNanos(until)
			f(&cur)
			cur.Key = key
			if _, err := tx.Exec(ctx, `UPDATE login_fails SET fails=$2, last_fail=$3, locked_until=$4 WHERE lock_key=$1`,
				key, cur.Fails, nanos(cur.Last), nanos(cur.Until)); err != nil {
				return err
			}
			out = cur
			return nil
		})
	}
	err := update()
	if readOnly(err) {
		s.pool.Reset()
		err = update()
	}
	if err != nil {
		return wallet.LoginFail{}, fmt.Errorf("wallet/postgres: update login fail: %w", s.fail(err))
	}
	return out, nil
}

// ClearLoginFails deletes the keys' rows.
func (s *Store) ClearLoginFails(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := s.exec(ctx, `DELETE FROM login_fails WHERE lock_key = ANY($1)`, keys); err != nil {
		return fmt.Errorf("wallet/postgres: clear login fails: %w", err)
	}
	return nil
}

// PruneLoginFails deletes the rows that lock nothing at now and whose last
// failure is before lastBefore.
func (s *Store) PruneLoginFails(ctx context.Context, now, lastBefore time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM login_fails WHERE locked_until <= $1 AND last_fail < $2`, nanos(now), nanos(lastBefore))
	if err != nil {
		return 0, fmt.Errorf("wallet/postgres: prune login fails: %w", s.fail(err))
	}
	return int(tag.RowsAffected()), nil
}
