package scenario

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"strconv"

	"campuspay/hwsim/rig"
	"campuspay/protocol"
	"campuspay/server/web/browsertest"
	"campuspay/server/web/qrscan"
)

// offlinePhone is a student's phone in the offline act: the web wallet in
// an incognito tab of a headless Chromium (webPhone), or — only in the
// demo on a machine without Chromium — the phone simulator (simPhone).
type offlinePhone interface {
	// takeAllowance turns an offline allowance of cents on in the app and
	// readies the phone for airplane mode; it returns the hold placed.
	takeAllowance(ctx context.Context, cents int64) (held int64, err error)
	// airplane puts the phone in airplane mode (on) or takes it out.
	airplane(on bool) error
	// code shows a fresh payment code on the screen.
	code() (screenCode, error)
	// held is what is left of the allowance's hold, as the app shows it.
	held(ctx context.Context) (int64, error)
}

// screenCode is a payment code on a phone's screen: its picture (a
// screenshot of the web wallet) or, from the phone simulator, its text.
type screenCode struct {
	text string
	img  image.Image
}

// show holds the phone to the box's reader: the canteen's camera films
// the screen; the till's serial scanner is an imager too and reads the
// code off the screen.
func (c screenCode) show(r *rig.Rig) error {
	if c.img == nil {
		return showText(c.text)(r)
	}
	if r.Camera != nil {
		return r.ShowImage(c.img)
	}
	text, err := qrscan.DecodeImage(c.img)
	if err != nil {
		return fmt.Errorf("scenario: the %s scanner cannot read the screen: %w", r.Terminal, err)
	}
	return r.ShowVia(rig.ViaScanner, text)
}

// webPhone is a student's web wallet, in a tab of its own.
type webPhone struct {
	b     *browsertest.Browser
	shown []string // codes shown so far: each payment gets a new one
}

// openWebPhone logs s in to the web wallet at api in a new incognito tab
// of root (360 px, as browsertest emulates a phone).
func openWebPhone(root *browsertest.Browser, api string, s *Student) (*webPhone, error) {
	b, err := root.Incognito()
	if err != nil {
		return nil, err
	}
	if err := b.Open(api); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.Login(s.No, s.Password); err != nil {
		b.Close()
		return nil, err
	}
	return &webPhone{b: b}, nil
}

func (w *webPhone) close() { w.b.Close() }

// takeAllowance uses the page's own allowance form, then opens the code
// page once online (the device certificate carrying the allowance is
// stored by then) and waits until the service worker controls the page
// and has cached its WebAssembly module.
func (w *webPhone) takeAllowance(_ context.Context, cents int64) (int64, error) {
	b := w.b
	if err := b.Show("offline"); err != nil {
		return 0, err
	}
	if err := b.Fill("#allowance-form", map[string]string{"amount": protocol.FormatCents(cents)}); err != nil {
		return 0, err
	}
	if err := b.Submit("#allowance-form"); err != nil {
		return 0, err
	}
	got, err := browsertest.WaitFor[string](b, `(() => {
		const e = document.querySelector("#allowance-form .err"); if (e) return "refused: " + e.dataset.code;
		const h = document.querySelector("#allowance-held"); return h && h.dataset.cents !== "0" ? h.dataset.cents : ""; })()`)
	if err != nil {
		return 0, err
	}
	held, err := strconv.ParseInt(got, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("scenario: web wallet allowance: %s", got)
	}
	if _, err := b.Code("pay"); err != nil {
		return 0, err
	}
	if _, err := browsertest.WaitFor[bool](b, `navigator.serviceWorker.controller !== null &&
		caches.match("/gen/wallet.wasm").then((r) => !!r)`); err != nil {
		return 0, fmt.Errorf("scenario: the web wallet's service worker: %w", err)
	}
	return held, nil
}

// airplane turns the tab's network off and, with it off, opens the app
// as a student does from its icon (start_url "/", the home page): the page
// must come from the service worker, and its home page keep the pay-code
// tile, which the student taps.
func (w *webPhone) airplane(on bool) error {
	if err := w.b.Airplane(on); err != nil || !on {
		return err
	}
	if _, err := browsertest.Eval[bool](w.b, `(history.replaceState(null, "", "/"), true)`); err != nil {
		return err
	}
	if err := w.b.Reload(); err != nil {
		return err
	}
	ok, err := browsertest.WaitFor[bool](w.b, `!navigator.onLine && navigator.serviceWorker.controller !== null &&
		document.body.dataset.rendered === "home" && !!document.querySelector("#offline-home")`)
	if err != nil || !ok {
		return fmt.Errorf("scenario: in airplane mode the web wallet did not open its offline home page from the service worker: %v", err)
	}
	if _, err := browsertest.Eval[bool](w.b, `(document.querySelector('#view [data-go="paycode"]').click(), true)`); err != nil {
		return err
	}
	_, err = browsertest.WaitFor[bool](w.b, `document.body.dataset.rendered === "paycode"`)
	return err
}

// code asks the page for a new code (its refresh button) and photographs it.
func (w *webPhone) code() (screenCode, error) {
	cur, err := browsertest.Eval[string](w.b, `(() => { const c = document.querySelector("#qr"); document.querySelector("#refresh").click(); return c.dataset.code || ""; })()`)
	if err != nil {
		return screenCode{}, err
	}
	w.shown = append(w.shown, cur)
	shot, text, err := w.b.CodeScreenshot(w.shown...)
	if err != nil {
		return screenCode{}, err
	}
	w.shown = append(w.shown, text)
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		return screenCode{}, fmt.Errorf("scenario: web wallet screenshot: %w", err)
	}
	return screenCode{text: text, img: img}, nil
}

// held reads the hold off the page's offline page.
func (w *webPhone) held(context.Context) (int64, error) {
	if err := w.b.Show("offline"); err != nil {
		return 0, err
	}
	v, err := browsertest.Eval[string](w.b, `document.querySelector("#allowance-held").dataset.cents`)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// simPhone is the phone simulator: it makes its codes itself, so
// airplane mode changes nothing for it.
type simPhone struct{ s *Student }

func (p simPhone) takeAllowance(ctx context.Context, cents int64) (int64, error) {
	o, err := p.s.App.RequestAllowance(ctx, cents)
	if err != nil {
		return 0, err
	}
	if o.Allowance == nil {
		return 0, nil
	}
	return o.Allowance.Held, nil
}

func (simPhone) airplane(bool) error { return nil }

func (p simPhone) code() (screenCode, error) {
	text, err := p.s.App.Code()
	return screenCode{text: text}, err
}

func (p simPhone) held(ctx context.Context) (int64, error) {
	o, err := p.s.App.OfflineStatus(ctx)
	if err != nil || o.Allowance == nil {
		return 0, err
	}
	return o.Allowance.Held, nil
}
