package browsertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"campuspay/protocol"
	"campuspay/server/api"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
	"campuspay/server/web"
	"campuspay/server/web/qrscan"
)

// genDir holds the WebAssembly module built once for the whole run, and
// webHandler serves it (one handler, so the module is compressed once).
var (
	genDir     string
	webHandler *web.Handler
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if _, err := Chromium(); err == nil {
		dir, err := os.MkdirTemp("", "campuspay-wasm-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := BuildWasm(ctx, dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		genDir = dir
		webHandler = web.New(web.Config{GenDir: dir})
	}
	return m.Run()
}

// rig is a real authorizer back end (wallet service, SQLite files, bank
// and WeChat simulators) serving the API and the web wallet on one
// loopback port, like cmd/authorizer does.
type rig struct {
	t   *testing.T
	e   *wallettest.Env
	svc *wallet.Service // on the real clock: the browser makes codes with it
	srv *httptest.Server

	apiDown atomic.Bool // the browser's API requests fail like a dead network
	// loseAnswer, when it names a path, lets the next request to it be
	// processed and then answers 502 as a proxy whose upstream timed out.
	// (A dropped connection is retried by Chromium itself, invisibly.)
	loseAnswer atomic.Value

	mu   sync.Mutex
	reqs []apiRequest
}

type apiRequest struct{ method, path, idemKey string }

func newRig(t *testing.T) *rig {
	t.Helper()
	e := wallettest.New(t)
	// The browser's clock is real, so this authorizer's is too. e.Svc (on
	// the test clock) only sets up students before the browser starts.
	deps := e.Deps
	deps.Now = time.Now
	svc, err := wallet.New(e.Config, e.Keys, deps)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, e: e, svc: svc}
	apiSrv := api.New(svc, e.Store, api.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	r.srv = httptest.NewServer(webHandler.WithAPI(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.apiDown.Load() {
			// Drop the connection without an answer: to the page this is
			// a network failure, not an HTTP error.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, apiRequest{req.Method, req.URL.Path, req.Header.Get("Idempotency-Key")})
		r.mu.Unlock()
		if p, _ := r.loseAnswer.Load().(string); p != "" && p == req.URL.Path && r.loseAnswer.CompareAndSwap(p, "") {
			apiSrv.ServeHTTP(httptest.NewRecorder(), req)
			http.Error(w, "bad gateway", http.StatusBadGateway) // the answer is lost on the way
			return
		}
		apiSrv.ServeHTTP(w, req)
	})))
	t.Cleanup(r.srv.Close)
	return r
}

// pay submits a code as the POS terminal would.
func (r *rig) pay(code string, amount int64) *protocol.Response {
	r.t.Helper()
	tx, err := protocol.NewTxID(time.Now(), rand.Reader)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.svc.HandleRequest(context.Background(), &protocol.Request{V: protocol.Version, Op: protocol.OpPay, Tx: tx,
		Terminal: wallettest.POS, At: time.Now(), Amount: amount, Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}})
}

func (r *rig) requests(method, path string) []apiRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []apiRequest
	for _, q := range r.reqs {
		if q.method == method && q.path == path {
			out = append(out, q)
		}
	}
	return out
}

// artifacts is where screenshots go: $ARTIFACTS_DIR or a temp dir.
func artifacts(t *testing.T) string {
	if d := os.Getenv("ARTIFACTS_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func save(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact: %s", p)
}

// screenshot saves the viewport as an artifact after checking that the
// page fits the 360 px screen without sideways scrolling.
func screenshot(t *testing.T, b *Browser, dir, name string) {
	t.Helper()
	if w := mustEval[int](t, b, `document.documentElement.scrollWidth`); w > 360 {
		t.Errorf("%s: the page is %d px wide on a 360 px screen", name, w)
	}
	shot, err := b.Screenshot()
	must(t, err)
	save(t, dir, name, shot)
}

// qrPNG renders text as a QR code image like a photo of a terminal display:
// a dark frame around the code.
func qrPNG(t *testing.T, text string) []byte {
	size, mods, err := qrscan.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	const scale, quiet, frame = 6, 4, 40
	n := (size + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, n+2*frame, n+2*frame))
	for i := range img.Pix {
		img.Pix[i] = 60 // the display's bezel
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			mx, my := x/scale-quiet, y/scale-quiet
			v := uint8(250)
			if mx >= 0 && my >= 0 && mx < size && my < size && mods[my*size+mx] == 1 {
				v = 20
			}
			img.SetGray(x+frame, y+frame, color.Gray{Y: v})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// logf passes browser logs to t.Logf while the test runs.
func logf(t *testing.T) func(string, ...any) {
	var done atomic.Bool
	t.Cleanup(func() { done.Store(true) })
	return func(f string, a ...any) {
		if !done.Load() {
			t.Logf(f, a...)
		}
	}
}

func newBrowser(t *testing.T) *Browser {
	t.Helper()
	if genDir == "" {
		t.Skip("chromium not installed (make deps installs it)")
	}
	b, err := New(context.Background(), Options{Logf: logf(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustEval[T any](t *testing.T, b *Browser, expr string) T {
	t.Helper()
	v, err := Eval[T](b, expr)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// TestWalletInBrowser walks a vocational student through the web wallet
// in headless Chromium against a real authorizer: activation, top-up,
// password-free, payment password, payment codes paid by a terminal
// (single use, refresh, offline), identity code, scan-to-pay from a photo
// and the transaction details.
func TestWalletInBrowser(t *testing.T) {
	b := newBrowser(t)
	r := newRig(t)
	art := artifacts(t)
	ctx := context.Background()
	s := r.e.AddStudent(wallettest.Options{Category: wallet.VocationalCategory, BankBalance: 500_00, Inactive: true})

	must(t, b.Open(r.srv.URL))
	if p, _ := b.Page(); p != "login" {
		t.Fatalf("first page %q, want login", p)
	}
	// A wrong password shows the authorizer's reason.
	must(t, b.Fill("#login", map[string]string{"student_no": s.No, "password": "wrong"}))
	must(t, b.Submit("#login"))
	if code, text, err := b.FormError("#login"); err != nil || code != protocol.ErrLoginFailed.Code || text != protocol.ErrLoginFailed.ZH {
		t.Fatalf("wrong login: %q %q %v", code, text, err)
	}
	must(t, b.Login(s.No, s.Password))
	if st := mustEval[string](t, b, `document.querySelector("#wallet-state").dataset.state`); st != "inactive" {
		t.Fatalf("state %q before binding", st)
	}

	t.Run("session expiry returns to login and back", func(t *testing.T) {
		tok := mustEval[string](t, b, `localStorage.getItem("token")`)
		mustEval[bool](t, b, `(localStorage.setItem("token", "expired"), document.body.dataset.rendered = "", location.hash = "limits", true)`)
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "login"`); err != nil {
			t.Fatal(err)
		}
		if tok == "expired" {
			t.Fatal("token not replaced")
		}
		must(t, b.Fill("#login", map[string]string{"student_no": s.No, "password": s.Password}))
		must(t, b.Submit("#login"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "limits"`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bind card: phone mismatch, then activation", func(t *testing.T) {
		must(t, b.Show("card"))
		if v := mustEval[string](t, b, `document.querySelector("#f-name").value`); v != s.Name {
			t.Errorf("holder name prefilled %q, want %q", v, s.Name)
		}
		// The banks offered are the authorizer's, in its order, named.
		codes := mustEval[string](t, b, `[...document.querySelectorAll("#f-bank_code option")].map(o => o.value).join(",")`)
		if want := strings.Join(r.e.Config.SupportedBanks, ","); codes != want {
			t.Errorf("banks offered %q, want the configured %q", codes, want)
		}
		if first := mustEval[string](t, b, `document.querySelector("#f-bank_code option").textContent`); !strings.Contains(first, "中国建设银行") {
			t.Errorf("first bank shown as %q", first)
		}
		// Checked in the page first: a bad ID number never reaches the bank.
		must(t, b.Fill("#bind", map[string]string{"card_number": s.BankCard, "id_number": "110105200001010000", "phone": s.Phone}))
		must(t, b.Submit("#bind"))
		if code, text, err := b.FormError("#bind"); err != nil || code != "INVALIDID" || text != "身份证号码格式不正确" {
			t.Fatalf("bad ID number: %q %q %v", code, text, err)
		}
		must(t, b.Fill("#bind", map[string]string{"id_number": s.IDNumber, "phone": "13900009999"}))
		must(t, b.Submit("#bind"))
		code, text, err := b.FormError("#bind")
		if err != nil || code != protocol.ErrBankPhoneMismatch.Code || text != protocol.ErrBankPhoneMismatch.ZH {
			t.Fatalf("phone mismatch: %q %q %v", code, text, err)
		}
		// The refusal points at the field that differs.
		if !mustEval[bool](t, b, `document.querySelector("#bind .err").dataset.field === "phone" && document.querySelector("#f-phone").getAttribute("aria-invalid") === "true"`) {
			t.Error("the phone field is not pointed at")
		}
		screenshot(t, b, art, "bind-refused.png")
		// The draft survives a refresh (not the password fields: there are none here).
		must(t, b.Do(chromedp.Reload()))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "card"`); err != nil {
			t.Fatal(err)
		}
		if v := mustEval[string](t, b, `document.querySelector("#f-phone").value`); v != "13900009999" {
			t.Errorf("draft lost on refresh: phone %q", v)
		}
		must(t, b.Fill("#bind", map[string]string{"phone": s.Phone}))
		must(t, b.Submit("#bind"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "home"`); err != nil {
			t.Fatal(err)
		}
		if st := mustEval[string](t, b, `document.querySelector("#wallet-state").dataset.state`); st != "active" {
			t.Fatalf("state %q after binding", st)
		}
		// 中专生 without password-free: warned on the home page.
		if !mustEval[bool](t, b, `!!document.querySelector("#vocational-warning")`) {
			t.Error("no vocational warning on the home page")
		}
	})

	t.Run("top up", func(t *testing.T) {
		must(t, b.Show("topup"))
		must(t, b.Fill("#topup", map[string]string{"amount": "12.345"}))
		must(t, b.Submit("#topup"))
		if code, _, err := b.FormError("#topup"); err != nil || code != "INVALIDAMOUNT" {
			t.Fatalf("bad amount: %q %v", code, err)
		}
		must(t, b.Fill("#topup", map[string]string{"amount": "100"}))
		must(t, b.Submit("#topup"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "home"`); err != nil {
			t.Fatal(err)
		}
		if c := mustEval[int64](t, b, `+document.querySelector("#balance").dataset.cents`); c != 100_00 {
			t.Fatalf("balance %d after top-up", c)
		}
		reqs := r.requests("POST", "/api/v1/wallet/top-up")
		if len(reqs) != 1 || reqs[0].idemKey == "" {
			t.Fatalf("top-up requests %+v: want one with an Idempotency-Key", reqs)
		}
	})

	t.Run("payment password", func(t *testing.T) {
		must(t, b.Show("passwords"))
		must(t, b.Fill("#paypwd", map[string]string{"password": "12345"}))
		must(t, b.Submit("#paypwd"))
		if code, _, err := b.FormError("#paypwd"); err != nil || code != "INVALIDPWD" {
			t.Fatalf("short password: %q %v", code, err)
		}
		must(t, b.Fill("#paypwd", map[string]string{"password": s.PayPW}))
		must(t, b.Submit("#paypwd"))
		if _, err := WaitFor[bool](b, `(document.querySelector("#paypwd [data-set]") || {dataset: {}}).dataset.set === "true"`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("password-free with the vocational warning", func(t *testing.T) {
		must(t, b.Show("pwfree"))
		warn := mustEval[string](t, b, `(document.querySelector("#vocational-warning") || {}).textContent || ""`)
		if !strings.Contains(warn, "中专生") {
			t.Fatalf("warning before signing: %q", warn)
		}
		// Asks twice: what it does, then the payment password (the server checks it).
		must(t, b.Submit("#pwf"))
		if _, err := WaitFor[bool](b, `!!document.querySelector("#pwf-confirm")`); err != nil {
			t.Fatal(err)
		}
		must(t, b.Fill("#pwf", map[string]string{"confirm_password": "000000"}))
		must(t, b.Submit("#pwf"))
		if code, _, err := b.FormError("#pwf"); err != nil || code != protocol.ErrPaymentPasswordWrong.Code {
			t.Fatalf("wrong payment password: %q %v", code, err)
		}
		must(t, b.Fill("#pwf", map[string]string{"confirm_password": s.PayPW}))
		must(t, b.Submit("#pwf"))
		if _, err := WaitFor[bool](b, `(document.querySelector("#pwfree-state") || {dataset: {}}).dataset.on === "true"`); err != nil {
			t.Fatal(err)
		}
		if mustEval[bool](t, b, `!!document.querySelector("#vocational-warning")`) {
			t.Error("warning still shown after signing")
		}
	})

	var seen []string
	t.Run("payment code: browser-made, single use, refreshed", func(t *testing.T) {
		code1, err := b.Code("pay")
		must(t, err)
		seen = append(seen, code1)
		screenshot(t, b, art, "paycode.png")
		// Byte-compatible with the Go protocol code.
		c, err := protocol.VerifyCode(code1, r.svc.IssuerKeys(), time.Now(), protocol.PurposePay)
		if err != nil {
			t.Fatalf("browser code does not verify: %v\n%s", err, code1)
		}
		if c.Cert.UserID != s.ID {
			t.Fatalf("code for user %d, want %d", c.Cert.UserID, s.ID)
		}
		// The device key is kept in IndexedDB and cannot be exported.
		key := mustEval[string](t, b, `idbGet("device").then(async (k) => {
			if (!k || k.privateKey.extractable || k.privateKey.algorithm.name !== "Ed25519") return "bad key";
			try { await crypto.subtle.exportKey("pkcs8", k.privateKey); return "exported"; } catch { return "sealed"; } })`)
		if key != "sealed" {
			t.Fatalf("device key: %s", key)
		}
		if mods := mustEval[int](t, b, `+document.querySelector("#qr").dataset.modules`); mods < 21 {
			t.Fatalf("QR of %d modules", mods)
		}
		// The terminal pays with it.
		if resp := r.pay(code1, 12_50); resp.Status != protocol.StatusApproved || resp.Channel != protocol.ChannelBalance {
			t.Fatalf("pay with the browser code: %+v", resp)
		}
		// After a use the page shows a new code by itself.
		code2, err := b.NextCode(seen...)
		must(t, err)
		seen = append(seen, code2)
		// A screenshot of the first code shown again is refused.
		if resp := r.pay(code1, 12_50); resp.Status != protocol.StatusDeclined || resp.Code != protocol.ErrCodeUsed.Code {
			t.Fatalf("replayed code: %+v", resp)
		}
		// The refresh button makes another one, which pays.
		mustEval[bool](t, b, `(document.querySelector("#refresh").click(), true)`)
		code3, err := b.NextCode(seen...)
		must(t, err)
		seen = append(seen, code3)
		if resp := r.pay(code3, 3_00); resp.Status != protocol.StatusApproved {
			t.Fatalf("pay with a refreshed code: %+v", resp)
		}
		if left := mustEval[int](t, b, `+document.querySelector("#count").textContent`); left <= 0 || left > 60 {
			t.Fatalf("countdown %d", left)
		}
	})

	t.Run("payment code with the network down", func(t *testing.T) {
		r.apiDown.Store(true)
		defer r.apiDown.Store(false)
		mustEval[bool](t, b, `(window.beforeReload = true)`)
		must(t, b.Do(chromedp.Reload()))
		if _, err := WaitFor[bool](b, `!window.beforeReload && document.body.dataset.rendered === "paycode"`); err != nil {
			t.Fatal(err)
		}
		code, err := b.NextCode(seen...)
		must(t, err)
		seen = append(seen, code)
		if _, err := WaitFor[bool](b, `!document.querySelector("#offline-note").hidden`); err != nil {
			t.Fatal(err)
		}
		screenshot(t, b, art, "paycode-offline.png")
		if _, err := protocol.VerifyCode(code, r.svc.IssuerKeys(), time.Now(), protocol.PurposePay); err != nil {
			t.Fatalf("offline code: %v", err)
		}
		if resp := r.pay(code, 1_00); resp.Status != protocol.StatusApproved {
			t.Fatalf("pay with the offline code: %+v", resp)
		}
	})

	t.Run("identity code is not payable", func(t *testing.T) {
		code, err := b.Code("identity", seen...)
		must(t, err)
		if !mustEval[bool](t, b, `!!document.querySelector("#not-for-pay") && document.querySelector("#codebox").dataset.purpose === "identity"`) {
			t.Fatal("identity code not marked")
		}
		screenshot(t, b, art, "idcode.png")
		if _, err := protocol.VerifyCode(code, r.svc.IssuerKeys(), time.Now(), protocol.PurposeIdentity); err != nil {
			t.Fatalf("identity code: %v", err)
		}
		if resp := r.pay(code, 1_00); resp.Status != protocol.StatusDeclined || resp.Code != protocol.ErrIdentityCode.Code {
			t.Fatalf("paying with the identity code: %+v", resp)
		}
	})

	var scanTx string
	t.Run("scan-to-pay from a photo", func(t *testing.T) {
		term, err := r.e.Store.Terminal(ctx, wallettest.POS)
		must(t, err)
		photo := filepath.Join(t.TempDir(), "merchant-qr.png")
		must(t, os.WriteFile(photo, qrPNG(t, term.MerchantQR), 0o644))
		must(t, b.Show("scan"))
		must(t, b.Do(chromedp.SetUploadFiles(chromedp.CSS("#photo"), []string{photo})))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "pay"`); err != nil {
			t.Fatal(err)
		}
		if m := mustEval[string](t, b, `document.querySelector("#pay-merchant").textContent`); m != wallettest.Merchant {
			t.Fatalf("merchant %q", m)
		}
		must(t, b.Fill("#scanpay", map[string]string{"amount": "8.80", "password": "000000"}))
		must(t, b.Submit("#scanpay"))
		if code, text, err := b.FormError("#scanpay"); err != nil || code != protocol.ErrPaymentPasswordWrong.Code || text != protocol.ErrPaymentPasswordWrong.ZH {
			t.Fatalf("wrong payment password: %q %q %v", code, text, err)
		}
		must(t, b.Fill("#scanpay", map[string]string{"password": s.PayPW}))
		must(t, b.Submit("#scanpay"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "result"`); err != nil {
			t.Fatal(err)
		}
		got := mustEval[[]string](t, b, `["#result-amount", "#result-merchant", "#result-tx", "#result-time"].map((s) => document.querySelector(s).textContent)`)
		if got[0] != "¥8.80" || got[1] != "云谷食堂" || got[2] == "" || got[3] == "" {
			t.Fatalf("result screen %q", got)
		}
		scanTx = got[2]
		screenshot(t, b, art, "scanpay-result.png")
		reqs := r.requests("POST", "/api/v1/scan-pay")
		if len(reqs) != 2 || reqs[0].idemKey == "" || reqs[1].idemKey == "" || reqs[0].idemKey == reqs[1].idemKey {
			t.Fatalf("scan-pay requests %+v: want two with their own Idempotency-Keys", reqs)
		}
	})

	t.Run("transaction details", func(t *testing.T) {
		must(t, b.Show("tx"))
		type line struct {
			ID      int64  `json:"id"`
			Kind    string `json:"kind"`
			Channel string `json:"channel"`
			Status  string `json:"status"`
			Text    string `json:"text"`
		}
		lines := mustEval[[]line](t, b, `[...document.querySelectorAll("#txlist li")].map((li) => ({id: +li.dataset.id, kind: li.dataset.kind, channel: li.dataset.channel, status: li.dataset.status, text: li.textContent}))`)
		if len(lines) < 5 {
			t.Fatalf("%d lines: %+v", len(lines), lines)
		}
		for i := 1; i < len(lines); i++ {
			if lines[i].ID >= lines[i-1].ID {
				t.Fatalf("not newest first: %+v", lines)
			}
		}
		first := lines[0]
		if first.Kind != wallet.KindScanPay || first.Status != "approved" || first.Channel != protocol.ChannelBalance ||
			!strings.Contains(first.Text, "云谷食堂") || !strings.Contains(first.Text, "余额") || !strings.Contains(first.Text, scanTx) {
			t.Fatalf("newest line %+v", first)
		}
		last := lines[len(lines)-1]
		if last.Kind != wallet.KindTopUp || !strings.Contains(last.Text, "+¥100.00") {
			t.Fatalf("oldest line %+v", last)
		}
		screenshot(t, b, art, "transactions.png")
	})

	t.Run("home and English", func(t *testing.T) {
		must(t, b.Show("home"))
		v, err := r.svc.Wallet(ctx, s.ID)
		must(t, err)
		if want := int64(100_00 - 12_50 - 3_00 - 1_00 - 8_80); v.Balance != want {
			t.Fatalf("balance %d, want %d", v.Balance, want)
		}
		if c := mustEval[int64](t, b, `+document.querySelector("#balance").dataset.cents`); c != v.Balance {
			t.Fatalf("page shows %d, wallet has %d", c, v.Balance)
		}
		screenshot(t, b, art, "home.png")
		mustEval[bool](t, b, `(document.body.dataset.rendered = "", document.querySelector("#lang").click(), true)`)
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "home" && document.querySelector("#title").textContent === "Campus Wallet"`); err != nil {
			t.Fatal(err)
		}
		mustEval[bool](t, b, `(document.body.dataset.rendered = "", document.querySelector("#lang").click(), true)`)
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "home" && document.querySelector("#title").textContent === "校园电子钱包"`); err != nil {
			t.Fatal(err)
		}
		// Nothing overflows a 360 px screen.
		if w := mustEval[int](t, b, `document.documentElement.scrollWidth`); w > 360 {
			t.Errorf("page is %d px wide at 360 px", w)
		}
	})
}

// TestAccountPages covers the remaining account pages against the real
// authorizer: limits (enforced on the next code payment), WeChat
// authentication, lost card, cancel (balance withdrawn) and re-open, unbind.
func TestAccountPages(t *testing.T) {
	b := newBrowser(t)
	r := newRig(t)
	ctx := context.Background()
	s := r.e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00})
	must(t, b.Open(r.srv.URL))
	must(t, b.Login(s.No, s.Password))

	t.Run("limits", func(t *testing.T) {
		must(t, b.Show("limits"))
		if v := mustEval[string](t, b, `document.querySelector("#f-per_transaction").value`); v != "500.00" {
			t.Errorf("per-transaction limit shown %q", v)
		}
		must(t, b.Fill("#limits", map[string]string{"per_transaction": "10", "daily": "50.5"}))
		must(t, b.Submit("#limits"))
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "home"`); err != nil {
			t.Fatal(err)
		}
		v, err := r.svc.Wallet(ctx, s.ID)
		must(t, err)
		if v.LimitPerTx != 10_00 || v.LimitDaily != 50_50 {
			t.Fatalf("limits %d/%d", v.LimitPerTx, v.LimitDaily)
		}
		code, err := b.Code("pay")
		must(t, err)
		if resp := r.pay(code, 10_01); resp.Code != protocol.ErrLimitPerTx.Code {
			t.Fatalf("over the limit: %+v", resp)
		}
	})

	t.Run("WeChat authentication", func(t *testing.T) {
		must(t, b.Show("wechat"))
		must(t, b.Fill("#wx", map[string]string{"code": "not-a-code"}))
		must(t, b.Submit("#wx"))
		if code, _, err := b.FormError("#wx"); err != nil || code == "" {
			t.Fatalf("bad login code: %q %v", code, err)
		}
		lc, err := r.e.WeChat.NewLoginCode(s.OpenID)
		must(t, err)
		must(t, b.Fill("#wx", map[string]string{"code": lc}))
		must(t, b.Submit("#wx"))
		if _, err := WaitFor[bool](b, `!!document.querySelector("#wechat-linked")`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("lost card, cancel, re-open", func(t *testing.T) {
		must(t, b.Show("cancel"))
		confirm := func(form string) {
			t.Helper()
			must(t, b.Submit(form))
			if _, err := WaitFor[bool](b, fmt.Sprintf(`document.querySelector(%q).dataset.confirm === "1"`, form)); err != nil {
				t.Fatal(err)
			}
			must(t, b.Fill(form, map[string]string{"confirm_password": s.PayPW}))
			must(t, b.Submit(form))
		}
		confirm("#lost")
		if _, err := WaitFor[bool](b, `!document.querySelector("#toast").hidden && document.querySelector("#toast").textContent === "已挂失" && !!document.querySelector("#found")`); err != nil {
			t.Fatal(err)
		}
		confirm("#found") // 解挂 from the app
		if _, err := WaitFor[bool](b, `!!document.querySelector("#lost")`); err != nil {
			t.Fatal(err)
		}
		if v, _ := r.svc.Wallet(ctx, s.ID); v == nil || v.CardLost {
			t.Fatalf("card still lost after 解挂: %+v", v)
		}
		// What cancelling ends, shown before confirming.
		ends := mustEval[string](t, b, `document.querySelector("#cancel-ends").textContent`)
		if !strings.Contains(ends, "¥30.00") || !strings.Contains(ends, "校园e码通") {
			t.Fatalf("cancel preview %q: want the balance and the WeChat link", ends)
		}
		if left := mustEval[string](t, b, `document.querySelector("#reopens-left").textContent`); left != "3" {
			t.Fatalf("re-openings left %q", left)
		}
		bank := r.e.BankBalance(s)
		confirm("#cx")
		if _, err := WaitFor[bool](b, `(document.querySelector("#wallet-state") || {dataset: {}}).dataset.state === "cancelled"`); err != nil {
			t.Fatal(err)
		}
		if got := r.e.BankBalance(s); got != bank+30_00 {
			t.Fatalf("bank balance %d after cancel, want %d", got, bank+30_00)
		}
		if reqs := r.requests("POST", "/api/v1/wallet/cancel"); len(reqs) != 1 || reqs[0].idemKey == "" {
			t.Fatalf("cancel requests %+v", reqs)
		}
		must(t, b.Submit("#cx"))
		if _, err := WaitFor[bool](b, `(document.querySelector("#wallet-state") || {dataset: {}}).dataset.state === "active" && document.querySelector("#reopens-left").textContent === "2"`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unbind", func(t *testing.T) {
		must(t, b.Show("card"))
		if left := mustEval[string](t, b, `document.querySelector("#unbinds-left").textContent`); left != "3" {
			t.Fatalf("unbinds left %q", left)
		}
		must(t, b.Submit("#unbind"))
		if _, err := WaitFor[bool](b, `!!document.querySelector("#unbind-confirm")`); err != nil {
			t.Fatal(err)
		}
		must(t, b.Fill("#unbind", map[string]string{"confirm_password": s.PayPW}))
		must(t, b.Submit("#unbind"))
		if _, err := WaitFor[bool](b, `!!document.querySelector("#bind") && document.querySelector("#unbinds-left").textContent === "2"`); err != nil {
			t.Fatal(err)
		}
	})

	// Log out ends the session on the server, not only in the page.
	t.Run("logout", func(t *testing.T) {
		token := mustEval[string](t, b, `localStorage.getItem("token") || ""`)
		if token == "" {
			t.Fatal("no session token in the page")
		}
		must(t, b.Show("home"))
		mustEval[bool](t, b, `(document.querySelector("#logout").click(), true)`)
		if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "login" && !localStorage.getItem("token")`); err != nil {
			t.Fatal(err)
		}
		if reqs := r.requests("DELETE", "/api/v1/session"); len(reqs) != 1 {
			t.Fatalf("logout requests %+v", reqs)
		}
		req, _ := http.NewRequest("GET", r.srv.URL+"/api/v1/wallet", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the old token after logout: %s, want 401", resp.Status)
		}
	})
}

// TestTopUpAnswerLost loses the answer to a top-up that the authorizer
// carried out; the student refreshes the page and submits again: the same
// Idempotency-Key goes out and the money moves once.
func TestTopUpAnswerLost(t *testing.T) {
	b := newBrowser(t)
	r := newRig(t)
	s := r.e.AddStudent(wallettest.Options{BankBalance: 100_00})
	must(t, b.Open(r.srv.URL))
	must(t, b.Login(s.No, s.Password))
	must(t, b.Show("topup"))
	r.loseAnswer.Store("/api/v1/wallet/top-up")
	must(t, b.Fill("#topup", map[string]string{"amount": "40"}))
	must(t, b.Submit("#topup"))
	if code, _, err := b.FormError("#topup"); err != nil || code != "HTTP_502" {
		t.Fatalf("lost answer: %q %v", code, err)
	}
	mustEval[bool](t, b, `(window.beforeReload = true)`)
	must(t, b.Do(chromedp.Reload()))
	if _, err := WaitFor[bool](b, `!window.beforeReload && document.body.dataset.rendered === "topup"`); err != nil {
		t.Fatal(err)
	}
	if v := mustEval[string](t, b, `document.querySelector("#f-amount").value`); v != "40" {
		t.Fatalf("draft after refresh: %q", v)
	}
	must(t, b.Submit("#topup"))
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "home"`); err != nil {
		t.Fatal(err)
	}
	reqs := r.requests("POST", "/api/v1/wallet/top-up")
	if len(reqs) != 2 || reqs[0].idemKey == "" || reqs[0].idemKey != reqs[1].idemKey {
		t.Fatalf("top-up requests %+v: want the same key twice", reqs)
	}
	if got := r.e.Balance(s); got != 40_00 {
		t.Fatalf("balance %d after a resubmitted top-up of 40.00", got)
	}
	if c := mustEval[int64](t, b, `+document.querySelector("#balance").dataset.cents`); c != 40_00 {
		t.Fatalf("page shows %d", c)
	}
	// The answer retired the key: the next top-up is a new one.
	if n := mustEval[int](t, b, `Object.keys(sessionStorage).filter((k) => k.startsWith("idem:")).length`); n != 0 {
		t.Fatalf("%d idempotency keys left after the answer", n)
	}
}

// TestPayCodeWithServerStopped stops the authorizer altogether: the service
// worker serves the page and its WebAssembly module from its cache, and
// the payment code is made from the cached certificate.
func TestPayCodeWithServerStopped(t *testing.T) {
	b := newBrowser(t)
	r := newRig(t)
	s := r.e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	must(t, b.Open(r.srv.URL))
	must(t, b.Login(s.No, s.Password))
	first, err := b.Code("pay")
	must(t, err)
	if _, err := WaitFor[bool](b, `navigator.serviceWorker.controller !== null &&
		caches.open("campuspay-shell-v1").then((c) => c.match("/gen/wallet.wasm")).then((r) => !!r)`); err != nil {
		t.Fatal(err)
	}
	r.srv.CloseClientConnections()
	r.srv.Close()
	mustEval[bool](t, b, `(window.beforeReload = true)`)
	must(t, b.Do(chromedp.Reload()))
	if _, err := WaitFor[bool](b, `!window.beforeReload && document.body.dataset.rendered === "paycode"`); err != nil {
		t.Fatal(err)
	}
	code, err := b.NextCode(first)
	must(t, err)
	if _, err := WaitFor[bool](b, `!document.querySelector("#offline-note").hidden`); err != nil {
		t.Fatal(err)
	}
	if resp := r.pay(code, 1_00); resp.Status != protocol.StatusApproved {
		t.Fatalf("pay with the code made while the server was down: %+v", resp)
	}
}

// y4m writes a gray image as a one-frame YUV4MPEG2 file, Chromium's fake
// camera input (it loops the frame).
func y4m(t *testing.T, path string, img *image.Gray) {
	b := img.Bounds()
	w, h := b.Dx()&^1, b.Dy()&^1
	var buf strings.Builder
	fmt.Fprintf(&buf, "YUV4MPEG2 W%d H%d F10:1 Ip A1:1 C420jpeg\nFRAME\n", w, h)
	for y := 0; y < h; y++ {
		buf.Write(img.Pix[y*img.Stride : y*img.Stride+w])
	}
	buf.WriteString(strings.Repeat("\x80", w*h/2)) // U and V: no colour
	must(t, os.WriteFile(path, []byte(buf.String()), 0o644))
}

// TestScanWithCamera points Chromium's fake camera at a merchant QR: the
// page finds it in the video and opens the payment form, which pays.
func TestScanWithCamera(t *testing.T) {
	if genDir == "" {
		t.Skip("chromium not installed (make deps installs it)")
	}
	r := newRig(t)
	s := r.e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	term, err := r.e.Store.Terminal(context.Background(), wallettest.POS)
	must(t, err)
	img, err := png.Decode(bytes.NewReader(qrPNG(t, term.MerchantQR)))
	must(t, err)
	// Centre the code in a 640×480 frame.
	frame := image.NewGray(image.Rect(0, 0, 640, 480))
	for i := range frame.Pix {
		frame.Pix[i] = 90
	}
	src := img.(*image.Gray)
	ox, oy := (640-src.Bounds().Dx())/2, (480-src.Bounds().Dy())/2
	if ox < 0 || oy < 0 {
		t.Fatalf("merchant QR image %v does not fit the frame", src.Bounds())
	}
	for y := 0; y < src.Bounds().Dy(); y++ {
		copy(frame.Pix[(y+oy)*frame.Stride+ox:], src.Pix[y*src.Stride:y*src.Stride+src.Bounds().Dx()])
	}
	video := filepath.Join(t.TempDir(), "merchant-qr.y4m")
	y4m(t, video, frame)

	b, err := New(context.Background(), Options{Logf: logf(t), Flags: map[string]any{
		"use-fake-device-for-media-stream": true,
		"use-fake-ui-for-media-stream":     true,
		"use-file-for-fake-video-capture":  video,
	}})
	must(t, err)
	t.Cleanup(b.Close)
	must(t, b.Open(r.srv.URL))
	must(t, b.Login(s.No, s.Password))
	// The camera may find the code at once: wait for the payment form, not
	// for the scan page.
	mustEval[bool](t, b, `(location.hash = "scan", true)`)
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "pay"`); err != nil {
		t.Fatal(err)
	}
	must(t, b.Fill("#scanpay", map[string]string{"amount": "2.50", "password": s.PayPW}))
	must(t, b.Submit("#scanpay"))
	if _, err := WaitFor[bool](b, `document.body.dataset.rendered === "result"`); err != nil {
		t.Fatal(err)
	}
	if v, err := r.svc.Wallet(context.Background(), s.ID); err != nil || v.Balance != 20_00-2_50 {
		t.Fatalf("balance after the camera scan-to-pay: %+v %v", v, err)
	}
}

// TestPayCodeScreenshot is the helper the campus scenario uses: a code
// photographed from the screenshot decodes to the same text and pays.
func TestPayCodeScreenshot(t *testing.T) {
	if genDir == "" {
		t.Skip("chromium not installed (make deps installs it)")
	}
	r := newRig(t)
	s := r.e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	pngBytes, code, err := PayCodeScreenshot(context.Background(), r.srv.URL, s.No, s.Password)
	must(t, err)
	save(t, artifacts(t), "paycode-canvas.png", pngBytes)
	img, err := png.Decode(bytes.NewReader(pngBytes))
	must(t, err)
	bnd := img.Bounds()
	if bnd.Dx() < 500 || bnd.Dx() != bnd.Dy() {
		t.Fatalf("code screenshot %v: want a square of at least 500 px", bnd)
	}
	if text, err := decodePNG(pngBytes); err != nil || text != code {
		t.Fatalf("screenshot decodes to %q (%v), want the code", text, err)
	}
	if resp := r.pay(code, 5_00); resp.Status != protocol.StatusApproved {
		t.Fatalf("pay with the screenshot code: %+v", resp)
	}
}
