package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/server/ledger"
	"campuspay/server/ledger/ledgertest"
)

// A ledger made under schema 1 (transfer keys unique through the column's
// own constraint) migrates to time-first keys: every transfer keeps its ID,
// postings and holds still point at theirs, foreign keys are on again, keys
// stay unique, and every lookup by key goes through transfers_key.
func TestMigrateTimeFirstKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"a", "topup:Q:17:a-longer-idempotency-key-than-26", "pay:T:pos-1:01KBX5T0000000000000000001", "pay:T:pos-2:01KBX5T0000000000000000001"}
	ids := map[string]int64{}
	for i, k := range keys {
		ids[k] = mustPost(t, s, pay(k, "bank:CCB", "wallet:1", int64(100+i))).ID
	}
	if _, err := s.PlaceHold(ctx, ledger.Hold{Key: "shower-1", Account: "wallet:1", Amount: 50, Expires: t0.Add(time.Hour), At: t0}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CaptureHold(ctx, "shower-1", 30, "merchant:bath", "", t0); err != nil {
		t.Fatal(err)
	}
	ids[ledger.CaptureKey("shower-1")] = 0
	downgradeToV1(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ledgertest.RequireOK(t, s)
	for k, id := range ids {
		_, r, found, err := s.Lookup(ctx, k)
		if err != nil || !found || (id != 0 && r.ID != id) {
			t.Errorf("lookup %q after the migration: found %v, ID %d (was %d), %v", k, found, r.ID, id, err)
		}
	}
	var version, fk, auto int
	var ddl string
	s.wconn.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_version").Scan(&version)
	s.wconn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
	s.wconn.QueryRowContext(ctx, "SELECT sql FROM sqlite_master WHERE name = 'transfers'").Scan(&ddl)
	s.wconn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE tbl_name = 'transfers' AND name LIKE 'sqlite_autoindex%'").Scan(&auto)
	if latest, _ := LatestSchema(); version != latest || fk != 1 || strings.Contains(ddl, "UNIQUE") || auto != 0 {
		t.Fatalf("after the migration: version %d, foreign_keys %d, autoindexes %d, transfers:\n%s", version, fk, auto, ddl)
	}
	// Keys are as unique as before: the same transfer again is a duplicate,
	// another under a used key a conflict.
	last := keys[len(keys)-1]
	if r := mustPost(t, s, pay(last, "bank:CCB", "wallet:1", int64(100+len(keys)-1))); !r.Duplicate || r.ID != ids[last] {
		t.Fatalf("repeat after the migration: %+v", r)
	}
	if _, err := s.Post(ctx, pay(last, "bank:CCB", "wallet:1", 1)); !errors.Is(err, ledger.ErrKeyConflict) {
		t.Fatalf("another transfer under a used key: %v", err)
	}
	if _, err := s.wconn.ExecContext(ctx, "INSERT INTO transfers (key, kind, memo, at, hash) VALUES (?, 'x', '', 0, x'00')", last); err == nil {
		t.Fatal("the table took a second row under a used key")
	}
	ledgertest.RequireOK(t, s)
}

// downgradeToV1 gives s's file schema 1's transfers table, as a
// first-release ledger.db has it.
func downgradeToV1(t *testing.T, s *Store, extra ...string) {
	t.Helper()
	for _, q := range append([]string{
		"PRAGMA foreign_keys = OFF",
		`CREATE TABLE transfers_v1 (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
			memo TEXT NOT NULL, at INTEGER NOT NULL, hash BLOB NOT NULL)`,
		"INSERT INTO transfers_v1 SELECT id, key, kind, memo, at, hash FROM transfers",
		"DROP TABLE transfers",
		"ALTER TABLE transfers_v1 RENAME TO transfers",
		"DELETE FROM schema_version WHERE version > 1",
	}, append(extra, "PRAGMA foreign_keys = ON")...) {
		if _, err := s.wconn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A migration that would leave a posting without its transfer is undone:
// the ledger refuses to open rather than run on a broken schema.
func TestMigrationChecksForeignKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustPost(t, s, pay("a", "bank:CCB", "wallet:1", 100))
	downgradeToV1(t, s, "INSERT INTO postings (transfer_id, leg, account, amount) VALUES (999, 0, 'wallet:1', 1)")
	s.Close()
	if s, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "foreign key check: a row of postings") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("open over a dangling posting: %v", err)
	}
}

// Every lookup of a transfer by its key goes through transfers_key: a
// query that SQLite could not match to the index would scan the table on
// every payment.
func TestTransferKeyQueriesUseIndex(t *testing.T) {
	s, _ := openTemp(t, Options{})
	for _, q := range []string{qTransferByKey, qLookup} {
		requirePlan(t, s, q, "transfers_key", "pay:T:pos-1:01KBX5T0000000000000000001")
	}
}

// requirePlan fails unless SQLite's plan for q, with args, uses index.
func requirePlan(t *testing.T, s *Store, q, index string, args ...any) {
	t.Helper()
	rows, err := s.wconn.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "INDEX "+index) {
		t.Fatalf("plan without %s for\n%s\n%s", index, q, strings.Join(plan, "\n"))
	}
}
