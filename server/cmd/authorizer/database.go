package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"campuspay/server/api"
	"campuspay/server/backup"
	"campuspay/server/ledger"
	ledgerpostgres "campuspay/server/ledger/postgres"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/operator"
	"campuspay/server/wallet"
	walletpostgres "campuspay/server/wallet/postgres"
	walletsqlite "campuspay/server/wallet/sqlite"
)

// Where the authorizer keeps its state (the config's "database"):
//
//   - "" (the default): SQLite in the data folder — one authorizer on one
//     box, and `make demo`. A folder made by this release has one file,
//     wallet.db, the ledger's tables inside it, so that a balance payment
//     is one transaction (wallet.PaymentStore); a folder from the first
//     release keeps its ledger.db beside wallet.db and works as before,
//     with three commits per payment (docs/money-path.md).
//   - "postgres://…" or "postgresql://…": the wallet store and the ledger
//     on that PostgreSQL database, which several authorizers may share.
//     Multi-host strings (postgres://h1,h2/db?target_session_attrs=read-write)
//     are honoured by pgx; the password may be left out and given in
//     PGPASSWORD or ~/.pgpass. Keys (issuer, seal, the wallet's field key)
//     stay in each authorizer's data folder, the same files on every one.

// walletStore is what the authorizer needs of a wallet store.
type walletStore interface {
	wallet.Store
	api.Store
	operator.Store // the back office (server/console)
}

// ledgerStore is what the authorizer needs of a ledger store.
type ledgerStore interface {
	ledger.Store
	SchemaVersion(ctx context.Context) (have, want int, err error)
}

// defaultConnectTimeout bounds a connection attempt when the connection
// string sets none: a database host that drops packets must not hold a
// payment longer than a terminal waits.
const defaultConnectTimeout = "3"

// postgresURL reports whether the database setting names PostgreSQL.
func postgresURL(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// databaseProblem checks the database setting (Validate lists it).
func (c FileConfig) databaseProblem() string {
	if c.Database == "" {
		return ""
	}
	if !postgresURL(c.Database) {
		return "database: want empty (SQLite files in the data folder) or a postgres:// URL"
	}
	if _, err := url.Parse(c.Database); err != nil {
		return "database: not a valid URL" // the error would show the password
	}
	return ""
}

// withConnectTimeout adds connect_timeout to a URL that has none.
func withConnectTimeout(db string) string {
	u, err := url.Parse(db)
	if err != nil {
		return db
	}
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", defaultConnectTimeout)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// stores are the authorizer's state stores as openStores opened them.
type stores struct {
	wallet walletStore
	ledger ledgerStore
	// probe, for PostgreSQL, reports whether the database takes writes and
	// its wallet schema is current; nil for SQLite files (readiness probes
	// them itself).
	probe func(ctx context.Context) error
}

// openStores opens the wallet store and the ledger named by the config:
// SQLite files in data, or PostgreSQL. fieldKey encrypts the wallet's
// personal data in either. progress is told of each SQLite schema
// migration as it runs (a table rebuilt on a release's first start takes
// about ten seconds a million rows).
func openStores(cfg FileConfig, data string, fieldKey []byte, progress func(string)) (stores, error) {
	if cfg.Database == "" {
		return openSQLite(cfg, data, fieldKey, progress)
	}
	dsn := withConnectTimeout(cfg.Database)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := ledgerpostgres.Open(ctx, dsn, ledgerpostgres.Options{MaxBatch: cfg.MaxBatch})
	if err != nil {
		return stores{}, err
	}
	w, err := walletpostgres.Open(ctx, dsn, walletpostgres.Options{FieldKey: fieldKey, MaxBatch: cfg.MaxBatch})
	if err != nil {
		l.Close()
		return stores{}, err
	}
	probe := func(ctx context.Context) error {
		if err := w.Ready(ctx); err != nil {
			return err
		}
		have, want, err := w.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		if have != want {
			return fmt.Errorf("wallet schema %d, this program's %d", have, want)
		}
		return nil
	}
	return stores{wallet: w, ledger: l, probe: probe}, nil
}

// openSQLite opens the data folder's SQLite stores: the ledger inside
// wallet.db, or in ledger.db for a folder from the first release.
func openSQLite(cfg FileConfig, data string, fieldKey []byte, progress func(string)) (stores, error) {
	walletPath, ledgerPath := filepath.Join(data, "wallet.db"), filepath.Join(data, "ledger.db")
	twoFiles, err := sqliteLayout(walletPath, ledgerPath)
	if err != nil {
		return stores{}, fmt.Errorf("data folder %s: %w", data, err)
	}
	dbs := []string{walletPath}
	if twoFiles {
		dbs = append(dbs, ledgerPath)
	}
	for _, db := range dbs {
		if err := privateDB(db); err != nil {
			return stores{}, fmt.Errorf("data folder: %w", err)
		}
	}
	w, err := walletsqlite.Open(walletPath, walletsqlite.WithFieldKey(fieldKey), walletsqlite.WithMaxBatch(cfg.MaxBatch), walletsqlite.WithProgress(progress))
	if err != nil {
		return stores{}, err
	}
	var l *ledgersqlite.Store
	if twoFiles {
		l, err = ledgersqlite.Open(ledgerPath, ledgersqlite.Options{MaxBatch: cfg.MaxBatch, Progress: progress})
	} else {
		l, err = w.OpenLedger(ledgersqlite.Options{Progress: progress})
	}
	if err != nil {
		w.Close()
		return stores{}, err
	}
	return stores{wallet: w, ledger: l}, nil
}

// sqliteLayout tells from the files which layout a data folder has: the
// ledger inside wallet.db (a folder made by this release, or a new one) or
// in ledger.db beside it (the first release). A folder that fits neither
// is refused, never served with an empty ledger: a wallet.db that keeps
// its ledger in a ledger.db that is gone, or a stray ledger.db beside a
// wallet.db that has the ledger inside.
func sqliteLayout(walletPath, ledgerPath string) (twoFiles bool, err error) {
	ledgerFile := backup.HasLedgerFile(filepath.Dir(ledgerPath))
	wallet, inside := false, false
	if fi, err := os.Stat(walletPath); err == nil && fi.Size() > 0 {
		db, err := sql.Open("sqlite3", "file:"+walletPath+"?mode=ro&_busy_timeout=5000")
		if err != nil {
			return false, err
		}
		defer db.Close()
		var w, in int
		if err := db.QueryRow(`SELECT count(*) FILTER (WHERE name = 'schema_version'), count(*) FILTER (WHERE name = ?)
			FROM sqlite_master WHERE type = 'table'`, ledgersqlite.VersionTable).Scan(&w, &in); err != nil {
			return false, fmt.Errorf("%s: %w", walletPath, err)
		}
		wallet, inside = w > 0, in > 0
		if inside && ledgerFile {
			// Empty ledger tables beside a ledger.db are those of a
			// `ledger merge` that did not copy: ledger.db is the ledger.
			var money int
			if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM accounts) OR EXISTS (SELECT 1 FROM transfers)`).Scan(&money); err != nil {
				return false, fmt.Errorf("%s: %w", walletPath, err)
			}
			inside = money > 0
		}
		if wallet && !inside {
			// A wallet with no student and no record moved no money: a
			// first start that stopped before the ledger's tables were made.
			var used int
			if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM records)`).Scan(&used); err != nil {
				return false, fmt.Errorf("%s: %w", walletPath, err)
			}
			wallet = used > 0
		}
	}
	switch {
	case inside && ledgerFile:
		return false, errors.New("wallet.db has the ledger inside it and a ledger.db lies beside it: if `authorizer ledger merge` stopped before its end, run it again; otherwise move the stray ledger.db away (it is not read)")
	case inside:
		return false, nil
	case wallet && !ledgerFile:
		return false, errors.New("wallet.db keeps its ledger in ledger.db, which is missing or empty: restore it (authorizer restore) before serving")
	}
	return ledgerFile, nil
}

// dbCheck is the readiness check of a PostgreSQL database (probe set).
func dbCheck(ctx context.Context, probe func(context.Context) error) Check {
	c := Check{Name: "database"}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := probe(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = errors.New("no answer within 5 s")
		}
		c.Detail = "postgres: " + err.Error()
		return c
	}
	c.OK = true
	return c
}

// sqliteOnly refuses a command that works on the data folder's SQLite
// files (backup, restore) when the config puts the state in PostgreSQL,
// saying what to use instead.
func (c *cli) sqliteOnly(cmd string) error {
	path, explicit := c.common.config, c.common.config != ""
	if !explicit {
		path = filepath.Join(c.common.data, "authorizer.json")
	}
	cfg, err := LoadConfig(path, explicit)
	if err != nil {
		return err
	}
	if cfg.Database != "" {
		return fmt.Errorf("%s: the state is in PostgreSQL (config \"database\"): use pg_dump / pg_basebackup for it, and copy the keys of the data folder (docs/deployment.md)", cmd)
	}
	return nil
}
