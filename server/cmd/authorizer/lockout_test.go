package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// Issue 12 item 2 on PostgreSQL: a login lockout made through one
// authorizer refuses the login on another on the same database, holds
// across a restart of either, and ends on the (injected) clock.
func TestLoginLockoutSharedOnPostgres(t *testing.T) {
	ctx := context.Background()
	clock := &wallettest.Clock{}
	clock.Set(time.Now())
	_, burl, _, wurl := wallettest.Sims(t, clock)
	m1, m2, reopen := twoAuthorizers(t, clock, burl, wurl)
	if _, err := m1.Svc.ImportStudent(ctx, wallet.RosterEntry{StudentNo: "20260002", Name: "李四",
		IDNumber: wallettest.IDNumber("11010520000101002"), Phone: "13800000002", Campus: "yungu", CardUID: "CA0002", Password: "secret2"}); err != nil {
		t.Fatal(err)
	}
	const guesser = "198.51.100.9"
	login := func(m *Main, pw string) error {
		_, err := m.Svc.LoginFrom(ctx, "20260002", pw, guesser)
		return err
	}
	for i := 1; i < wallet.PasswordTries; i++ {
		if err := login(m1, "wrong"); !errors.Is(err, protocol.ErrLoginFailed) {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	if err := login(m1, "wrong"); !errors.Is(err, protocol.ErrLoginLocked) {
		t.Fatalf("the locking wrong password: %v", err)
	}
	m1.Close()
	for _, tc := range []struct {
		name    string
		m       *Main
		advance time.Duration
		want    error // nil: logged in
	}{
		{"the other authorizer", m2, 0, protocol.ErrLoginLocked},
		{"the first, restarted", reopen(0), 0, protocol.ErrLoginLocked},
		{"the other, restarted, just before the end", reopen(1), wallet.LoginLockBase - time.Second, protocol.ErrLoginLocked},
		{"the other, at the end", m2, time.Second, nil},
	} {
		clock.Advance(tc.advance)
		if err := login(tc.m, "secret2"); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
