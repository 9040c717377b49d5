package browsertest

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// offlineEntry is the journal entry of code accepted offline at terminal.
func offlineEntry(t *testing.T, terminal string, seq uint64, code string, amount int64) *protocol.JournalEntry {
	tx, err := protocol.NewTxID(time.Now(), rand.Reader)
	must(t, err)
	return &protocol.JournalEntry{V: 1, Terminal: terminal, Seq: seq, Tx: tx, Kind: protocol.EntryOffline,
		Status: protocol.StatusApproved, Amount: amount, CredKind: protocol.CredCode, Cred: code, At: time.Now()}
}

// TestOfflinePage: on a 360 px phone, in Chinese and in English, the
// student turns an offline allowance on (its hold and expiry shown), the
// page makes codes under it with the authorizer unreachable, those codes
// settle when terminals upload them, a debt left by offline payments
// nothing covered is shown, a replayed code's flag is on its line of the
// details, the next top-up repays the debt (a line of its own), and
// turning the allowance off gives the phone its plain certificate back.
// Screenshots are test artifacts.
func TestOfflinePage(t *testing.T) {
	b := newBrowser(t)
	r := newRig(t)
	art := artifacts(t)
	ctx := context.Background()
	if _, err := r.svc.AddTerminal(ctx, wallet.Terminal{ID: "pos-2", Merchant: wallettest.Merchant, Mode: protocol.ModePOS}); err != nil {
		t.Fatal(err)
	}
	s := r.e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	must(t, b.Open(r.srv.URL))
	mustEval[bool](t, b, `(localStorage.setItem("lang", "zh"), true)`)
	must(t, b.Login(s.No, s.Password))
	must(t, b.Show("offline"))
	if got := mustEval[string](t, b, `document.querySelector("#allowance-amount").textContent`); got != "未开启" {
		t.Fatalf("allowance before: %q", got)
	}
	screenshot(t, b, art, "offline-zh-off.png")

	must(t, b.Fill("#allowance-form", map[string]string{"amount": "20"}))
	must(t, b.Submit("#allowance-form"))
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "offline" && document.querySelector("#allowance-held")?.dataset.cents === "2000"`); err != nil {
		msg, _ := Eval[string](b, `document.querySelector("#view").textContent`)
		t.Fatalf("%v: %s", err, msg)
	}
	until := mustEval[string](t, b, `document.querySelector("#allowance-until").textContent`)
	if until == "" || until == "—" {
		t.Fatalf("valid until %q", until)
	}
	screenshot(t, b, art, "offline-zh-on.png")

	// The campus network goes down: the page still makes codes, and they
	// carry the allowance.
	r.apiDown.Store(true)
	code, err := b.Code("pay")
	must(t, err)
	c, err := protocol.ParseCode(code)
	if err != nil || c.Cert.Allowance == nil || c.Cert.Allowance.Amount != 20_00 {
		t.Fatalf("code made offline: %+v %v", c, err)
	}
	if _, err := WaitFor[bool](b, `!document.querySelector("#offline-note").hidden`); err != nil {
		t.Fatal(err)
	}
	screenshot(t, b, art, "offline-zh-code-network-down.png")
	mustEval[bool](t, b, `(document.querySelector("#refresh").click(), true)`)
	second, err := b.NextCode(code)
	must(t, err)
	mustEval[bool](t, b, `(document.querySelector("#refresh").click(), true)`)
	third, err := b.NextCode(code, second)
	must(t, err)
	r.apiDown.Store(false)
	// Three tills took them offline, and a screenshot of the first code a
	// second time; the card refuses: ¥65 on a ¥50 balance leaves a ¥15 debt.
	must(t, r.e.Bank.SetFrozen(s.BankCode, s.BankCard, true))
	for i, e := range []*protocol.JournalEntry{
		offlineEntry(t, wallettest.POS, 1, code, 20_00), offlineEntry(t, "pos-2", 1, second, 20_00), offlineEntry(t, wallettest.CardBox, 1, third, 20_00),
		offlineEntry(t, "pos-2", 2, code, 5_00),
	} {
		if ack := r.svc.ApplyJournal(ctx, e); ack == nil || !ack.OK {
			t.Fatalf("entry %d: %+v", i, ack)
		}
	}
	must(t, b.Show("offline"))
	if got := mustEval[string](t, b, `document.querySelector("#offline-debt").dataset.cents`); got != "1500" {
		t.Fatalf("debt shown %s", got)
	}
	if !mustEval[bool](t, b, `!!document.querySelector("#debt-warning") && !document.querySelector("#allowance-form")`) {
		t.Fatal("no debt warning, or an allowance offered with a debt")
	}
	screenshot(t, b, art, "offline-zh-debt.png")
	must(t, b.Show("tx"))
	if !mustEval[bool](t, b, `document.querySelector("#view").textContent.includes("离线消费")`) {
		t.Fatal("transactions do not show the offline payments")
	}
	if got := mustEval[string](t, b, `[...document.querySelectorAll("#txlist .flag")].map((f) => f.dataset.flag + ":" + f.textContent).join()`); got != "code_replayed:付款码重复使用" {
		t.Fatalf("flags shown %q", got)
	}
	screenshot(t, b, art, "offline-zh-tx-flag.png")

	// English: the same page.
	mustEval[bool](t, b, `(document.querySelector("#lang").click(), true)`)
	must(t, b.Show("offline"))
	txt := mustEval[string](t, b, `document.querySelector("#view").textContent`)
	if !strings.Contains(txt, "Offline allowance") || !strings.Contains(txt, "Offline debt") {
		t.Fatalf("English page: %q", txt)
	}
	screenshot(t, b, art, "offline-en-debt.png")

	// Repaid by the next top-up (¥25: ¥15 to the debt, ¥10 left), then
	// turned off: the phone's codes go back to the plain certificate.
	must(t, r.e.Bank.SetFrozen(s.BankCode, s.BankCard, false))
	if _, err := r.svc.TopUp(ctx, s.ID, "page-topup", 25_00); err != nil {
		t.Fatal(err)
	}
	must(t, b.Show("home"))
	must(t, b.Show("offline"))
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "offline" && document.querySelector("#offline-debt")?.dataset.cents === "0" && !document.querySelector("#repay")`); err != nil {
		t.Fatal(err)
	}
	must(t, b.Show("tx"))
	txt = mustEval[string](t, b, `document.querySelector("#txlist").textContent`)
	if !strings.Contains(txt, "Debt repaid") || !strings.Contains(txt, "-¥15.00") || !strings.Contains(txt, "Payment code used twice") {
		t.Fatalf("English details after the top-up: %q", txt)
	}
	screenshot(t, b, art, "offline-en-tx-repaid.png")
	must(t, b.Show("offline"))
	must(t, b.Fill("#allowance-form", map[string]string{"amount": "10"}))
	must(t, b.Submit("#allowance-form"))
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "offline" && document.querySelector("#allowance-held")?.dataset.cents === "1000"`); err != nil {
		t.Fatal(err)
	}
	screenshot(t, b, art, "offline-en-on.png")
	must(t, b.Submit("#allowance-off"))
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "offline" && !document.querySelector("#allowance-off")`); err != nil {
		t.Fatal(err)
	}
	plain, err := b.Code("pay", code, second, third)
	must(t, err)
	if c, err := protocol.ParseCode(plain); err != nil || c.Cert.Allowance != nil {
		t.Fatalf("code after turning off: %+v %v", c, err)
	}
	r.e.Check()
}
