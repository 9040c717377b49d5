package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/wallet"
	walletsqlite "campuspay/server/wallet/sqlite"
)

// The data folder's layout is read from its files: the ledger inside
// wallet.db (new folders), ledger.db beside it (first release), and
// neither an empty ledger for a wallet that had one nor a stray ledger.db
// is ever served.
func TestSQLiteLayout(t *testing.T) {
	used := func(t *testing.T, dir string, inside bool) {
		st, err := walletsqlite.Open(filepath.Join(dir, "wallet.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if inside {
			l, err := st.OpenLedger(ledgersqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Post(context.Background(), ledger.Transfer{Key: "t", Kind: "topup", Postings: []ledger.Posting{
				{Account: "bank:CCB", Amount: -1}, {Account: "wallet:1", Amount: 1}}}); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		if err := st.PutRecord(context.Background(), &wallet.Record{Key: "T:pos-1:tx", Kind: wallet.KindPayment, Terminal: "pos-1", Tx: "tx",
			Merchant: "M001", Status: protocol.StatusDeclined, Created: now, Updated: now}); err != nil {
			t.Fatal(err)
		}
	}
	ledgerFile := func(t *testing.T, dir string) {
		l, err := ledgersqlite.Open(filepath.Join(dir, "ledger.db"), ledgersqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
	emptyWallet := func(t *testing.T, dir string) {
		st, err := walletsqlite.Open(filepath.Join(dir, "wallet.db"))
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
	}
	for _, tc := range []struct {
		name     string
		make     func(t *testing.T, dir string)
		twoFiles bool
		err      string
	}{
		{name: "new folder", make: func(*testing.T, string) {}},
		{name: "ledger inside", make: func(t *testing.T, dir string) { used(t, dir, true) }},
		{name: "first release", make: func(t *testing.T, dir string) { used(t, dir, false); ledgerFile(t, dir) }, twoFiles: true},
		{name: "first release, ledger.db lost", make: func(t *testing.T, dir string) { used(t, dir, false) }, err: "missing"},
		{name: "ledger inside and a stray ledger.db", make: func(t *testing.T, dir string) { used(t, dir, true); ledgerFile(t, dir) }, err: "stray"},
		{name: "an empty ledger.db beside the ledger inside", make: func(t *testing.T, dir string) {
			used(t, dir, true)
			os.WriteFile(filepath.Join(dir, "ledger.db"), nil, 0o600)
		}},
		{name: "a first start stopped before the ledger", make: emptyWallet},
		{name: "a ledger merge that made the tables and copied nothing", make: func(t *testing.T, dir string) {
			used(t, dir, false)
			ledgerFile(t, dir)
			st, err := walletsqlite.Open(filepath.Join(dir, "wallet.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.OpenLedger(ledgersqlite.Options{}); err != nil {
				t.Fatal(err)
			}
		}, twoFiles: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.make(t, dir)
			two, err := sqliteLayout(filepath.Join(dir, "wallet.db"), filepath.Join(dir, "ledger.db"))
			switch {
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
			case err != nil:
				t.Fatal(err)
			case two != tc.twoFiles:
				t.Fatalf("two files %v, want %v", two, tc.twoFiles)
			}
		})
	}
}

// One serve per SQLite data folder: a second is refused while the first
// runs, and starts once it has stopped (the lock goes with the process).
func TestOneServePerDataFolder(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	s := startServe(t, []string{"--data", dir, "--config", cfg})
	waitReady(t, http.DefaultClient, s.url)
	if code, _, errs := runCLI(t, "--data", dir, "--config", cfg, "serve", "--http", "127.0.0.1:0"); code != 1 || !strings.Contains(errs, "serve is running") {
		t.Fatalf("second serve: exit %d: %s", code, errs)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d: %s", code, s.errb.String())
	}
	unlock, err := lockDataFolder(dir)
	if err != nil {
		t.Fatalf("the lock outlived serve: %v", err)
	}
	unlock()
}
