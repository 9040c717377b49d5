package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	banksim "campuspay/hwsim/bank"
	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// TestRefundAndSettleCommands: a card sale refunded from the CLI, the
// day's CSV, and the reconciliation with the bank simulator — clean, then
// with a movement the bank's statement leaves out.
func TestRefundAndSettleCommands(t *testing.T) {
	dir := t.TempDir()
	clock := &wallettest.Clock{}
	clock.Set(wallettest.T0)
	bs, burl, _, wurl := wallettest.Sims(t, clock)
	cfg := writeConfig(t, dir, burl, wurl)
	ctx := context.Background()

	m, err := Open(Options{Data: dir, ConfigPath: cfg, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.Svc.AddMerchant(ctx, wallet.Merchant{ID: "M1", Name: "云谷食堂", Campus: "yungu"}))
	_, err = m.Svc.AddTerminal(ctx, wallet.Terminal{ID: "pos-1", Merchant: "M1", Mode: protocol.ModePOS})
	must(err)
	idNo, card := wallettest.IDNumber("11010520000101001"), banksim.LuhnComplete("621700000000001")
	_, err = m.Svc.ImportStudent(ctx, wallet.RosterEntry{StudentNo: "20260001", Name: "张三", IDNumber: idNo, Phone: "13800000001",
		Campus: "yungu", CardUID: "CA0001", Password: "pw"})
	must(err)
	must(bs.AddAccount(banksim.Account{BankCode: "CCB", CardNumber: card, Name: "张三", IDNumber: idNo, Phone: "13800000001", Balance: 100_00}))
	u, err := m.Store.UserByStudentNo(ctx, "20260001")
	must(err)
	must(m.Svc.BindCard(ctx, u.ID, wallet.BindRequest{BankCode: "CCB", CardNumber: card}))
	must(m.Svc.SetPasswordFree(ctx, u.ID, true))
	tx, err := protocol.NewTxID(clock.Now(), rand.Reader)
	must(err)
	r := m.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: tx, Terminal: "pos-1", At: clock.Now(), Amount: 30_00,
		Cred: &protocol.Credential{Kind: protocol.CredCard, Text: "CA0001"}})
	if r.Status != protocol.StatusApproved || r.Channel != protocol.ChannelBankCard {
		t.Fatalf("sale %+v", r)
	}
	m.Close()

	cli := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		c := &cli{ctx: ctx, out: &out, errw: &errb, common: common{data: dir}, opts: Options{Now: clock.Now}}
		code := c.main(append([]string{"--data", dir, "--config", cfg}, args...))
		return code, out.String(), errb.String()
	}
	date := wallettest.T0.Format(time.DateOnly)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"refund", []string{"refund", "sale", "--terminal", "pos-1", "--tx", string(tx), "--amount", "12.50", "--key", "desk-1", "--reason", "wrong dish"},
			0, "refunded 12.50 of T:pos-1:" + string(tx) + " to bank_card"},
		{"same key again", []string{"refund", "sale", "--terminal", "pos-1", "--tx", string(tx), "--amount", "12.50", "--key", "desk-1", "--reason", "wrong dish"}, 0, "refunded 12.50"},
		{"above the rest", []string{"refund", "sale", "--sale", wallet.SaleKey("pos-1", tx), "--amount", "17.51", "--key", "desk-2", "--reason", "x"}, 1, ""},
		{"no reason", []string{"refund", "sale", "--sale", wallet.SaleKey("pos-1", tx), "--amount", "1", "--key", "desk-4"}, 1, ""},
		{"no amount", []string{"refund", "sale", "--sale", wallet.SaleKey("pos-1", tx), "--key", "desk-3"}, 2, ""},
		{"day CSV", []string{"settle", "day", "--date", date}, 0, date + ",M1,云谷食堂,bank_card,1,30.00,1,12.50,17.50\n"},
		{"one merchant", []string{"settle", "day", "--date", date, "--merchant", "M1"}, 0, "bank_card,1,30.00"},
		{"bad date", []string{"settle", "day", "--date", "30.11.2026"}, 2, ""},
		{"reconciles", []string{"settle", "reconcile", "--date", date}, 0, date + ": 0 mismatches"},
		{"keys listed", []string{"tx", "list", "--keys"}, 0, "RF:T:pos-1:" + string(tx) + ":0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := cli(c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d (want %d)\n%s\n%s", code, c.code, out, errs)
			}
			if c.name == "above the rest" && !strings.Contains(errs, protocol.ErrRefundExceedsSale.ZH) {
				t.Fatalf("refusal %q", errs)
			}
		})
	}
	if b, _ := bs.Balance("CCB", card); b != 100_00-30_00+12_50 {
		t.Fatalf("card balance %d", b)
	}
	// The bank's statement "loses" the refund: listed, exit 1.
	entries, err := bs.Statement(wallettest.BankClient, date)
	must(err)
	for _, e := range entries {
		if e.Op == "refund" {
			bs.SkipInStatement(e.Key)
		}
	}
	code, out, errs := cli("settle", "reconcile", "--date", date)
	if code != 1 || !strings.Contains(out, "missing_theirs") || !strings.Contains(out, "-12.50") || !strings.Contains(out, date+": 1 mismatches") {
		t.Fatalf("reconcile with a lost refund: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = cli("settle", "reconcile", "--date", date, "--csv")
	if code != 1 || !strings.Contains(out, date+",bank,missing_theirs,") {
		t.Fatalf("reconcile --csv: exit %d\n%s", code, out)
	}
}
