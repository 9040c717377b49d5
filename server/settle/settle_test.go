package settle_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"campuspay/server/settle"
)

func TestTotalsAndCSV(t *testing.T) {
	lines := []settle.Line{
		{Merchant: "M2", Channel: "wechat", Amount: 8_00},
		{Merchant: "M1", Channel: "balance", Amount: 12_50},
		{Merchant: "M1", Channel: "balance", Amount: 3_00},
		{Merchant: "M1", Channel: "balance", Amount: -5_00},
		{Merchant: "M1", Channel: "bank_card", Amount: 40_00},
		{Merchant: "M2", Channel: "wechat", Amount: -8_00},
	}
	got := settle.Totals(lines, map[string]string{"M1": "云谷食堂", "M2": "超市"})
	want := []settle.Total{
		{Merchant: "M1", MerchantName: "云谷食堂", Channel: "balance", Sales: 2, SalesAmount: 15_50, Refunds: 1, RefundAmount: 5_00, Net: 10_50},
		{Merchant: "M1", MerchantName: "云谷食堂", Channel: "bank_card", Sales: 1, SalesAmount: 40_00, Net: 40_00},
		{Merchant: "M2", MerchantName: "超市", Channel: "wechat", Sales: 1, SalesAmount: 8_00, Refunds: 1, RefundAmount: 8_00},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("totals\n%+v\nwant\n%+v", got, want)
	}
	var b strings.Builder
	if err := settle.WriteCSV(&b, "2026-11-30", got); err != nil {
		t.Fatal(err)
	}
	wantCSV := "date,merchant,merchant_name,channel,sales,sales_amount,refunds,refund_amount,net\n" +
		"2026-11-30,M1,云谷食堂,balance,2,15.50,1,5.00,10.50\n" +
		"2026-11-30,M1,云谷食堂,bank_card,1,40.00,0,0.00,40.00\n" +
		"2026-11-30,M2,超市,wechat,1,8.00,1,8.00,0.00\n"
	if b.String() != wantCSV {
		t.Fatalf("csv\n%s\nwant\n%s", b.String(), wantCSV)
	}
}

func TestReconcile(t *testing.T) {
	m := func(k string, a int64) settle.Movement { return settle.Movement{Key: k, Amount: a} }
	for _, c := range []struct {
		name         string
		ours, theirs []settle.Movement
		want         []settle.Mismatch
	}{
		{"agree", []settle.Movement{m("a", 5), m("b", -3)}, []settle.Movement{m("b", -3), m("a", 5)}, nil},
		{"missing theirs", []settle.Movement{m("a", 5)}, nil, []settle.Mismatch{{Kind: settle.MissingTheirs, Key: "a", Ours: 5}}},
		{"missing ours", nil, []settle.Movement{m("z", -2)}, []settle.Mismatch{{Kind: settle.MissingOurs, Key: "z", Theirs: -2}}},
		{"amount differs", []settle.Movement{m("a", 5)}, []settle.Movement{m("a", 4)}, []settle.Mismatch{{Kind: settle.AmountDiffers, Key: "a", Ours: 5, Theirs: 4}}},
		// A refund the card refused and that went to the wallet nets to
		// nothing on our side: the bank shows nothing, and that agrees.
		{"compensated nets out", []settle.Movement{m("rf", -5), m("rf", 5)}, nil, nil},
		{"several, sorted by key", []settle.Movement{m("c", 1), m("a", 2)}, []settle.Movement{m("b", 3), m("a", 2)},
			[]settle.Mismatch{{Kind: settle.MissingOurs, Key: "b", Theirs: 3}, {Kind: settle.MissingTheirs, Key: "c", Ours: 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := settle.Reconcile(c.ours, c.theirs); !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestReconcileDay(t *testing.T) {
	var gotFrom, gotTo time.Time
	p := settle.Party{Name: "bank",
		Ours: func(_ context.Context, from, to time.Time) ([]settle.Movement, error) {
			gotFrom, gotTo = from, to
			return []settle.Movement{{Key: "a", Amount: 5}, {Key: "b", Amount: -2}}, nil
		},
		Theirs: func(_ context.Context, date string) ([]settle.Movement, error) {
			return []settle.Movement{{Key: "a", Amount: 5}}, nil
		}}
	r, err := settle.ReconcileDay(context.Background(), "2026-11-30", []settle.Party{p})
	if err != nil {
		t.Fatal(err)
	}
	if !gotFrom.Equal(time.Date(2026, 11, 29, 16, 0, 0, 0, time.UTC)) || gotTo.Sub(gotFrom) != 24*time.Hour {
		t.Fatalf("day %v – %v", gotFrom, gotTo)
	}
	if r.Mismatches() != 1 || r.Parties[0].OursNet != 3 || r.Parties[0].TheirsNet != 5 {
		t.Fatalf("report %+v", r)
	}
	var b strings.Builder
	if err := settle.WriteMismatchesCSV(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "2026-11-30,bank,missing_theirs,b,-0.02,0.00") {
		t.Fatalf("csv %q", b.String())
	}
	if _, err := settle.ReconcileDay(context.Background(), "30.11.2026", nil); err == nil {
		t.Fatal("bad date accepted")
	}
}
