package browsertest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"campuspay/protocol"
	"campuspay/server/api"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// inLang switches the page to lang ("zh" or "en") if it shows the other,
// and waits until the current page is drawn again.
func inLang(t *testing.T, b *Browser, lang string) {
	t.Helper()
	page := mustEval[string](t, b, `document.body.dataset.rendered`)
	if mustEval[string](t, b, `localStorage.getItem("lang") || "zh"`) == lang {
		return
	}
	mustEval[bool](t, b, `(document.body.dataset.rendered = "", document.querySelector("#lang").click(), true)`)
	if _, err := WaitFor[bool](b, fmt.Sprintf(`document.body.dataset.rendered === %q && document.documentElement.lang === %q`, page,
		map[string]string{"zh": "zh-CN", "en": "en"}[lang])); err != nil {
		t.Fatal(err)
	}
}

// shots saves the page drawn now in Chinese and in English (then back to
// Chinese): name-zh.png, name-en.png.
func shots(t *testing.T, b *Browser, dir, name string) {
	t.Helper()
	inLang(t, b, "zh")
	screenshot(t, b, dir, name+"-zh.png")
	inLang(t, b, "en")
	screenshot(t, b, dir, name+"-en.png")
	inLang(t, b, "zh")
}

// show is Browser.Show that also redraws the page already shown.
func show(t *testing.T, b *Browser, page string) {
	t.Helper()
	mustEval[bool](t, b, fmt.Sprintf(`(document.body.dataset.rendered = "", location.hash.slice(1) === %q ? route() : (location.hash = %q), true)`, page, page))
	if _, err := WaitFor[bool](b, fmt.Sprintf(`document.body.dataset.rendered === %q`, strings.SplitN(page, "/", 2)[0])); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, b *Browser, sel string) string {
	t.Helper()
	return mustEval[string](t, b, fmt.Sprintf(`(document.querySelector(%q) || {textContent: "<none>"}).textContent`, sel))
}

// TestPagesInBrowser walks the wallet's help, shower, statement,
// scan-to-pay and settings pages in headless Chromium at 360 px, in
// Chinese and English, against a real authorizer back end.
func TestPagesInBrowser(t *testing.T) {
	b := newBrowser(t)
	r := newRig(t, func(o *api.Options) {
		o.Support = api.Support{NameZH: "一卡通服务中心", NameEN: "Card Service Centre", Phone: "0571-88880000", HoursZH: "工作日 8:30–17:00", HoursEN: "Weekdays 8:30–17:00"}
	})
	art := artifacts(t)
	ctx := context.Background()
	// Students are set up on the real clock, so their records fall in the
	// month the browser shows.
	r.e.Clock.Set(time.Now())
	if _, err := r.svc.AddTerminal(ctx, wallet.Terminal{ID: wallettest.POS, Merchant: wallettest.Merchant, Mode: protocol.ModePOS, Name: "二楼3号窗口"}); err != nil {
		t.Fatal(err)
	}
	s := r.e.AddStudent(wallettest.Options{Category: wallet.VocationalCategory, BankBalance: 300_00, TopUp: 50_00})
	must(t, b.Open(r.srv.URL))

	// The page names reasons and labels from protocol's tables, exported
	// by the WebAssembly module: they match the server's, entry by entry.
	t.Run("reason and label tables match the server", func(t *testing.T) {
		type pair struct{ ZH, EN string }
		reasons := mustEval[map[string]pair](t, b, `campuspay.reasons`)
		all := protocol.Reasons()
		if len(reasons) != len(all) {
			t.Fatalf("page has %d reasons, protocol %d", len(reasons), len(all))
		}
		for _, rs := range all {
			if got := reasons[rs.Code]; got != (pair{rs.ZH, rs.EN}) {
				t.Errorf("%s: page %+v, protocol %q %q", rs.Code, got, rs.ZH, rs.EN)
			}
		}
		labels := mustEval[map[string]pair](t, b, `campuspay.labels`)
		want := protocol.Labels()
		if len(labels) != len(want) {
			t.Fatalf("page has %d labels, protocol %d", len(labels), len(want))
		}
		for k, l := range want {
			if labels[k] != (pair{l.ZH, l.EN}) {
				t.Errorf("%s: page %+v, protocol %+v", k, labels[k], l)
			}
		}
	})

	t.Run("help before login", func(t *testing.T) {
		if text(t, b, "#login-help") == "<none>" {
			t.Fatal("the login page does not link the help")
		}
		show(t, b, "help")
		for sel, want := range map[string]string{
			"#guide-activation": "银行卡", "#guide-wechat": "校园e码通", "#faq-camera": "Safari", "#faq-lifetime": "60",
			"#support": "0571-88880000", "#pwfree-advice": "建议每位同学开通免密支付", "#help-banks": "建设银行",
		} {
			if got := text(t, b, sel); !strings.Contains(got, want) {
				t.Errorf("%s: %q lacks %q", sel, got, want)
			}
		}
		for _, id := range []string{"camera", "cardtap", "bind", "change", "notopup", "lifetime", "identity", "limits"} {
			if text(t, b, "#faq-"+id) == "<none>" {
				t.Errorf("no FAQ entry %s", id)
			}
		}
		mustEval[bool](t, b, `(document.querySelectorAll("details.faq").forEach((d) => d.open = true), true)`)
		shots(t, b, art, "help")
		inLang(t, b, "en")
		if got := text(t, b, "#faq-camera"); !strings.Contains(got, "Android (Chrome)") || !strings.Contains(got, "Inside WeChat") {
			t.Errorf("camera answer in English: %q", got)
		}
		inLang(t, b, "zh")
	})

	must(t, b.Login(s.No, s.Password))

	t.Run("home tiles", func(t *testing.T) {
		got := mustEval[[]string](t, b, `[...document.querySelectorAll(".grid [data-go]")].map((b) => b.dataset.go)`)
		for _, p := range []string{"help", "shower", "settings", "tx", "paycode"} {
			if !strings.Contains(strings.Join(got, " "), p) {
				t.Errorf("home tiles %q lack %s", got, p)
			}
		}
	})

	t.Run("help insists for a vocational student", func(t *testing.T) {
		show(t, b, "help")
		if !strings.Contains(text(t, b, "#pwfree-insist"), "中专生") {
			t.Fatal("no insistence for a 中专生")
		}
		mustEval[bool](t, b, `(document.body.dataset.rendered = "", document.querySelector("#go-pwfree").click(), true)`)
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "pwfree"`); err != nil {
			t.Fatal(err)
		}
		show(t, b, "help")
		shots(t, b, art, "help-vocational")
	})

	// A shower metered on the Yungu box, then the page.
	tx, err := protocol.NewTxID(time.Now(), rand.Reader)
	must(t, err)
	sealed, err := protocol.SealSecret(r.e.Keys.SealPub, tx, s.WaterPW, nil)
	must(t, err)
	if h := r.svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpHold, Tx: tx, Terminal: wallettest.Shower,
		Cred: &protocol.Credential{Kind: protocol.CredAccount, Text: s.No}, Secret: sealed}); h.Status != protocol.StatusHeld {
		t.Fatalf("hold %+v", h)
	}
	if c := r.svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpCapture, Tx: tx, Terminal: wallettest.Shower, Amount: 7_30, ML: 73_000}); c.Status != protocol.StatusApproved {
		t.Fatalf("capture %+v", c)
	}

	t.Run("shower", func(t *testing.T) {
		show(t, b, "shower")
		type item struct {
			ML     int64  `json:"ml"`
			Amount int64  `json:"amount"`
			Text   string `json:"text"`
		}
		items := mustEval[[]item](t, b, `[...document.querySelectorAll("#shower-history li[data-ml]")].map((li) => ({ml: +li.dataset.ml, amount: +li.dataset.amount, text: li.textContent}))`)
		if len(items) != 1 || items[0].ML != 73_000 || items[0].Amount != 7_30 || !strings.Contains(items[0].Text, "73.0 升") || !strings.Contains(items[0].Text, "¥7.30") {
			t.Fatalf("shower history %+v", items)
		}
		if !strings.Contains(text(t, b, "#shower-campus"), "云谷") || text(t, b, "#shower-ok") == "<none>" || text(t, b, "#shower-low") != "<none>" {
			t.Fatalf("campus %q, balance ok %q", text(t, b, "#shower-campus"), text(t, b, "#shower-ok"))
		}
		// Change the water password from this page.
		before, err := r.e.Store.User(ctx, s.ID)
		must(t, err)
		must(t, b.Fill("#shower-waterpwd", map[string]string{"old_password": s.WaterPW, "password": "975310"}))
		must(t, b.Submit("#shower-waterpwd"))
		if _, err := WaitFor[bool](b, `!document.querySelector("#toast").hidden && document.querySelector("#toast").textContent === "已保存"`); err != nil {
			t.Fatal(err)
		}
		u, err := r.e.Store.User(ctx, s.ID)
		must(t, err)
		if u.WaterHash == before.WaterHash {
			t.Fatal("the water password did not change")
		}
		// A limit under ¥15 warns that showers are blocked.
		must(t, r.svc.SetLimits(ctx, s.ID, 10_00, 100_00))
		show(t, b, "shower")
		if text(t, b, "#shower-limit-low") == "<none>" {
			t.Fatal("no warning for a limit under ¥15")
		}
		must(t, r.svc.SetLimits(ctx, s.ID, 500_00, 1000_00))
		show(t, b, "shower")
		shots(t, b, art, "shower")
	})

	t.Run("shower with a low balance", func(t *testing.T) {
		poor := r.e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 14_99})
		nb := newBrowser(t)
		must(t, nb.Open(r.srv.URL))
		must(t, nb.Login(poor.No, poor.Password))
		show(t, nb, "shower")
		if !strings.Contains(text(t, nb, "#shower-low"), "15") {
			t.Fatalf("no low-balance warning: %q", text(t, nb, "#shower-balance"))
		}
		screenshot(t, nb, art, "shower-low-zh.png")
		mustEval[bool](t, nb, `(document.body.dataset.rendered = "", document.querySelector("#shower-topup").click(), true)`)
		if _, err := WaitFor[bool](nb, `document.body.dataset.rendered === "topup"`); err != nil {
			t.Fatal(err)
		}
	})

	// The month: a balance payment, a card-funded one, a reversed one and
	// one over the per-payment limit.
	pay := func(amount int64) (protocol.TxID, *protocol.Response) {
		t.Helper()
		r.e.Clock.Set(time.Now())
		return r.payTx(r.e.PayCode(s), amount)
	}
	if _, p := pay(12_50); p.Status != protocol.StatusApproved || p.Channel != protocol.ChannelBalance {
		t.Fatalf("pay %+v", p)
	}
	if _, p := pay(45_00); p.Status != protocol.StatusApproved || p.Channel != protocol.ChannelBankCard {
		t.Fatalf("pay by card %+v", p)
	}
	rtx, p := pay(3_00)
	if p.Status != protocol.StatusApproved {
		t.Fatalf("pay %+v", p)
	}
	if rv := r.svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpReverse, Tx: rtx, Terminal: wallettest.POS}); rv.Status != protocol.StatusReversed {
		t.Fatalf("reverse %+v", rv)
	}
	if _, p := pay(600_00); p.Code != protocol.ErrLimitPerTx.Code {
		t.Fatalf("over the limit %+v", p)
	}

	t.Run("statement", func(t *testing.T) {
		show(t, b, "tx")
		type line struct {
			Kind, Channel, Status, Text string
			After                       int64
		}
		lines := func() []line {
			return mustEval[[]line](t, b, `[...document.querySelectorAll("#txlist li[data-id]")].map((li) => ({Kind: li.dataset.kind, Channel: li.dataset.channel, Status: li.dataset.status, After: +li.dataset.after, Text: li.textContent}))`)
		}
		ls := lines()
		// Newest first: declined, reversed, card, balance, shower, top-up.
		if len(ls) != 6 {
			t.Fatalf("%d lines: %+v", len(ls), ls)
		}
		want := int64(50_00 - 7_30 - 12_50)
		for i, c := range []struct {
			status, has string
			after       int64
		}{
			{"declined", protocol.ErrLimitPerTx.ZH, want},
			{"reversed", "已退回 +¥3.00", want},
			{"approved", "银行卡", want},
			{"approved", "-¥12.50", want},
			{"approved", "-¥7.30", 50_00 - 7_30},
			{"approved", "+¥50.00", 50_00},
		} {
			if ls[i].Status != c.status || !strings.Contains(ls[i].Text, c.has) || ls[i].After != c.after {
				t.Errorf("line %d: %+v, want %s with %q, balance after %d", i, ls[i], c.status, c.has, c.after)
			}
		}
		if strings.Contains(ls[0].Text, "LIMIT_PER_TX") || !strings.Contains(ls[1].Text, "已撤销并退款") || !strings.Contains(ls[3].Text, "二楼3号窗口") {
			t.Errorf("labels: %q / %q / %q", ls[0].Text, ls[1].Text, ls[3].Text)
		}
		if got := text(t, b, "#bill-refund"); got != "¥3.00" {
			t.Errorf("bill refunds %q", got)
		}
		if got := mustEval[[]string](t, b, `[...document.querySelectorAll("#bill dd[data-channel]")].map((d) => d.dataset.channel + " " + d.textContent)`); strings.Join(got, ",") != "balance ¥19.80,bank_card ¥45.00" {
			t.Errorf("bill by channel %q", got)
		}
		shots(t, b, art, "statement")
		inLang(t, b, "en")
		if ls := lines(); !strings.Contains(ls[0].Text, protocol.ErrLimitPerTx.EN) || !strings.Contains(ls[1].Text, "Reversed and refunded") {
			t.Errorf("English lines %q / %q", ls[0].Text, ls[1].Text)
		}
		inLang(t, b, "zh")

		// Filter by channel.
		mustEval[bool](t, b, `(() => { const s = document.querySelector("#tx-channel"); s.value = "bank_card"; document.body.dataset.rendered = ""; s.dispatchEvent(new Event("change")); return true; })()`)
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "tx" && document.querySelector("#tx-channel").value === "bank_card"`); err != nil {
			t.Fatal(err)
		}
		for _, l := range lines() {
			if l.Channel != protocol.ChannelBankCard {
				t.Errorf("bank card filter shows %+v", l)
			}
		}
		if n := len(lines()); n != 2 { // the card payment and the top-up from the card
			t.Errorf("%d bank card lines: %+v", n, lines())
		}

		// CSV export of the shown month and channel, in Chinese: a real
		// download into a folder of the test's.
		dl := t.TempDir()
		must(t, b.Do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			on := true
			_, err := chromedp.CallBrowser(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl, EventsEnabled: &on})
			return err
		})))
		dctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
		defer cancel()
		progress := chromedp.BrowserEvents(dctx, cdpbrowser.DownloadProgress)
		mustEval[bool](t, b, `(document.querySelector("#tx-csv").click(), true)`)
		for ev, err := range progress {
			must(t, err)
			if ev.State == cdpbrowser.DownloadProgressStateCompleted {
				break
			}
			if ev.State == cdpbrowser.DownloadProgressStateCanceled {
				t.Fatal("download cancelled")
			}
		}
		name := mustEval[string](t, b, `document.querySelector("#tx-csv-link").download`)
		raw, err := os.ReadFile(filepath.Join(dl, name))
		must(t, err)
		csv := string(raw)
		rows := strings.Split(strings.TrimSpace(strings.TrimPrefix(csv, "\ufeff")), "\n")
		if !strings.HasPrefix(rows[0], "时间,类型,商户") || len(rows) != 1+len(lines()) || !strings.Contains(csv, "-45.00") {
			t.Errorf("CSV %q", csv)
		}
		save(t, art, "statement.csv", raw)
		if d := mustEval[string](t, b, `document.querySelector("#tx-csv-link").download`); !strings.HasPrefix(d, "statement-") {
			t.Errorf("download name %q", d)
		}
		if reqs := r.requests("GET", "/api/v1/statement.csv"); len(reqs) != 1 {
			t.Errorf("CSV requests %+v", reqs)
		}
		mustEval[bool](t, b, `(sessionStorage.removeItem("txFilter"), true)`)
	})

	t.Run("scan-to-pay names the payee", func(t *testing.T) {
		term, err := r.e.Store.Terminal(ctx, wallettest.POS)
		must(t, err)
		show(t, b, "pay/"+url.PathEscape(term.MerchantQR)) // as go("pay", qr) encodes it
		if got := []string{text(t, b, "#pay-merchant"), text(t, b, "#pay-terminal"), text(t, b, "#pay-campus")}; strings.Join(got, "|") != "云谷食堂|二楼3号窗口|云谷" {
			t.Fatalf("payee %q", got)
		}
		shots(t, b, art, "scanpay-payee")
		show(t, b, "pay/CM1:NOT-A-CODE")
		if code := mustEval[string](t, b, `(document.querySelector("#payee-err") || {dataset: {}}).dataset.code || ""`); code != protocol.ErrMerchantQRInvalid.Code || text(t, b, "#scanpay") != "<none>" {
			t.Fatalf("unknown QR: code %q", code)
		}
		if got := text(t, b, "#payee-err"); got != protocol.ErrMerchantQRInvalid.ZH {
			t.Fatalf("unknown QR says %q", got)
		}
		shots(t, b, art, "scanpay-unknown")
	})

	t.Run("settings: shake to open the pay code", func(t *testing.T) {
		show(t, b, "settings")
		shots(t, b, art, "settings")
		shakeIt := `(() => { const at = (x) => window.dispatchEvent(new DeviceMotionEvent("devicemotion", {accelerationIncludingGravity: {x, y: 0, z: 9.8}}));
			at(0); at(25); at(0); return true; })()`
		show(t, b, "home")
		mustEval[bool](t, b, shakeIt)
		if p := mustEval[string](t, b, `location.hash`); p != "" && p != "#home" {
			t.Fatalf("switched off, a shake opened %s", p)
		}
		show(t, b, "settings")
		mustEval[bool](t, b, `(document.querySelector("#shake-toggle").click(), true)`)
		if _, err := WaitFor[bool](b, `localStorage.getItem("shake") === "1"`); err != nil {
			t.Fatal(err)
		}
		show(t, b, "home")
		mustEval[bool](t, b, `(document.body.dataset.rendered = "", true)`)
		mustEval[bool](t, b, shakeIt)
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "paycode"`); err != nil {
			t.Fatal(err)
		}
		// Remembered on this phone: the switch shows it on.
		show(t, b, "settings")
		if !mustEval[bool](t, b, `document.querySelector("#shake-toggle").checked`) {
			t.Fatal("the switch is off again")
		}
	})
}

// payTx submits a code as the POS terminal would (rig.pay) and returns the
// transaction's ID too.
func (r *rig) payTx(code string, amount int64) (protocol.TxID, *protocol.Response) {
	r.t.Helper()
	tx, err := protocol.NewTxID(time.Now(), rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	return tx, r.svc.HandleRequest(context.Background(), &protocol.Request{V: protocol.Version, Op: protocol.OpPay, Tx: tx,
		Terminal: wallettest.POS, At: time.Now(), Amount: amount, Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}})
}
