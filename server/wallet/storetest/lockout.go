package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"campuspay/server/wallet"
)

// countFail is a lockout rule for the tests: each call counts one more
// failure at at, and the third and later lock for an hour.
func countFail(at time.Time) func(*wallet.LoginFail) {
	return func(f *wallet.LoginFail) {
		f.Fails++
		f.Last = at
		if f.Fails >= 3 {
			f.Until = at.Add(time.Hour)
		}
	}
}

// Login lockouts: counted atomically per key, read back exactly (to the
// nanosecond), cleared, pruned only when they lock nothing and are old,
// and kept across a reopen (a restart keeps a lockout).
func testLoginFails(t *testing.T, f Factory) {
	s, reopen := open(t, f)
	const acct, pair = "2024001", "2024001@198.51.100.7"
	at := t0.Add(123 * time.Nanosecond)
	for i, want := range []wallet.LoginFail{
		{Key: acct, Fails: 1, Last: at},
		{Key: acct, Fails: 2, Last: at.Add(time.Second)},
		{Key: acct, Fails: 3, Last: at.Add(2 * time.Second), Until: at.Add(2*time.Second + time.Hour)},
	} {
		got, err := s.UpdateLoginFail(ctx, acct, countFail(at.Add(time.Duration(i)*time.Second)))
		if err != nil || got != want {
			t.Fatalf("failure %d: %+v %v, want %+v", i+1, got, err, want)
		}
	}
	if _, err := s.UpdateLoginFail(ctx, pair, countFail(at)); err != nil {
		t.Fatal(err)
	}
	if !f.Shared {
		s.Close()
	}
	s = reopen(t)
	got, err := s.LoginFails(ctx, acct, pair, "2024999")
	want := []wallet.LoginFail{
		{Key: acct, Fails: 3, Last: at.Add(2 * time.Second), Until: at.Add(2*time.Second + time.Hour)},
		{Key: pair, Fails: 1, Last: at},
	}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen: %+v %v, want %+v", got, err, want)
	}
	if got, err := s.LoginFails(ctx); err != nil || len(got) != 0 {
		t.Fatalf("no keys: %+v %v", got, err)
	}

	// Cleared: gone; clearing an unknown key is no error.
	if err := s.ClearLoginFails(ctx, pair, "2024999"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.LoginFails(ctx, pair); err != nil || len(got) != 0 {
		t.Fatalf("cleared key still there: %+v %v", got, err)
	}

	// Pruned: only rows that lock nothing now and failed before the cut.
	now := t0.Add(48 * time.Hour)
	old, recent := t0.Add(-time.Hour), now.Add(-time.Minute)
	rows := []struct {
		key         string
		last, until time.Time
		kept        bool
	}{
		{"old-unlocked", old, time.Time{}, false},
		{"old-lock-over", old, old.Add(time.Hour), false},
		{"old-still-locked", old, now.Add(time.Hour), true},
		{"recent", recent, time.Time{}, true},
	}
	for _, r := range rows {
		if _, err := s.UpdateLoginFail(ctx, r.key, func(f *wallet.LoginFail) { f.Fails, f.Last, f.Until = 1, r.last, r.until }); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PruneLoginFails(ctx, now, now.Add(-24*time.Hour))
	// The first rows (acct, locked until t0+1h) are old and over too.
	if err != nil || n != 3 {
		t.Fatalf("pruned %d %v, want 3", n, err)
	}
	for _, r := range rows {
		got, err := s.LoginFails(ctx, r.key)
		if err != nil || (len(got) == 1) != r.kept {
			t.Errorf("%s: %+v %v, kept want %v", r.key, got, err, r.kept)
		}
	}
}

// Failures counted at once through every Store (several authorizers on a
// shared database, or one authorizer's goroutines) are each counted.
func testLoginFailsConcurrent(t *testing.T, f Factory) {
	s, again := open(t, f)
	stores := []Store{s}
	if f.Shared {
		stores = append(stores, again(t), again(t))
	}
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		st := stores[i%len(stores)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := st.UpdateLoginFail(ctx, "2024002", countFail(t0)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := s.LoginFails(ctx, "2024002")
	if err != nil || len(got) != 1 || got[0].Fails != n {
		t.Fatalf("%d failures at once in %d stores: %+v %v", n, len(stores), got, err)
	}
}
