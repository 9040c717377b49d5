package wechat_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"campuspay/server/wechat"
)

func TestParseBill(t *testing.T) {
	good, err := os.ReadFile("testdata/bill.csv")
	if err != nil {
		t.Fatal(err)
	}
	b, err := wechat.ParseBill(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []wechat.BillRow{
		{OutTradeNo: "01KB3Y4Z", State: wechat.BillSuccess, Fee: 800},
		{OutTradeNo: "01KB3Y4Z", State: wechat.BillRefund, OutRefundNo: "RF0a1b2c", RefundFee: 300},
		{OutTradeNo: "01KB3Y50", State: wechat.BillRevoked, Fee: 100},
	}
	if len(b.Rows) != len(want) {
		t.Fatalf("%d rows", len(b.Rows))
	}
	for i, w := range want {
		g := b.Rows[i]
		if g.OutTradeNo != w.OutTradeNo || g.State != w.State || g.Fee != w.Fee || g.OutRefundNo != w.OutRefundNo || g.RefundFee != w.RefundFee {
			t.Fatalf("row %d: %+v, want %+v", i, g, w)
		}
	}
	text := string(good)
	for _, c := range []struct{ name, body string }{
		{"empty", ""},
		{"summary count wrong", strings.Replace(text, "`3,`9.00", "`2,`9.00", 1)},
		{"summary total wrong", strings.Replace(text, "`3,`9.00", "`3,`9.01", 1)},
		{"amount with one decimal", strings.Replace(text, "`8.00,`0.00,`,`", "`8.0,`0.00,`,`", 1)},
		{"unknown state", strings.Replace(text, "`SUCCESS,`OTHERS", "`CLOSED,`OTHERS", 1)},
		{"no summary", strings.Split(text, "总交易单数")[0]},
		{"missing column", strings.Replace(text, "商户订单号,", "", 1)},
		{"field without backtick", strings.Replace(text, "`2026-11-30 10:00:00", "2026-11-30 10:00:00", 1)},
		{"data after the summary", text + "`1\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := wechat.ParseBill(strings.NewReader(c.body)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzParseBill(f *testing.F) {
	good, err := os.ReadFile("testdata/bill.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("交易时间,商户订单号\n总交易单数\n`0,`0.00,`0.00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		bill, err := wechat.ParseBill(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, r := range bill.Rows {
			if r.Fee < 0 || r.RefundFee < 0 || r.OutTradeNo == "" || (r.State == wechat.BillRefund && r.RefundFee == 0) {
				t.Fatalf("accepted row %+v", r)
			}
		}
	})
}
