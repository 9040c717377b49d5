package browsertest

import (
	"context"
	"strings"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet/wallettest"
)

// TestAirplaneMode: two students in incognito tabs of one Chromium at
// 360 px. One turns an offline allowance on in the page and puts the
// phone in airplane mode: the service worker serves the page on reload,
// the page makes a code under the allowance with its key from IndexedDB
// (in Chinese and in English, screenshots as artifacts), the code settles
// when a terminal uploads it, and with the network back the page shows
// what is left of the hold. The other student's tab, online all along,
// shares nothing with the first.
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

	must(t, b.Airplane(true))
	must(t, b.Reload())
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "paycode"`); err != nil {
		t.Fatal(err)
	}
	// The page came from the service worker: the network is off.
	if !mustEval[bool](t, b, `!navigator.onLine && navigator.serviceWorker.controller !== null`) {
		t.Fatal("after the reload in airplane mode: online, or no service worker in control")
	}
	var codes []string
	for _, lang := range []string{"zh", "en"} {
		inLang(t, b, lang)
		png, code, err := b.CodeScreenshot(append(codes, first)...)
		must(t, err)
		codes = append(codes, code)
		c, err := protocol.ParseCode(code)
		if err != nil || c.Cert.Allowance == nil || c.Cert.Allowance.Amount != 20_00 {
			t.Fatalf("code made in airplane mode: %+v %v", c, err)
		}
		if text, err := decodePNG(png); err != nil || text != code {
			t.Fatalf("screenshot decodes to %q %v", text, err)
		}
		if _, err := WaitFor[bool](b, `!document.querySelector("#offline-note").hidden && document.querySelector("#net").dataset.online === "0"`); err != nil {
			t.Fatal(err)
		}
		save(t, art, "airplane-code-"+lang+".png", png)
		screenshot(t, b, art, "airplane-paycode-"+lang+".png")
		mustEval[bool](t, b, `(document.querySelector("#refresh").click(), true)`)
	}
	// The other student, online all along, sees their own wallet.
	show(t, tabs[1], "home")
	if got := mustEval[string](t, tabs[1], `document.querySelector("#view").textContent`); !strings.Contains(got, studs[1].No) {
		t.Fatalf("second tab's home: %q", got)
	}

	// A till took the first code offline; the network returns.
	if ack := r.svc.ApplyJournal(context.Background(), offlineEntry(t, wallettest.POS, 1, codes[0], 12_50)); ack == nil || !ack.OK {
		t.Fatalf("offline entry: %+v", ack)
	}
	must(t, b.Airplane(false))
	must(t, b.Show("offline"))
	if got := mustEval[string](t, b, `document.querySelector("#allowance-held").dataset.cents`); got != "750" {
		t.Fatalf("hold after settlement %s, want 750", got)
	}
	shots(t, b, art, "airplane-back-offline")
	r.e.Check()
}
