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
// that schema (personal data encrypted in place, sessions, time-first keys
// and the rest) and says so, nothing is lost, the ledger still checks, and
// opening again changes nothing.
func TestUpgradeFromFirstRelease(t *testing.T) {
	data, base := firstReleaseFolder(t)
	for round := range 2 { // the second open finds nothing to do
		code, out, errs := runCLI(t, append(base, "ledger", "check")...)
		if code != 0 || !strings.Contains(out, "ledger OK") || !strings.Contains(out, "transfers 21,") {
			t.Fatalf("round %d: ledger check: exit %d\n%s%s", round, code, out, errs)
		}
		// Each migration says so as it runs (a rebuilt table takes a while).
		told := strings.Contains(errs, "wallet.db: schema migration 11 done") && strings.Contains(errs, "ledger schema migration 0002_time_first_keys.sql done")
		if told != (round == 0) || (round == 1 && strings.Contains(errs, "migration")) {
			t.Fatalf("round %d: migrations reported %v:\n%s", round, told, errs)
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

// firstReleaseFolder copies testdata/release-1 into a temporary folder and
// returns its data folder and the CLI's --data/--config flags for it.
func firstReleaseFolder(t *testing.T) (string, []string) {
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
	return data, []string{"--data", data, "--config", filepath.Join(dir, "authorizer.json")}
}

// `ledger merge` moves a first-release folder's ledger.db into wallet.db:
// refused while serve holds the folder; afterwards the ledger checks the
// same, every account's transfers read the same, ledger.db is set aside,
// the folder opens with the ledger inside, and a second merge finds
// nothing to do.
func TestLedgerMergeFirstRelease(t *testing.T) {
	data, base := firstReleaseFolder(t)
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, append(append([]string{}, base...), args...)...)
	}
	code, before, errs := cli("ledger", "check")
	if code != 0 || !strings.Contains(before, "transfers 21,") {
		t.Fatalf("ledger check: %d %s%s", code, before, errs)
	}
	accounts := []string{"merchant:M001", "wallet:1", "bank:CCB"}
	transfers := map[string]string{}
	for _, a := range accounts {
		_, out, _ := cli("ledger", "transfers", "--account", a, "--json")
		transfers[a] = out
	}

	unlock, err := lockDataFolder(data) // as a running serve holds it
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errs := cli("ledger", "merge"); code != 1 || !strings.Contains(errs, "serve is running") {
		t.Fatalf("merge under a running serve: exit %d: %s", code, errs)
	}
	unlock()

	code, out, errs := cli("ledger", "merge")
	if code != 0 || !strings.Contains(out, "ledger merged into wallet.db: transfers 21,") {
		t.Fatalf("merge: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(data, "ledger.db")); !os.IsNotExist(err) {
		t.Fatalf("ledger.db still in place after the merge: %v", err)
	}
	if kept, _ := filepath.Glob(filepath.Join(data, "ledger.db.merged-*Z")); len(kept) != 1 {
		t.Fatalf("the old ledger.db is not kept aside: %v", kept)
	}
	if two, err := sqliteLayout(filepath.Join(data, "wallet.db"), filepath.Join(data, "ledger.db")); err != nil || two {
		t.Fatalf("layout after the merge: two files %v, %v", two, err)
	}
	code, after, errs := cli("ledger", "check")
	if code != 0 || after != before {
		t.Fatalf("ledger check after the merge: exit %d\n%s%s\nbefore:\n%s", code, after, errs, before)
	}
	for _, a := range accounts {
		if _, out, _ := cli("ledger", "transfers", "--account", a, "--json"); out != transfers[a] {
			t.Errorf("%s after the merge:\n%s\nbefore:\n%s", a, out, transfers[a])
		}
	}
	if code, _, errs := cli("ledger", "merge"); code != 1 || !strings.Contains(errs, "inside wallet.db already") {
		t.Fatalf("second merge: exit %d: %s", code, errs)
	}
}
