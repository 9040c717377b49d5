package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// migration is one numbered step of the schema, applied once in its own
// transaction and recorded in schema_version. Steps are Go, not SQL
// files, because a step may have to rewrite rows (encrypting them needs
// the key, which the database never holds).
type migration struct {
	version int
	name    string
	apply   func(ctx context.Context, tx *sql.Tx, fc *fieldCipher) error
}

var migrations = []migration{
	{1, "base schema", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, schema) // IF NOT EXISTS: a no-op on a database from before schema_version
		return err
	}},
	{2, "personal data encrypted", encryptPersonalData},
	{3, "app sessions", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE sessions (
			token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, expires INTEGER NOT NULL);
		CREATE INDEX sessions_expires ON sessions(expires)`)
		return err
	}},
	{4, "login lockouts", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE login_fails (
			lock_key TEXT PRIMARY KEY, fails INTEGER NOT NULL, last_fail INTEGER NOT NULL, locked_until INTEGER NOT NULL);
		CREATE INDEX login_fails_last ON login_fails(last_fail)`)
		return err
	}},
	{5, "sessions and devices by user", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, `CREATE INDEX sessions_user ON sessions(user_id);
		CREATE INDEX devices_user ON devices(user_id)`)
		return err
	}},
	{6, "back office: operators, sessions, audit log, frozen wallets, phone index", backOffice},
	// 7 is reserved and unused.
	{8, "shower litres and terminal names", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, `ALTER TABLE records ADD COLUMN ml INTEGER NOT NULL DEFAULT 0;
		ALTER TABLE terminals ADD COLUMN name TEXT NOT NULL DEFAULT ''`)
		return err
	}},
	{9, "offline allowances", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, allowancesSchema)
		return err
	}},
	// Settlement flags an offline payment made after its device's
	// revocation; devices revoked before this step keep 0 (unknown).
	{10, "device revocation time", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, `ALTER TABLE devices ADD COLUMN revoked_at INTEGER NOT NULL DEFAULT 0`)
		return err
	}},
	{11, "record keys and code marks unique through time-first indexes", timeFirstKeys},
	// A student's records are listed through records_user_day, which
	// already holds every record's student (and its ID, as any index does):
	// records_user cost each payment one more leaf page of a B-tree keyed
	// by student, wherever that student's page is, for the page views of
	// the history alone (a scan of one student's entries and a sort).
	{12, "records by student through one index", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, `DROP INDEX IF EXISTS records_user`)
		return err
	}},
	// A student's version counts every change to their row and their
	// devices, whoever makes it (triggers: the admin CLI, another
	// authorizer): the authorizer pays from a student it read before,
	// and the payment's write checks the version (wallet.PayerCheck).
	{13, "student versions", func(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
		_, err := tx.ExecContext(ctx, `ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
		CREATE TRIGGER users_version AFTER UPDATE ON users WHEN NEW.version = OLD.version
			BEGIN UPDATE users SET version = OLD.version + 1 WHERE id = NEW.id; END;
		CREATE TRIGGER devices_insert_version AFTER INSERT ON devices
			BEGIN UPDATE users SET version = version + 1 WHERE id = NEW.user_id; END;
		CREATE TRIGGER devices_update_version AFTER UPDATE ON devices
			BEGIN UPDATE users SET version = version + 1 WHERE id = OLD.user_id OR id = NEW.user_id; END;
		CREATE TRIGGER devices_delete_version AFTER DELETE ON devices
			BEGIN UPDATE users SET version = version + 1 WHERE id = OLD.user_id; END`)
		return err
	}},
}

// migrate applies every migration newer than the recorded version, in
// version order, and reports whether any ran (to progress, if not nil, as
// it goes). Versions are reserved per line of work, so the list may have
// gaps and be merged out of order.
func migrate(ctx context.Context, db *sql.DB, fc *fieldCipher, progress func(string)) (bool, error) {
	migrations := slices.SortedFunc(slices.Values(migrations), func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(migrations); i++ {
		if migrations[i].version == migrations[i-1].version {
			return false, fmt.Errorf("migration %d listed twice", migrations[i].version)
		}
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return false, fmt.Errorf("create schema_version: %w", err)
	}
	var have int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
		return false, fmt.Errorf("read schema_version: %w", err)
	}
	if last := migrations[len(migrations)-1].version; have > last {
		return false, fmt.Errorf("schema version %d is newer than this program's %d", have, last)
	}
	ran := false
	for _, m := range migrations {
		if m.version <= have {
			continue
		}
		start := time.Now()
		if progress != nil {
			progress(fmt.Sprintf("wallet.db: schema migration %d (%s)", m.version, m.name))
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return ran, err
		}
		if err := m.apply(ctx, tx, fc); err != nil {
			tx.Rollback()
			return ran, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (?,?,?)`,
			m.version, m.name, time.Now().UnixNano()); err != nil {
			tx.Rollback()
			return ran, fmt.Errorf("migration %d: %w", m.version, err)
		}
		if err := tx.Commit(); err != nil {
			return ran, fmt.Errorf("migration %d: commit: %w", m.version, err)
		}
		if progress != nil {
			progress(fmt.Sprintf("wallet.db: schema migration %d done in %s", m.version, time.Since(start).Round(time.Millisecond)))
		}
		ran = true
	}
	return ran, nil
}

// encryptPersonalData (migration 2) encrypts the bank card numbers of
// users and records and the users' resident ID numbers and phones that
// earlier versions stored in clear, keeps the cards' last four digits, and
// records which key they are under. The writer connection runs with
// secure_delete, so the clear values are overwritten in the file, and Open
// checkpoints the WAL afterwards.
func encryptPersonalData(ctx context.Context, tx *sql.Tx, fc *fieldCipher) error {
	for _, q := range []string{
		`ALTER TABLE users ADD COLUMN bank_card_last4 TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE records ADD COLUMN bank_card_last4 TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE field_key (id INTEGER PRIMARY KEY CHECK (id = 1), check_value TEXT NOT NULL)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO field_key (id, check_value) VALUES (1, ?)`, fc.Check()); err != nil {
		return err
	}
	type user struct {
		id               int64
		card, idNo, tele string
	}
	var users []user
	rows, err := tx.QueryContext(ctx, `SELECT id, bank_card, id_number, phone FROM users`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var u user
		if err := rows.Scan(&u.id, &u.card, &u.idNo, &u.tele); err != nil {
			rows.Close()
			return err
		}
		users = append(users, u)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, u := range users {
		card, err1 := fc.SealClear(colUserCard, u.card)
		idNo, err2 := fc.SealClear(colUserID, u.idNo)
		tele, err3 := fc.SealClear(colUserPhone, u.tele)
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET bank_card=?, bank_card_last4=?, id_number=?, phone=? WHERE id=?`,
			card, last4(u.card), idNo, tele, u.id); err != nil {
			return err
		}
	}
	type record struct {
		id   int64
		card string
	}
	var recs []record
	rows, err = tx.QueryContext(ctx, `SELECT id, bank_card FROM records WHERE bank_card <> ''`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r record
		if err := rows.Scan(&r.id, &r.card); err != nil {
			rows.Close()
			return err
		}
		recs = append(recs, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, r := range recs {
		card, err := fc.SealClear(colRecordCard, r.card)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE records SET bank_card=?, bank_card_last4=? WHERE id=?`, card, last4(r.card), r.id); err != nil {
			return err
		}
	}
	return nil
}

// madeBefore tells whether db holds the wallet's tables already (made by
// an earlier release, maybe from before schema_version), not a new file
// whose migrations are instant.
func madeBefore(ctx context.Context, db *sql.DB) (bool, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'records'`).Scan(&n); err != nil {
		return false, fmt.Errorf("read schema: %w", err)
	}
	return n > 0, nil
}

// timeFirstKeys (migration 11) makes record keys and code IDs unique
// through indexes that start with their time instead of through the
// columns' own constraints. A sale's key ends with its transaction ID, a
// ULID whose first ten characters are the time ("T:<terminal>:<ULID>"),
// and a code ID has its time after the device ("<device>-<unix>-<seq>"):
// indexed on (tail, key) and (time and sequence, ID), a commit's new rows
// land at the indexes' right edge instead of in one leaf page per
// terminal or device — a WAL page fewer for each, for every payment
// (docs/money-path.md item 7). Two equal keys have equal tails, so both
// stay exactly as unique as before. SQLite cannot drop a column's UNIQUE
// or PRIMARY KEY in place: both tables are rebuilt, their rows and record
// IDs kept and their other indexes made again as they were. No table
// refers to either.
// recordsV11 is the records table's columns from migration 11 on: those
// of the base schema and migrations 2 and 8, the key without UNIQUE.
const recordsV11 = `
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	key TEXT NOT NULL, kind TEXT NOT NULL, user_id INTEGER NOT NULL,
	terminal TEXT NOT NULL, tx TEXT NOT NULL, merchant TEXT NOT NULL,
	amount INTEGER NOT NULL, channel TEXT NOT NULL, bank_code TEXT NOT NULL, bank_card TEXT NOT NULL,
	status TEXT NOT NULL, code TEXT NOT NULL, req_hash TEXT NOT NULL, response BLOB,
	qr_seq INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, updated INTEGER NOT NULL,
	bank_card_last4 TEXT NOT NULL DEFAULT '', ml INTEGER NOT NULL DEFAULT 0`

func timeFirstKeys(ctx context.Context, tx *sql.Tx, _ *fieldCipher) error {
	const recordCols = `id, key, kind, user_id, terminal, tx, merchant, amount, channel, bank_code, bank_card,
		status, code, req_hash, response, qr_seq, created, updated, bank_card_last4, ml`
	var indexes []string
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_master
		WHERE type = 'index' AND tbl_name IN ('records', 'seen_codes') AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			rows.Close()
			return err
		}
		indexes = append(indexes, q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var seq sql.NullInt64 // AUTOINCREMENT's high-water mark: no record ID is ever used twice
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'records'`).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	steps := []string{
		`CREATE TABLE records_new (` + recordsV11 + `)`,
		`INSERT INTO records_new (` + recordCols + `) SELECT ` + recordCols + ` FROM records ORDER BY id`,
		`DROP TABLE records`,
		`ALTER TABLE records_new RENAME TO records`,
		`CREATE UNIQUE INDEX records_key ON records(substr(key, -26), key)`,
		`CREATE TABLE seen_codes_new (id TEXT NOT NULL, owner TEXT NOT NULL, expires INTEGER NOT NULL)`,
		`INSERT INTO seen_codes_new (id, owner, expires) SELECT id, owner, expires FROM seen_codes`,
		`DROP TABLE seen_codes`,
		`ALTER TABLE seen_codes_new RENAME TO seen_codes`,
		`CREATE UNIQUE INDEX seen_codes_id ON seen_codes(substr(id, instr(id, '-') + 1), id)`,
	}
	for _, q := range append(steps, indexes...) {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%.60s: %w", q, err)
		}
	}
	if seq.Valid {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sqlite_sequence WHERE name = 'records'`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT 'records', MAX(?, COALESCE(MAX(id), 0)) FROM records`, seq.Int64); err != nil {
			return err
		}
	}
	return nil
}
