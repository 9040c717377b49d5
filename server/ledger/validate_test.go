package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTransferValidate(t *testing.T) {
	legs := func(amounts ...int64) []Posting {
		var ps []Posting
		for i, a := range amounts {
			ps = append(ps, Posting{Account: AccountID("acct:" + string(rune('a'+i))), Amount: a})
		}
		return ps
	}
	for _, tc := range []struct {
		name string
		t    Transfer
		want error
	}{
		{"ok", Transfer{Key: "k", Postings: legs(-5, 5)}, nil},
		{"three legs", Transfer{Key: "k", Postings: legs(-10, 7, 3)}, nil},
		{"no key", Transfer{Postings: legs(-5, 5)}, ErrInvalid},
		{"long key", Transfer{Key: strings.Repeat("k", MaxKeyLen+1), Postings: legs(-5, 5)}, ErrInvalid},
		{"long memo", Transfer{Key: "k", Memo: strings.Repeat("m", MaxMemoLen+1), Postings: legs(-5, 5)}, ErrInvalid},
		{"one leg", Transfer{Key: "k", Postings: legs(5)}, ErrUnbalanced},
		{"unbalanced", Transfer{Key: "k", Postings: legs(-5, 4)}, ErrUnbalanced},
		{"zero leg", Transfer{Key: "k", Postings: legs(-5, 5, 0)}, ErrInvalid},
		{"too big", Transfer{Key: "k", Postings: legs(-MaxAmount-1, MaxAmount+1)}, ErrInvalid},
		{"max", Transfer{Key: "k", Postings: legs(-MaxAmount, MaxAmount)}, nil},
		{"too many legs", Transfer{Key: "k", Postings: legs(make([]int64, MaxLegs+1)...)}, ErrInvalid},
		{"bad account", Transfer{Key: "k", Postings: []Posting{{"", -1}, {"x", 1}}}, ErrInvalid},
		{"bare wallet", Transfer{Key: "k", Postings: []Posting{{"wallet:", -1}, {"x", 1}}}, ErrInvalid},
		{"control char", Transfer{Key: "k", Postings: []Posting{{"a\nb", -1}, {"x", 1}}}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.t.Validate()
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestHoldValidate(t *testing.T) {
	exp := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		h    Hold
		ok   bool
	}{
		{"ok", Hold{Key: "h", Account: "wallet:1", Amount: 1500, Expires: exp}, true},
		{"no key", Hold{Account: "wallet:1", Amount: 1500, Expires: exp}, false},
		{"merchant", Hold{Key: "h", Account: "merchant:1", Amount: 1500, Expires: exp}, false},
		{"zero", Hold{Key: "h", Account: "wallet:1", Expires: exp}, false},
		{"no expiry", Hold{Key: "h", Account: "wallet:1", Amount: 1}, false},
	} {
		if err := tc.h.Validate(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
}

func TestContentHash(t *testing.T) {
	a := Transfer{Key: "k", Kind: "payment", Memo: "x", At: time.Unix(1, 0),
		Postings: []Posting{{"wallet:1", -5}, {"merchant:M", 5}}}
	b := a
	b.Postings = []Posting{{"merchant:M", 5}, {"wallet:1", -5}}
	b.Memo, b.At = "retried", time.Unix(2, 0)
	if a.ContentHash() != b.ContentHash() {
		t.Fatal("leg order, memo or time changed the hash")
	}
	for _, c := range []Transfer{
		{Kind: "refund", Postings: a.Postings},
		{Kind: "payment", Postings: []Posting{{"wallet:1", -6}, {"merchant:M", 6}}},
		{Kind: "payment", Postings: []Posting{{"wallet:2", -5}, {"merchant:M", 5}}},
		{Kind: "paymentwallet:1", Postings: []Posting{{"", -5}, {"merchant:M", 5}}}, // no ambiguity in the encoding
	} {
		if c.ContentHash() == a.ContentHash() {
			t.Fatalf("%+v hashes like %+v", c, a)
		}
	}
}

func TestConstrained(t *testing.T) {
	for a, want := range map[AccountID]bool{"wallet:1001": true, "wallet:": false, "bank:CCB": false, "fees": false, "walletx:1": false} {
		if a.Constrained() != want {
			t.Errorf("%q.Constrained() = %v", a, !want)
		}
	}
}
