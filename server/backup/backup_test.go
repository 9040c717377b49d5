package backup_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"campuspay/server/backup"
	"campuspay/server/ledger"
	ledgersqlite "campuspay/server/ledger/sqlite"
	walletsqlite "campuspay/server/wallet/sqlite"
)

// data makes a data folder with real (empty) stores, left open like a
// running authorizer's, and a key file.
func data(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l, err := ledgersqlite.Open(filepath.Join(dir, "ledger.db"), ledgersqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	w, err := walletsqlite.Open(filepath.Join(dir, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	os.WriteFile(filepath.Join(dir, "issuer.key"), []byte("key\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "mqtt.sock"), nil, 0o600) // skipped
	return dir
}

func TestBackupVerifiesAndRefuses(t *testing.T) {
	ctx := context.Background()
	src := data(t)
	dst := filepath.Join(t.TempDir(), "b")
	m, err := backup.Create(ctx, src, dst, "test")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range m.Files {
		names[f.Name] = true
	}
	if !names["wallet.db"] || !names["ledger.db"] || !names["issuer.key"] || names["mqtt.sock"] || names["ledger.db-wal"] {
		t.Fatalf("files %v", names)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o700 {
		t.Errorf("backup folder mode %v", st.Mode().Perm())
	}
	if _, err := backup.Create(ctx, src, dst, "test"); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("backup into a used folder: %v", err)
	}
	if _, err := backup.Verify(ctx, dst); err != nil {
		t.Fatal(err)
	}

	// A changed byte is found.
	bad := filepath.Join(t.TempDir(), "bad")
	os.MkdirAll(bad, 0o700)
	for _, f := range append(m.Files, backup.File{Name: backup.ManifestFile}) {
		b, _ := os.ReadFile(filepath.Join(dst, f.Name))
		if f.Name == "issuer.key" {
			b[0] ^= 1
		}
		os.WriteFile(filepath.Join(bad, f.Name), b, 0o600)
	}
	if _, err := backup.Restore(ctx, bad, t.TempDir()); err == nil || !strings.Contains(err.Error(), "issuer.key differs") {
		t.Errorf("tampered backup: %v", err)
	}
	// No manifest: not a backup.
	os.Remove(filepath.Join(bad, backup.ManifestFile))
	if _, err := backup.Verify(ctx, bad); err == nil || !strings.Contains(err.Error(), "no manifest") {
		t.Errorf("backup without manifest: %v", err)
	}
	// A ledger from a newer release is refused.
	refusesNewerLedger(t, m, dst, "ledger.db", "schema_version")

	// Restore into a folder with data is refused; into an empty one works.
	if _, err := backup.Restore(ctx, dst, src); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("restore over data: %v", err)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if _, err := backup.Restore(ctx, dst, fresh); err != nil {
		t.Fatal(err)
	}
	l, err := ledgersqlite.Open(filepath.Join(fresh, "ledger.db"), ledgersqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if r, err := l.Check(ctx); err != nil || !r.OK() {
		t.Fatalf("restored ledger: %v %v", r, err)
	}
}

// A data folder of this release has one database, wallet.db, with the
// ledger inside: the backup copies it alone, reads the ledger's schema
// from it (and refuses a newer one), and the restored ledger holds the
// money.
func TestBackupLedgerInside(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	w, err := walletsqlite.Open(filepath.Join(src, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	l, err := w.OpenLedger(ledgersqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Post(ctx, ledger.Transfer{Key: "t1", Kind: "topup", Postings: []ledger.Posting{
		{Account: "bank:CCB", Amount: -7_00}, {Account: "wallet:1", Amount: 7_00}}}); err != nil {
		t.Fatal(err)
	}
	// An empty ledger.db beside it is no ledger (serve reads it so too).
	os.WriteFile(filepath.Join(src, "ledger.db"), nil, 0o600)
	dst := filepath.Join(t.TempDir(), "b")
	m, err := backup.Create(ctx, src, dst, "test")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ledgersqlite.LatestSchema()
	names := map[string]bool{}
	for _, f := range m.Files {
		names[f.Name] = true
	}
	if !names["wallet.db"] || names["ledger.db"] || m.LedgerSchema != want {
		t.Fatalf("manifest %+v, want wallet.db, no ledger.db and ledger schema %d", m, want)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	if _, err := backup.Restore(ctx, dst, fresh); err != nil {
		t.Fatal(err)
	}
	w2, err := walletsqlite.Open(filepath.Join(fresh, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	l2, err := w2.OpenLedger(ledgersqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := l2.Balance(ctx, "wallet:1"); err != nil || b.Posted != 7_00 {
		t.Fatalf("restored balance %+v %v", b, err)
	}
	if r, err := l2.Check(ctx); err != nil || !r.OK() {
		t.Fatalf("restored ledger: %v %v", r, err)
	}

	// A ledger schema from a newer release, inside wallet.db, is refused.
	refusesNewerLedger(t, m, dst, "wallet.db", ledgersqlite.VersionTable)
}

// refusesNewerLedger copies the backup dst (manifest m), records ledger
// schema 9999 in table of its database db, backs the copy up and checks
// that restoring that backup is refused as coming from a newer release.
func refusesNewerLedger(t *testing.T, m *backup.Manifest, dst, db, table string) {
	t.Helper()
	ctx := context.Background()
	newer := filepath.Join(t.TempDir(), "newer")
	os.MkdirAll(newer, 0o700)
	for _, f := range m.Files {
		b, _ := os.ReadFile(filepath.Join(dst, f.Name))
		os.WriteFile(filepath.Join(newer, f.Name), b, 0o600)
	}
	sdb, err := sql.Open("sqlite3", filepath.Join(newer, db))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec("INSERT INTO " + table + " (version, applied_at) VALUES (9999, 0)"); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	n2 := filepath.Join(t.TempDir(), "n2")
	if _, err := backup.Create(ctx, newer, n2, "future"); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(ctx, n2, t.TempDir()); err == nil || !strings.Contains(err.Error(), "newer than this program's") {
		t.Errorf("newer ledger schema in %s: %v", db, err)
	}
}

// A wallet.db that keeps its ledger in a ledger.db that is gone is no
// backup: Create says the ledger is missing instead of saving the wallet
// alone (and mistaking the wallet's schema number for the ledger's).
func TestBackupRefusesAMissingLedger(t *testing.T) {
	ctx := context.Background()
	src := data(t)
	if err := os.Remove(filepath.Join(src, "ledger.db")); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Create(ctx, src, filepath.Join(t.TempDir(), "b"), "test"); err == nil || !strings.Contains(err.Error(), "no ledger") {
		t.Fatalf("backup without the ledger: %v", err)
	}
}
