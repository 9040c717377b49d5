// Package browsertest drives the web wallet (package web) in a real headless
// Chromium through chromedp: it builds the wallet's WebAssembly module,
// starts the browser with a phone-sized screen and offers the steps the
// browser tests and the campus scenario need — log in, show the payment
// code, read its text and take a screenshot of it as a phone screen shows it.
//
// Nothing here fakes the page: every step goes through the DOM of the page
// the authorizer serves, and codes are made by the page itself (WebCrypto
// Ed25519 key + the protocol package compiled to WebAssembly).
package browsertest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image/color"
	pngpkg "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"campuspay/server/web/qrscan"
)

// ErrNoChromium means no Chromium binary was found.
var ErrNoChromium = errors.New("browsertest: chromium not found")

// Chromium returns the path of a Chromium binary: $CHROMIUM if set, else
// the first of chromium, chromium-browser, google-chrome on $PATH.
func Chromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoChromium
}

// BuildWasm builds the web wallet's WebAssembly module (server/web/wasm)
// into dir/wallet.wasm and copies the matching wasm_exec.js beside it, the
// layout web.Config.GenDir expects. It must run inside the campuspay module.
func BuildWasm(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("browsertest: build wasm: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "wallet.wasm"), "campuspay/server/web/wasm")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("browsertest: build wasm: %w\n%s", err, out)
	}
	src, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		// Go before 1.24 kept it under misc/.
		if src, err = os.ReadFile(filepath.Join(runtime.GOROOT(), "misc", "wasm", "wasm_exec.js")); err != nil {
			return fmt.Errorf("browsertest: wasm_exec.js: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "wasm_exec.js"), src, 0o644); err != nil {
		return fmt.Errorf("browsertest: wasm_exec.js: %w", err)
	}
	return nil
}

// Options configure a Browser.
type Options struct {
	ExecPath string  // default Chromium()
	Width    int64   // CSS pixels; default 360 (a small phone)
	Height   int64   // default 760
	Scale    float64 // device pixel ratio; default 2
	// Flags are extra command-line flags, e.g. "use-fake-device-for-media-stream": true.
	Flags map[string]any
	// Logf, if set, receives the page's console output and exceptions.
	Logf func(format string, args ...any)
	// Timeout bounds each wait for the page; default 45 s (a loaded CI
	// machine runs the camera decode in WebAssembly slowly).
	Timeout time.Duration
}

// Browser is one headless Chromium with one tab, emulating a phone screen.
type Browser struct {
	ctx     context.Context // the tab's chromedp context
	cancel  func()
	dir     string
	timeout time.Duration
	opt     Options // as New completed them: Incognito tabs emulate the same phone
}

// New starts Chromium with a fresh profile. Close it when done.
func New(ctx context.Context, o Options) (*Browser, error) {
	if o.ExecPath == "" {
		p, err := Chromium()
		if err != nil {
			return nil, err
		}
		o.ExecPath = p
	}
	if o.Width == 0 {
		o.Width = 360
	}
	if o.Height == 0 {
		o.Height = 760
	}
	if o.Scale == 0 {
		o.Scale = 2
	}
	if o.Timeout == 0 {
		o.Timeout = 45 * time.Second
	}
	dir, err := os.MkdirTemp("", "campuspay-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browsertest: profile dir: %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(o.ExecPath),
		chromedp.UserDataDir(dir),
		// Chromium's own temporary files go to the profile, removed with it.
		chromedp.Env("TMPDIR="+dir),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(int(o.Width), int(o.Height)),
	)
	for k, v := range o.Flags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	var copts []chromedp.ContextOption
	if o.Logf != nil {
		copts = append(copts, chromedp.WithErrorf(o.Logf))
	}
	tctx, tcancel := chromedp.NewContext(actx, copts...)
	b := &Browser{ctx: tctx, dir: dir, timeout: o.Timeout, opt: o, cancel: func() { tcancel(); acancel() }}
	if err := b.emulatePhone(); err != nil {
		b.Close()
		return nil, fmt.Errorf("browsertest: start %s: %w", o.ExecPath, err)
	}
	return b, nil
}

// emulatePhone gives the tab the phone screen of b.opt and passes its
// console to b.opt.Logf.
func (b *Browser) emulatePhone() error {
	o := b.opt
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(o.Width, o.Height, chromedp.EmulateScale(o.Scale), chromedp.EmulateMobile)); err != nil {
		return err
	}
	if o.Logf != nil {
		b.logConsole(o.Logf)
	}
	return nil
}

// Context is the tab's chromedp context, for actions of the caller's own.
func (b *Browser) Context() context.Context { return b.ctx }

// Close stops the browser and removes its profile.
func (b *Browser) Close() {
	b.cancel()
	os.RemoveAll(b.dir)
}

// Do runs chromedp actions in the tab, bounded by the wait timeout.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Eval evaluates a JavaScript expression (promises awaited) and decodes its
// JSON value into T.
func Eval[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
}

// WaitFor waits until the JavaScript expression is truthy and returns its value.
func WaitFor[T any](b *Browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout+time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[T](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(b.timeout)))
	if err != nil {
		return v, fmt.Errorf("browsertest: waiting for %s: %w", expr, err)
	}
	return v, nil
}

// Open loads the wallet at baseURL (e.g. "http://127.0.0.1:8080") and waits
// until its WebAssembly module is running and the first page is drawn.
func (b *Browser) Open(baseURL string) error {
	if err := b.Do(chromedp.Navigate(strings.TrimRight(baseURL, "/") + "/")); err != nil {
		return fmt.Errorf("browsertest: open %s: %w", baseURL, err)
	}
	// The first load fetches and compiles the 5 MB WebAssembly module.
	ctx, cancel := context.WithTimeout(b.ctx, 3*b.timeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.ready === "1" && !!document.body.dataset.rendered`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(3*b.timeout-time.Second)))
	if err != nil {
		return fmt.Errorf("browsertest: open %s: the page did not start: %w", baseURL, err)
	}
	return nil
}

// Show switches the page to a route (the part after "#": "home",
// "paycode", "tx", ...) and waits until it is drawn.
func (b *Browser) Show(page string) error {
	want := strings.SplitN(page, "/", 2)[0]
	if _, err := Eval[bool](b, fmt.Sprintf(`(document.body.dataset.rendered = "", location.hash = %q, true)`, page)); err != nil {
		return err
	}
	_, err := WaitFor[bool](b, fmt.Sprintf(`document.body.dataset.rendered === %q`, want))
	return err
}

// Page returns the route drawn last.
func (b *Browser) Page() (string, error) {
	return Eval[string](b, `document.body.dataset.rendered || ""`)
}

// Login logs in through the login form and waits for the home page.
func (b *Browser) Login(studentNo, password string) error {
	if err := b.Show("login"); err != nil {
		return err
	}
	if err := b.Fill("#login", map[string]string{"student_no": studentNo, "password": password}); err != nil {
		return err
	}
	if err := b.Submit("#login"); err != nil {
		return err
	}
	got, err := WaitFor[string](b, `document.body.dataset.rendered === "home" ? "home" : (document.querySelector("#login .err") || {}).textContent`)
	if err != nil {
		return err
	}
	if got != "home" {
		return fmt.Errorf("browsertest: login %s refused: %s", studentNo, got)
	}
	return nil
}

// Fill types values into the named fields of the form, as input events.
func (b *Browser) Fill(form string, values map[string]string) error {
	for name, v := range values {
		ok, err := Eval[bool](b, fmt.Sprintf(`(() => { const el = document.querySelector(%q).elements[%q]; if (!el) return false;
			el.value = %q; el.dispatchEvent(new Event("input", {bubbles: true})); return true; })()`, form, name, v))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("browsertest: form %s has no field %s", form, name)
		}
	}
	return nil
}

// Submit submits the form as its submit button would.
func (b *Browser) Submit(form string) error {
	ok, err := Eval[bool](b, fmt.Sprintf(`(() => { const f = document.querySelector(%q); if (!f) return false; f.requestSubmit(); return true; })()`, form))
	if err == nil && !ok {
		err = fmt.Errorf("browsertest: no form %s", form)
	}
	return err
}

// FormError waits until the form shows a refusal and returns its reason
// code and text.
func (b *Browser) FormError(form string) (code, text string, err error) {
	v, err := WaitFor[[]string](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q + " .err"); return e && [e.dataset.code, e.textContent]; })()`, form))
	if err != nil {
		return "", "", err
	}
	return v[0], v[1], nil
}

// Code shows the payment ("pay") or identity ("identity") code page, waits
// for a code other than any of notThese and returns its text. The text is
// what the canvas shows (data-code, written by the page after drawing).
func (b *Browser) Code(purpose string, notThese ...string) (string, error) {
	page := "paycode"
	if purpose == "identity" {
		page = "idcode"
	}
	if p, _ := b.Page(); p != page {
		if err := b.Show(page); err != nil {
			return "", err
		}
	}
	return b.NextCode(notThese...)
}

// NextCode waits until the code canvas shows a code other than notThese.
func (b *Browser) NextCode(notThese ...string) (string, error) {
	js := `(() => { const c = document.querySelector("#qr"); const s = c && c.dataset.code; return s && !%s.includes(s) ? s : ""; })()`
	return WaitFor[string](b, fmt.Sprintf(js, jsonStrings(notThese)))
}

// Screenshot returns a PNG of the viewport.
func (b *Browser) Screenshot() ([]byte, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.CaptureScreenshot())
}

// ScreenshotOf returns a PNG of one element (CSS selector) as the screen
// shows it, at the device pixel ratio.
func (b *Browser) ScreenshotOf(sel string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
}

// PayCodeScreenshot logs the student in to the wallet at baseURL in a
// fresh headless Chromium, shows the payment code and returns a PNG of the
// code as the phone screen shows it and the code's text (see
// CodeScreenshot). The code was made by the page, is valid for
// protocol.CodeValidity and unused. The student needs no activated wallet
// to get a code, only a login.
func PayCodeScreenshot(ctx context.Context, baseURL, studentNo, password string) (png []byte, code string, err error) {
	b, err := New(ctx, Options{})
	if err != nil {
		return nil, "", err
	}
	defer b.Close()
	if err := b.Open(baseURL); err != nil {
		return nil, "", err
	}
	if err := b.Login(studentNo, password); err != nil {
		return nil, "", err
	}
	if _, err = b.Code("pay"); err != nil {
		return nil, "", err
	}
	return b.CodeScreenshot()
}

// CodeScreenshot waits on the code page for a code other than notThese
// and returns a PNG of it as the phone screen shows it (the QR with its
// quiet zone, 2 device pixels per CSS pixel) and its text. A code the page
// refreshes meanwhile (its timer, a click) is followed to the new one.
//
// Two checks keep a bad picture from reaching a camera: the canvas's own
// pixels must decode to the code (the page drew the right QR), and so must
// the screenshot; each error says how dark the picture was, so a log alone
// tells a blank capture from a bad drawing.
func (b *Browser) CodeScreenshot(notThese ...string) (png []byte, code string, err error) {
	for try := 1; ; try++ {
		png, code, err = b.codeScreenshot(notThese)
		if err == nil || try == 3 {
			return png, code, err
		}
		if now, nerr := Eval[string](b, `document.querySelector("#qr")?.dataset.code || ""`); nerr != nil || now == code {
			return nil, "", err // not a refresh: the picture itself is wrong
		}
	}
}

func (b *Browser) codeScreenshot(notThese []string) (png []byte, code string, err error) {
	if code, err = b.NextCode(notThese...); err != nil {
		return nil, "", err
	}
	if err := b.canvasShows("#qr", code); err != nil {
		return nil, "", err
	}
	if png, err = b.ScreenshotOf("#qr"); err != nil {
		return nil, "", err
	}
	if now, err := Eval[string](b, `document.querySelector("#qr").dataset.code`); err != nil || now != code {
		return nil, "", fmt.Errorf("browsertest: the code changed while taking the screenshot")
	}
	if text, err := decodePNG(png); err != nil || text != code {
		return nil, "", fmt.Errorf("browsertest: the code screenshot decodes to %q (%v) though the canvas shows the code (%s)", text, err, describePNG(png))
	}
	return png, code, nil
}

// canvasShows checks that the canvas's own pixels decode to want.
func (b *Browser) canvasShows(sel, want string) error {
	url, err := Eval[string](b, fmt.Sprintf(`document.querySelector(%q).toDataURL("image/png")`, sel))
	if err != nil {
		return fmt.Errorf("browsertest: read %s: %w", sel, err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, "data:image/png;base64,"))
	if err != nil {
		return fmt.Errorf("browsertest: read %s: %w", sel, err)
	}
	if text, err := decodePNG(raw); err != nil || text != want {
		return fmt.Errorf("browsertest: the page drew a QR that decodes to %q (%v), want %q (%s)", text, err, want, describePNG(raw))
	}
	return nil
}

// decodePNG reads the QR code in a PNG.
func decodePNG(b []byte) (string, error) {
	img, err := pngpkg.Decode(bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	return qrscan.DecodeImage(img)
}

// describePNG says what a picture that would not decode looks like: its
// size and how much of it is dark (0 % is a blank capture).
func describePNG(b []byte) string {
	img, err := pngpkg.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Sprintf("%d bytes, not a PNG: %v", len(b), err)
	}
	r := img.Bounds()
	dark := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if c := color.GrayModel.Convert(img.At(x, y)).(color.Gray); c.Y < 128 {
				dark++
			}
		}
	}
	return fmt.Sprintf("%dx%d px, %.1f %% dark", r.Dx(), r.Dy(), 100*float64(dark)/float64(max(1, r.Dx()*r.Dy())))
}

// logConsole passes the page's console output and uncaught exceptions to logf
// until the browser closes.
func (b *Browser) logConsole(logf func(string, ...any)) {
	console := chromedp.Events(b.ctx, cdpruntime.ConsoleAPICalled)
	exceptions := chromedp.Events(b.ctx, cdpruntime.ExceptionThrown)
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			var args []string
			for _, a := range ev.Args {
				if len(a.Value) > 0 {
					args = append(args, string(a.Value))
				} else {
					args = append(args, a.Description)
				}
			}
			logf("browser console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			logf("browser exception: %s (%s:%d)", msg, d.URL, d.LineNumber)
		}
	}()
}

func jsonStrings(ss []string) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "%q", s)
	}
	sb.WriteByte(']')
	return sb.String()
}
