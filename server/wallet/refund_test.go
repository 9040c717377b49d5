package wallet_test

import (
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// sell pays amount at the POS and returns the sale's key.
func sell(t *testing.T, e *wallettest.Env, kind protocol.CredKind, text string, amount int64) (string, protocol.TxID) {
	t.Helper()
	tx := e.TxID()
	r := e.Svc.HandleRequest(ctx, payReq(e, tx, kind, text, amount))
	wantResp(t, r, protocol.StatusApproved, nil)
	return wallet.SaleKey(wallettest.POS, tx), tx
}

func linkWeChat(t *testing.T, e *wallettest.Env, s *wallettest.Student) {
	t.Helper()
	c, err := e.WeChat.NewLoginCode(s.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Svc.LinkWeChat(ctx, s.ID, c), nil)
}

func TestRefundRules(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	sale, _ := sell(t, e, protocol.CredCode, e.PayCode(s), 30_00)
	reversed, rtx := sell(t, e, protocol.CredCode, e.PayCode(s), 5_00)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, rtx, wallettest.POS)), protocol.StatusReversed, nil)
	declinedTx := e.TxID()
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, declinedTx, protocol.CredCode, "garbage", 1_00)), protocol.StatusDeclined, protocol.ErrUnknownCode)

	for _, c := range []struct {
		name    string
		r       wallet.RefundRequest
		want    *protocol.Reason
		balance int64 // wallet balance after
	}{
		{"partial", wallet.RefundRequest{Sale: sale, Key: "k1", Amount: 10_00}, nil, 30_00},
		{"same key again moves nothing", wallet.RefundRequest{Sale: sale, Key: "k1", Amount: 10_00}, nil, 30_00},
		{"same key, other amount", wallet.RefundRequest{Sale: sale, Key: "k1", Amount: 5_00}, protocol.ErrRefundKeyConflict, 30_00},
		{"above what is left", wallet.RefundRequest{Sale: sale, Key: "k2", Amount: 20_01}, protocol.ErrRefundExceedsSale, 30_00},
		{"exactly what is left", wallet.RefundRequest{Sale: sale, Key: "k3", Amount: 20_00}, nil, 50_00},
		{"nothing left", wallet.RefundRequest{Sale: sale, Key: "k4", Amount: 1}, protocol.ErrRefundExceedsSale, 50_00},
		{"reversed sale", wallet.RefundRequest{Sale: reversed, Key: "k5", Amount: 1_00}, protocol.ErrRefundSaleReversed, 50_00},
		{"declined sale", wallet.RefundRequest{Sale: wallet.SaleKey(wallettest.POS, declinedTx), Key: "k6", Amount: 1_00}, protocol.ErrRefundNotRefundable, 50_00},
		{"unknown sale", wallet.RefundRequest{Sale: wallet.SaleKey(wallettest.POS, e.TxID()), Key: "k7", Amount: 1_00}, protocol.ErrRefundSaleUnknown, 50_00},
		{"zero", wallet.RefundRequest{Sale: sale, Key: "k8", Amount: 0}, protocol.ErrRefundAmount, 50_00},
		{"key with a space", wallet.RefundRequest{Sale: sale, Key: "a b", Amount: 1}, protocol.ErrBadRequest, 50_00},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec, err := e.Svc.Refund(ctx, c.r)
			wantErr(t, err, c.want)
			if c.want == nil && (rec.Status != protocol.StatusApproved || rec.Kind != wallet.KindRefund || rec.Amount != c.r.Amount || rec.Channel != protocol.ChannelBalance) {
				t.Fatalf("record %+v", rec)
			}
			if b := e.Balance(s); b != c.balance {
				t.Fatalf("balance %d, want %d", b, c.balance)
			}
		})
	}
	// The student's details show both refunds of the sale.
	recs, err := e.Svc.Transactions(ctx, s.ID, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Kind == wallet.KindRefund {
			n++
			if r.Merchant != wallettest.Merchant || r.Terminal != wallettest.POS {
				t.Fatalf("refund line %+v", r)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d refund lines in the details, want 2", n)
	}
	e.Check()
}

func TestRefundChannels(t *testing.T) {
	e := wallettest.New(t)
	card := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	wx := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	linkWeChat(t, e, wx)
	frozen := e.AddStudent(wallettest.Options{BankBalance: 100_00})

	cardSale, _ := sell(t, e, protocol.CredCode, e.PayCode(card), 40_00)
	code, _ := e.WeChat.NewPaymentCode(wx.OpenID)
	wxSale, _ := sell(t, e, protocol.CredWeChat, code, 8_00)
	frozenSale, _ := sell(t, e, protocol.CredCode, e.PayCode(frozen), 20_00)
	if err := e.Bank.SetFrozen(frozen.BankCode, frozen.BankCard, true); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name    string
		r       wallet.RefundRequest
		channel string
		check   func() bool
	}{
		{"bank card", wallet.RefundRequest{Sale: cardSale, Key: "c1", Amount: 15_00}, protocol.ChannelBankCard,
			func() bool { return e.BankBalance(card) == 100_00-40_00+15_00 && e.Balance(card) == 0 }},
		{"wechat", wallet.RefundRequest{Sale: wxSale, Key: "w1", Amount: 3_00}, protocol.ChannelWeChat,
			func() bool { b, _ := e.WeChat.Balance(wx.OpenID); return b == 1000_00-8_00+3_00 }},
		{"card refuses: to the balance", wallet.RefundRequest{Sale: frozenSale, Key: "f1", Amount: 20_00}, protocol.ChannelBalance,
			func() bool { return e.Balance(frozen) == 20_00 && e.BankBalance(frozen) == 80_00 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec, err := e.Svc.Refund(ctx, c.r)
			wantErr(t, err, nil)
			if rec.Channel != c.channel || rec.Status != protocol.StatusApproved || !c.check() {
				t.Fatalf("record %+v", rec)
			}
		})
	}
	// The bank and WeChat refuse refunds beyond the sale on their own too:
	// the bank's refund names the original debit.
	if _, err := e.Deps.Bank.Refund(ctx, "direct-1", "no-such-debit", card.BankCode, card.BankCard, 1_00); err == nil {
		t.Fatal("bank refunded an unknown debit")
	}
	e.Check()
}

func TestReversalAfterPartialRefundGivesBackTheRest(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	sale, tx := sell(t, e, protocol.CredCode, e.PayCode(s), 30_00) // from the card
	if _, err := e.Svc.Refund(ctx, wallet.RefundRequest{Sale: sale, Key: "r1", Amount: 10_00}); err != nil {
		t.Fatal(err)
	}
	r := e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS))
	wantResp(t, r, protocol.StatusReversed, nil)
	if r.Amount != 20_00 || e.BankBalance(s) != 100_00 {
		t.Fatalf("reversal gave back %d; bank %d", r.Amount, e.BankBalance(s))
	}
	e.Check()
}

// A refund interrupted after the bank paid (the final record never
// written), or while the bank did not answer, is finished by Recover under
// the same keys: the card is paid exactly once.
func TestRefundInterruptedIsRecovered(t *testing.T) {
	e := wallettest.New(t)
	svc, _, cs := crashy(t, e)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	crashed, _ := sell(t, e, protocol.CredCode, e.PayCode(s), 30_00)
	outage, _ := sell(t, e, protocol.CredCode, e.PayCode(s), 20_00)

	cs.status = protocol.StatusApproved
	if _, err := svc.Refund(ctx, wallet.RefundRequest{Sale: crashed, Key: "x1", Amount: 30_00}); err == nil {
		t.Fatal("refund survived the crash")
	}
	e.Bank.FailNext(10, 503)
	_, err := svc.Refund(ctx, wallet.RefundRequest{Sale: outage, Key: "x2", Amount: 20_00})
	wantErr(t, err, protocol.ErrBankUnavailable)
	e.Bank.FailNext(0, 0)
	if got := e.BankBalance(s); got != 100_00-50_00+30_00 {
		t.Fatalf("bank before recovery %d", got)
	}
	e.Clock.Advance(time.Second)
	n, err := e.Svc.Recover(ctx, 0)
	if err != nil || n != 2 {
		t.Fatalf("recovered %d: %v", n, err)
	}
	if got := e.BankBalance(s); got != 100_00 {
		t.Fatalf("bank after recovery %d, want 100_00", got)
	}
	for _, k := range []string{"x1", "x2"} {
		sale := map[string]string{"x1": crashed, "x2": outage}[k]
		rec, err := e.Svc.Refund(ctx, wallet.RefundRequest{Sale: sale, Key: k, Amount: map[string]int64{"x1": 30_00, "x2": 20_00}[k]})
		if err != nil || rec.Status != protocol.StatusApproved {
			t.Fatalf("%s after recovery: %+v %v", k, rec, err)
		}
	}
	if got := e.BankBalance(s); got != 100_00 {
		t.Fatalf("bank after repeats %d", got)
	}
	e.Check()
}
