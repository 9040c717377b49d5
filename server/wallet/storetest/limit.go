package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// limitUser stores a user whose daily limit the tests write against.
func limitUser(t *testing.T, s Store, no string) *wallet.User {
	t.Helper()
	u := &wallet.User{StudentNo: no, Name: "李四", IDNumber: "x", Phone: "y", Campus: "yungu", LoginHash: "h",
		State: wallet.StateActive, LimitPerTx: 100, LimitDaily: 1000}
	if _, err := s.UpsertRosterUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func intent(u *wallet.User, key string, amount int64, at time.Time) *wallet.Record {
	return &wallet.Record{Key: key, Kind: wallet.KindPayment, UserID: u.ID, Amount: amount, Channel: protocol.ChannelBalance,
		Status: wallet.StatusProcessing, Created: at, Updated: at}
}

// PutIntent with a daily limit: up to the limit is written; one cent more
// is refused ErrLimitDaily with nothing written and its code left unused;
// another day has its own total.
func testIntentLimit(t *testing.T, f Factory) {
	s, _ := open(t, f)
	u := limitUser(t, s, "limit-1")
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, wallet.Shanghai)
	at := day.Add(12 * time.Hour)
	lim := &wallet.DailyLimit{From: day, To: day.AddDate(0, 0, 1), Max: 1000}
	code := func(id string) *wallet.CodeUse { return &wallet.CodeUse{ID: id, Expires: at.Add(time.Minute), Now: at} }
	for i, tc := range []struct {
		amount int64
		code   string
		err    error
	}{
		{600, "c1", nil},
		{400, "", nil},                    // exactly at the limit: allowed
		{1, "c2", protocol.ErrLimitDaily}, // one cent over
		{1, "c2-again", protocol.ErrLimitDaily},
	} {
		key := fmt.Sprint("T:lim-", i)
		var c *wallet.CodeUse
		if tc.code != "" {
			c = code(tc.code)
		}
		owner, err := s.PutIntent(ctx, intent(u, key, tc.amount, at), c, lim)
		if !errors.Is(err, tc.err) || (err == nil && owner != key) {
			t.Fatalf("intent %d (%d): owner %q, %v; want %v", i, tc.amount, owner, err, tc.err)
		}
		if r, err := s.Record(ctx, key); err != nil || (r != nil) != (tc.err == nil) {
			t.Fatalf("intent %d stored: %+v %v", i, r, err)
		}
	}
	// The refused payment did not spend its code.
	if owner, err := s.PutIntent(ctx, intent(u, "T:other", 1, at), code("c2"), nil); err != nil || owner != "T:other" {
		t.Fatalf("code of a refused intent: owner %q %v", owner, err)
	}
	next := &wallet.DailyLimit{From: lim.To, To: lim.To.AddDate(0, 0, 1), Max: 1000}
	if _, err := s.PutIntent(ctx, intent(u, "T:tomorrow", 1000, lim.To.Add(time.Hour)), nil, next); err != nil {
		t.Fatalf("next day: %v", err)
	}
}

// One student paying at many terminals at once, through several Stores on
// one database (several authorizers): the daily limit holds across them,
// exactly as many intents as fit are written.
func testSharedDailyLimit(t *testing.T, f Factory) {
	s, again := open(t, f)
	stores := []Store{s, again(t), again(t)}
	u := limitUser(t, s, "limit-shared")
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, wallet.Shanghai)
	at := day.Add(12 * time.Hour)
	lim := &wallet.DailyLimit{From: day, To: day.AddDate(0, 0, 1), Max: 1000}
	const n, amount = 360, 100 // 10 fit; fewer did not show the race without the lock
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = stores[i%len(stores)].PutIntent(ctx, intent(u, fmt.Sprint("T:rush-", i), amount, at), nil, lim)
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, protocol.ErrLimitDaily):
			t.Fatalf("intent %d: %v", i, err)
		}
	}
	total, err := s.PaidBetween(ctx, u.ID, lim.From, lim.To)
	if err != nil {
		t.Fatal(err)
	}
	if ok != 10 || total != 1000 {
		t.Fatalf("%d intents written, daily total %d; want 10 and 1000", ok, total)
	}
}

// Offline payments count towards the day of their till time, settled or
// being settled, whatever funded them (the hold, the balance, the card or
// a debt): PaidBetween and PutIntent's check both see them.
func testOfflineDailyTotal(t *testing.T, f Factory) {
	s, _ := open(t, f)
	u := limitUser(t, s, "limit-offline")
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, wallet.Shanghai)
	at := day.Add(9 * time.Hour)
	lim := &wallet.DailyLimit{From: day, To: day.AddDate(0, 0, 1), Max: 1000}
	for i, r := range []wallet.Record{
		{Channel: protocol.ChannelBalance, Status: protocol.StatusApproved, Amount: 300, Created: at},           // counted
		{Channel: wallet.ChannelDebt, Status: protocol.StatusApproved, Amount: 200, Created: at},                // counted
		{Channel: protocol.ChannelBankCard, Status: wallet.StatusProcessing, Amount: 100, Created: at},          // counted, being settled
		{Channel: protocol.ChannelBalance, Status: protocol.StatusApproved, Amount: 5000, Created: day.Add(-1)}, // the day before
		{Channel: protocol.ChannelBalance, Status: protocol.StatusApproved, Amount: 7000, Created: lim.To},      // the day after
		{Channel: protocol.ChannelBalance, Status: protocol.StatusDeclined, Amount: 9000, Created: at},          // not
	} {
		r.Key, r.Kind, r.UserID, r.Terminal, r.Updated = fmt.Sprint("O:pos-1:off-", i), wallet.KindOffline, u.ID, "pos-1", r.Created
		if err := s.PutRecord(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.PaidBetween(ctx, u.ID, lim.From, lim.To); err != nil || got != 600 {
		t.Fatalf("PaidBetween = %d, %v; want 600", got, err)
	}
	if _, err := s.PutIntent(ctx, intent(u, "T:after-offline", 401, at.Add(time.Hour)), nil, lim); !errors.Is(err, protocol.ErrLimitDaily) {
		t.Fatalf("online intent over the limit with offline payments: %v", err)
	}
	if owner, err := s.PutIntent(ctx, intent(u, "T:after-offline", 400, at.Add(time.Hour)), nil, lim); err != nil || owner != "T:after-offline" {
		t.Fatalf("online intent up to the limit: %q %v", owner, err)
	}
}
