package console_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"campuspay/server/operator"
	"campuspay/server/wallet/wallettest"
	"campuspay/server/web/browsertest"
)

// TestMoneyPagesInChromium: in one headless Chromium at 360 px, finance
// refunds a sale from the sales page (a double click refunds once), reads
// the day's settlement and its reconciliation, in Chinese and in English;
// a merchant manager's settlement shows only their merchant. Screenshots
// are saved as artifacts ($ARTIFACTS_DIR, else the test's temp dir).
func TestMoneyPagesInChromium(t *testing.T) {
	r := newMoneyRig(t)
	s := r.env.AddStudent(wallettest.Options{BankBalance: 100_00})
	sale, _ := sell(t, r.env, s, 30_00)
	r.addOperator("fin", operator.RoleFinance, "", false)
	r.addOperator("shop", operator.RoleMerchant, wallettest.Merchant, false)
	day := wallettest.T0.Format("2006-01-02")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := browsertest.New(ctx, browsertest.Options{Width: 360, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	art := os.Getenv("ARTIFACTS_DIR")
	if art == "" {
		art = t.TempDir()
	} else if err := os.MkdirAll(art, 0o755); err != nil {
		t.Fatal(err)
	}
	eval := func(js string) {
		t.Helper()
		if _, err := browsertest.Eval[bool](b, "("+js+", true)"); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(js string) {
		t.Helper()
		if _, err := browsertest.WaitFor[bool](b, js); err != nil {
			t.Fatal(err)
		}
	}
	show := func(hash, page string) {
		t.Helper()
		eval(`document.getElementById("page").dataset.ready = "", location.hash = ` + fmt.Sprintf("%q", hash))
		wait(fmt.Sprintf(`document.getElementById("page").dataset.ready === %q`, page))
	}
	shot := func(name string) {
		t.Helper()
		if w, err := browsertest.Eval[int](b, `document.documentElement.scrollWidth`); err != nil || w > 360 {
			t.Errorf("%s: the page is %d px wide on a 360 px screen (%v)", name, w, err)
		}
		png, err := b.Screenshot()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(art, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("artifact: %s", p)
	}
	login := func(name string) {
		t.Helper()
		eval(`localStorage.setItem("console.lang", "zh")`)
		if err := b.Do(chromedp.Navigate(r.srv.URL + "/console/")); err != nil {
			t.Fatal(err)
		}
		wait(`!document.getElementById("login").hidden`)
		if err := b.Fill("#login", map[string]string{"name": name, "password": password}); err != nil {
			t.Fatal(err)
		}
		if err := b.Submit("#login"); err != nil {
			t.Fatal(err)
		}
		wait(`document.getElementById("login").hidden && !!document.getElementById("page").dataset.ready`)
	}
	if err := b.Do(chromedp.Navigate(r.srv.URL + "/console/")); err != nil {
		t.Fatal(err)
	}
	login("fin")

	// Chinese: the sales page, the refund form, a double click.
	show("#/sales?student="+s.No, "sales")
	eval(fmt.Sprintf(`document.querySelector('tr[data-key=%q] .refund-btn').click()`, sale))
	wait(`!!document.getElementById("refund-form")`)
	if err := b.Fill("#refund-form", map[string]string{"amount": "12.5", "reason": "菜品有误"}); err != nil {
		t.Fatal(err)
	}
	shot("console-refund-zh.png")
	eval(`(() => { const f = document.getElementById("refund-form"); f.requestSubmit(); f.requestSubmit(); })()`)
	wait(`document.getElementById("refund-result").dataset.refunded === "1250"`)
	wait(`!document.getElementById("refund-form").querySelector("button").disabled`)
	eval(`document.getElementById("refund-form").requestSubmit()`) // a third click, later: the same refund
	wait(`!document.getElementById("refund-form").querySelector("button").disabled`)
	if got := r.env.BankBalance(s); got != 100_00-30_00+12_50 {
		t.Fatalf("card after the refund clicks: %d", got)
	}
	shot("console-refunded-zh.png")

	show("#/settlement?day="+day, "settlement")
	wait(`!!document.querySelector('#settle-list tr[data-channel="bank_card"]')`)
	shot("console-settlement-zh.png")
	show("#/reconcile?day="+day, "reconcile")
	wait(`document.getElementById("reconcile-summary").dataset.mismatches === "0"`)
	shot("console-reconcile-zh.png")

	// English.
	eval(`document.getElementById("lang").click()`)
	wait(`document.documentElement.lang === "en"`)
	show("#/sales?student="+s.No, "sales")
	shot("console-sales-en.png")
	show("#/settlement?day="+day, "settlement")
	net, err := browsertest.Eval[string](b, `document.querySelector('#settle-list tr[data-channel="bank_card"] .net').textContent`)
	if err != nil || net != "¥17.50" {
		t.Fatalf("net %q %v", net, err)
	}
	shot("console-settlement-en.png")
	show("#/reconcile?day="+day, "reconcile")
	shot("console-reconcile-en.png")

	// A merchant manager: the settlement of their merchant, no sales page.
	eval(`document.getElementById("logout").click()`)
	wait(`!document.getElementById("login").hidden`)
	login("shop")
	show("#/settlement?day="+day, "settlement")
	if n, err := browsertest.Eval[int](b, `document.querySelectorAll('#settle-list tr[data-merchant]:not([data-merchant="M001"])').length`); err != nil || n != 0 {
		t.Fatalf("merchant sees %d rows of other merchants (%v)", n, err)
	}
	if n, err := browsertest.Eval[int](b, `document.querySelectorAll('#nav a[data-page="reconcile"]').length`); err != nil || n != 0 {
		t.Fatalf("merchant's menu offers %d reconciliation pages (%v)", n, err)
	}
	shot("console-settlement-merchant-zh.png")
	// Their sales: their merchant's only, no student search, no refund.
	show("#/sales", "sales")
	if n, err := browsertest.Eval[int](b, `document.querySelectorAll('#sales-list tr[data-key]').length`); err != nil || n == 0 {
		t.Fatalf("merchant sees %d of their sales (%v)", n, err)
	}
	if n, err := browsertest.Eval[int](b, `document.querySelectorAll('#sales-search, .refund-btn').length`); err != nil || n != 0 {
		t.Fatalf("merchant's sales page offers %d student searches or refunds (%v)", n, err)
	}
	shot("console-sales-merchant-zh.png")
}
