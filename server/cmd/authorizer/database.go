package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"campuspay/server/api"
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
//   - "" (the default): SQLite files in the data folder, wallet.db and
//     ledger.db — one authorizer on one box, and `make demo`.
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
// personal data in either.
func openStores(cfg FileConfig, data string, fieldKey []byte) (stores, error) {
	if cfg.Database == "" {
		for _, db := range []string{"ledger.db", "wallet.db"} {
			if err := privateDB(filepath.Join(data, db)); err != nil {
				return stores{}, fmt.Errorf("data folder: %w", err)
			}
		}
		l, err := ledgersqlite.Open(filepath.Join(data, "ledger.db"), ledgersqlite.Options{MaxBatch: cfg.MaxBatch})
		if err != nil {
			return stores{}, err
		}
		w, err := walletsqlite.Open(filepath.Join(data, "wallet.db"), walletsqlite.WithFieldKey(fieldKey), walletsqlite.WithMaxBatch(cfg.MaxBatch))
		if err != nil {
			l.Close()
			return stores{}, err
		}
		return stores{wallet: w, ledger: l}, nil
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
