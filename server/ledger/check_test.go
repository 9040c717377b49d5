package ledger

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestChecker(t *testing.T) {
	good := Transfer{Key: "k1", Kind: "payment", Postings: []Posting{{"wallet:1", -5}, {"merchant:M", 5}}}
	goodHash := good.ContentHash()
	tests := []struct {
		name string
		feed func(c *Checker)
		want string // substring of the only problem; "" for none
	}{
		{"clean", func(c *Checker) {
			c.Sum()
			c.Transfer(1, "k1", 2, 0)
			c.Posting(1, "k1", "payment", goodHash[:], "wallet:1", -5)
			c.Posting(1, "k1", "payment", goodHash[:], "merchant:M", 5)
			c.PostingsDone()
			c.Account("wallet:1", true, 10, 4, 10, 4)
			c.Account("bank:CCB", false, -10, 0, -10, 0)
		}, ""},
		{"sum", func(c *Checker) { c.Report.Sum = 3; c.Sum() }, "all postings sum to 3, not 0"},
		{"one leg", func(c *Checker) { c.Transfer(7, "k", 1, 0) }, `transfer 7 "k" has 1 legs`},
		{"unbalanced", func(c *Checker) { c.Transfer(7, "k", 2, 9) }, `transfer 7 "k" sums to 9`},
		{"swapped legs", func(c *Checker) {
			c.Posting(1, "k1", "payment", goodHash[:], "wallet:2", -5)
			c.Posting(1, "k1", "payment", goodHash[:], "merchant:M", 5)
			c.PostingsDone()
		}, `transfer 1 "k1": postings do not match`},
		{"flag", func(c *Checker) { c.Account("wallet:1", false, 0, 0, 0, 0) }, "stored as constrained=false"},
		{"balance", func(c *Checker) { c.Account("bank:X", false, 1, 0, 2, 0) }, "stored balance 1, postings sum to 2"},
		{"held", func(c *Checker) { c.Account("wallet:1", true, 5, 1, 5, 2) }, "stored held 1, active holds sum to 2"},
		{"negative", func(c *Checker) {
			c.Account("wallet:1", true, -1, 0, -1, 0)
			c.Report.Problems = c.Report.Problems[:1] // holds of 0 then exceed it too
		}, "is negative"},
		{"over-held", func(c *Checker) { c.Account("wallet:1", true, 1, 2, 1, 2) }, "active holds 2 exceed balance 1"},
		{"hold", func(c *Checker) { c.BadHold("h", "wallet:1", 5, HoldCaptured, 6, int64(3), "none") },
			`hold "h" on wallet:1: amount 5, state captured, captured 6, capture transfer 3 moving none`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r Report
			tc.feed(&Checker{Report: &r})
			switch {
			case tc.want == "" && len(r.Problems) != 0:
				t.Fatalf("problems %q, want none", r.Problems)
			case tc.want != "" && (len(r.Problems) != 1 || !strings.Contains(r.Problems[0], tc.want)):
				t.Fatalf("problems %q, want one with %q", r.Problems, tc.want)
			}
		})
	}
}

func TestCheckerBoundsProblems(t *testing.T) {
	var r Report
	c := Checker{Report: &r}
	for i := range 2 * maxProblems {
		c.Problemf("problem %d", i)
	}
	if len(r.Problems) != maxProblems+1 || r.Problems[maxProblems] != "... more problems not listed" {
		t.Fatalf("%d problems, last %q", len(r.Problems), r.Problems[len(r.Problems)-1])
	}
}

func TestMigrations(t *testing.T) {
	tests := []struct {
		files []string
		want  string // listing, or error text
	}{
		{nil, "[]"},
		{[]string{"0001_init.sql", "0002_more.sql"}, "[{1 m/0001_init.sql} {2 m/0002_more.sql}]"},
		{[]string{"0003_late.sql"}, "[{3 m/0003_late.sql}]"},
		{[]string{"0001_init.sql", "0003_gap.sql"}, "[{1 m/0001_init.sql} {3 m/0003_gap.sql}]"},
		{[]string{"0001_init.sql", "0001_again.sql"}, "migration 0001_init.sql: version 1 does not follow 1"},
		{[]string{"init.sql"}, "migration init.sql: name must be NNNN_what.sql"},
		{[]string{"0000_zero.sql"}, "migration 0000_zero.sql: name must be NNNN_what.sql"},
	}
	for _, tc := range tests {
		fsys := fstest.MapFS{"m/README": {}}
		for _, f := range tc.files {
			fsys["m/"+f] = &fstest.MapFile{}
		}
		list, err := Migrations(fsys, "m/*.sql")
		got := fmt.Sprint(list)
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%q: got %s, want %s", tc.files, got, tc.want)
		}
	}
}

func TestAppendEntryRow(t *testing.T) {
	at := time.Unix(100, 0).UTC()
	var es []Entry
	es = AppendEntryRow(es, 2, "b", "payment", "m", at, "wallet:1", -5)
	es = AppendEntryRow(es, 2, "b", "payment", "m", at, "merchant:M", 5)
	es = AppendEntryRow(es, 1, "a", "topup", "", at, "bank:CCB", -9)
	es = AppendEntryRow(es, 1, "a", "topup", "", at, "wallet:1", 9)
	if len(es) != 2 || es[0].ID != 2 || es[1].ID != 1 || len(es[0].Postings) != 2 || len(es[1].Postings) != 2 {
		t.Fatalf("entries %+v", es)
	}
	e := es[0]
	if e.Transfer.Key != "b" || e.Result.Key != "b" || e.Kind != "payment" || e.Memo != "m" ||
		!e.Transfer.At.Equal(at) || !e.Result.At.Equal(at) || e.Postings[1] != (Posting{"merchant:M", 5}) {
		t.Fatalf("entry %+v", e)
	}
}
