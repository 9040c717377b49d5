package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	"campuspay/server/ledger/ledgertest"
	"campuspay/server/wallet"
)

// PaymentStore is a Store that pays into a ledger in its own database
// (wallet.PaymentStore).
type PaymentStore interface {
	Store
	wallet.PaymentStore
}

// payment is a balance payment of amount by user 1 at merchant M001 and
// its transfer, as the wallet makes them.
func payment(key string, amount int64, now time.Time) (*wallet.Record, ledger.Transfer) {
	r := &wallet.Record{Key: key, Kind: wallet.KindPayment, UserID: 1, Terminal: "pos-1", Tx: protocol.TxID(key),
		Merchant: "M001", Amount: amount, Channel: protocol.ChannelBalance, Status: protocol.StatusApproved,
		ReqHash: "h", Created: now, Updated: now}
	t := ledger.Transfer{Key: "pay:" + key, Kind: "payment", At: now,
		Postings: []ledger.Posting{{Account: "wallet:1", Amount: -amount}, {Account: "merchant:M001", Amount: amount}}}
	return r, t
}

// RunPayment checks PutPayment of s, which pays into l, on a fresh
// database: the code's mark, the transfer and the record are written in
// one transaction, or none of them — a transfer the balance does not
// cover, a daily limit exceeded, a request past its deadline or a code
// owned by another payment leaves no trace.
func RunPayment(t *testing.T, s PaymentStore, l ledger.Store) {
	ctx := context.Background()
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
	// A refused payment never gets as far as its answer.
	refused := func(after int64) { t.Errorf("answer called (balance %d) for a refused payment", after) }
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
	r, tr := payment("a", 11_00, now)
	if _, err := s.PutPayment(ctx, r, use("code-a"), nil, nil, tr, refused); !errors.Is(err, ledger.ErrInsufficient) {
		t.Fatalf("over the balance: %v", err)
	}
	absent("a", "code-a")
	// Its context ended before the writer reached it (the request's
	// deadline): nothing written.
	ended, cancel := context.WithCancel(ctx)
	cancel()
	r, tr = payment("late", 1_00, now)
	if _, err := s.PutPayment(ended, r, use("code-late"), nil, nil, tr, refused); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}
	absent("late", "code-late")
	// Decided on a student changed since (another version): nothing
	// written; at the version read, paid (below, "c").
	student := &wallet.User{StudentNo: "payer", Name: "付款人", State: wallet.StateActive, LimitPerTx: 100_00, LimitDaily: 100_00}
	if _, err := s.UpsertRosterUser(ctx, student); err != nil {
		t.Fatal(err)
	}
	if got, err := s.User(ctx, student.ID); err != nil {
		t.Fatal(err)
	} else {
		student = got
	}
	r, tr = payment("stale", 1_00, now)
	stale := &wallet.PayerCheck{UserID: student.ID, Version: student.Version + 1}
	if _, err := s.PutPayment(ctx, r, use("code-stale"), day, stale, tr, refused); !errors.Is(err, wallet.ErrPayerChanged) {
		t.Fatalf("student changed: %v", err)
	}
	absent("stale", "code-stale")
	gone := &wallet.PayerCheck{UserID: student.ID + 1000, Version: 0}
	if _, err := s.PutPayment(ctx, r, use("code-stale2"), day, gone, tr, refused); !errors.Is(err, wallet.ErrPayerChanged) {
		t.Fatalf("no such student: %v", err)
	}
	absent("stale", "code-stale2")
	// Over the daily limit.
	r, tr = payment("b", 9_01, now)
	if _, err := s.PutPayment(ctx, r, use("code-b"), day, nil, tr, refused); !errors.Is(err, protocol.ErrLimitDaily) {
		t.Fatalf("over the daily limit: %v", err)
	}
	absent("b", "code-b")
	// Paid: all three are there, and the record as answer made it, with
	// the balance the payment left available (a shower's hold of 1 is not).
	if _, err := l.PlaceHold(ctx, ledger.Hold{Key: "shower", Account: "wallet:1", Amount: 1_00, Expires: now.Add(time.Hour), At: now}); err != nil {
		t.Fatal(err)
	}
	r, tr = payment("c", 6_00, now)
	answers := 0
	owner, err := s.PutPayment(ctx, r, use("code-c"), day, &wallet.PayerCheck{UserID: student.ID, Version: student.Version}, tr, func(after int64) {
		answers++
		r.Response = []byte(fmt.Sprintf(`{"balance":%d}`, after))
	})
	if err != nil || owner != "c" || r.ID == 0 || answers != 1 {
		t.Fatalf("paid: owner %q id %d, %d answers, %v", owner, r.ID, answers, err)
	}
	if got, err := s.Record(ctx, "c"); err != nil || got == nil || got.Status != protocol.StatusApproved || got.Amount != 6_00 ||
		string(got.Response) != `{"balance":300}` {
		t.Fatalf("record: %+v %v", got, err)
	}
	if b, err := l.Balance(ctx, "wallet:1"); err != nil || b.Posted != 4_00 {
		t.Fatalf("balance %+v %v", b, err)
	}
	// The same code on another payment: not written, the owner told.
	r, tr = payment("d", 1_00, now)
	if owner, err := s.PutPayment(ctx, r, use("code-c"), nil, nil, tr, refused); err != nil || owner != "c" {
		t.Fatalf("code used: owner %q %v", owner, err)
	}
	if got, _ := s.Record(ctx, "d"); got != nil {
		t.Fatalf("record of a refused code written: %+v", got)
	}
	if _, _, found, _ := l.Lookup(ctx, "pay:d"); found {
		t.Fatal("transfer of a refused code posted")
	}
	// The daily limit counts the approved payment: 6 + 4 > 9.
	r, tr = payment("e", 4_00, now)
	if _, err := s.PutPayment(ctx, r, use("code-e"), day, nil, tr, refused); !errors.Is(err, protocol.ErrLimitDaily) {
		t.Fatalf("second payment over the day: %v", err)
	}
	// Its transfer posted before without a record (never approved on:
	// nothing would move): refused, and its code is free again.
	if _, err := l.Post(ctx, ledger.Transfer{Key: "pay:f", Kind: "payment", At: now,
		Postings: []ledger.Posting{{Account: "wallet:1", Amount: -1_00}, {Account: "merchant:M001", Amount: 1_00}}}); err != nil {
		t.Fatal(err)
	}
	r, tr = payment("f", 1_00, now)
	if _, err := s.PutPayment(ctx, r, use("code-f"), nil, nil, tr, refused); err == nil {
		t.Fatal("a payment whose transfer was posted before was written")
	}
	if got, _ := s.Record(ctx, "f"); got != nil {
		t.Fatalf("record of a payment posted before written: %+v", got)
	}
	absentCode := &wallet.Record{Key: "probe-f", Kind: wallet.KindPayment, Terminal: "pos-1", Tx: "p", Merchant: "M001",
		Status: wallet.StatusProcessing, Created: now, Updated: now}
	if owner, err := s.PutIntent(ctx, absentCode, use("code-f"), nil); err != nil || owner != absentCode.Key {
		t.Fatalf("code of a payment posted before: owner %q %v", owner, err)
	}
	if b, err := l.Balance(ctx, "wallet:1"); err != nil || b.Posted != 3_00 { // 10 − 6 − the 1 posted before
		t.Fatalf("balance %+v %v", b, err)
	}
	// A key recorded already (a retry not looked up first) is never
	// written over: wallet.ErrRecordExists and no trace, whether its
	// transfer was posted (c: approved), posted under another content, or
	// not (g: a refusal's record).
	r, tr = payment("c", 6_00, now)
	if _, err := s.PutPayment(ctx, r, use("code-c"), nil, nil, tr, refused); !errors.Is(err, wallet.ErrRecordExists) {
		t.Fatalf("approved key again: %v", err)
	}
	r, tr = payment("c", 7_00, now)
	if _, err := s.PutPayment(ctx, r, use("code-c2"), nil, nil, tr, refused); !errors.Is(err, wallet.ErrRecordExists) {
		t.Fatalf("approved key again, another amount: %v", err)
	}
	g, _ := payment("g", 1_00, now)
	g.Status, g.Code = protocol.StatusDeclined, protocol.ErrLimitDaily.Code
	if err := s.PutRecord(ctx, g); err != nil {
		t.Fatal(err)
	}
	r, tr = payment("g", 1_00, now)
	// Found by the record's write, after the transfer: answer may have
	// been called (the caller answers from the record found instead).
	if _, err := s.PutPayment(ctx, r, use("code-g"), nil, nil, tr, nil); !errors.Is(err, wallet.ErrRecordExists) {
		t.Fatalf("declined key again: %v", err)
	}
	if _, _, found, _ := l.Lookup(ctx, "pay:g"); found {
		t.Fatal("transfer of a key recorded declined posted")
	}
	if got, err := s.Record(ctx, "g"); err != nil || got == nil || got.Status != protocol.StatusDeclined {
		t.Fatalf("declined record written over: %+v %v", got, err)
	}
	if got, err := s.Record(ctx, "c"); err != nil || got == nil || got.Amount != 6_00 || got.Status != protocol.StatusApproved {
		t.Fatalf("approved record written over: %+v %v", got, err)
	}
	for _, code := range []string{"code-c2", "code-g"} {
		probe := &wallet.Record{Key: "probe-" + code, Kind: wallet.KindPayment, Terminal: "pos-1", Tx: "p", Merchant: "M001",
			Status: wallet.StatusProcessing, Created: now, Updated: now}
		if owner, err := s.PutIntent(ctx, probe, use(code), nil); err != nil || owner != probe.Key {
			t.Fatalf("code %s after a key recorded already: owner %q %v", code, owner, err)
		}
	}
	if b, err := l.Balance(ctx, "wallet:1"); err != nil || b.Posted != 3_00 {
		t.Fatalf("balance %+v %v", b, err)
	}
	ledgertest.RequireOK(t, l)
}

// RunConcurrentPayments pays from one balance through several stores at
// once (authorizer processes on one database when len(stores) > 1; each
// stores[i] pays into ledgers[i]): payments each with its own code, and
// every code tried by two payments. Exactly one payment owns each code;
// approved payments never take the balance below zero and are exactly the
// records and transfers written; the ledger checks.
func RunConcurrentPayments(t *testing.T, stores []PaymentStore, ledgers []ledger.Store) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	const balance, amount, codes = 50_00, 1_00, 80 // 80 codes, 160 payments, room for 50
	if _, err := ledgers[0].Post(ctx, ledger.Transfer{Key: "topup", Kind: "topup", At: now,
		Postings: []ledger.Posting{{Account: "bank:CCB", Amount: -balance}, {Account: "wallet:1", Amount: balance}}}); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		key, owner string
		err        error
	}
	out := make(chan outcome, 2*codes)
	var wg sync.WaitGroup
	for i := range 2 * codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[i%len(stores)]
			key := fmt.Sprintf("p%03d", i)
			r, tr := payment(key, amount, now)
			c := &wallet.CodeUse{ID: fmt.Sprintf("code-%03d", i/2), Expires: now.Add(time.Minute), Now: now}
			owner, err := s.PutPayment(ctx, r, c, nil, nil, tr, nil)
			out <- outcome{key, owner, err}
		}()
	}
	wg.Wait()
	close(out)
	approved := 0
	owners := map[string]string{} // code → owning payment
	for o := range out {
		switch {
		case o.err == nil && o.owner == o.key:
			approved++
			i := 0
			fmt.Sscanf(o.key, "p%03d", &i)
			code := fmt.Sprintf("code-%03d", i/2)
			if prev, ok := owners[code]; ok {
				t.Errorf("code %s paid twice: %s and %s", code, prev, o.key)
			}
			owners[code] = o.key
		case o.err == nil: // the code is the other payment's
			i := 0
			fmt.Sscanf(o.key, "p%03d", &i)
			if sibling := fmt.Sprintf("p%03d", i^1); o.owner != sibling {
				t.Errorf("payment %s: code owned by %q, want %s or its sibling %s", o.key, o.owner, o.key, sibling)
			}
		case errors.Is(o.err, ledger.ErrInsufficient):
		default:
			t.Errorf("payment %s: %v", o.key, o.err)
		}
	}
	if approved != balance/amount {
		t.Errorf("%d payments approved, want %d (the balance, every code used at most once)", approved, balance/amount)
	}
	for i := range 2 * codes {
		key := fmt.Sprintf("p%03d", i)
		rec, err := stores[0].Record(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		_, _, posted, err := ledgers[0].Lookup(ctx, "pay:"+key)
		if err != nil {
			t.Fatal(err)
		}
		if paid := owners[fmt.Sprintf("code-%03d", i/2)] == key; (rec != nil) != paid || posted != paid {
			t.Errorf("payment %s: approved %v, record %v, transfer %v", key, paid, rec != nil, posted)
		}
	}
	if b, err := ledgers[0].Balance(ctx, "wallet:1"); err != nil || b.Posted != balance-int64(approved)*amount || b.Posted < 0 {
		t.Errorf("balance %+v %v after %d payments", b, err, approved)
	}
	for _, l := range ledgers {
		ledgertest.RequireOK(t, l)
	}
}
