package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"campuspay/server/ledger"
)

// LatestSchema is the newest schema version this program migrates to.
func LatestSchema() (int, error) {
	v, err := ledger.LatestMigration(migrations, "migrations/*.sql")
	if err != nil {
		return 0, fmt.Errorf("ledger/postgres: migrations: %w", err)
	}
	return v, nil
}

// SchemaVersion reads the schema version recorded in the database and the
// newest this program knows; readiness checks that they are equal.
func (s *Store) SchemaVersion(ctx context.Context) (have, want int, err error) {
	if want, err = LatestSchema(); err != nil {
		return 0, 0, err
	}
	err = s.reads.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_version").Scan(&have)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("ledger/postgres: read schema_version: %w", err)
	}
	return have, want, nil
}
