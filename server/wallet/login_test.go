package wallet_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
	walletsqlite "campuspay/server/wallet/sqlite"
	"campuspay/server/wallet/wallettest"
)

// loginOutcome classifies a login answer: "ok", "failed" (wrong, checked),
// "locking" (wrong, checked, sets a lock) or "locked" (refused unchecked).
func loginOutcome(t *testing.T, err error) string {
	t.Helper()
	var le *wallet.LoginLockedError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &le) && le.Failed:
		return "locking"
	case errors.As(err, &le):
		return "locked"
	case errors.Is(err, protocol.ErrLoginFailed):
		return "failed"
	}
	t.Fatalf("login: %v", err)
	return ""
}

// Issue 13 item 3: the lockout count is exact under concurrency: of 60
// parallel wrong passwords for one number (with and without a client
// address), PasswordTries are checked and the rest refused unchecked.
func TestLoginLockParallel(t *testing.T) {
	e := wallettest.New(t)
	for _, client := range []string{"", "198.51.100.7"} {
		s := e.AddStudent(wallettest.Options{Inactive: true})
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for range 60 {
			wg.Go(func() {
				_, err := e.Svc.LoginFrom(ctx, s.No, "wrong", client)
				mu.Lock()
				got[loginOutcome(t, err)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		want := map[string]int{"failed": wallet.PasswordTries - 1, "locking": 1, "locked": 60 - wallet.PasswordTries}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("client %q: 60 parallel wrong passwords: %v, want %v", client, got, want)
		}
	}
}

// Issue 13 item 4: the lock slows a guesser more than it hurts the
// student: it grows with each wrong password from the guesser's address
// (1, 2, 4 … minutes), the student at another address is not locked by
// it, and only many failures from all addresses lock the number itself,
// for at most Config.PasswordLock.
func TestLoginGrowingLock(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{Inactive: true})
	const guesser, phone = "198.51.100.7", "203.0.113.5"
	login := func(pw, client string) (string, time.Duration) {
		t.Helper()
		_, err := e.Svc.LoginFrom(ctx, s.No, pw, client)
		var le *wallet.LoginLockedError
		if errors.As(err, &le) {
			return loginOutcome(t, err), le.Until.Sub(e.Clock.Now())
		}
		return loginOutcome(t, err), 0
	}
	for i := 1; i < wallet.PasswordTries; i++ {
		if got, _ := login("wrong", guesser); got != "failed" {
			t.Fatalf("wrong password %d: %s", i, got)
		}
	}
	wantLock := func(pw, outcome string, d time.Duration) {
		t.Helper()
		if got, dd := login(pw, guesser); got != outcome || dd != d {
			t.Fatalf("guesser with %q: %s for %v, want %s for %v", pw, got, dd, outcome, d)
		}
	}
	wantLock("wrong", "locking", time.Minute)
	if got, _ := login(s.Password, phone); got != "ok" {
		t.Fatalf("the student on their phone: %s", got)
	}
	// The student's success does not clear the guesser's address lock.
	wantLock(s.Password, "locked", time.Minute)
	for i, d := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute} {
		e.Clock.Advance(d / 2)
		wantLock("wrong", "locking", d)
		e.Clock.Advance(d / 2)
		wantLock("wrong", "locked", d/2)
		e.Clock.Advance(d / 2)
		if i == 2 {
			break
		}
	}
	// From many addresses, the number locks for everybody after
	// AccountLoginTries failures in a row (the guesser's 3 since the
	// student's login count), but never longer than PasswordLock.
	for i := 3; ; i++ {
		_, err := e.Svc.LoginFrom(ctx, s.No, "wrong", fmt.Sprintf("192.0.2.%d", i))
		if i > wallet.AccountLoginTries {
			t.Fatal("the number never locked")
		}
		var le *wallet.LoginLockedError
		if errors.As(err, &le) {
			if i+1 != wallet.AccountLoginTries {
				t.Fatalf("the number locked after %d addresses' failures, want %d", i+1, wallet.AccountLoginTries)
			}
			if d := le.Until.Sub(e.Clock.Now()); d != time.Minute {
				t.Fatalf("number lock %v", d)
			}
			break
		}
	}
	if got, _ := login(s.Password, phone); got != "locked" {
		t.Fatalf("the student while the number is locked: %s", got)
	}
	for i := range 10 {
		e.Clock.Advance(e.Config.PasswordLock)
		_, err := e.Svc.LoginFrom(ctx, s.No, "wrong", fmt.Sprintf("192.0.3.%d", i))
		var le *wallet.LoginLockedError
		if !errors.As(err, &le) || le.Until.Sub(e.Clock.Now()) > e.Config.PasswordLock {
			t.Fatalf("number lock beyond PasswordLock: %v", err)
		}
	}
	e.Clock.Advance(e.Config.PasswordLock)
	if got, _ := login(s.Password, phone); got != "ok" {
		t.Fatalf("the student after the number's lock: %s", got)
	}
	// A day without failures forgets the guesser's count.
	e.Clock.Advance(wallet.LoginForget)
	for i := 1; i < wallet.PasswordTries; i++ {
		if got, _ := login("wrong", guesser); got != "failed" {
			t.Fatalf("after a quiet day, wrong password %d: %s", i, got)
		}
	}
}

// Issue 12 item 2: lockouts are the store's. A lock set through one
// Service refuses the login through another on the same store (a second
// authorizer), a restart (a new Service on the reopened store file) keeps
// it, and it ends on the injected clock. The address lock of a guesser
// holds on every Service for that address only.
func TestLoginLockSharedAndDurable(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{Inactive: true})
	other, err := wallet.New(e.Config, e.Keys, e.Deps)
	if err != nil {
		t.Fatal(err)
	}
	reopened, err := walletsqlite.Open(filepath.Join(e.Dir, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reopened.Close() })
	deps := e.Deps
	deps.Store = reopened
	restarted, err := wallet.New(e.Config, e.Keys, deps)
	if err != nil {
		t.Fatal(err)
	}
	const guesser, phone = "198.51.100.7", "203.0.113.5"
	svcs := map[string]*wallet.Service{"first": e.Svc, "other": other, "restarted": restarted}
	const free = wallet.PasswordTries - 1 // wrong passwords that do not lock yet
	steps := []struct {
		svc, pw, client string
		advance         time.Duration
		want            string
		times           int // 0 = once
	}{
		// The guesser's address locks after PasswordTries on the first.
		{svc: "first", pw: "wrong", client: guesser, want: "failed", times: free},
		{svc: "first", pw: "wrong", client: guesser, want: "locking"},
		{svc: "other", pw: s.Password, client: guesser, want: "locked"},
		{svc: "restarted", pw: s.Password, client: guesser, want: "locked"},
		{svc: "other", pw: s.Password, client: phone, want: "ok"},
		// The number itself, without an address, locks (for LoginLockBase
		// at first): failures counted through two Services add up.
		{svc: "other", pw: "wrong", want: "failed", times: free - 1},
		{svc: "restarted", pw: "wrong", want: "failed"},
		{svc: "other", pw: "wrong", want: "locking"},
		{svc: "first", pw: s.Password, want: "locked"},
		{svc: "restarted", pw: s.Password, client: phone, want: "locked"},
		{svc: "restarted", pw: s.Password, client: phone, advance: wallet.LoginLockBase - time.Second, want: "locked"},
		{svc: "restarted", pw: s.Password, client: phone, advance: time.Second, want: "ok"},
		{svc: "first", pw: s.Password, want: "ok"},
		// The guesser's lock (LoginLockBase, set at the same time) has
		// ended too.
		{svc: "other", pw: s.Password, client: guesser, want: "ok"},
	}
	for i, st := range steps {
		e.Clock.Advance(st.advance)
		for range max(1, st.times) {
			_, err := svcs[st.svc].LoginFrom(ctx, s.No, st.pw, st.client)
			if got := loginOutcome(t, err); got != st.want {
				t.Fatalf("step %d (%s, %q from %q): %s, want %s", i, st.svc, st.pw, st.client, got, st.want)
			}
		}
	}
}
