package storetest

import (
	"errors"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// testAllowances: offline allowances are numbered by the store, listed per
// user newest first while valid, change state, and the ended ones are
// listed for terminal configs until their validity ends; all of it
// survives a reopen.
func testAllowances(t *testing.T, f Factory) {
	s, again := open(t, f)
	a1 := &wallet.Allowance{UserID: 1, DeviceID: 7, Amount: 3000, ValidUntil: t0.Add(24 * time.Hour), State: wallet.AllowanceActive, Created: t0, Updated: t0}
	a2 := &wallet.Allowance{UserID: 1, DeviceID: 7, Amount: 1000, ValidUntil: t0.Add(2 * time.Hour), State: wallet.AllowanceActive, Created: t0, Updated: t0}
	a3 := &wallet.Allowance{UserID: 2, DeviceID: 8, Amount: 500, ValidUntil: t0.Add(24 * time.Hour), State: wallet.AllowanceActive, Created: t0, Updated: t0}
	for _, a := range []*wallet.Allowance{a1, a2, a3} {
		if err := s.PutAllowance(ctx, a); err != nil || a.ID == 0 {
			t.Fatalf("put %+v: %v", a, err)
		}
	}
	if a1.ID == a2.ID || a2.ID == a3.ID {
		t.Fatal("two allowances, one id")
	}
	if _, err := s.Allowance(ctx, 99999); !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("unknown allowance: %v", err)
	}
	a2.State, a2.Updated = wallet.AllowanceReleased, t0.Add(time.Minute)
	if err := s.PutAllowance(ctx, a2); err != nil {
		t.Fatal(err)
	}
	if !f.Shared {
		s.Close()
	}
	r := again(t)
	got, err := r.Allowance(ctx, a2.ID)
	if err != nil || *got != *a2 {
		t.Fatalf("allowance %+v, want %+v: %v", got, a2, err)
	}
	for _, tc := range []struct {
		user  uint32
		after time.Time
		want  []uint32
	}{
		{1, t0, []uint32{a2.ID, a1.ID}},
		{1, t0.Add(2 * time.Hour), []uint32{a1.ID}}, // a2 ends exactly then
		{2, t0, []uint32{a3.ID}},
		{3, t0, nil},
	} {
		list, err := r.Allowances(ctx, tc.user, tc.after)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint32
		for _, a := range list {
			ids = append(ids, a.ID)
		}
		if len(ids) != len(tc.want) || len(ids) > 0 && (ids[0] != tc.want[0] || ids[len(ids)-1] != tc.want[len(tc.want)-1]) {
			t.Fatalf("user %d after %v: %v, want %v", tc.user, tc.after, ids, tc.want)
		}
	}
	if ids, err := r.RevokedAllowances(ctx, t0); err != nil || len(ids) != 1 || ids[0] != a2.ID {
		t.Fatalf("revoked %v %v", ids, err)
	}
	if ids, err := r.RevokedAllowances(ctx, t0.Add(2*time.Hour)); err != nil || len(ids) != 0 {
		t.Fatalf("revoked after its end %v %v", ids, err)
	}
}
