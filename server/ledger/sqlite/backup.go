package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"campuspay/server/ledger"
)

// LatestSchema is the newest schema version this program migrates to. A
// backup (or database) with a higher version comes from a newer release
// and must not be opened by this one.
func LatestSchema() (int, error) {
	v, err := ledger.LatestMigration(migrations, "migrations/*.sql")
	if err != nil {
		return 0, fmt.Errorf("ledger/sqlite: migrations: %w", err)
	}
	return v, nil
}

// SchemaVersion reads the schema version recorded in the open database
// (through the read pool) and the newest this program knows; readiness
// checks that they are equal.
func (s *Store) SchemaVersion(ctx context.Context) (have, want int, err error) {
	if want, err = LatestSchema(); err != nil {
		return 0, 0, err
	}
	if have, err = FileSchemaVersion(ctx, s.rdb); err != nil {
		return 0, 0, err
	}
	return have, want, nil
}

// FileSchemaVersion reads the ledger's schema version recorded in db, a
// database opened by any means (a backup being restored, for one): that
// of a ledger inside a host's database (OpenIn, VersionTable), or of a
// ledger file. A database holding neither is an error: a wallet.db whose
// ledger is elsewhere has a schema_version too, the wallet's own.
func FileSchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var inside, file int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE name = ?), count(*) FILTER (WHERE name = 'transfers')
		FROM sqlite_master WHERE type = 'table'`, VersionTable).Scan(&inside, &file); err != nil {
		return 0, fmt.Errorf("ledger/sqlite: read schema: %w", err)
	}
	table := VersionTable
	switch {
	case inside > 0:
	case file > 0:
		table = "schema_version"
	default:
		return 0, errors.New("ledger/sqlite: no ledger in this database")
	}
	var have int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table).Scan(&have); err != nil {
		return 0, fmt.Errorf("ledger/sqlite: read %s: %w", table, err)
	}
	return have, nil
}
