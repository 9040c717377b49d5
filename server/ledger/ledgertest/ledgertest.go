// Package ledgertest is the conformance suite every ledger.Store must pass,
// and a helper for other packages' tests that move money.
//
//	func TestConformance(t *testing.T) {
//		ledgertest.Run(t, func(t *testing.T) ledger.Store { ... a fresh, empty store, closed by t.Cleanup ... })
//	}
//
// Tests that move money through a store end with ledgertest.RequireOK(t, s).
// Times are fixed (no clock is read) and randomness is seeded and logged.
package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"campuspay/server/ledger"
)

// T0 is the business time the suite starts from.
var T0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

// RequireOK fails t with every problem Check finds in s.
func RequireOK(t testing.TB, s ledger.Store) {
	t.Helper()
	r, err := s.Check(context.Background())
	if err != nil {
		t.Fatalf("ledger check: %v", err)
	}
	if !r.OK() {
		t.Fatalf("ledger check failed (sum %d over %d postings):\n%s", r.Sum, r.Postings, joinLines(r.Problems))
	}
}

func joinLines(ss []string) string {
	out := ""
	for _, s := range ss {
		out += "  " + s + "\n"
	}
	return out
}

// Run runs the conformance suite. newStore must return a fresh, empty store
// and arrange for it to be closed when t ends (t.Cleanup).
func Run(t *testing.T, newStore func(t *testing.T) ledger.Store) {
	open := func(t *testing.T) ledger.Store {
		s := newStore(t)
		t.Cleanup(func() { RequireOK(t, s) }) // runs before newStore's Close
		return s
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s ledger.Store)
	}{
		{"PostValidation", testPostValidation},
		{"PostBalanced", testPostBalanced},
		{"Idempotent", testIdempotent},
		{"KeyConflict", testKeyConflict},
		{"Insufficient", testInsufficient},
		{"CancelledContext", testCancelled},
		{"Holds", testHolds},
		{"HoldLimitsAvailable", testHoldLimitsAvailable},
		{"ExpireHolds", testExpire},
		{"TransfersPaging", testPaging},
		{"Model", testModel},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"ConcurrentPayments", testConcurrentPayments},
		{"ConcurrentHoldsAndPayments", testConcurrentHolds},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

// pay is a two-leg transfer from → to.
func pay(key string, from, to ledger.AccountID, amount int64) ledger.Transfer {
	return ledger.Transfer{
		Key:      key,
		Kind:     "payment",
		Postings: []ledger.Posting{{Account: from, Amount: -amount}, {Account: to, Amount: amount}},
		Memo:     "test " + key,
		At:       T0,
	}
}

var fundSeq atomic.Int64 // numbers top-up keys

// fund tops a wallet up from the bank clearing account (a new key each
// time, so funding twice adds twice).
func fund(t testing.TB, s ledger.Store, w ledger.AccountID, amount int64) {
	t.Helper()
	tr := pay(fmt.Sprintf("fund-%d", fundSeq.Add(1)), "bank:CCB", w, amount)
	tr.Kind = "topup"
	if _, err := s.Post(context.Background(), tr); err != nil {
		t.Fatalf("fund %s with %d: %v", w, amount, err)
	}
}

// wantBalance checks an account's posted and held amounts.
func wantBalance(t testing.TB, s ledger.Store, a ledger.AccountID, posted, held int64) {
	t.Helper()
	b, err := s.Balance(context.Background(), a)
	if err != nil {
		t.Fatalf("balance %s: %v", a, err)
	}
	want := ledger.Balance{Account: a, Posted: posted, Held: held, Available: posted - held}
	if b != want {
		t.Fatalf("balance %s = %+v, want %+v", a, b, want)
	}
}

func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if want == nil && err != nil {
		t.Fatalf("%s: unexpected error %v", what, err)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}
