package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	walletsqlite "campuspay/server/wallet/sqlite"
)

// The first release's data folder (testdata/release-1, made by its own
// `hwsim demo`) opens with today's code: every wallet migration runs up from
// that schema (personal data encrypted in place, sessions, and the rest),
// nothing is lost, the ledger still checks, and opening again changes
// nothing.
func TestUpgradeFromFirstRelease(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("testdata", "release-1")
	for _, f := range []string{"authorizer.json", "data/issuer.key", "data/seal.key", "data/ledger.db", "data/wallet.db"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"--data", data, "--config", filepath.Join(dir, "authorizer.json")}
	for round := range 2 { // the second open finds nothing to do
		code, out, errs := runCLI(t, append(base, "ledger", "check")...)
		if code != 0 || !strings.Contains(out, "ledger OK") || !strings.Contains(out, "transfers 21,") {
			t.Fatalf("round %d: ledger check: exit %d\n%s%s", round, code, out, errs)
		}
		code, out, errs = runCLI(t, append(base, "tx", "list", "--limit", "1000")...)
		if lines := strings.Count(strings.TrimSpace(out), "\n"); code != 0 || lines != 28 {
			t.Fatalf("round %d: tx list: exit %d, %d records\n%s%s", round, code, lines, out, errs)
		}
	}
	// The students' personal data is encrypted in the file and reads back.
	raw, err := os.ReadFile(filepath.Join(data, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{"13800000001", "6217000000020240010"} {
		if bytes.Contains(raw, []byte(clear)) {
			t.Errorf("%s still in clear in wallet.db", clear)
		}
	}
	s, err := walletsqlite.Open(filepath.Join(data, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.UserByStudentNo(context.Background(), "2024001")
	if err != nil || u.Name != "张伟" || u.Phone != "13800000001" || u.BankCard != "6217000000020240010" {
		t.Fatalf("student 2024001 after the upgrade: %+v %v", u, err)
	}
}
