// Package postgres is the wallet's state store (wallet.Store) on
// PostgreSQL, for a campus where several authorizer processes share one
// database: users and their wallets, devices and revocations, lost cards,
// merchants, terminals, the campus-wide seen payment codes, transaction
// records, journal entries applied, the config revision and the app API's
// idempotency records. It has the semantics of wallet/sqlite and passes
// the same conformance suite (wallet/storetest).
//
// # Many authorizers, one database
//
// Nothing relies on a process-local lock. A payment code is single use
// because seen_codes.id is a primary key: marking it is an INSERT ... ON
// CONFLICT DO UPDATE that takes over only an expired mark, so of several
// authorizers marking one code at once exactly one owns it, and only the
// owner's record is written, in the same transaction
// (wallet_use_code and wallet_put_intent in migrations/).
// Record keys, journal entries and API idempotency keys are unique
// columns, first writer wins; the scan-to-pay cursor of a terminal is a
// row (qr_cursors) whose lock serialises whoever assigns the next value,
// and a unique index backs it. Counters (the config revision) are updated
// in place, never read and written back.
//
// # Group commit
//
// The money path's writes (PutIntent, PutRecord) are queued for
// one writer goroutine, which sends whatever is queued as ONE pipelined
// transaction (one round trip, one WAL flush), as ledger/postgres does:
// each write is one call of a function that reports outcomes as values,
// so no savepoint is needed. A batch failing on one write's error is
// retried one write per transaction, so that it fails alone; one hitting
// a deadlock with another authorizer's batch is sent again. Everything
// else is a transaction of its own on a pgxpool connection.
//
// # Faults
//
// A database that refuses connections, or that is read-only (a demoted
// primary, a standby), makes every method return an error, never panic;
// the wallet answers terminals with the retryable protocol.ErrInternal
// ("系统繁忙，请稍后再试") and Ready reports it. The pool dials again on
// the next call, so the store recovers by itself when the database is
// back; after a read-only error it drops its connections, so that a
// multi-host connection string (target_session_attrs=read-write) finds
// the new primary.
//
// Personal data is encrypted by fieldcrypt under a key kept outside the
// database, as in wallet/sqlite. Migrations are numbered files in
// migrations/, embedded, applied under an advisory lock and recorded in
// wallet_schema_version (the ledger, which may share the database, keeps
// schema_version).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"campuspay/server/ledger"
	ledgerpg "campuspay/server/ledger/postgres"
	"campuspay/server/wallet"
	"campuspay/server/wallet/fieldcrypt"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the pg_advisory_xact_lock key under which migrations run
// (the ledger's is another).
const migrationLock = 0x3a11e7 // "wallet"

// Options tune a Store. The zero value is usable except for FieldKey.
type Options struct {
	// FieldKey (fieldcrypt.KeySize bytes) encrypts the personal data
	// columns. Required: it lives outside the database.
	FieldKey []byte
	// MaxConns bounds the pool (default: pool_max_conns of the connection
	// string, else 16).
	MaxConns int32
	// MaxBatch bounds how many hot writes one transaction commits
	// (default 128).
	MaxBatch int
	// BatchTimeout bounds one batch's round trip (default 10 s). A batch
	// that times out has an unknown outcome; its callers get an error and
	// retry with the same key.
	BatchTimeout time.Duration

	// beforeBatch, for tests, runs when the writer has taken the first
	// write of a batch, before it takes the rest.
	beforeBatch func()
}

// Store is a wallet.Store on PostgreSQL. Any number of Stores, in any
// number of processes, may share one database.
type Store struct {
	pool    *pgxpool.Pool
	fc      *fieldcrypt.Cipher
	opt     Options
	batcher *ledger.Batcher[*op]

	codeSweep atomic.Int64 // when expired code marks were last deleted (unix nanos)

	batches, ops atomic.Uint64
	maxBatch     atomic.Int64
}

var _ wallet.Store = (*Store)(nil)

// ErrClosed is returned by a Store after Close.
var ErrClosed = ledger.ErrClosed

// Open connects to the database named by connString (a libpq connection
// string or URL; several hosts, with target_session_attrs, are honoured by
// pgx), applies pending migrations and starts the writer. A database
// whose personal data is under another key is refused.
func Open(ctx context.Context, connString string, opt Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: open: %w", err)
	}
	rp := cfg.ConnConfig.RuntimeParams
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "campuspay-wallet"
	}
	rp["default_transaction_isolation"] = "read committed"
	switch {
	case opt.MaxConns > 0:
		cfg.MaxConns = opt.MaxConns
	case !strings.Contains(connString, "pool_max_conns"): // pgxpool's default is the number of CPUs
		cfg.MaxConns = 16
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 128
	}
	if opt.BatchTimeout <= 0 {
		opt.BatchTimeout = 10 * time.Second
	}
	fc, err := fieldcrypt.New(opt.FieldKey)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: open: %w", err)
	}
	where := cfg.ConnConfig.Host + "/" + cfg.ConnConfig.Database
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: open %s: %w", where, err)
	}
	s := &Store{pool: pool, fc: fc, opt: opt}
	if err := s.setUp(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("wallet/postgres: open %s: %w", where, err)
	}
	s.batcher = ledger.NewBatcher("wallet/postgres", opt.MaxBatch, s.apply, opt.beforeBatch)
	return s, nil
}

// setUp checks durability, migrates and checks the field key.
func (s *Store) setUp(ctx context.Context) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	var sc string
	if err := c.QueryRow(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil {
		return fmt.Errorf("read synchronous_commit: %w", err)
	}
	if sc == "off" {
		return errors.New("synchronous_commit is off: acknowledged payments could be lost in a crash")
	}
	if err := migrate(ctx, c.Conn()); err != nil {
		return err
	}
	// The first store to open the database records its key; every other
	// must have the same.
	if _, err := c.Exec(ctx, `INSERT INTO field_key (id, check_value) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, s.fc.Check()); err != nil {
		return fmt.Errorf("field key check: %w", err)
	}
	var check string
	if err := c.QueryRow(ctx, `SELECT check_value FROM field_key WHERE id = 1`).Scan(&check); err != nil {
		return fmt.Errorf("field key check: %w", err)
	}
	if check != s.fc.Check() {
		return fmt.Errorf("its personal data is encrypted under another key than the one given (%s in the data folder)", fieldcrypt.KeyFile)
	}
	return s.indexPhones(ctx, c.Conn())
}

// LatestSchema is the newest schema version this program migrates to.
func LatestSchema() (int, error) {
	v, err := ledger.LatestMigration(migrations, "migrations/*.sql")
	if err != nil {
		return 0, fmt.Errorf("wallet/postgres: migrations: %w", err)
	}
	return v, nil
}

// migrate applies the wallet's migrations, recorded in wallet_schema_version
// (the ledger's schema_version may share the database).
func migrate(ctx context.Context, c *pgx.Conn) error {
	return ledgerpg.Migrate(ctx, c, migrations, "wallet_schema_version", migrationLock)
}

// SchemaVersion reads the schema version recorded in the database and the
// newest this program knows; readiness checks that they are equal.
func (s *Store) SchemaVersion(ctx context.Context) (have, want int, err error) {
	if want, err = LatestSchema(); err != nil {
		return 0, 0, err
	}
	if err := s.pool.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM wallet_schema_version").Scan(&have); err != nil {
		return 0, 0, s.fail(fmt.Errorf("wallet/postgres: read schema version: %w", err))
	}
	return have, want, nil
}

// Ready reports whether the database takes writes now: it answers, and
// it is a primary that is not read-only. It changes nothing.
func (s *Store) Ready(ctx context.Context) error {
	var inRecovery bool
	var readOnly string
	err := s.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')`).Scan(&inRecovery, &readOnly)
	if err != nil {
		return s.fail(fmt.Errorf("wallet/postgres: %w", err))
	}
	if inRecovery || readOnly == "on" {
		s.pool.Reset() // the next connections may find the new primary
		return errors.New("wallet/postgres: the database is read-only (a standby or a demoted primary)")
	}
	return nil
}

// Stats counts the writer's work since Open.
type Stats struct {
	Batches  uint64 // transactions of hot writes sent
	Ops      uint64 // hot writes in them
	MaxBatch int    // largest batch so far
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.batches.Load(), Ops: s.ops.Load(), MaxBatch: int(s.maxBatch.Load())}
}

// queued reports how many writes wait for the writer.
func (s *Store) queued() int { return s.batcher.Queued() }

// Close stops accepting writes, lets the writer finish the queue and
// closes the pool. Calling it again returns nil.
func (s *Store) Close() error {
	if err := s.batcher.Close(); err != nil {
		return nil // already closed
	}
	s.pool.Close()
	return nil
}

// readOnly reports whether err says the session cannot write.
func readOnly(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006" // read_only_sql_transaction
}

// fail returns err, first dropping the pool's connections if the database
// turned out read-only, so that the next ones are dialled afresh (and, with
// several hosts, to the primary).
func (s *Store) fail(err error) error {
	if readOnly(err) {
		s.pool.Reset()
	}
	return err
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
