package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	"campuspay/server/ledger/ledgertest"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/wallet"
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

func payment(key string, user uint32, amount int64, now time.Time) (*wallet.Record, ledger.Transfer) {
	r := &wallet.Record{Key: key, Kind: wallet.KindPayment, UserID: user, Terminal: "pos-1", Tx: protocol.TxID(key),
		Merchant: "M001", Amount: amount, Channel: protocol.ChannelBalance, Status: protocol.StatusApproved,
		ReqHash: "h", Created: now, Updated: now}
	t := ledger.Transfer{Key: "pay:" + key, Kind: "payment", At: now,
		Postings: []ledger.Posting{{Account: "wallet:1", Amount: -amount}, {Account: "merchant:M001", Amount: amount}}}
	return r, t
}

// PutPayment writes the code's mark, the transfer and the record in one
// transaction, or none of them: a transfer the balance does not cover, a
// daily limit exceeded or a code owned by another payment leaves no trace.
func TestPutPaymentAllOrNothing(t *testing.T) {
	s, l, path := openWithLedger(t)
	if !s.PaysInto(l) {
		t.Fatal("PaysInto: the store should pay into its own ledger")
	}
	now := time.Unix(1_800_000_000, 0)
	if _, err := l.Post(ctx, ledger.Transfer{Key: "topup", Kind: "topup", At: now,
		Postings: []ledger.Posting{{Account: "bank:CCB", Amount: -10_00}, {Account: "wallet:1", Amount: 10_00}}}); err != nil {
		t.Fatal(err)
	}
	use := func(id string) *wallet.CodeUse {
		return &wallet.CodeUse{ID: id, Expires: now.Add(time.Minute), Now: now}
	}
	day := &wallet.DailyLimit{From: now.Add(-time.Hour), To: now.Add(time.Hour), Max: 9_00}
	absent := func(key, code string) {
		t.Helper()
		if r, err := s.Record(ctx, key); err != nil || r != nil {
			t.Fatalf("record %s: %+v %v, want none", key, r, err)
		}
		if _, _, found, err := l.Lookup(ctx, "pay:"+key); err != nil || found {
			t.Fatalf("transfer of %s: found %v %v, want none", key, found, err)
		}
		// The code is free: another payment takes it.
		probe := &wallet.Record{Key: "probe-" + key, Kind: wallet.KindPayment, Terminal: "pos-1", Tx: "p", Merchant: "M001",
			Status: wallet.StatusProcessing, Created: now, Updated: now}
		if owner, err := s.PutIntent(ctx, probe, use(code), nil); err != nil || owner != probe.Key {
			t.Fatalf("code %s after a refused payment: owner %q %v", code, owner, err)
		}
	}

	// Over the balance: the transfer is refused, the code's mark undone.
	r, tr := payment("a", 1, 11_00, now)
	if _, err := s.PutPayment(ctx, r, use("code-a"), nil, tr); !errors.Is(err, ledger.ErrInsufficient) {
		t.Fatalf("over the balance: %v", err)
	}
	absent("a", "code-a")
	// Its context ended before the writer reached it (the request's
	// deadline): nothing written.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	r, tr = payment("late", 1, 1_00, now)
	if _, err := s.PutPayment(ended, r, use("code-late"), nil, tr); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}
	absent("late", "code-late")
	// Over the daily limit.
	r, tr = payment("b", 1, 9_01, now)
	if _, err := s.PutPayment(ctx, r, use("code-b"), day, tr); !errors.Is(err, protocol.ErrLimitDaily) {
		t.Fatalf("over the daily limit: %v", err)
	}
	absent("b", "code-b")
	// Paid: all three are there.
	r, tr = payment("c", 1, 6_00, now)
	if owner, err := s.PutPayment(ctx, r, use("code-c"), day, tr); err != nil || owner != "c" || r.ID == 0 {
		t.Fatalf("paid: owner %q id %d %v", owner, r.ID, err)
	}
	if got, err := s.Record(ctx, "c"); err != nil || got == nil || got.Status != protocol.StatusApproved {
		t.Fatalf("record: %+v %v", got, err)
	}
	if b, err := l.Balance(ctx, "wallet:1"); err != nil || b.Posted != 4_00 {
		t.Fatalf("balance %+v %v", b, err)
	}
	// The same code on another payment: not written, the owner told.
	r, tr = payment("d", 1, 1_00, now)
	if owner, err := s.PutPayment(ctx, r, use("code-c"), nil, tr); err != nil || owner != "c" {
		t.Fatalf("code used: owner %q %v", owner, err)
	}
	if got, _ := s.Record(ctx, "d"); got != nil {
		t.Fatalf("record of a refused code written: %+v", got)
	}
	if _, _, found, _ := l.Lookup(ctx, "pay:d"); found {
		t.Fatal("transfer of a refused code posted")
	}
	// The daily limit counts the approved payment: 6 + 4 > 9.
	r, tr = payment("e", 1, 4_00, now)
	if _, err := s.PutPayment(ctx, r, use("code-e"), day, tr); !errors.Is(err, protocol.ErrLimitDaily) {
		t.Fatalf("second payment over the day: %v", err)
	}
	ledgertest.RequireOK(t, l)

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
	if b, err := l2.Balance(ctx, "wallet:1"); err != nil || b.Posted != 4_00 {
		t.Fatalf("balance after reopening %+v %v", b, err)
	}
	ledgertest.RequireOK(t, l2)
}
