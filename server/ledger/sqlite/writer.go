package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"campuspay/server/ledger"
)

// op is one queued write. apply runs on the writer goroutine inside its own
// savepoint and leaves its results in variables its closure captured; they
// are read by the caller only after the batcher has answered, which happens
// after the batch's COMMIT.
type op struct {
	ctx   context.Context
	apply func(w *writer) error
}

// errBatch marks a failure that poisons the whole transaction (the
// savepoint machinery itself failed); the batch is rolled back.
type errBatch struct{ err error }

func (e errBatch) Error() string { return "ledger/sqlite: batch aborted: " + e.err.Error() }
func (e errBatch) Unwrap() error { return e.err }

// submit queues apply for the writer and waits for the batch it lands in
// to commit. A ledger inside a host's database (OpenIn) has its operation
// applied by the host's writer, in the host's transaction and savepoint.
func (s *Store) submit(ctx context.Context, apply func(w *writer) error) error {
	if s.host == nil {
		return s.batcher.Submit(ctx, &op{ctx: ctx, apply: apply})
	}
	s.hostMu.RLock()
	defer s.hostMu.RUnlock()
	if s.hostClosed {
		return ledger.ErrClosed
	}
	s.ops.Add(1)
	return s.host.Write(ctx, func(Tx) error {
		if err := ctx.Err(); err != nil {
			return err // given up before it started: not applied
		}
		return apply(s.w)
	})
}

// commit applies batch in one transaction and returns one error per op.
func (s *Store) commit(batch []*op, errs []error) []error {
	s.batches.Add(1)
	s.ops.Add(uint64(len(batch)))
	if n := int64(len(batch)); n > s.maxBatch.Load() {
		s.maxBatch.Store(n) // only this goroutine writes it
	}
	w := s.w
	failAll := func(err error) []error {
		errs = errs[:0]
		for range batch {
			errs = append(errs, err)
		}
		return errs
	}
	if _, err := w.begin.Exec(); err != nil {
		return failAll(fmt.Errorf("ledger/sqlite: begin: %w", err))
	}
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			errs = append(errs, err) // given up before it started: not applied
			continue
		}
		err := w.applyOne(o)
		var eb errBatch
		if errors.As(err, &eb) {
			w.rollback.Exec()
			return failAll(eb)
		}
		errs = append(errs, err)
	}
	if s.opt.beforeCommit != nil {
		if err := s.opt.beforeCommit(s.wconn); err != nil {
			w.rollback.Exec()
			return failAll(fmt.Errorf("ledger/sqlite: commit: %w", err))
		}
	}
	if _, err := w.commit.Exec(); err != nil {
		// SQLite may leave the transaction open after a failed COMMIT.
		w.rollback.Exec()
		return failAll(fmt.Errorf("ledger/sqlite: commit: %w", err))
	}
	return errs
}

// applyOne runs o inside a savepoint so that its failure undoes only its
// own writes.
func (w *writer) applyOne(o *op) error {
	if _, err := w.savepoint.Exec(); err != nil {
		return errBatch{fmt.Errorf("savepoint: %w", err)}
	}
	err := o.apply(w)
	if err != nil {
		if _, rerr := w.rollbackTo.Exec(); rerr != nil {
			return errBatch{fmt.Errorf("rollback to savepoint: %w", rerr)}
		}
	}
	if _, rerr := w.releaseSP.Exec(); rerr != nil {
		return errBatch{fmt.Errorf("release savepoint: %w", rerr)}
	}
	return err
}

// writer holds the statements the writer goroutine runs, prepared once on
// its connection.
type writer struct {
	begin, commit, rollback                  *sql.Stmt
	savepoint, rollbackTo, releaseSP         *sql.Stmt
	transferByKey, insTransfer               *sql.Stmt
	insPosting, insPostings2, postingsOf     *sql.Stmt
	account, addBalance, addHeld, insAccount *sql.Stmt
	debit                                    *sql.Stmt
	holdByKey, insHold, closeHold            *sql.Stmt
	expiring, linkHold                       *sql.Stmt
	all                                      []*sql.Stmt
}

// preparer is the ledger's own writer connection or a host's.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// Transfer keys are found through transfers_key, which starts with the
// key's last 26 characters (a payment's ULID, time first: migration
// 0002); the lookup names both of its columns as one row value.
const (
	qTransferByKey = "SELECT id, hash, at FROM transfers WHERE (substr(key, -26), key) = (substr(?1, -26), ?1)"
	qLookup        = `SELECT t.id, t.key, t.kind, t.memo, t.at, p.account, p.amount
		FROM transfers t JOIN postings p ON p.transfer_id = t.id
		WHERE (substr(t.key, -26), t.key) = (substr(?1, -26), ?1) ORDER BY p.leg`
)

func newWriter(ctx context.Context, c preparer) (*writer, error) {
	w := &writer{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.savepoint, "SAVEPOINT op"},
		{&w.rollbackTo, "ROLLBACK TO op"},
		{&w.releaseSP, "RELEASE op"},
		{&w.transferByKey, qTransferByKey},
		// No RETURNING on the money path: SQLite runs a statement with
		// RETURNING through a temporary table, three to four times the
		// cost of the statement alone (docs/money-path.md item 7); the
		// row count and the last rowid say the same.
		{&w.insTransfer, "INSERT INTO transfers (key, kind, memo, at, hash) VALUES (?, ?, ?, ?, ?) ON CONFLICT (substr(key, -26), key) DO NOTHING"},
		{&w.insPosting, "INSERT INTO postings (transfer_id, leg, account, amount) VALUES (?, ?, ?, ?)"},
		{&w.insPostings2, "INSERT INTO postings (transfer_id, leg, account, amount) VALUES (?1, 0, ?2, ?3), (?1, 1, ?4, ?5)"},
		{&w.postingsOf, "SELECT account, amount FROM postings WHERE transfer_id = ? ORDER BY leg"},
		{&w.account, "SELECT balance, held FROM accounts WHERE id = ?"},
		{&w.addBalance, "UPDATE accounts SET balance = balance + ? WHERE id = ?"},
		{&w.debit, "UPDATE accounts SET balance = balance + ?1 WHERE id = ?2 AND balance - held + ?1 >= 0"},
		{&w.insAccount, "INSERT INTO accounts (id, constrained, balance) VALUES (?, ?, ?)"},
		{&w.addHeld, "UPDATE accounts SET held = held + ? WHERE id = ?"},
		{&w.holdByKey, "SELECT " + holdColumns + " FROM holds WHERE key = ?"},
		{&w.insHold, `INSERT INTO holds (key, account, amount, state, captured, expires, memo, at)
			VALUES (?, ?, ?, ?, 0, ?, ?, ?)`},
		{&w.closeHold, "UPDATE holds SET state = ?, captured = ?, closed_at = ? WHERE key = ? AND state = 1"},
		{&w.linkHold, "UPDATE holds SET transfer_id = ? WHERE key = ?"},
		{&w.expiring, "SELECT " + holdColumns + " FROM holds WHERE state = 1 AND expires <= ? ORDER BY expires, id"},
	} {
		st, err := c.PrepareContext(ctx, p.sql)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.dst = st
		w.all = append(w.all, st)
	}
	return w, nil
}

func (w *writer) close() error {
	var errs []error
	for _, st := range w.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
