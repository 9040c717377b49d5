package wallet_test

import (
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/bank"
	"campuspay/server/settle"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

func TestSettlementAndReconciliation(t *testing.T) {
	e := wallettest.New(t)
	a := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	b := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	w := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	linkWeChat(t, e, w)

	sell(t, e, protocol.CredCode, e.PayCode(a), 12_50)
	cardSale, _ := sell(t, e, protocol.CredCode, e.PayCode(b), 40_00)
	if _, err := e.Svc.Refund(ctx, wallet.RefundRequest{Sale: cardSale, Key: "s1", Amount: 15_00}); err != nil {
		t.Fatal(err)
	}
	code, _ := e.WeChat.NewPaymentCode(w.OpenID)
	wxSale, _ := sell(t, e, protocol.CredWeChat, code, 8_00)
	if _, err := e.Svc.Refund(ctx, wallet.RefundRequest{Sale: wxSale, Key: "s2", Amount: 3_00}); err != nil {
		t.Fatal(err)
	}
	code, _ = e.WeChat.NewPaymentCode(w.OpenID)
	_, wxRev := sell(t, e, protocol.CredWeChat, code, 1_00)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, wxRev, wallettest.POS)), protocol.StatusReversed, nil)
	if _, err := e.Svc.Withdraw(ctx, a.ID, "w1", 5_00); err != nil {
		t.Fatal(err)
	}
	date := wallettest.T0.Format(time.DateOnly)
	from, to, err := settle.Day(date)
	if err != nil {
		t.Fatal(err)
	}

	lines, names, err := e.Svc.SettlementLines(ctx, "", from, to)
	if err != nil {
		t.Fatal(err)
	}
	totals := settle.Totals(lines, names)
	want := map[string]settle.Total{
		protocol.ChannelBalance:  {Sales: 1, SalesAmount: 12_50, Net: 12_50},
		protocol.ChannelBankCard: {Sales: 1, SalesAmount: 40_00, Refunds: 1, RefundAmount: 15_00, Net: 25_00},
		protocol.ChannelWeChat:   {Sales: 2, SalesAmount: 9_00, Refunds: 2, RefundAmount: 4_00, Net: 5_00},
	}
	if len(totals) != len(want) {
		t.Fatalf("totals %+v", totals)
	}
	for _, g := range totals {
		w := want[g.Channel]
		if g.Merchant != wallettest.Merchant || g.MerchantName != "云谷食堂" || g.Sales != w.Sales || g.SalesAmount != w.SalesAmount ||
			g.Refunds != w.Refunds || g.RefundAmount != w.RefundAmount || g.Net != w.Net {
			t.Fatalf("%s: %+v, want %+v", g.Channel, g, w)
		}
	}
	if other, _, err := e.Svc.SettlementLines(ctx, "M002", from, to); err != nil || len(other) != 0 {
		t.Fatalf("M002 lines %v %v", other, err)
	}
	if _, _, err := e.Svc.SettlementLines(ctx, "NOPE", from, to); err == nil {
		t.Fatal("unknown merchant accepted")
	}

	rep, err := settle.ReconcileDay(ctx, date, e.ReconcileParties())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mismatches() != 0 {
		t.Fatalf("mismatches on a clean day: %+v", rep)
	}
	// a's top-up and withdrawal; b's card sale and its refund.
	if bk := rep.Parties[0]; bk.Ours != 4 || bk.Theirs != 4 || bk.OursNet != 70_00 || bk.TheirsNet != 70_00 {
		t.Fatalf("bank %+v", bk)
	}
	// The bank "loses" the refund, WeChat the reversal: each is listed.
	st, _ := e.Deps.Bank.(*bank.HTTPClient).Statement(ctx, date)
	for _, x := range st.Entries {
		if x.Op == "refund" {
			e.Bank.SkipInStatement(x.Key)
		}
	}
	e.WeChat.SkipInBill(string(wxRev))
	rep, err = settle.ReconcileDay(ctx, date, e.ReconcileParties())
	if err != nil {
		t.Fatal(err)
	}
	bm, wm := rep.Parties[0].Mismatches, rep.Parties[1].Mismatches
	if len(bm) != 1 || bm[0].Kind != settle.MissingTheirs || bm[0].Ours != -15_00 {
		t.Fatalf("bank mismatches %+v", bm)
	}
	// The reversed order's payment and its reversal are both gone from the bill.
	if len(wm) != 2 || wm[0].Kind != settle.MissingTheirs || wm[1].Kind != settle.MissingTheirs {
		t.Fatalf("wechat mismatches %+v", wm)
	}
	// Another day: nothing on either side.
	rep, err = settle.ReconcileDay(ctx, "2026-11-29", e.ReconcileParties())
	if err != nil || rep.Mismatches() != 0 || rep.Parties[0].Theirs != 0 {
		t.Fatalf("empty day %+v %v", rep, err)
	}
	e.Check()
}
