// Package postgres is the ledger.Store on PostgreSQL, for deployments where
// several authorizer processes (behind a Mosquitto or EMQX cluster) share
// one database. It has the semantics of ledger/sqlite and passes the same
// conformance suite (ledgertest).
//
// # Many authorizers, one database
//
// Every operation locks the account rows it changes (SELECT ... FOR NO KEY
// UPDATE, which unlike FOR UPDATE does not block other transactions'
// foreign-key checks) before it reads a balance, so two processes can never
// both spend the same money; the available balance it checks is the one
// last committed. Idempotency keys are unique columns: a key that another
// process commits while this one is working is found again
// (INSERT ... ON CONFLICT DO NOTHING, then a fresh read) and reported as a
// duplicate or a conflict, never applied twice. CHECK constraints (no
// negative wallet, holds within the balance) are the last line of defence.
// Transactions run at READ COMMITTED: the row locks, not snapshot
// isolation, give the guarantees. A batch that hits a deadlock (40P01),
// which the lock order below makes rare, is rolled back by the server and
// sent again (as it would be after a serialization failure, 40001).
//
// # Group commit: one pipelined transaction per round trip
//
// A hot row is the bottleneck: every canteen payment credits the same
// merchant account, and a row lock is held until COMMIT, so a transaction
// per payment would serialise a lunch rush at one commit (one WAL flush)
// per payment whatever the number of connections. So, as in ledger/sqlite,
// writes are queued for one writer goroutine per Store, which takes
// whatever is queued (at most Options.MaxBatch, never waiting for more) and
// sends it as ONE pipelined batch — one network round trip:
//
//	BEGIN
//	lock every account the batch touches, in id order   (batches do not deadlock each other)
//	SELECT ledger_post(...)  /  ledger_place_hold(...)  / ... one per operation
//	COMMIT
//
// The ledger_* functions (migrations/0001_init.sql) report business
// outcomes — insufficient funds, key conflict, hold closed — as a status,
// not an error, so they never abort the transaction and no savepoints are
// needed (savepoints are subtransactions: a few hundred per transaction
// overflow PostgreSQL's per-backend subtransaction cache and slow every
// session). Only a broken rule or a bug raises; then the batch is rolled
// back and its operations are retried one per transaction, so the one that
// fails fails alone. Each operation sees the effects of those before it in
// the batch. Callers are answered only after COMMIT has returned. A batch
// of one operation is sent as that one statement, its own transaction: it
// locks what it needs itself, and payments arriving one at a time save
// three statements each.
//
// If the connection breaks after the batch was sent, its outcome is
// unknown: every caller of that batch gets an error saying so, and
// retrying with the same idempotency key tells. Reads (Balance, GetHold,
// Lookup, Transfers, Check) go through a small pool of other connections.
//
// Several authorizers do not multiply the throughput on one hot account:
// their batches take turns on its row lock, one commit each, and each
// batch is smaller. (BenchmarkPayments, stores=2: 64 payers to one
// merchant through two stores went no faster than through one.) A
// merchant's balance row is the price of one-row balance reads; if it
// becomes the limit, the fix is to stop keeping a running balance for
// unconstrained accounts, not to add authorizers.
//
// Ledger IDs come from an identity column: they increase with the order in
// which transfers are applied by one process, but two processes' concurrent
// transfers may commit in the other order than their IDs.
//
// # Schema
//
// Migrations are numbered files in migrations/, embedded in the binary,
// applied under an advisory lock (several processes may start at once) and
// recorded in schema_version.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"campuspay/server/ledger"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_xact_lock key under which migrations run.
const migrationLock = 0x1ed9e7 // "ledger"

// Options tune a Store. The zero value is usable.
type Options struct {
	// MaxBatch bounds how many operations one transaction applies
	// (default 256).
	MaxBatch int
	// ReadConns is the size of the read connection pool (default 8).
	ReadConns int
	// BatchTimeout bounds one batch's round trip, connecting included
	// (default 30 s). A batch that times out has an unknown outcome.
	BatchTimeout time.Duration
	// MaxRetries bounds how often a batch is retried after a deadlock or
	// serialization failure (default 10).
	MaxRetries int

	// beforeBatch, for tests, runs when the writer has taken its first
	// operation of a batch, before it takes the rest.
	beforeBatch func()
}

// Stats counts the writer's work since Open.
type Stats struct {
	Batches   uint64 // transactions sent (retries included)
	Ops       uint64 // operations in them
	MaxBatch  int    // largest batch so far
	Retries   uint64 // batches retried after a deadlock or serialization failure
	Fallbacks uint64 // batches rolled back by one operation's error and retried one by one
}

// Store is a ledger.Store on PostgreSQL. It is safe for concurrent use,
// and any number of Stores (in any number of processes) may share one
// database.
type Store struct {
	cfg *pgx.ConnConfig
	opt Options

	wconn *pgx.Conn // owned by the writer goroutine; nil or closed: reconnect
	reads *pool

	batcher *ledger.Batcher[*op]

	batches, ops, retries, fallbacks atomic.Uint64
	maxBatch                         atomic.Int64
}

var _ ledger.Store = (*Store)(nil)

// Open connects to the database named by connString (a libpq connection
// string or URL), applies pending migrations and starts the writer.
func Open(ctx context.Context, connString string, opt Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("ledger/postgres: open: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "campuspay-ledger"
	}
	// The functions rely on READ COMMITTED's fresh snapshot per statement
	// (to see a key another authorizer has just committed), whatever the
	// database's default; Check asks for REPEATABLE READ itself.
	cfg.RuntimeParams["default_transaction_isolation"] = "read committed"
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 256
	}
	if opt.ReadConns <= 0 {
		opt.ReadConns = 8
	}
	if opt.BatchTimeout <= 0 {
		opt.BatchTimeout = 30 * time.Second
	}
	if opt.MaxRetries <= 0 {
		opt.MaxRetries = 10
	}
	where := cfg.Host + "/" + cfg.Database
	s := &Store{cfg: cfg, opt: opt, reads: newPool(cfg, opt.ReadConns)}
	if s.wconn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("ledger/postgres: open %s: %w", where, err)
	}
	if err := checkDurable(ctx, s.wconn); err != nil {
		s.wconn.Close(ctx)
		return nil, fmt.Errorf("ledger/postgres: open %s: %w", where, err)
	}
	if err := migrate(ctx, s.wconn); err != nil {
		s.wconn.Close(ctx)
		return nil, fmt.Errorf("ledger/postgres: open %s: %w", where, err)
	}
	s.batcher = ledger.NewBatcher("ledger/postgres", opt.MaxBatch, s.apply, opt.beforeBatch)
	return s, nil
}

// checkDurable refuses a session whose commits return before they are
// flushed: a ledger must not lose acknowledged payments in a crash.
func checkDurable(ctx context.Context, c *pgx.Conn) error {
	var sc string
	if err := c.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	if sc == "off" {
		return errors.New("synchronous_commit is off: acknowledged transfers could be lost in a crash")
	}
	return nil
}

// migrate applies the ledger's migrations (Migrate, table schema_version).
func migrate(ctx context.Context, c *pgx.Conn) error {
	return Migrate(ctx, c, migrations, "schema_version", migrationLock)
}

// Migrate applies every migration in fsys (migrations/NNNN_name.sql, as
// ledger.Migrations lists them) newer than the version recorded in table,
// each in its own transaction under the advisory lock key, so that
// processes starting together apply each migration once. The wallet's
// PostgreSQL store uses it with its own table and key.
func Migrate(ctx context.Context, c *pgx.Conn, fsys fs.ReadFileFS, table string, lock int64) error {
	list, err := ledger.Migrations(fsys, "migrations/*.sql")
	if err != nil {
		return err
	}
	latest := 0
	if len(list) > 0 {
		latest = list[len(list)-1].Version
	}
	// step runs f in a transaction holding the migration lock, with the
	// schema version as it is under that lock.
	step := func(f func(tx pgx.Tx, have int) error) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lock); err != nil {
				return fmt.Errorf("take migration lock: %w", err)
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
				version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
				return fmt.Errorf("create %s: %w", table, err)
			}
			var have int
			if err := tx.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table).Scan(&have); err != nil {
				return fmt.Errorf("read %s: %w", table, err)
			}
			if have > latest {
				return fmt.Errorf("schema version %d is newer than this program's %d", have, latest)
			}
			return f(tx, have)
		})
	}
	if err := step(func(pgx.Tx, int) error { return nil }); err != nil {
		return err
	}
	for _, m := range list {
		err := step(func(tx pgx.Tx, have int) error {
			if m.Version <= have {
				return nil
			}
			body, err := fsys.ReadFile(m.Path)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, "INSERT INTO "+table+" (version) VALUES ($1)", m.Version)
			return err
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", path.Base(m.Path), err)
		}
	}
	return nil
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.batches.Load(), Ops: s.ops.Load(), MaxBatch: int(s.maxBatch.Load()),
		Retries: s.retries.Load(), Fallbacks: s.fallbacks.Load()}
}

// Close stops accepting operations, waits until every queued one has been
// committed (or failed) and answered, then closes the connections. Calling
// it again returns ErrClosed.
func (s *Store) Close() error {
	if err := s.batcher.Close(); err != nil {
		return err
	}
	var err error
	if s.wconn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.wconn.Close(ctx)
		cancel()
	}
	s.reads.close()
	if err != nil {
		return fmt.Errorf("ledger/postgres: close: %w", err)
	}
	return nil
}

// pool is the read connections: at most max open, idle ones reused. (pgx's
// own pool would pull in another module for what these few lines do.)
type pool struct {
	cfg  *pgx.ConnConfig
	sem  chan struct{} // one token per open or opening connection
	mu   sync.Mutex
	idle []*pgx.Conn
	shut bool
}

func newPool(cfg *pgx.ConnConfig, max int) *pool {
	return &pool{cfg: cfg, sem: make(chan struct{}, max)}
}

// with runs f on a pooled connection. A connection that saw an error other
// than one the server reported (or that is left inside a transaction) is
// closed rather than reused.
func (p *pool) with(ctx context.Context, f func(*pgx.Conn) error) error {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		<-p.sem
		return ledger.ErrClosed
	}
	var c *pgx.Conn
	if n := len(p.idle); n > 0 {
		c, p.idle = p.idle[n-1], p.idle[:n-1]
	}
	p.mu.Unlock()
	if c == nil {
		var err error
		if c, err = pgx.ConnectConfig(ctx, p.cfg); err != nil {
			<-p.sem
			return err
		}
	}
	err := f(c)
	var pgErr *pgconn.PgError
	healthy := !c.IsClosed() && c.PgConn().TxStatus() == 'I' &&
		(err == nil || errors.As(err, &pgErr) || errors.Is(err, pgx.ErrNoRows))
	p.mu.Lock()
	if healthy && !p.shut {
		p.idle = append(p.idle, c)
		c = nil
	}
	p.mu.Unlock()
	if c != nil {
		c.Close(context.Background())
	}
	<-p.sem
	return err
}

// close closes the idle connections; busy ones are closed when released.
func (p *pool) close() {
	p.mu.Lock()
	p.shut = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.Close(context.Background())
	}
}
