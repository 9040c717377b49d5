package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// op is one queued hot write: one statement (a wallet_* function call)
// returning one row, scanned into dest.
type op struct {
	ctx  context.Context
	sql  string
	args []any
	dest []any
}

// errUnknown marks a batch whose outcome is not known: the connection
// failed after the batch was sent.
var errUnknown = errors.New("wallet/postgres: outcome unknown (connection lost after sending), retry with the same key")

// maxRetries bounds how often a batch is sent again after a deadlock or a
// serialization failure.
const maxRetries = 10

// submit queues o for the writer and waits for its batch to commit.
func (s *Store) submit(ctx context.Context, o *op) error {
	o.ctx = ctx
	return s.batcher.Submit(ctx, o)
}

// apply commits a batch and returns one error per op.
func (s *Store) apply(batch []*op) []error {
	errs := make([]error, len(batch))
	live := make([]*op, 0, len(batch))
	idx := make([]int, 0, len(batch))
	for i, o := range batch {
		if err := o.ctx.Err(); err != nil {
			errs[i] = err // given up before it started: not applied
			continue
		}
		live = append(live, o)
		idx = append(idx, i)
	}
	if len(live) == 0 {
		return errs
	}
	var err error
	reset := false
	for try := 0; try <= maxRetries; try++ {
		if err = s.send(live); err == nil {
			break
		}
		if readOnly(err) && !reset {
			// Rolled back, nothing applied: once more on fresh
			// connections, which may find a new primary.
			reset = true
			s.pool.Reset()
			continue
		}
		if !retryable(err) {
			break
		}
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
	case errors.As(err, &pgErr) && pgErr.Severity == "ERROR" && len(live) > 1 && !readOnly(err):
		// One write failed and took the batch with it: one by one.
		for j, o := range live {
			errs[idx[j]] = s.apply([]*op{o})[0]
		}
	default:
		for _, i := range idx {
			errs[i] = s.fail(err)
		}
	}
	return errs
}

// retryable reports whether a batch that failed with err was not committed
// and may simply be sent again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001" // deadlock, serialization failure
	}
	return false
}

// send runs ops in one transaction, pipelined in one round trip: a batch
// without BEGIN is one implicit transaction, committed at its Sync. A nil
// error means committed; an error from the server means rolled back; any
// other error after sending is errUnknown.
func (s *Store) send(ops []*op) error {
	s.batches.Add(1)
	s.ops.Add(uint64(len(ops)))
	if n := int64(len(ops)); n > s.maxBatch.Load() {
		s.maxBatch.Store(n) // only the writer goroutine writes it
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.BatchTimeout)
	defer cancel()
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("wallet/postgres: connect: %w", err) // nothing sent
	}
	defer c.Release()
	b := &pgx.Batch{}
	for _, o := range ops {
		b.Queue(o.sql, o.args...)
	}
	br := c.SendBatch(ctx, b)
	for i := 0; err == nil && i < len(ops); i++ {
		err = br.QueryRow().Scan(ops[i].dest...)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Severity == "ERROR" {
		return fmt.Errorf("wallet/postgres: %w", err) // the implicit transaction was rolled back
	}
	if pgconn.SafeToRetry(err) {
		return fmt.Errorf("wallet/postgres: %w", err)
	}
	c.Conn().Close(ctx) // not returned to the pool in an unknown state
	return fmt.Errorf("%w: %w", errUnknown, err)
}
