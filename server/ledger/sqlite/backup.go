package sqlite

import (
	"context"
	"database/sql"
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
// database opened by any means (a backup being restored, for one): a
// ledger file's, or that of a ledger inside a host's database (OpenIn,
// VersionTable).
func FileSchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	table := "schema_version"
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", VersionTable).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger/sqlite: read schema: %w", err)
	}
	if n > 0 {
		table = VersionTable
	}
	var have int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+table).Scan(&have); err != nil {
		return 0, fmt.Errorf("ledger/sqlite: read %s: %w", table, err)
	}
	return have, nil
}
