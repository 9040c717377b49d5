package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/protocol"
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
			if _, err := st.OpenLedger(ledgersqlite.Options{}); err != nil {
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
