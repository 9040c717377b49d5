package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mattn/go-sqlite3"

	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/metrics"
)

// writeTx is the writer's open transaction (ledgersqlite.Tx): its
// connection, between BEGIN IMMEDIATE and COMMIT.
type writeTx = ledgersqlite.Tx

// batchTx is the writer's connection as the ops of a batch see it: every
// statement runs without the caller's context. A write the writer has
// started runs to its end; and on the connection (unlike in a *sql.Tx) an
// ended context is not refused before the statement starts but interrupts
// it, and SQLite rolls back the whole transaction on an interrupted
// write: one caller that gave up would fail the batch of everyone else.
type batchTx struct{ c *sql.Conn }

func (t batchTx) ExecContext(_ context.Context, q string, args ...any) (sql.Result, error) {
	return t.c.ExecContext(context.Background(), q, args...)
}

func (t batchTx) QueryContext(_ context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.c.QueryContext(context.Background(), q, args...)
}

func (t batchTx) QueryRowContext(_ context.Context, q string, args ...any) *sql.Row {
	return t.c.QueryRowContext(context.Background(), q, args...)
}

// ErrClosed is returned by a Store after Close.
var ErrClosed = errors.New("wallet/sqlite: store closed")

// defaultMaxBatch bounds how many writes one transaction commits unless
// WithMaxBatch says otherwise.
const defaultMaxBatch = 128

// op is one queued write.
type op struct {
	ctx  context.Context
	f    func(writeTx) error
	done chan error
	// plain: f writes with one statement (any others only read), or leaves
	// behind only what is harmless if it fails midway (PutIntent says why),
	// so no savepoint is needed. The money path's writes are plain: the
	// savepoint statements would cost more than the write itself.
	plain bool
}

// write runs f in the writer's transaction and returns once it is
// committed (durable) or failed. Writes queued together share one
// transaction and one fsync (group commit); each runs inside its own
// SAVEPOINT, so a failing one is rolled back alone, and each sees the
// effects of those before it.
func (s *Store) write(ctx context.Context, f func(writeTx) error) error {
	return s.submit(&op{ctx: ctx, f: f, done: make(chan error, 1)})
}

// writePlain is write for an f that writes with a single statement.
func (s *Store) writePlain(ctx context.Context, f func(writeTx) error) error {
	return s.submit(&op{ctx: ctx, f: f, done: make(chan error, 1), plain: true})
}

func (s *Store) submit(o *op) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	s.queue <- o
	s.mu.RUnlock()
	// Waited for whatever the caller's context does: the outcome of a
	// queued write must be known before the caller goes on.
	return <-o.done
}

// run is the writer goroutine.
func (s *Store) run() {
	defer close(s.stopped)
	for first := range s.queue {
		batch := []*op{first}
	more:
		for len(batch) < s.maxBatch {
			select {
			case o, ok := <-s.queue:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		metrics.BatchSize.Observe(float64(len(batch)))
		s.wmu.Lock()
		s.commit(batch)
		s.wmu.Unlock()
	}
}

// inTx reports whether c is still inside a transaction (SQLite has not
// rolled it back on its own).
func inTx(c *sql.Conn) bool {
	in := false
	c.Raw(func(dc any) error {
		if sc, ok := dc.(*sqlite3.SQLiteConn); ok {
			in = !sc.AutoCommit()
		}
		return nil
	})
	return in
}

func (s *Store) commit(batch []*op) {
	errs := make([]error, len(batch))
	fail := func(err error) {
		for _, o := range batch {
			o.done <- err
		}
	}
	ctx := context.Background()
	c := s.wconn
	tx := batchTx{c}
	rollback := func() {
		if inTx(c) {
			c.ExecContext(ctx, "ROLLBACK")
		}
	}
	if _, err := s.txExec(ctx, tx, qBegin); err != nil {
		rollback()
		fail(fmt.Errorf("wallet/sqlite: begin: %w", err))
		return
	}
	for i, o := range batch {
		if o.plain {
			// SQLite ends the whole transaction itself on some failures
			// (disk full, I/O error, out of memory): the ops after it would
			// then commit one by one, outside the batch, while their
			// callers are told the batch failed. The batch fails instead.
			if errs[i] = o.f(tx); errs[i] != nil && !inTx(c) {
				fail(fmt.Errorf("wallet/sqlite: batch rolled back: %w", errs[i]))
				return
			}
			continue
		}
		if _, err := s.txExec(ctx, tx, qSavepoint); err != nil {
			rollback()
			fail(fmt.Errorf("wallet/sqlite: savepoint: %w", err))
			return
		}
		if errs[i] = o.f(tx); errs[i] != nil {
			if _, err := s.txExec(ctx, tx, qRollbackTo); err != nil {
				rollback()
				fail(fmt.Errorf("wallet/sqlite: rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := s.txExec(ctx, tx, qRelease); err != nil {
			rollback()
			fail(fmt.Errorf("wallet/sqlite: release savepoint: %w", err))
			return
		}
	}
	if _, err := s.txExec(ctx, tx, qCommit); err != nil {
		// SQLite may leave the transaction open after a failed COMMIT.
		rollback()
		fail(fmt.Errorf("wallet/sqlite: commit: %w", err))
		return
	}
	for i, o := range batch {
		o.done <- errs[i]
	}
}
