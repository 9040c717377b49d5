package browsertest

import (
	"context"
	"strings"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet/wallettest"
)

// TestAirplaneMode: two students in incognito tabs of one Chromium at
// 360 px. One turns an offline allowance on in the page, then puts the
// phone in airplane mode and opens the app from its icon: the service
// worker serves the page, the home page says the codes still work and
// keeps their tiles (in Chinese and in English), and the page makes codes
// under the allowance with its key from IndexedDB. A code settles when a
// terminal uploads it; with the network back the home page redraws with
// the balance and the offline page shows what is left of the hold. The
// other student's tab, online all along, shares nothing with the first.
// Screenshots are test artifacts.
func TestAirplaneMode(t *testing.T) {
	root := newBrowser(t)
	r := newRig(t)
	art := artifacts(t)
	tabs := make([]*Browser, 2)
	studs := make([]*wallettest.Student, 2)
	for i := range tabs {
		b, err := root.Incognito()
		must(t, err)
		t.Cleanup(b.Close)
		tabs[i] = b
		studs[i] = r.e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
		must(t, b.Open(r.srv.URL))
		must(t, b.Login(studs[i].No, studs[i].Password))
	}
	b := tabs[0]
	if mustEval[string](t, tabs[1], `localStorage.getItem("user")`) == mustEval[string](t, b, `localStorage.getItem("user")`) {
		t.Fatal("the incognito tabs share a session")
	}
	must(t, b.Show("offline"))
	must(t, b.Fill("#allowance-form", map[string]string{"amount": "20"}))
	must(t, b.Submit("#allowance-form"))
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "offline" && document.querySelector("#allowance-held")?.dataset.cents === "2000"`); err != nil {
		t.Fatal(err)
	}
	first, err := b.Code("pay")
	must(t, err)
	if _, err := WaitFor[bool](b, `navigator.serviceWorker.controller !== null &&
		caches.open("campuspay-shell-v1").then((c) => c.match("/gen/wallet.wasm")).then((r) => !!r)`); err != nil {
		t.Fatal(err)
	}

	// Airplane mode; the student opens the app from its icon (start_url
	// "/": the home page).
	must(t, b.Airplane(true))
	mustEval[bool](t, b, `(history.replaceState(null, "", "/"), true)`)
	must(t, b.Reload())
	if !mustEval[bool](t, b, `!navigator.onLine && navigator.serviceWorker.controller !== null`) {
		t.Fatal("after the reload in airplane mode: online, or no service worker in control")
	}
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "home" && !!document.querySelector("#offline-home") &&
		!document.querySelector('[data-go="paycode"]').disabled && document.querySelector("#net").dataset.online === "0"`); err != nil {
		t.Fatalf("%v: %s", err, mustEval[string](t, b, `document.querySelector("#view").textContent`))
	}
	shots(t, b, art, "airplane-home")
	var codes []string
	for _, lang := range []string{"zh", "en"} {
		inLang(t, b, lang) // the code page redrawn in English makes a new code
		if len(codes) == 0 {
			mustEval[bool](t, b, `(document.querySelector('[data-go="paycode"]').click(), true)`)
		}
		png, code, err := b.CodeScreenshot(append(codes, first)...)
		must(t, err)
		codes = append(codes, code)
		c, err := protocol.ParseCode(code)
		if err != nil || c.Cert.Allowance == nil || c.Cert.Allowance.Amount != 20_00 {
			t.Fatalf("code made in airplane mode: %+v %v", c, err)
		}
		if _, err := WaitFor[bool](b, `!document.querySelector("#offline-note").hidden`); err != nil {
			t.Fatal(err)
		}
		save(t, art, "airplane-code-"+lang+".png", png)
		screenshot(t, b, art, "airplane-paycode-"+lang+".png")
	}
	inLang(t, b, "zh")
	// The other student, online all along, sees their own wallet.
	show(t, tabs[1], "home")
	if got := mustEval[string](t, tabs[1], `document.querySelector("#view").textContent`); !strings.Contains(got, studs[1].No) {
		t.Fatalf("second tab's home: %q", got)
	}

	// A till took the first code offline; the network returns while the
	// home page is shown.
	if ack := r.svc.ApplyJournal(context.Background(), offlineEntry(t, wallettest.POS, 1, codes[0], 12_50)); ack == nil || !ack.OK {
		t.Fatalf("offline entry: %+v", ack)
	}
	must(t, b.Show("home"))
	must(t, b.Airplane(false))
	if _, err := WaitFor[bool](b, `document.querySelector("#balance")?.dataset.cents === "3750"`); err != nil {
		t.Fatalf("home after the network returned: %v", err)
	}
	must(t, b.Show("offline"))
	if got := mustEval[string](t, b, `document.querySelector("#allowance-held").dataset.cents`); got != "750" {
		t.Fatalf("hold after settlement %s, want 750", got)
	}
	shots(t, b, art, "airplane-back-offline")
	r.e.Check()
}
