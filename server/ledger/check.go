package ledger

import (
	"bytes"
	"fmt"
)

// maxProblems bounds the report on a badly damaged ledger.
const maxProblems = 100

// Checker holds the invariants that a Store's Check verifies, over plain
// values: the store runs its own queries and feeds each row to the method
// for it, and the findings go to Report.Problems. The zero value needs
// Report set.
type Checker struct {
	Report *Report

	// the transfer whose postings Posting is folding
	cur     Transfer
	curID   int64
	curHash []byte
}

// Problemf records one violated invariant; past maxProblems the rest are
// summed up in one line.
func (c *Checker) Problemf(format string, args ...any) {
	r := c.Report
	if len(r.Problems) == maxProblems {
		r.Problems = append(r.Problems, "... more problems not listed")
	}
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Sum checks Report.Sum, the sum of all postings, once the store has
// filled it in.
func (c *Checker) Sum() {
	if c.Report.Sum != 0 {
		c.Problemf("all postings sum to %d, not 0", c.Report.Sum)
	}
}

// Transfer checks one transfer's number of legs and their sum.
func (c *Checker) Transfer(id int64, key string, legs, sum int64) {
	if legs < 2 {
		c.Problemf("transfer %d %q has %d legs", id, key, legs)
	}
	if sum != 0 {
		c.Problemf("transfer %d %q sums to %d", id, key, sum)
	}
}

// Posting takes one posting with its transfer's columns, in transfer and
// leg order, and checks each transfer's recorded content hash against its
// postings once they are all in. A posting edited so that sums still hold
// (two legs swapped between accounts) no longer matches. Call
// PostingsDone after the last row.
func (c *Checker) Posting(id int64, key, kind string, hash []byte, account string, amount int64) {
	if id != c.curID {
		c.PostingsDone()
		c.curID, c.curHash = id, hash
		c.cur = Transfer{Key: key, Kind: kind, Postings: c.cur.Postings[:0]}
	}
	c.cur.Postings = append(c.cur.Postings, Posting{Account: AccountID(account), Amount: amount})
}

// PostingsDone checks the last transfer that Posting was given.
func (c *Checker) PostingsDone() {
	if c.curID != 0 && len(c.cur.Postings) > 0 {
		if h := c.cur.ContentHash(); !bytes.Equal(h[:], c.curHash) {
			c.Problemf("transfer %d %q: postings do not match the content recorded when it was applied", c.curID, c.cur.Key)
		}
	}
}

// Account checks one account's stored row (constrained flag, balance,
// held) against what its postings and active holds add up to.
func (c *Checker) Account(id string, constrained bool, balance, held, posted, holding int64) {
	a := AccountID(id)
	if constrained != a.Constrained() {
		c.Problemf("account %s stored as constrained=%v", id, constrained)
	}
	if balance != posted {
		c.Problemf("account %s: stored balance %d, postings sum to %d", id, balance, posted)
	}
	if held != holding {
		c.Problemf("account %s: stored held %d, active holds sum to %d", id, held, holding)
	}
	if a.Constrained() {
		if balance < 0 || posted < 0 {
			c.Problemf("account %s is negative: balance %d, postings %d", id, balance, posted)
		}
		if holding > posted {
			c.Problemf("account %s: active holds %d exceed balance %d", id, holding, posted)
		}
	}
}

// BadHold records a hold that the store's query found inconsistent (bad
// state or amounts, or a capture transfer that does not move what was
// captured). transfer and moved are shown as given: the store's nullable
// values.
func (c *Checker) BadHold(key, account string, amount int64, state HoldState, captured int64, transfer, moved any) {
	c.Problemf("hold %q on %s: amount %d, state %s, captured %d, capture transfer %v moving %v",
		key, account, amount, state, captured, transfer, moved)
}
