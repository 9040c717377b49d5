package ledgertest

import (
	"context"
	"strconv"
	"testing"
	"time"

	"campuspay/server/ledger"
)

func testPostValidation(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		tr   ledger.Transfer
		want error
	}{
		{"unbalanced", ledger.Transfer{Key: "u1", Kind: "topup", Postings: []ledger.Posting{leg("bank:CCB", -100), leg("wallet:1", 99)}}, ledger.ErrUnbalanced},
		{"one leg", ledger.Transfer{Key: "u2", Kind: "topup", Postings: []ledger.Posting{leg("wallet:1", 0)}}, ledger.ErrUnbalanced},
		{"no legs", ledger.Transfer{Key: "u3", Kind: "topup"}, ledger.ErrUnbalanced},
		{"zero leg", ledger.Transfer{Key: "u4", Kind: "x", Postings: []ledger.Posting{leg("bank:CCB", -5), leg("wallet:1", 5), leg("fees", 0)}}, ledger.ErrInvalid},
		{"empty key", pay("", "bank:CCB", "wallet:1", 5), ledger.ErrInvalid},
		{"empty account", pay("u5", "bank:CCB", "", 5), ledger.ErrInvalid},
		{"huge amount", pay("u6", "bank:CCB", "wallet:1", ledger.MaxAmount+1), ledger.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Post(ctx, tc.tr)
			wantErr(t, "post", err, tc.want)
			if tc.tr.Key != "" {
				if _, _, found, err := s.Lookup(ctx, tc.tr.Key); err != nil || found {
					t.Fatalf("refused transfer stored: found=%v err=%v", found, err)
				}
			}
		})
	}
	wantBalance(t, s, "wallet:1", 0, 0)
	wantBalance(t, s, "bank:CCB", 0, 0)
}

func testPostBalanced(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	tr := ledger.Transfer{
		Key:  "t1",
		Kind: "payment",
		Postings: []ledger.Posting{ // three legs: the merchant pays a fee
			{Account: "bank:CCB", Amount: -1000},
			{Account: "merchant:M001", Amount: 990},
			{Account: "fees", Amount: 10},
		},
		Memo: "canteen window 3",
		At:   T0,
	}
	r1, err := s.Post(ctx, tr)
	if err != nil {
		t.Fatal(err)
	}
	if r1.ID <= 0 || r1.Key != "t1" || r1.Duplicate || !r1.At.Equal(T0) {
		t.Fatalf("result %+v", r1)
	}
	r2, err := s.Post(ctx, pay("t2", "merchant:M001", "wallet:7", 300))
	if err != nil {
		t.Fatal(err)
	}
	if r2.ID <= r1.ID {
		t.Fatalf("IDs do not increase: %d then %d", r1.ID, r2.ID)
	}
	wantBalance(t, s, "bank:CCB", -1000, 0) // unconstrained: may go negative
	wantBalance(t, s, "merchant:M001", 690, 0)
	wantBalance(t, s, "fees", 10, 0)
	wantBalance(t, s, "wallet:7", 300, 0)
	wantBalance(t, s, "wallet:never", 0, 0)

	got, r, found, err := s.Lookup(ctx, "t1")
	if err != nil || !found {
		t.Fatalf("lookup: found=%v err=%v", found, err)
	}
	if r.ID != r1.ID || r.Key != "t1" || r.Duplicate || !r.At.Equal(T0) {
		t.Fatalf("lookup result %+v", r)
	}
	if got.Key != tr.Key || got.Kind != tr.Kind || got.Memo != tr.Memo || !got.At.Equal(tr.At) || len(got.Postings) != 3 {
		t.Fatalf("lookup transfer %+v, want %+v", got, tr)
	}
	for i := range tr.Postings {
		if got.Postings[i] != tr.Postings[i] {
			t.Fatalf("leg %d = %+v, want %+v (order kept)", i, got.Postings[i], tr.Postings[i])
		}
	}
	if _, _, found, err := s.Lookup(ctx, "nope"); err != nil || found {
		t.Fatalf("lookup missing: found=%v err=%v", found, err)
	}
}

func testIdempotent(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	fund(t, s, "wallet:1", 1000)
	first, err := s.Post(ctx, pay("p1", "wallet:1", "merchant:M", 400))
	if err != nil {
		t.Fatal(err)
	}
	// The same payment retried: the same legs in another order, a later
	// time and another memo are still the same payment.
	retry := pay("p1", "wallet:1", "merchant:M", 400)
	retry.Postings[0], retry.Postings[1] = retry.Postings[1], retry.Postings[0]
	retry.At = T0.Add(time.Minute)
	retry.Memo = "retried"
	for i := range 3 {
		r, err := s.Post(ctx, retry)
		if err != nil {
			t.Fatalf("repeat %d: %v", i, err)
		}
		if !r.Duplicate || r.ID != first.ID || r.Key != "p1" || !r.At.Equal(T0) {
			t.Fatalf("repeat %d: %+v, want duplicate of %+v", i, r, first)
		}
	}
	wantBalance(t, s, "wallet:1", 600, 0)
	wantBalance(t, s, "merchant:M", 400, 0)
	got, _, _, _ := s.Lookup(ctx, "p1")
	if got.Memo != "test p1" {
		t.Fatalf("memo overwritten by a retry: %q", got.Memo)
	}
}

func testKeyConflict(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	fund(t, s, "wallet:1", 1000)
	if _, err := s.Post(ctx, pay("k1", "wallet:1", "merchant:M", 100)); err != nil {
		t.Fatal(err)
	}
	otherKind := pay("k1", "wallet:1", "merchant:M", 100)
	otherKind.Kind = "refund"
	for _, tc := range []struct {
		name string
		tr   ledger.Transfer
	}{
		{"amount", pay("k1", "wallet:1", "merchant:M", 101)},
		{"account", pay("k1", "wallet:1", "merchant:N", 100)},
		{"direction", pay("k1", "merchant:M", "wallet:1", 100)},
		{"kind", otherKind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Post(ctx, tc.tr)
			wantErr(t, "post", err, ledger.ErrKeyConflict)
		})
	}
	wantBalance(t, s, "wallet:1", 900, 0)
	wantBalance(t, s, "merchant:M", 100, 0)
	wantBalance(t, s, "merchant:N", 0, 0)
}

func testInsufficient(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	fund(t, s, "wallet:1", 500)
	for _, tc := range []struct {
		name string
		tr   ledger.Transfer
	}{
		{"over balance", pay("i1", "wallet:1", "merchant:M", 501)},
		{"empty wallet", pay("i2", "wallet:2", "merchant:M", 1)},
		{"wallet to wallet", pay("i3", "wallet:1", "wallet:2", 600)},
		{"same wallet twice", ledger.Transfer{Key: "i4", Kind: "payment", Postings: []ledger.Posting{
			leg("wallet:1", -300), leg("wallet:1", -300), leg("merchant:M", 600)}}},
		// The first wallet covers its part, the second does not: nothing
		// of the first's debit stays.
		{"second wallet short", ledger.Transfer{Key: "i6", Kind: "payment", Postings: []ledger.Posting{
			leg("wallet:1", -100), leg("wallet:2", -1), leg("merchant:M", 101)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Post(ctx, tc.tr)
			wantErr(t, "post", err, ledger.ErrInsufficient)
			if _, _, found, _ := s.Lookup(ctx, tc.tr.Key); found {
				t.Fatal("refused transfer was stored")
			}
		})
	}
	wantBalance(t, s, "wallet:1", 500, 0)
	wantBalance(t, s, "wallet:2", 0, 0)
	wantBalance(t, s, "merchant:M", 0, 0)

	// A refusal does not use up the key: after a top-up it goes through.
	fund(t, s, "wallet:1", 1)
	if _, err := s.Post(ctx, pay("i1", "wallet:1", "merchant:M", 501)); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, s, "wallet:1", 0, 0)
	// Exactly the balance is allowed; a wallet with net gain never fails.
	if _, err := s.Post(ctx, ledger.Transfer{Key: "i5", Kind: "refund", Postings: []ledger.Posting{
		leg("wallet:1", 5), leg("merchant:M", -5)}}); err != nil {
		t.Fatal(err)
	}
}

func testCancelled(t *testing.T, s ledger.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Post(ctx, pay("c1", "bank:CCB", "wallet:1", 100)); err == nil {
		t.Fatal("post with a cancelled context succeeded")
	}
	if _, _, found, _ := s.Lookup(context.Background(), "c1"); found {
		t.Fatal("post with a cancelled context was applied")
	}
	wantBalance(t, s, "wallet:1", 0, 0)
}

func testPaging(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	const n = 25
	fund(t, s, "wallet:1", 10_000)
	for i := range n {
		if _, err := s.Post(ctx, pay(keyf("pg", i), "wallet:1", "merchant:M", int64(i+1))); err != nil {
			t.Fatal(err)
		}
		// Unrelated traffic interleaved must not show up.
		if _, err := s.Post(ctx, pay(keyf("other", i), "bank:CCB", "wallet:2", 1)); err != nil {
			t.Fatal(err)
		}
	}
	var all []ledger.Entry
	before := int64(0)
	for page := 0; ; page++ {
		es, err := s.Transfers(ctx, "merchant:M", before, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		if len(es) > 10 || page > 3 {
			t.Fatalf("page %d has %d entries", page, len(es))
		}
		all = append(all, es...)
		before = es[len(es)-1].Result.ID
	}
	if len(all) != n {
		t.Fatalf("listed %d transfers, want %d", len(all), n)
	}
	for i, e := range all {
		want := pay(keyf("pg", n-1-i), "wallet:1", "merchant:M", int64(n-i))
		if e.Transfer.Key != want.Key || e.Result.Key != want.Key || e.Kind != "payment" || len(e.Postings) != 2 ||
			e.Postings[0] != want.Postings[0] || e.Postings[1] != want.Postings[1] || e.Duplicate {
			t.Fatalf("entry %d = %+v, want %+v", i, e, want)
		}
		if i > 0 && e.ID >= all[i-1].ID {
			t.Fatalf("not newest first: %d after %d", e.ID, all[i-1].ID)
		}
	}
	// The wallet sees its top-up too, last.
	es, err := s.Transfers(ctx, "wallet:1", 0, 100)
	if err != nil || len(es) != n+1 || es[n].Kind != "topup" {
		t.Fatalf("wallet listing: %d entries, err %v", len(es), err)
	}
	if es, err := s.Transfers(ctx, "wallet:none", 0, 10); err != nil || len(es) != 0 {
		t.Fatalf("empty account listing: %v %v", es, err)
	}
	if _, err := s.Transfers(ctx, "merchant:M", 0, 0); err == nil {
		t.Fatal("limit 0 accepted")
	}
}

func keyf(prefix string, i int) string { return prefix + "-" + strconv.Itoa(i) }

func leg(a ledger.AccountID, amount int64) ledger.Posting {
	return ledger.Posting{Account: a, Amount: amount}
}
