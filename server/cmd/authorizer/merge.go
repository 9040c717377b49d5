package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"campuspay/server/ledger"
	ledgersqlite "campuspay/server/ledger/sqlite"
	walletsqlite "campuspay/server/wallet/sqlite"
)

// serveLockFile is held (flock) by `authorizer serve` on a SQLite data
// folder, so that `ledger merge` never moves the ledger under a running
// authorizer, and a second serve on the same files is refused.
const serveLockFile = "serve.lock"

// errServeRunning says the data folder's lock is held.
var errServeRunning = errors.New("authorizer serve is running on this data folder (it holds serve.lock): stop it first")

// lockDataFolder takes the data folder's lock, without waiting; the
// returned func releases it. The kernel releases it too when the process
// dies, so a kill -9 leaves nothing stale.
func lockDataFolder(data string) (func(), error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(data, serveLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data folder lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errServeRunning
		}
		return nil, fmt.Errorf("data folder lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// usesSQLite reports whether the config keeps the state in the data
// folder's SQLite files (no "database").
func (c *cli) usesSQLite() (bool, error) {
	path, explicit := c.common.config, c.common.config != ""
	if !explicit {
		path = filepath.Join(c.common.data, "authorizer.json")
	}
	cfg, err := LoadConfig(path, explicit)
	if err != nil {
		return false, err
	}
	return cfg.Database == "", nil
}

// ledgerMerge moves a first-release data folder's ledger.db into
// wallet.db, after which a balance payment is one transaction
// (docs/money-path.md). Offline: serve must be stopped.
func (c *cli) ledgerMerge(args []string) int {
	fs := c.newFlags("ledger merge", "ledger merge\n\nmoves the ledger of a data folder from the first release (ledger.db) into wallet.db, checked before and after;\nledger.db is kept, renamed ledger.db.merged-TIME. Stop authorizer serve first; back up first (authorizer backup).")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if err := c.sqliteOnly("ledger merge"); err != nil {
		return c.fail(err)
	}
	unlock, err := lockDataFolder(c.common.data)
	if err != nil {
		return c.fail(err)
	}
	defer unlock()
	key, err := readOrCreate(filepath.Join(c.common.data, walletsqlite.KeyFile), walletsqlite.NewFieldKey)
	if err != nil {
		return c.fail(err)
	}
	kept, r, err := mergeLedger(c.ctx, c.common.data, key, func(line string) { fmt.Fprintln(c.out, line) })
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.out, "ledger merged into wallet.db: transfers %d, postings %d, accounts %d, holds %d, sum %d; ledger OK\n", r.Transfers, r.Postings, r.Accounts, r.Holds, r.Sum)
	fmt.Fprintf(c.out, "the old file is kept as %s\n", filepath.Base(kept))
	return 0
}

// mergeLedger copies ledger.db's tables into wallet.db in one transaction,
// checks that the ledger inside reports exactly what ledger.db did, and
// renames ledger.db aside (returned). A merge stopped after its commit
// (both files left) is finished by running it again.
func mergeLedger(ctx context.Context, data string, key []byte, progress func(string)) (string, ledger.Report, error) {
	walletPath, ledgerPath := filepath.Join(data, "wallet.db"), filepath.Join(data, "ledger.db")
	if fi, err := os.Stat(ledgerPath); err != nil || fi.Size() == 0 {
		return "", ledger.Report{}, errors.New("ledger merge: this data folder has no ledger.db: its ledger is inside wallet.db already")
	}
	if fi, err := os.Stat(walletPath); err != nil || fi.Size() == 0 {
		return "", ledger.Report{}, errors.New("ledger merge: this data folder has no wallet.db")
	}
	old, err := ledgersqlite.Open(ledgerPath, ledgersqlite.Options{Progress: progress})
	if err != nil {
		return "", ledger.Report{}, fmt.Errorf("ledger merge: %w", err)
	}
	before, err := old.Check(ctx)
	oldVersion, _, verr := old.SchemaVersion(ctx)
	old.Close() // the last connection: SQLite folds the WAL into ledger.db
	switch {
	case err != nil:
		return "", ledger.Report{}, fmt.Errorf("ledger merge: check ledger.db: %w", err)
	case verr != nil:
		return "", ledger.Report{}, fmt.Errorf("ledger merge: ledger.db: %w", verr)
	case !before.OK():
		return "", ledger.Report{}, fmt.Errorf("ledger merge: ledger.db does not check (%v): nothing moved", before.Problems)
	}
	progress(fmt.Sprintf("ledger.db: transfers %d, postings %d, accounts %d, holds %d, sum %d; ledger OK", before.Transfers, before.Postings, before.Accounts, before.Holds, before.Sum))

	// The ledger's tables inside wallet.db (made by its migrations), then
	// what they hold: nothing (copy), or exactly ledger.db's (a merge that
	// stopped after its commit).
	inside, err := checkInside(ctx, walletPath, key, progress)
	if err != nil {
		return "", ledger.Report{}, err
	}
	switch {
	case inside.Transfers == 0 && inside.Accounts == 0 && inside.Holds == 0:
		if err := copyLedger(ctx, walletPath, ledgerPath, oldVersion); err != nil {
			return "", ledger.Report{}, err
		}
	case sameLedger(inside, before):
		progress("wallet.db holds this ledger already (a merge stopped before its end): finishing it")
	default:
		return "", ledger.Report{}, errors.New("ledger merge: wallet.db already holds another ledger: nothing moved")
	}
	after, err := checkInside(ctx, walletPath, key, progress)
	if err != nil {
		return "", ledger.Report{}, err
	}
	if !after.OK() || !sameLedger(after, before) {
		return "", ledger.Report{}, fmt.Errorf("ledger merge: the ledger inside wallet.db does not match ledger.db (%+v vs %+v): ledger.db left in place", after, before)
	}
	kept := fmt.Sprintf("%s.merged-%s", ledgerPath, time.Now().UTC().Format("20060102T150405Z"))
	for _, suffix := range []string{"-wal", "-shm", ""} { // the database last: its name decides the layout
		if err := os.Rename(ledgerPath+suffix, kept+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", ledger.Report{}, fmt.Errorf("ledger merge: set ledger.db aside: %w", err)
		}
	}
	if d, err := os.Open(data); err == nil {
		d.Sync()
		d.Close()
	}
	return kept, after, nil
}

// checkInside opens wallet.db with the ledger inside (its tables made if
// missing) and checks that ledger.
func checkInside(ctx context.Context, walletPath string, key []byte, progress func(string)) (ledger.Report, error) {
	w, err := walletsqlite.Open(walletPath, walletsqlite.WithFieldKey(key), walletsqlite.WithProgress(progress))
	if err != nil {
		return ledger.Report{}, fmt.Errorf("ledger merge: %w", err)
	}
	defer w.Close()
	l, err := w.OpenLedger(ledgersqlite.Options{Progress: progress})
	if err != nil {
		return ledger.Report{}, fmt.Errorf("ledger merge: %w", err)
	}
	r, err := l.Check(ctx)
	if err != nil {
		return ledger.Report{}, fmt.Errorf("ledger merge: check the ledger inside wallet.db: %w", err)
	}
	return r, nil
}

func sameLedger(a, b ledger.Report) bool {
	return a.Transfers == b.Transfers && a.Postings == b.Postings && a.Accounts == b.Accounts && a.Holds == b.Holds && a.Sum == b.Sum
}

// copyLedger copies every row of ledger.db's tables into the (empty)
// ledger tables of wallet.db in one transaction, parents before children.
func copyLedger(ctx context.Context, walletPath, ledgerPath string, version int) error {
	db, err := sql.Open("sqlite3", walletPath+"?_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_busy_timeout=5000")
	if err != nil {
		return fmt.Errorf("ledger merge: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("ledger merge: %w", err)
	}
	defer conn.Close()
	var have int
	if err := conn.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+ledgersqlite.VersionTable).Scan(&have); err != nil {
		return fmt.Errorf("ledger merge: %w", err)
	}
	if have != version {
		return fmt.Errorf("ledger merge: ledger.db has schema %d, the ledger inside wallet.db %d: open the folder once with this release first", version, have)
	}
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS old", "file:"+ledgerPath+"?mode=ro"); err != nil {
		return fmt.Errorf("ledger merge: attach ledger.db: %w", err)
	}
	defer conn.ExecContext(context.Background(), "DETACH DATABASE old")
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("ledger merge: %w", err)
	}
	for _, q := range []string{
		"INSERT INTO main.accounts (id, constrained, balance, held) SELECT id, constrained, balance, held FROM old.accounts",
		"INSERT INTO main.transfers (id, key, kind, memo, at, hash) SELECT id, key, kind, memo, at, hash FROM old.transfers",
		"INSERT INTO main.postings (transfer_id, leg, account, amount) SELECT transfer_id, leg, account, amount FROM old.postings",
		"INSERT INTO main.holds (id, key, account, amount, state, captured, expires, memo, at, closed_at, transfer_id) SELECT id, key, account, amount, state, captured, expires, memo, at, closed_at, transfer_id FROM old.holds",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
			return fmt.Errorf("ledger merge: copy: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		conn.ExecContext(context.Background(), "ROLLBACK")
		return fmt.Errorf("ledger merge: commit: %w", err)
	}
	return nil
}
