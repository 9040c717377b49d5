package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// Concurrent writes (group-committed together) still see each other: one
// owner per code, unique increasing cursors, and a failing write does not
// take the others down.
func testConcurrent(t *testing.T, f Factory) {
	s, _ := open(t, f)
	concurrentWrites(t, []Store{s})
}

// Writers in several Stores on one database, as several authorizers.
func testSharedCodes(t *testing.T, f Factory) {
	s, again := open(t, f)
	concurrentWrites(t, []Store{s, again(t), again(t)})
}

func concurrentWrites(t *testing.T, stores []Store) {
	const n = 48
	owners := make([]string, n)
	seqs := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := stores[i%len(stores)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprint("T:owner-", i)
			var err error
			owners[i], err = s.PutIntent(ctx, &wallet.Record{Key: key, Kind: wallet.KindPayment, Status: wallet.StatusProcessing,
				Created: t0, Updated: t0}, &wallet.CodeUse{ID: "same-code", Expires: t0.Add(time.Minute), Now: t0}, nil)
			if err != nil {
				t.Error(err)
			}
			r := &wallet.Record{Key: fmt.Sprint("Q:", i), Kind: wallet.KindScanPay, Terminal: "pos-1", Amount: 1, Status: protocol.StatusApproved,
				Created: t0, Updated: t0}
			if err := s.PutRecord(ctx, r); err != nil {
				t.Error(err)
			}
			seqs[i] = r.QRSeq
			// A write that fails (no such merchant) fails alone.
			errs[i] = s.PutTerminal(ctx, &wallet.Terminal{ID: fmt.Sprint("t", i), Merchant: "nobody", Mode: protocol.ModePOS})
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i := range n {
		if owners[i] != owners[0] || owners[0] == "" {
			t.Fatalf("code owners differ: %q %q", owners[0], owners[i])
		}
		if seqs[i] < 1 || seqs[i] > n || seen[seqs[i]] {
			t.Fatalf("cursor %d repeated or out of range", seqs[i])
		}
		seen[seqs[i]] = true
		if errs[i] == nil {
			t.Fatal("a terminal of an unknown merchant was stored")
		}
	}
	// Exactly the owner's record was written.
	for i := range n {
		key := fmt.Sprint("T:owner-", i)
		r, err := stores[0].Record(ctx, key)
		if err != nil || (r != nil) != (key == owners[0]) {
			t.Fatalf("record %s (owner %s): %+v %v", key, owners[0], r, err)
		}
	}
	if ps, err := stores[0].ScanPays(ctx, "pos-1", 0); err != nil || len(ps) != n {
		t.Fatalf("scan pays %d %v", len(ps), err)
	}
}

// Counters and first-writer-wins records across Stores: every bump
// counts, one roster import of a student makes one user, one journal
// entry and one API response stay.
func testSharedCursors(t *testing.T, f Factory) {
	s, again := open(t, f)
	stores := []Store{s, again(t)}
	const n = 20
	var wg sync.WaitGroup
	created := make([]bool, n)
	ids := make([]uint32, n)
	for i := range n {
		st := stores[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.BumpRevision(ctx); err != nil {
				t.Error(err)
			}
			u := newUser("same")
			var err error
			if created[i], err = st.UpsertRosterUser(ctx, u); err != nil {
				t.Error(err)
			}
			ids[i] = u.ID
			if err := st.PutJournalEntry(ctx, "pos-1", 1, "TX", fmt.Sprint("h", i), t0); err != nil {
				t.Error(err)
			}
			if err := st.PutAPIResponse(ctx, 1, "k", wallet.APIResponse{Hash: fmt.Sprint("h", i), Status: 200, Body: []byte("{}")}, t0); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if v, err := s.Revision(ctx); err != nil || v != n {
		t.Fatalf("revision %d %v, want %d", v, err, n)
	}
	nc := 0
	for i := range n {
		if created[i] {
			nc++
		}
		if ids[i] != ids[0] {
			t.Fatalf("one student, users %d and %d", ids[0], ids[i])
		}
	}
	if nc != 1 {
		t.Fatalf("%d imports created the user", nc)
	}
	h, _ := stores[1].JournalEntry(ctx, "pos-1", 1)
	r, _ := stores[1].APIResponse(ctx, 1, "k")
	if h == "" || r == nil {
		t.Fatalf("journal %q, api response %+v", h, r)
	}
}
