package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"campuspay/server/ledger"
)

// Check implements ledger.Store. It recomputes every balance and held
// amount from postings and holds inside one read transaction (a consistent
// snapshot; writers go on meanwhile) and compares them with what is stored.
func (s *Store) Check(ctx context.Context) (ledger.Report, error) {
	var r ledger.Report
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return r, fmt.Errorf("ledger/sqlite: check: %w", err)
	}
	defer tx.Rollback()
	c := ledger.Checker{Report: &r}
	// each runs a query and hands every row to f.
	each := func(q string, f func(*sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := f(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	steps := []struct {
		what string
		run  func() error
	}{
		{"counts", func() error {
			return tx.QueryRowContext(ctx, `SELECT
				(SELECT COUNT(*) FROM transfers), (SELECT COUNT(*) FROM postings),
				(SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM holds),
				(SELECT COALESCE(SUM(amount), 0) FROM postings)`).
				Scan(&r.Transfers, &r.Postings, &r.Accounts, &r.Holds, &r.Sum)
		}},
		{"sum", func() error {
			c.Sum()
			return nil
		}},
		{"transfers", func() error {
			return each(`SELECT t.id, t.key, COUNT(p.leg), COALESCE(SUM(p.amount), 0)
				FROM transfers t LEFT JOIN postings p ON p.transfer_id = t.id
				GROUP BY t.id HAVING COUNT(p.leg) < 2 OR SUM(p.amount) <> 0 ORDER BY t.id`,
				func(rows *sql.Rows) error {
					var id, legs, sum int64
					var key string
					if err := rows.Scan(&id, &key, &legs, &sum); err != nil {
						return err
					}
					c.Transfer(id, key, legs, sum)
					return nil
				})
		}},
		{"content hashes", func() error {
			err := each(`SELECT t.id, t.key, t.kind, t.hash, p.account, p.amount
				FROM transfers t JOIN postings p ON p.transfer_id = t.id ORDER BY t.id, p.leg`,
				func(rows *sql.Rows) error {
					var id, amount int64
					var key, kind, account string
					var hash []byte
					if err := rows.Scan(&id, &key, &kind, &hash, &account, &amount); err != nil {
						return err
					}
					c.Posting(id, key, kind, hash, account, amount)
					return nil
				})
			c.PostingsDone()
			return err
		}},
		{"orphan postings", func() error {
			return each(`SELECT p.transfer_id, p.account, p.amount FROM postings p
				LEFT JOIN transfers t ON t.id = p.transfer_id
				LEFT JOIN accounts a ON a.id = p.account
				WHERE t.id IS NULL OR a.id IS NULL`,
				func(rows *sql.Rows) error {
					var id, amount int64
					var account string
					if err := rows.Scan(&id, &account, &amount); err != nil {
						return err
					}
					c.Problemf("posting of %d on %s in transfer %d has no transfer or no account row", amount, account, id)
					return nil
				})
		}},
		{"accounts", func() error {
			// One pass over postings and one over holds, not one per account.
			return each(`SELECT a.id, a.constrained, a.balance, a.held, COALESCE(p.sum, 0), COALESCE(h.sum, 0)
				FROM accounts a
				LEFT JOIN (SELECT account, SUM(amount) AS sum FROM postings GROUP BY account) p ON p.account = a.id
				LEFT JOIN (SELECT account, SUM(amount) AS sum FROM holds WHERE state = 1 GROUP BY account) h ON h.account = a.id
				ORDER BY a.id`,
				func(rows *sql.Rows) error {
					var id string
					var constrained bool
					var balance, held, posted, holding int64
					if err := rows.Scan(&id, &constrained, &balance, &held, &posted, &holding); err != nil {
						return err
					}
					c.Account(id, constrained, balance, held, posted, holding)
					return nil
				})
		}},
		{"holds", func() error {
			return each(`SELECT h.key, h.account, h.amount, h.state, h.captured, h.transfer_id,
					(SELECT SUM(-p.amount) FROM postings p WHERE p.transfer_id = h.transfer_id AND p.account = h.account)
				FROM holds h
				WHERE h.state NOT IN (1, 2, 3, 4) OR h.captured < 0 OR h.captured > h.amount OR h.amount <= 0
					OR (h.state <> 2 AND (h.captured <> 0 OR h.transfer_id IS NOT NULL))
					OR (h.state = 2 AND h.captured > 0 AND (h.transfer_id IS NULL OR
						COALESCE((SELECT SUM(-p.amount) FROM postings p WHERE p.transfer_id = h.transfer_id AND p.account = h.account), 0) <> h.captured))`,
				func(rows *sql.Rows) error {
					var key, account string
					var amount, captured int64
					var state ledger.HoldState
					var tid, moved sql.NullInt64
					if err := rows.Scan(&key, &account, &amount, &state, &captured, &tid, &moved); err != nil {
						return err
					}
					c.BadHold(key, account, amount, state, captured, tid, moved)
					return nil
				})
		}},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			return ledger.Report{}, fmt.Errorf("ledger/sqlite: check %s: %w", st.what, err)
		}
	}
	return r, nil
}
