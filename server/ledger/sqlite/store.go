// Package sqlite is the default ledger.Store: one SQLite file (WAL,
// synchronous=FULL, foreign keys on) written by a single group-commit writer
// and read through a separate pool of read-only connections.
//
// # Group commit
//
// With synchronous=FULL every COMMIT waits for an fsync, so a transaction
// per payment caps throughput at the disk's sync rate (a few thousand per
// second on a fast SSD, tens on an SD card). Post, PlaceHold, CaptureHold,
// VoidHold and ExpireHolds therefore do not touch the database themselves:
// they queue an operation for one writer goroutine. The writer takes
// whatever is queued (at most Options.MaxBatch, never waiting for more),
// opens one transaction, applies each operation inside its own SAVEPOINT —
// so an operation that fails (ErrInsufficient, ErrKeyConflict, a violated
// CHECK) is rolled back alone and the others go on — commits once, and only
// then answers every caller. If the COMMIT fails, every operation of the
// batch fails and nothing of it is applied. Each operation sees the effects
// of those before it in the batch, so balance checks are exact.
//
// Close stops accepting work, lets the writer drain the queue, and closes
// the database. A caller whose context ends while its operation is queued
// gets the context's error; if the operation had already been applied the
// outcome is unknown to that caller, and retrying with the same idempotency
// key tells it.
//
// # Schema
//
// Migrations are numbered files in migrations/, embedded in the binary and
// recorded in schema_version. The accounts table keeps each account's
// balance and held amount in step with postings and holds so that a balance
// read is one row; Check recomputes both from scratch.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"

	"campuspay/server/ledger"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune a Store. The zero value is usable.
type Options struct {
	// MaxBatch bounds how many operations one transaction applies
	// (default 256).
	MaxBatch int
	// ReadConns is the size of the read-only connection pool (default
	// DefaultReadConns).
	ReadConns int
	// BusyTimeout is how long a connection waits for another process's
	// lock (default 5 s).
	BusyTimeout time.Duration
	// Progress, if not nil, is told of each schema migration Open or
	// OpenIn applies, before and after (one that rebuilds a table takes
	// seconds a million rows).
	Progress func(msg string)

	// beforeCommit, for tests, runs on the writer's connection just before
	// COMMIT; an error from it fails the batch.
	beforeCommit func(*sql.Conn) error
	// beforeBatch, for tests, runs when the writer has taken its first
	// operation of a batch, before it takes the rest.
	beforeBatch func()
}

// Stats counts the writer's work since Open. A ledger inside a host's
// database (OpenIn) counts its Ops only: its commits are the host's.
type Stats struct {
	Batches  uint64 // transactions committed or attempted
	Ops      uint64 // operations applied or attempted in them
	MaxBatch int    // largest batch so far
}

// Store is a ledger.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	path string
	opt  Options

	// The writer goroutine owns wdb's single connection, wconn, and the
	// statements prepared on it.
	wdb   *sql.DB
	wconn *sql.Conn
	w     *writer
	rdb   *sql.DB // read-only pool
	// hot reads, prepared once (database/sql re-prepares per connection)
	readBalance, readHold *sql.Stmt

	batcher *ledger.Batcher[*op]
	errs    []error // the writer's answers to its current batch

	batches, ops atomic.Uint64
	maxBatch     atomic.Int64

	// host is the database the ledger lives in when opened by OpenIn; its
	// writer applies the ledger's operations. hostMu/hostClosed let Close
	// wait for operations in flight before it closes the statements.
	host       Host
	hostMu     sync.RWMutex
	hostClosed bool
}

// Host is a SQLite database whose single writer the ledger shares
// (wallet/sqlite's), so that a ledger operation and the host's own writes
// can commit in one transaction: a payment's record and its transfer with
// one fsync, and never one without the other.
type Host interface {
	// Path is the database file.
	Path() string
	// WriterConn is the host writer's one connection, held by it for its
	// lifetime; the ledger prepares its statements on it, so that they run
	// in whatever transaction the host's writer has open. OpenIn also
	// migrates on it, in transactions of its own: the host keeps its
	// writer off the connection while OpenIn runs.
	WriterConn() *sql.Conn
	// Write runs f in the host writer's transaction, inside a savepoint of
	// its own (an error from f undoes only f's writes), and returns once
	// that transaction has committed or failed.
	Write(ctx context.Context, f func(Tx) error) error
}

// Tx is the transaction a store's single writer has open: statements run
// on the writer's connection between its BEGIN and COMMIT. It is the
// connection itself, not a *sql.Tx: database/sql starts a goroutine for
// every query in a *sql.Tx to watch the transaction's context, which on
// the money path (about six queries a payment) cost 5-9 % of the
// authorizer's CPU a payment (hwsim load, closed loop).
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// DefaultReadConns is the read pool's size unless Options.ReadConns says
// otherwise.
const DefaultReadConns = 4

// VersionTable is where a ledger inside a host's database records its
// migrations (the host keeps schema_version).
const VersionTable = "ledger_schema_version"

// OpenIn opens the ledger inside h's database: its tables next to the
// host's, its migrations recorded in VersionTable, its writes applied by
// h's writer (group-committed with the host's own writes) and its reads
// through a read-only pool of its own. Close it before the host.
func OpenIn(h Host, opt Options) (*Store, error) {
	if opt.ReadConns <= 0 {
		opt.ReadConns = DefaultReadConns
	}
	if opt.BusyTimeout <= 0 {
		opt.BusyTimeout = 5 * time.Second
	}
	busy := strconv.FormatInt(opt.BusyTimeout.Milliseconds(), 10)
	s := &Store{path: h.Path(), opt: opt, host: h}
	ctx := context.Background()
	fail := func(err error) (*Store, error) {
		if s.w != nil {
			s.w.close()
		}
		if s.rdb != nil {
			s.rdb.Close()
		}
		return nil, fmt.Errorf("ledger/sqlite: open in %s: %w", s.path, err)
	}
	if err := migrate(ctx, h.WriterConn(), VersionTable, opt.Progress); err != nil {
		return fail(err)
	}
	var err error
	if s.w, err = newWriter(ctx, h.WriterConn()); err != nil {
		return fail(err)
	}
	if err := s.openReads(ctx, busy); err != nil {
		return fail(err)
	}
	return s, nil
}

// openReads opens the read-only pool and prepares the hot reads.
func (s *Store) openReads(ctx context.Context, busy string) error {
	var err error
	s.rdb, err = sql.Open("sqlite3", s.path+"?_query_only=1&_foreign_keys=1&_busy_timeout="+busy)
	if err != nil {
		return err
	}
	s.rdb.SetMaxOpenConns(s.opt.ReadConns)
	s.rdb.SetMaxIdleConns(s.opt.ReadConns)
	if s.readBalance, err = s.rdb.PrepareContext(ctx, "SELECT balance, held FROM accounts WHERE id = ?"); err != nil {
		return err
	}
	if s.readHold, err = s.rdb.PrepareContext(ctx, "SELECT "+holdColumns+" FROM holds WHERE key = ?"); err != nil {
		return err
	}
	return nil
}

var _ ledger.Store = (*Store)(nil)

// Open opens (creating if needed) the ledger at path, applies pending
// migrations and starts the writer.
func Open(path string, opt Options) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("ledger/sqlite: open %q: path must be non-empty without '?' or '#'", path)
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 256
	}
	if opt.ReadConns <= 0 {
		opt.ReadConns = DefaultReadConns
	}
	if opt.BusyTimeout <= 0 {
		opt.BusyTimeout = 5 * time.Second
	}
	busy := strconv.FormatInt(opt.BusyTimeout.Milliseconds(), 10)
	s := &Store{path: path, opt: opt}

	var err error
	s.wdb, err = sql.Open("sqlite3", path+"?_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate&_cache_size=-65536&_busy_timeout="+busy)
	if err != nil {
		return nil, fmt.Errorf("ledger/sqlite: open %s: %w", path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	ctx := context.Background()
	if s.wconn, err = s.wdb.Conn(ctx); err != nil {
		s.wdb.Close()
		return nil, fmt.Errorf("ledger/sqlite: open %s: %w", path, err)
	}
	fail := func(err error) (*Store, error) {
		if s.w != nil {
			s.w.close()
		}
		s.wconn.Close()
		s.wdb.Close()
		if s.rdb != nil {
			s.rdb.Close()
		}
		return nil, fmt.Errorf("ledger/sqlite: open %s: %w", path, err)
	}
	if err := checkPragmas(ctx, s.wconn); err != nil {
		return fail(err)
	}
	if err := migrate(ctx, s.wconn, "schema_version", opt.Progress); err != nil {
		return fail(err)
	}
	// Each transfer of a batch runs in its own savepoint, whose statement
	// journal SQLite keeps in a temporary file past 64 KiB (two pwrite
	// calls per changed page); in memory it is a copy.
	if _, err := s.wconn.ExecContext(ctx, "PRAGMA temp_store=MEMORY"); err != nil {
		return fail(err)
	}
	if s.w, err = newWriter(ctx, s.wconn); err != nil {
		return fail(err)
	}
	if err := s.openReads(ctx, busy); err != nil {
		return fail(err)
	}

	s.errs = make([]error, 0, opt.MaxBatch)
	s.batcher = ledger.NewBatcher("ledger/sqlite", opt.MaxBatch, func(batch []*op) []error {
		s.errs = s.commit(batch, s.errs[:0])
		return s.errs
	}, opt.beforeBatch)
	return s, nil
}

// checkPragmas makes sure the durability settings really took: a DSN typo
// would otherwise silently give a ledger that loses commits on power loss.
func checkPragmas(ctx context.Context, c *sql.Conn) error {
	var mode string
	var sync, fk int
	if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if err := c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		return fmt.Errorf("read synchronous: %w", err)
	}
	if err := c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return fmt.Errorf("read foreign_keys: %w", err)
	}
	if !strings.EqualFold(mode, "wal") || sync != 2 || fk != 1 {
		return fmt.Errorf("pragmas not applied: journal_mode=%s synchronous=%d foreign_keys=%d", mode, sync, fk)
	}
	return nil
}

// migrate applies every embedded migration newer than the schema version
// recorded in table, each in its own transaction, telling progress (if not
// nil) as it goes on a database made by an earlier release.
func migrate(ctx context.Context, c *sql.Conn, table string, progress func(string)) error {
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create %s: %w", table, err)
	}
	list, err := ledger.Migrations(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	var have int
	if err := c.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table).Scan(&have); err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	if len(list) > 0 && have > list[len(list)-1].Version {
		return fmt.Errorf("schema version %d is newer than this program's %d", have, list[len(list)-1].Version)
	}
	if have == 0 {
		progress = nil // a new database: nothing to wait for
	}
	for _, m := range list {
		if m.Version <= have {
			continue
		}
		body, err := migrations.ReadFile(m.Path)
		if err != nil {
			return err
		}
		start := time.Now()
		if progress != nil {
			progress("ledger schema migration " + path.Base(m.Path))
		}
		if err := migrateOne(ctx, c, func() error {
			if _, err := c.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := c.ExecContext(ctx, "INSERT INTO "+table+" (version, applied_at) VALUES (?, ?)", m.Version, time.Now().UnixNano())
			return err
		}); err != nil {
			return fmt.Errorf("migration %s: %w", path.Base(m.Path), err)
		}
		if progress != nil {
			progress(fmt.Sprintf("ledger schema migration %s done in %s", path.Base(m.Path), time.Since(start).Round(time.Millisecond)))
		}
	}
	return nil
}

// migrateOne runs f in a transaction with foreign keys off, as SQLite's
// procedure for rebuilding a table asks (dropping a table others refer
// to would otherwise delete through them), checks every foreign key
// before committing, and turns them on again.
func migrateOne(ctx context.Context, c *sql.Conn, f func() error) (err error) {
	if _, err := c.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return err
	}
	defer func() {
		if _, onErr := c.ExecContext(ctx, "PRAGMA foreign_keys = ON"); onErr != nil && err == nil {
			err = onErr
		}
	}()
	return inTx(ctx, c, func() error {
		if err := f(); err != nil {
			return err
		}
		// The ledger's own tables only: inside a host's database the
		// host's rows are the host's business.
		for _, table := range []string{"postings", "holds"} {
			if err := foreignKeyCheck(ctx, c, table); err != nil {
				return err
			}
		}
		return nil
	})
}

// foreignKeyCheck fails if a row of table refers to a missing row.
func foreignKeyCheck(ctx context.Context, c *sql.Conn, table string) error {
	rows, err := c.QueryContext(ctx, "PRAGMA foreign_key_check("+table+")")
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		var child, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&child, &rowid, &parent, &fk); err != nil {
			return err
		}
		return fmt.Errorf("foreign key check: a row of %s (rowid %d) refers to a missing row of %s", child, rowid.Int64, parent)
	}
	return rows.Err()
}

func inTx(ctx context.Context, c *sql.Conn, f func() error) error {
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := f(); err != nil {
		c.ExecContext(ctx, "ROLLBACK")
		return err
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		c.ExecContext(ctx, "ROLLBACK")
		return err
	}
	return nil
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats {
	return Stats{Batches: s.batches.Load(), Ops: s.ops.Load(), MaxBatch: int(s.maxBatch.Load())}
}

// Close stops accepting operations, waits until every queued one has been
// committed (or failed) and answered, then closes the database. Calling it
// again returns ErrClosed. A ledger inside a host's database (OpenIn)
// waits for its operations in flight and closes its statements and read
// pool, not the host; closing it again returns nil (the host closes it).
func (s *Store) Close() error {
	if s.host != nil {
		s.hostMu.Lock()
		defer s.hostMu.Unlock()
		if s.hostClosed {
			return nil // the host closes it too
		}
		s.hostClosed = true
		if err := errors.Join(s.w.close(), s.readBalance.Close(), s.readHold.Close(), s.rdb.Close()); err != nil {
			return fmt.Errorf("ledger/sqlite: close %s: %w", s.path, err)
		}
		return nil
	}
	if err := s.batcher.Close(); err != nil {
		return err
	}
	err := errors.Join(s.w.close(), s.wconn.Close(), s.wdb.Close(),
		s.readBalance.Close(), s.readHold.Close(), s.rdb.Close())
	if err != nil {
		return fmt.Errorf("ledger/sqlite: close %s: %w", s.path, err)
	}
	return nil
}
