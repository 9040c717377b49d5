package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"campuspay/server/ledger"
)

// Check implements ledger.Store. It recomputes every balance and held
// amount from postings and holds in one REPEATABLE READ, READ ONLY
// transaction (a consistent snapshot; writers, of every authorizer, go on
// meanwhile) and compares them with what is stored. It also recomputes
// every transfer's content hash in Go, which checks the database's own
// hash function (used for captures) against ledger.Transfer.ContentHash.
// Postings without a transfer or an account row cannot exist: foreign keys
// forbid them.
func (s *Store) Check(ctx context.Context) (ledger.Report, error) {
	var r ledger.Report
	err := s.reads.with(ctx, func(c *pgx.Conn) error {
		r = ledger.Report{}
		return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
			func(tx pgx.Tx) error { return check(ctx, tx, &r) })
	})
	if err != nil {
		return ledger.Report{}, err
	}
	return r, nil
}

func check(ctx context.Context, tx pgx.Tx, r *ledger.Report) error {
	c := ledger.Checker{Report: r}
	// each runs a query and hands every row to f.
	each := func(q string, f func(pgx.Rows) error) error {
		rows, err := tx.Query(ctx, q)
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
			return tx.QueryRow(ctx, `SELECT
				(SELECT COUNT(*) FROM transfers), (SELECT COUNT(*) FROM postings),
				(SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM holds),
				(SELECT COALESCE(SUM(amount), 0)::bigint FROM postings)`).
				Scan(&r.Transfers, &r.Postings, &r.Accounts, &r.Holds, &r.Sum)
		}},
		{"sum", func() error {
			c.Sum()
			return nil
		}},
		{"transfers", func() error {
			return each(`SELECT t.id, t.key, COUNT(p.leg), COALESCE(SUM(p.amount), 0)::bigint
				FROM transfers t LEFT JOIN postings p ON p.transfer_id = t.id
				GROUP BY t.id HAVING COUNT(p.leg) < 2 OR COALESCE(SUM(p.amount), 0) <> 0 ORDER BY t.id`,
				func(rows pgx.Rows) error {
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
				func(rows pgx.Rows) error {
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
		{"accounts", func() error {
			// One pass over postings and one over holds, not one per account.
			return each(`SELECT a.id, a.constrained, a.balance, a.held,
					COALESCE(p.sum, 0)::bigint, COALESCE(h.sum, 0)::bigint
				FROM accounts a
				LEFT JOIN (SELECT account, SUM(amount) AS sum FROM postings GROUP BY account) p ON p.account = a.id
				LEFT JOIN (SELECT account, SUM(amount) AS sum FROM holds WHERE state = 1 GROUP BY account) h ON h.account = a.id
				ORDER BY a.id`,
				func(rows pgx.Rows) error {
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
			return each(`SELECT h.key, h.account, h.amount, h.state, h.captured, h.transfer_id, m.moved
				FROM holds h
				LEFT JOIN LATERAL (SELECT SUM(-p.amount)::bigint AS moved FROM postings p
					WHERE p.transfer_id = h.transfer_id AND p.account = h.account) m ON true
				WHERE h.state NOT IN (1, 2, 3, 4) OR h.captured < 0 OR h.captured > h.amount OR h.amount <= 0
					OR (h.state <> 2 AND (h.captured <> 0 OR h.transfer_id IS NOT NULL))
					OR (h.state = 2 AND h.captured > 0 AND (h.transfer_id IS NULL OR COALESCE(m.moved, 0) <> h.captured))`,
				func(rows pgx.Rows) error {
					var key, account string
					var amount, captured int64
					var state ledger.HoldState
					var tid, moved *int64
					if err := rows.Scan(&key, &account, &amount, &state, &captured, &tid, &moved); err != nil {
						return err
					}
					c.BadHold(key, account, amount, state, captured, deref(tid), deref(moved))
					return nil
				})
		}},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			return fmt.Errorf("ledger/postgres: check %s: %w", st.what, err)
		}
	}
	return nil
}

func deref(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}
