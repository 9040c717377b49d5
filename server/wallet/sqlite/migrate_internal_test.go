package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/server/ledger"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/wallet"
)

// A wallet.db at schema 10 (record keys and code IDs unique through their
// columns' own constraints) migrates to time-first indexes: every record
// keeps its ID and the AUTOINCREMENT mark, every code mark its owner, the
// other indexes are there again, keys and code IDs stay unique, and each
// lookup by key goes through the new indexes.
func TestMigrateTimeFirstKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wallet.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_000_000, 0)
	ids := map[string]int64{}
	for i := range 6 {
		key := fmt.Sprintf("T:pos-%d:01KBX5T00000000000000000%02d", i%2, i)
		if i == 5 {
			key = "Q:17:short"
		}
		r := &wallet.Record{Key: key, Kind: wallet.KindPayment, Created: t0}
		code := &wallet.CodeUse{ID: fmt.Sprintf("%d-%d-%d", 4700+i%3, t0.Unix()+int64(i), i), Expires: t0.Add(time.Hour), Now: t0}
		if owner, err := s.PutIntent(ctx, r, code, nil); err != nil || owner != key {
			t.Fatalf("intent %s: owner %q, %v", key, owner, err)
		}
		ids[key] = r.ID
	}
	// The ledger inside, with a payment's transfer (its migration 0002,
	// on the wallet writer's connection, is tested here too).
	led, err := s.OpenLedger(ledgersqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sale := ledger.Transfer{Key: "pay:T:pos-1:01KBX5T0000000000000000001", Kind: "payment", At: t0,
		Postings: []ledger.Posting{{Account: "bank:CCB", Amount: -100}, {Account: "merchant:m1", Amount: 100}}}
	posted, err := led.Post(ctx, sale)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Back to schema 10's two tables, as every wallet.db before this
	// release has them; records' AUTOINCREMENT mark past its last ID, as
	// after records that were never committed.
	db, err := sql.Open("sqlite3", path+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		// schema 10's records: the same columns, the key UNIQUE
		`CREATE TABLE records_v10 (` + strings.Replace(recordsV11, "key TEXT NOT NULL,", "key TEXT NOT NULL UNIQUE,", 1) + `)`,
		`INSERT INTO records_v10 SELECT * FROM records`,
		`DROP TABLE records`,
		`ALTER TABLE records_v10 RENAME TO records`,
		`CREATE INDEX records_user ON records(user_id, id)`,
		`CREATE INDEX records_user_day ON records(user_id, created, kind, status, channel, amount)`,
		`CREATE INDEX records_qr ON records(terminal, qr_seq) WHERE qr_seq > 0`,
		`CREATE INDEX records_open ON records(updated) WHERE status='processing' OR status='pending' OR status='reversing'`,
		`UPDATE sqlite_sequence SET seq = 1000 WHERE name = 'records'`,
		`CREATE TABLE seen_codes_v10 (id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires INTEGER NOT NULL)`,
		`INSERT INTO seen_codes_v10 SELECT * FROM seen_codes`,
		`DROP TABLE seen_codes`,
		`ALTER TABLE seen_codes_v10 RENAME TO seen_codes`,
		`CREATE INDEX seen_codes_expires ON seen_codes(expires)`,
		// schema 12's users: no version, no triggers keeping it
		`DROP TRIGGER users_version`,
		`DROP TRIGGER devices_insert_version`,
		`DROP TRIGGER devices_update_version`,
		`DROP TRIGGER devices_delete_version`,
		`ALTER TABLE users DROP COLUMN version`,
		`DELETE FROM schema_version WHERE version > 10`,
		`PRAGMA foreign_keys = OFF`,
		`CREATE TABLE transfers_v1 (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
			memo TEXT NOT NULL, at INTEGER NOT NULL, hash BLOB NOT NULL)`,
		`INSERT INTO transfers_v1 SELECT id, key, kind, memo, at, hash FROM transfers`,
		`DROP TABLE transfers`,
		`ALTER TABLE transfers_v1 RENAME TO transfers`,
		`DELETE FROM ` + ledgersqlite.VersionTable + ` WHERE version > 1`,
		`PRAGMA foreign_keys = ON`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if led, err = s.OpenLedger(ledgersqlite.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, r, found, err := led.Lookup(ctx, sale.Key); err != nil || !found || r.ID != posted.ID {
		t.Fatalf("the sale's transfer after the migration: found %v, %+v, %v", found, r, err)
	}
	if _, err := led.Post(ctx, ledger.Transfer{Key: sale.Key, Kind: "payment", At: t0,
		Postings: []ledger.Posting{{Account: "bank:CCB", Amount: -1}, {Account: "merchant:m1", Amount: 1}}}); !errors.Is(err, ledger.ErrKeyConflict) {
		t.Fatalf("another transfer under the sale's key: %v", err)
	}
	if rep, err := led.Check(ctx); err != nil || !rep.OK() {
		t.Fatalf("ledger check after the migration: %+v %v", rep, err)
	}
	var fk, ledgerVersion int
	s.wconn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk)
	s.wconn.QueryRowContext(ctx, `SELECT MAX(version) FROM `+ledgersqlite.VersionTable).Scan(&ledgerVersion)
	if latest, _ := ledgersqlite.LatestSchema(); fk != 1 || ledgerVersion != latest {
		t.Fatalf("writer's foreign_keys %d, ledger schema %d (want 1, %d)", fk, ledgerVersion, latest)
	}
	for key, id := range ids {
		r, err := s.Record(ctx, key)
		if err != nil || r == nil || r.ID != id {
			t.Errorf("record %s after the migration: %+v %v (ID was %d)", key, r, err, id)
		}
	}
	// A code used before is still used, by the same record; a new record
	// continues past the AUTOINCREMENT mark.
	again := &wallet.Record{Key: "T:pos-9:01KBX5T0000000000000000099", Kind: wallet.KindPayment, Created: t0}
	if owner, err := s.PutIntent(ctx, again, &wallet.CodeUse{ID: fmt.Sprintf("4701-%d-1", t0.Unix()+1), Expires: t0.Add(time.Hour), Now: t0}, nil); err != nil || owner != "T:pos-1:01KBX5T0000000000000000001" {
		t.Fatalf("a used code after the migration: owner %q, %v", owner, err)
	}
	fresh := &wallet.Record{Key: "T:pos-9:01KBX5T0000000000000000100", Kind: wallet.KindPayment, Created: t0}
	if err := s.PutRecord(ctx, fresh); err != nil || fresh.ID != 1001 {
		t.Fatalf("new record after the migration: ID %d, %v (want 1001)", fresh.ID, err)
	}

	db, err = sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int
	var tables, indexes []string
	db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&version)
	rows, err := db.QueryContext(ctx, `SELECT type, name, COALESCE(sql, '') FROM sqlite_master WHERE tbl_name IN ('records', 'seen_codes') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ, name, ddl string
		rows.Scan(&typ, &name, &ddl)
		if typ == "table" {
			tables = append(tables, ddl)
		} else {
			indexes = append(indexes, name)
		}
	}
	rows.Close()
	want := "records_key records_open records_qr records_user_day seen_codes_expires seen_codes_id"
	latest := 0
	for _, m := range migrations {
		latest = max(latest, m.version)
	}
	var transfersDDL string
	db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE name = 'transfers'`).Scan(&transfersDDL)
	if strings.Contains(transfersDDL, "UNIQUE") {
		t.Fatalf("transfers after the migration:\n%s", transfersDDL)
	}
	if version != latest || strings.Join(indexes, " ") != want || strings.Contains(strings.Join(tables, ""), "UNIQUE") || strings.Contains(strings.Join(tables, ""), "PRIMARY KEY,") {
		t.Fatalf("after the migration: version %d, indexes %v (want %s), tables:\n%s", version, indexes, want, strings.Join(tables, "\n"))
	}
	for _, q := range []string{
		`INSERT INTO records (key, kind, user_id, terminal, tx, merchant, amount, channel, bank_code, bank_card, status, code, req_hash, created, updated)
			VALUES ('Q:17:short', 'payment', 0, '', '', '', 0, '', '', '', '', '', '', 0, 0)`,
		fmt.Sprintf(`INSERT INTO seen_codes (id, owner, expires) VALUES ('4700-%d-0', 'x', 0)`, t0.Unix()),
	} {
		if _, err := db.ExecContext(ctx, q); err == nil {
			t.Errorf("a second row under a used key: %s", q)
		}
	}
	// Every lookup by key or code ID goes through the new indexes.
	for _, c := range []struct {
		q, index string
		args     []any
	}{
		{qSeenOwner, "seen_codes_id", []any{"4701-1800000001-1"}},
		{qRecordByKey, "records_key", []any{"T:pos-1:01KBX5T0000000000000000001"}},
		{qRecordML, "records_key", []any{5, "T:pos-1:01KBX5T0000000000000000001"}},
		{qRecordFinish, "records_key", []any{1, "", "", "", nil, 0, "T:pos-1:01KBX5T0000000000000000001"}},
		{qRecordRewrite, "records_key", []any{"", 0, 0, "", "", "", "", "", "", nil, 0, 0, "T:pos-1:01KBX5T0000000000000000001"}},
		// A student's history and open records, since migration 12
		// dropped records_user: their index, not a walk of every record.
		{`SELECT id FROM records WHERE ` + qUserRecords, "records_user_day", []any{5, 1 << 62, 20}},
		{`SELECT id FROM records WHERE ` + qUserOpenRecords, "records_user_day", []any{5}},
	} {
		var plan []string
		rows, err := db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.q, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "\n"), "INDEX "+c.index) {
			t.Errorf("plan without %s for\n%s\n%s", c.index, c.q, strings.Join(plan, "\n"))
		}
	}
}
