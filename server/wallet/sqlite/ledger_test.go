package sqlite_test

import (
	"database/sql"
	"testing"

	"campuspay/server/ledger"
	"campuspay/server/ledger/ledgertest"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/wallet/sqlite"
	"campuspay/server/wallet/storetest"
)

// openWithLedger opens a fresh wallet store with the ledger inside it.
func openWithLedger(t *testing.T) (*sqlite.Store, *ledgersqlite.Store, string) {
	s, p := open(t)
	l, err := s.OpenLedger(ledgersqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, l, p
}

// The ledger conformance suite on a ledger inside wallet.db: every write
// goes through the wallet's writer, in its transaction.
func TestLedgerInsideConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		_, l, _ := openWithLedger(t)
		return l
	})
}

// The wallet conformance suite on stores that have the ledger inside:
// its tables and writes beside the wallet's change nothing of the wallet's.
func TestConformanceWithLedger(t *testing.T) {
	storetest.Run(t, storetest.Factory{Open: func(t *testing.T) (storetest.Store, func(*testing.T) storetest.Store) {
		s, _, p := openWithLedger(t)
		return s, func(t *testing.T) storetest.Store {
			s2, err := sqlite.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s2.OpenLedger(ledgersqlite.Options{}); err != nil {
				t.Fatal(err)
			}
			return s2
		}
	}})
}

// PutPayment writes the code's mark, the transfer and the record in one
// transaction, or none of them (storetest.RunPayment); the ledger's
// schema is recorded in wallet.db and its money survives reopening.
func TestPutPaymentAllOrNothing(t *testing.T) {
	s, l, path := openWithLedger(t)
	storetest.RunPayment(t, s, l)

	// The ledger's schema is recorded beside the wallet's, where backups
	// read it.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := ledgersqlite.FileSchemaVersion(ctx, db)
	want, _ := ledgersqlite.LatestSchema()
	if err != nil || v != want {
		t.Fatalf("ledger schema in wallet.db: %d %v, want %d", v, err, want)
	}
	// Reopened, the money is still there.
	s2, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	l2, err := s2.OpenLedger(ledgersqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := l2.Balance(ctx, "wallet:1"); err != nil || b.Posted != 3_00 {
		t.Fatalf("balance after reopening %+v %v", b, err)
	}
	ledgertest.RequireOK(t, l2)
}

// Concurrent payments from one balance, two per code
// (storetest.RunConcurrentPayments).
func TestConcurrentPayments(t *testing.T) {
	s, l, _ := openWithLedger(t)
	storetest.RunConcurrentPayments(t, []storetest.PaymentStore{s}, []ledger.Store{l})
}
