package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// op is one queued write: one statement (a ledger_* function call)
// returning one row. The writer scans the row into dest; once the batch has
// committed it calls result, which interprets dest into the caller's
// variables and returns the operation's own outcome. The caller reads
// those variables only after the batcher has answered.
type op struct {
	ctx     context.Context
	lock    []string // accounts to lock before the batch's statements
	holdKey string   // a hold whose account to lock too
	expire  *int64   // ExpireHolds: lock the accounts of holds due at this time
	sql     string
	args    []any
	dest    []any
	result  func() error
}

// errUnknown marks a batch whose outcome is not known: the connection
// failed after the batch was sent.
var errUnknown = errors.New("ledger/postgres: outcome unknown (connection lost after sending), retry with the same key")

// lockSQL locks, in id order, every existing account a batch names, the
// accounts of the holds it names and those of the holds due to expire.
// Every batch locking in the same order is what keeps two authorizers'
// batches from deadlocking; accounts created by the batch are locked by
// their INSERT.
const lockSQL = `SELECT 1 FROM accounts WHERE id = ANY (
	$1::text[] ||
	ARRAY(SELECT account FROM holds WHERE key = ANY ($2::text[])) ||
	ARRAY(SELECT account FROM holds WHERE state = 1 AND expires <= $3::bigint))
	ORDER BY id FOR NO KEY UPDATE`

// submit queues o for the writer and waits for the batch it lands in to
// commit.
func (s *Store) submit(ctx context.Context, o *op) error {
	o.ctx = ctx
	return s.batcher.Submit(ctx, o)
}

// apply commits batch and returns one error per op: retried after
// deadlocks, and split into single-op transactions when one op's error
// aborted it.
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
	for try := 0; ; try++ {
		if err = s.send(live); err == nil || try >= s.opt.MaxRetries || !retryable(err) {
			break
		}
		s.retries.Add(1)
	}
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		for j, o := range live {
			errs[idx[j]] = o.result()
		}
	case errors.As(err, &pgErr) && pgErr.Severity == "ERROR" && len(live) > 1 && !retryable(err):
		// One operation broke a rule (or hit a bug) and took the batch
		// down with it: apply them one by one so that it fails alone.
		// (Not for FATAL errors, such as failing to connect: those are
		// no operation's fault.)
		s.fallbacks.Add(1)
		for j, o := range live {
			errs[idx[j]] = s.apply([]*op{o})[0]
		}
	default:
		for _, i := range idx {
			errs[i] = err
		}
	}
	return errs
}

// errSessionLost wraps a FATAL error the server sent before the batch's
// COMMIT: the session ended there, so nothing was committed, and the batch
// may be sent again on a new connection.
type errSessionLost struct{ err error }

func (e errSessionLost) Error() string {
	return "ledger/postgres: session lost before commit: " + e.err.Error()
}
func (e errSessionLost) Unwrap() error { return e.err }

// retryable reports whether a batch that failed with err was not committed
// and may simply be sent again.
func retryable(err error) bool {
	if errors.As(err, new(errSessionLost)) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001" // deadlock, serialization failure
	}
	return pgconn.SafeToRetry(err) // nothing reached the server
}

// send runs ops in one transaction, pipelined in one round trip. A nil
// error means committed. An error is either the server's (the transaction
// was rolled back), one that is safe to retry (nothing was sent), or
// errUnknown.
func (s *Store) send(ops []*op) error {
	s.batches.Add(1)
	s.ops.Add(uint64(len(ops)))
	if n := int64(len(ops)); n > s.maxBatch.Load() {
		s.maxBatch.Store(n) // only this goroutine writes it
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.BatchTimeout)
	defer cancel()
	if s.wconn == nil || s.wconn.IsClosed() {
		c, err := pgx.ConnectConfig(ctx, s.cfg)
		if err != nil {
			return fmt.Errorf("ledger/postgres: connect: %w", err) // nothing sent: the ops fail, unapplied
		}
		s.wconn = c
	}
	var accounts, holds []string
	var expire *int64
	for _, o := range ops {
		accounts = append(accounts, o.lock...)
		if o.holdKey != "" {
			holds = append(holds, o.holdKey)
		}
		if o.expire != nil && (expire == nil || *o.expire > *expire) {
			expire = o.expire
		}
	}
	// One operation is one statement: its own (implicit) transaction,
	// committed at the pipeline's Sync, and locking what it needs itself.
	// Saving the three other statements matters when payments come one
	// at a time.
	explicit := len(ops) > 1
	b := &pgx.Batch{}
	if explicit {
		b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
		b.Queue(lockSQL, accounts, holds, expire)
	}
	for _, o := range ops {
		b.Queue(o.sql, o.args...)
	}
	if explicit {
		b.Queue("COMMIT")
	}
	br := s.wconn.SendBatch(ctx, b)
	var err error
	if explicit {
		if _, err = br.Exec(); err == nil {
			_, err = br.Exec()
		}
	}
	for i := 0; err == nil && i < len(ops); i++ {
		err = br.QueryRow().Scan(ops[i].dest...)
	}
	committing := false // an error from here on may come after the commit
	if err == nil {
		committing = true
		if explicit {
			var tag pgconn.CommandTag
			if tag, err = br.Exec(); err == nil && tag.String() != "COMMIT" {
				err = fmt.Errorf("COMMIT answered %q", tag)
			}
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return nil
	}
	// The server answers in order and stops at its first error, so an
	// ERROR (at any point) or a FATAL before the COMMIT's answer means the
	// transaction did not commit. A FATAL in place of the COMMIT's answer
	// does not (a synchronous standby may have been waited for), nor does
	// a broken connection.
	var pgErr *pgconn.PgError
	isPg := errors.As(err, &pgErr)
	fatal := isPg && (pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC")
	switch {
	case isPg && !fatal, !isPg && pgconn.SafeToRetry(err):
		if _, rerr := s.wconn.Exec(ctx, "ROLLBACK"); rerr != nil || (isPg && pgErr.Code == "25006") {
			// A read-only server (a demoted primary): the next batch
			// connects afresh, and a multi-host connection string with
			// target_session_attrs=read-write finds the new primary.
			s.wconn.Close(ctx)
		}
		if isPg {
			return fmt.Errorf("ledger/postgres: %w", err)
		}
		return err
	case fatal && !committing:
		s.wconn.Close(ctx)
		return errSessionLost{err}
	}
	s.wconn.Close(ctx)
	return fmt.Errorf("%w: %w", errUnknown, err)
}
