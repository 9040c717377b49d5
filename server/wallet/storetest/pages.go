package storetest

import (
	"errors"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// testPages covers what the web wallet's pages read: a month of a
// student's records oldest first, the water a shower metered, and a
// terminal's name.
func testPages(t *testing.T, f Factory) {
	s, again := open(t, f)
	month := time.Date(2026, 11, 1, 0, 0, 0, 0, wallet.Shanghai)
	next := month.AddDate(0, 1, 0)
	for _, r := range []wallet.Record{
		{Key: "before", Kind: wallet.KindTopUp, UserID: 7, Amount: 1, Created: month.Add(-time.Nanosecond)},
		{Key: "S:1", Kind: wallet.KindShower, UserID: 7, Amount: 300, Status: protocol.StatusApproved, Created: month.Add(2 * time.Hour)},
		{Key: "first", Kind: wallet.KindTopUp, UserID: 7, Amount: 5000, Status: protocol.StatusApproved, Created: month},
		{Key: "other-user", Kind: wallet.KindTopUp, UserID: 8, Amount: 2, Created: month.Add(time.Hour)},
		{Key: "tomb", Kind: "tombstone", UserID: 7, Created: month.Add(time.Hour)},
		{Key: "last", Kind: wallet.KindPayment, UserID: 7, Amount: 3, Status: protocol.StatusDeclined, Created: next.Add(-time.Nanosecond)},
		{Key: "after", Kind: wallet.KindPayment, UserID: 7, Amount: 4, Created: next},
	} {
		r.Updated = r.Created
		if err := s.PutRecord(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		from  time.Time
		to    time.Time
		limit int
		want  []string
	}{
		{"the month", month, next, 100, []string{"first", "S:1", "last"}},
		{"limited", month, next, 2, []string{"first", "S:1"}},
		{"the month before", month.AddDate(0, -1, 0), month, 100, []string{"before"}},
		{"empty", next.Add(time.Hour), next.Add(2 * time.Hour), 100, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := s.RecordsBetween(ctx, 7, tc.from, tc.to, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.Key)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("keys %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("keys %q, want %q", got, tc.want)
				}
			}
		})
	}

	// Litres stay through later updates of the record (PutRecord leaves them).
	if err := s.SetRecordML(ctx, "S:1", 12_500); err != nil {
		t.Fatal(err)
	}
	r, err := s.Record(ctx, "S:1")
	if err != nil || r.ML != 12_500 {
		t.Fatalf("shower record %+v %v", r, err)
	}
	r.Status = protocol.StatusApproved
	r.Updated = r.Updated.Add(time.Minute)
	if err := s.PutRecord(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"nobody", "first"} { // no record; not a shower
		if err := s.SetRecordML(ctx, key, 1); !errors.Is(err, protocol.ErrHoldUnknown) {
			t.Fatalf("SetRecordML(%s): %v", key, err)
		}
	}

	if err := s.PutMerchant(ctx, &wallet.Merchant{ID: "M1", Name: "云谷食堂", Campus: "yungu"}); err != nil {
		t.Fatal(err)
	}
	tm := wallet.Terminal{ID: "T1", Merchant: "M1", Campus: "yungu", Mode: protocol.ModePOS, Name: "二楼3号窗口", Created: t0}
	if err := s.PutTerminal(ctx, &tm); err != nil {
		t.Fatal(err)
	}
	if !f.Shared {
		s.Close()
	}
	s2 := again(t)
	if got, err := s2.Terminal(ctx, "T1"); err != nil || got.Name != "二楼3号窗口" {
		t.Fatalf("terminal %+v %v", got, err)
	}
	if rs, err := s2.RecordsBetween(ctx, 7, month, next, 100); err != nil || len(rs) != 3 || rs[1].ML != 12_500 {
		t.Fatalf("records after reopening %+v %v", rs, err)
	}
}
