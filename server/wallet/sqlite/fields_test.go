package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fileHolds reports whether the database file or its WAL contains s.
func fileHolds(t *testing.T, path, s string) bool {
	t.Helper()
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// Issue 13 item 6: a wallet.db written by an earlier version, with card,
// ID and phone numbers in clear, is converted by migration 2: afterwards
// neither the file nor its WAL holds them, the store reads them back, the
// cards' last four digits are kept, and another key is refused.
func TestMigrationEncryptsClearRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wallet.db")
	const card, idNo, phone, recCard = "6217000000000000014", "11010520000101001X", "13800000001", "6222020000000000011"
	old, err := sql.Open("sqlite3", path+"?_journal_mode=WAL&_synchronous=FULL")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{schema, // the schema as it was, without schema_version
		`INSERT INTO users (student_no, name, id_number, phone, category, campus, card_uid, login_hash, state, bank_code, bank_card, limit_per_tx, limit_daily)
			VALUES ('2024001', '李娜', '` + idNo + `', '` + phone + `', '', 'yungu', 'CA01', 'h', 2, 'CCB', '` + card + `', 1, 1)`,
		`INSERT INTO records (key, kind, user_id, terminal, tx, merchant, amount, channel, bank_code, bank_card, status, code, req_hash, created, updated)
			VALUES ('U:1:topup:k', 'top_up', 1, '', '', '', 100, 'bank_card', 'ICBC', '` + recCard + `', 'approved', '', '', 1, 1)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	if !fileHolds(t, path, card) {
		t.Fatal("the old database does not hold the card in clear: the test proves nothing")
	}

	key, _ := NewFieldKey()
	s, err := Open(path, WithFieldKey(key))
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.UserByStudentNo(ctx, "2024001")
	if err != nil || u.BankCard != card || u.IDNumber != idNo || u.Phone != phone {
		t.Fatalf("after migration: %+v %v", u, err)
	}
	r, err := s.Record(ctx, "U:1:topup:k")
	if err != nil || r.BankCard != recCard {
		t.Fatalf("record after migration: %+v %v", r, err)
	}
	var rawCard, l4, rawRec, l4Rec string
	s.rdb.QueryRow(`SELECT bank_card, bank_card_last4 FROM users`).Scan(&rawCard, &l4)
	s.rdb.QueryRow(`SELECT bank_card, bank_card_last4 FROM records`).Scan(&rawRec, &l4Rec)
	if !strings.HasPrefix(rawCard, encPrefix) || l4 != "0014" || !strings.HasPrefix(rawRec, encPrefix) || l4Rec != "0011" {
		t.Fatalf("stored %q/%q, %q/%q", rawCard, l4, rawRec, l4Rec)
	}
	// Writes keep it so.
	u.BankCard = "6217000000000000022"
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, v := range []string{card, idNo, phone, recCard, "6217000000000000022"} {
		if fileHolds(t, path, v) {
			t.Errorf("the database files still hold %s in clear", v)
		}
	}

	other, _ := NewFieldKey()
	if s, err := Open(path, WithFieldKey(other)); err == nil || !strings.Contains(err.Error(), "another key") {
		s.Close()
		t.Fatalf("opened with another key: %v", err)
	}
	s, err = Open(path, WithFieldKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if u, err := s.UserByStudentNo(ctx, "2024001"); err != nil || u.BankCard != "6217000000000000022" {
		t.Fatalf("reopened: %+v %v", u, err)
	}
	var n int
	s.rdb.QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n)
	if n != len(migrations) {
		t.Fatalf("schema_version has %d rows, want %d", n, len(migrations))
	}
}

// Without a key, Open keeps one beside the database, mode 0600.
func TestDefaultFieldKeyFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	s, err = Open(filepath.Join(dir, "wallet.db"))
	if err != nil {
		t.Fatalf("reopen with the key file: %v", err)
	}
	s.Close()
}
