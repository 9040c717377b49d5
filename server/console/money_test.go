package console_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"campuspay/protocol"
	"campuspay/server/console"
	"campuspay/server/operator"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// newMoneyRig is newRig with the reconciliation wired to the simulators.
func newMoneyRig(t *testing.T) *rig {
	t.Helper()
	env := wallettest.New(t)
	c := console.New(env.Svc, env.Store, console.Options{Now: env.Clock.Now, Parties: env.ReconcileParties()})
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &rig{t: t, env: env, c: c, srv: srv}
}

// sell pays amount at the test POS with the student's code and returns
// the sale's key.
func sell(t *testing.T, e *wallettest.Env, s *wallettest.Student, amount int64) (string, protocol.TxID) {
	t.Helper()
	tx := e.TxID()
	r := e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: tx, Terminal: wallettest.POS, At: e.Clock.Now(),
		Amount: amount, Cred: &protocol.Credential{Kind: protocol.CredCode, Text: e.PayCode(s)}})
	if r.Status != protocol.StatusApproved {
		t.Fatalf("sale: %+v", r)
	}
	return wallet.SaleKey(wallettest.POS, tx), tx
}

type saleRows struct {
	Sales []console.SaleRow `json:"sales"`
}

func TestRefundOverHTTP(t *testing.T) {
	r := newMoneyRig(t)
	s := r.env.AddStudent(wallettest.Options{BankBalance: 100_00})
	sale, _ := sell(t, r.env, s, 30_00) // from the bank card
	reversed, rtx := sell(t, r.env, s, 5_00)
	r.env.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpReverse, Tx: rtx, Terminal: wallettest.POS, At: r.env.Clock.Now()})
	r.addOperator("fin", operator.RoleFinance, "", false)
	r.addOperator("desk", operator.RoleHelpdesk, "", false)
	r.addOperator("shop", operator.RoleMerchant, wallettest.Merchant, false)
	fin := r.login("fin")

	var list saleRows
	if st := fin.do("GET", "/sales?student="+s.No, nil, &list); st != 200 {
		t.Fatalf("sales: %d", st)
	}
	found := false
	for _, row := range list.Sales {
		if row.Key == sale {
			found = row.Refundable && row.Channel == protocol.ChannelBankCard && row.StudentNo == s.No
		}
		if row.Key == reversed && row.Refundable {
			t.Fatalf("a reversed sale is offered for refund: %+v", row)
		}
	}
	if !found {
		t.Fatalf("sale %s not listed refundable: %+v", sale, list.Sales)
	}
	audits := func() int { return len(r.audit(operator.AuditQuery{Action: "sale.refund", Limit: 100})) }
	for _, c := range []struct {
		name   string
		who    *client
		body   console.RefundBody
		status int
		code   string
		bank   int64 // card balance after
		audits int
	}{
		{"helpdesk refused", r.login("desk"), console.RefundBody{Sale: sale, Key: "h1", Amount: 1_00, Reason: "x"}, 403, "FORBIDDEN", 70_00, 0},
		{"merchant refused", r.login("shop"), console.RefundBody{Sale: sale, Key: "m1", Amount: 1_00, Reason: "x"}, 403, "FORBIDDEN", 70_00, 0},
		{"no reason", fin, console.RefundBody{Sale: sale, Key: "f0", Amount: 1_00}, 400, "REASON_REQUIRED", 70_00, 0},
		{"above the sale", fin, console.RefundBody{Sale: sale, Key: "f1", Amount: 30_01, Reason: "typo"}, 422, "REFUND_EXCEEDS_SALE", 70_00, 0},
		{"reversed sale", fin, console.RefundBody{Sale: reversed, Key: "f2", Amount: 1_00, Reason: "typo"}, 422, "REFUND_SALE_REVERSED", 70_00, 0},
		{"partial", fin, console.RefundBody{Sale: sale, Key: "f3", Amount: 12_00, Reason: "wrong dish"}, 200, "", 82_00, 1},
		{"double click", fin, console.RefundBody{Sale: sale, Key: "f3", Amount: 12_00, Reason: "wrong dish"}, 200, "", 82_00, 1},
		{"the rest plus one", fin, console.RefundBody{Sale: sale, Key: "f4", Amount: 18_01, Reason: "x"}, 422, "REFUND_EXCEEDS_SALE", 82_00, 1},
		{"odd key", fin, console.RefundBody{Sale: sale, Key: "a b", Amount: 1_00, Reason: "x"}, 400, "BAD_REQUEST", 82_00, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out struct {
				Code     string
				Refunded int64
			}
			if st := c.who.do("POST", "/refunds", c.body, &out); st != c.status || out.Code != c.code {
				t.Fatalf("%d %s, want %d %s", st, out.Code, c.status, c.code)
			}
			if b := r.env.BankBalance(s); b != c.bank {
				t.Fatalf("card %d, want %d", b, c.bank)
			}
			if n := audits(); n != c.audits {
				t.Fatalf("%d audit entries, want %d", n, c.audits)
			}
		})
	}
	e := r.audit(operator.AuditQuery{Action: "sale.refund", Limit: 1})[0]
	if e.Name != "fin" || e.Target != "sale:"+sale || e.Reason != "wrong dish" || !strings.Contains(string(e.After), `"refunded":1200`) {
		t.Fatalf("audit entry %+v", e)
	}
	r.env.Check()
}

func TestSettlementAndReconciliationOverHTTP(t *testing.T) {
	r := newMoneyRig(t)
	s := r.env.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	sell(t, r.env, s, 5_00) // balance
	sale, _ := sell(t, r.env, s, 40_00)
	r.addOperator("fin", operator.RoleFinance, "", false)
	r.addOperator("shop", operator.RoleMerchant, wallettest.Merchant, false)
	r.addOperator("other", operator.RoleMerchant, "M002", false)
	fin := r.login("fin")
	var rf struct{ Code string }
	if st := fin.do("POST", "/refunds", console.RefundBody{Sale: sale, Key: "k", Amount: 10_00, Reason: "r"}, &rf); st != 200 {
		t.Fatalf("refund %d %s", st, rf.Code)
	}
	day := wallettest.T0.Format("2006-01-02")

	var set console.Settlement
	shop := r.login("shop")
	for _, c := range []struct {
		name   string
		who    *client
		path   string
		status int
		totals int
	}{
		{"finance, all", fin, "/settlement/" + day, 200, 2},
		{"merchant, own", shop, "/settlement/" + day, 200, 2},
		{"merchant, another", shop, "/settlement/" + day + "?merchant=M002", 403, 0},
		{"other merchant sees none of M001", r.login("other"), "/settlement/" + day, 200, 0},
		{"bad day", fin, "/settlement/30.11.2026", 400, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			set = console.Settlement{}
			if st := c.who.do("GET", c.path, nil, &set); st != c.status || len(set.Totals) != c.totals {
				t.Fatalf("%d %+v", st, set)
			}
		})
	}
	st, csv := shop.raw("GET", "/settlement/"+day+"/csv", nil, nil)
	if st != 200 || !strings.Contains(string(csv), day+",M001,云谷食堂,bank_card,1,40.00,1,10.00,30.00") {
		t.Fatalf("csv %d %s", st, csv)
	}
	var rep console.ReconciliationView
	if st := fin.do("GET", "/reconciliation/"+day, nil, &rep); st != 200 || rep.Mismatches != 0 || len(rep.Parties) != 2 {
		t.Fatalf("reconciliation %d %+v", st, rep)
	}
	entries, err := r.env.Bank.Statement(wallettest.BankClient, day)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Op == "refund" {
			r.env.Bank.SkipInStatement(e.Key)
		}
	}
	if st := fin.do("GET", "/reconciliation/"+day, nil, &rep); st != 200 || rep.Mismatches != 1 ||
		rep.Parties[0].Mismatches[0].Kind != "missing_theirs" || rep.Parties[0].Mismatches[0].Ours != -10_00 {
		t.Fatalf("reconciliation with a lost refund %d %+v", st, rep)
	}
}

// A merchant manager's sales list holds their own merchant's sales only,
// without student numbers or refund offers, and refuses a student search.
func TestMerchantSalesOverHTTP(t *testing.T) {
	r := newMoneyRig(t)
	s := r.env.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	sell(t, r.env, s, 5_00)
	r.addOperator("shop", operator.RoleMerchant, wallettest.Merchant, false)
	r.addOperator("other", operator.RoleMerchant, "M002", false)
	var list saleRows
	if st := r.login("shop").do("GET", "/sales", nil, &list); st != 200 || len(list.Sales) == 0 {
		t.Fatalf("own sales: %d, %d rows", st, len(list.Sales))
	}
	for _, row := range list.Sales {
		if row.Merchant != wallettest.Merchant || row.StudentNo != "" || row.Refundable {
			t.Fatalf("merchant manager sees %+v", row)
		}
	}
	if st := r.login("other").do("GET", "/sales", nil, &list); st != 200 || len(list.Sales) != 0 {
		t.Fatalf("another merchant's manager: %d, %d rows", st, len(list.Sales))
	}
	if st := r.login("shop").do("GET", "/sales?student="+s.No, nil, &list); st != 403 {
		t.Fatalf("student search by a merchant manager: %d, want 403", st)
	}
}
