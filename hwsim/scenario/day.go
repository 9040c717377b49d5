package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"sort"
	"strings"
	"time"

	"campuspay/hwsim/netcut"
	"campuspay/hwsim/phone"
	"campuspay/hwsim/rig"
	"campuspay/hwsim/twin/cardtwin"
	"campuspay/protocol"
	"campuspay/server/web/browsertest"
	"campuspay/terminal/device"
)

// The campus of the scripted day.
const (
	posID    = "T-POS-01"  // canteen window: camera scanner
	shopID   = "T-SHOP-01" // supermarket till: serial barcode scanner
	cardID   = "T-CARD-01"
	showerID = "T-SHOWER-01"
)

// Day is the scripted campus day of `make demo`: every wallet rule and
// every fallback, each step checked against its expected outcome.
func Day(ctx context.Context, opt Options) (c *Campus, err error) {
	c, err = New(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.dumpLogs()
		}
	}()
	students := []*Student{
		{No: "2024001", Name: "张伟", Phone: "13800000001", Category: "本科生", Campus: "yungu", CardUID: "04A1B2C3D4E501", Password: "pass2024", OpenID: "oWX-zhangwei"},
		{No: "2024002", Name: "李娜", Phone: "13800000002", Category: "中专生", Campus: "yungu", CardUID: "04A1B2C3D4E502", Password: "pass2024"},
		{No: "2024003", Name: "王芳", Phone: "13800000003", Category: "本科生", Campus: "yungu", CardUID: "04A1B2C3D4E503", Password: "pass2024"},
		{No: "2024004", Name: "刘洋", Phone: "13800000004", Category: "本科生", Campus: "yungu", CardUID: "04A1B2C3D4E504", Password: "pass2024"},
		{No: "2024005", Name: "陈静", Phone: "13800000005", Category: "研究生", Campus: "yungu", CardUID: "04A1B2C3D4E505", Password: "pass2024"},
		{No: "2024006", Name: "赵磊", Phone: "13800000006", Category: "本科生", Campus: "yungu", CardUID: "04A1B2C3D4E506", Password: "pass2024", OpenID: "oWX-zhaolei"},
	}
	for _, s := range students {
		if err := c.AddStudent(s, 5000_00, 300_00); err != nil {
			return c, err
		}
	}
	boxes := []BoxSpec{
		{ID: posID, Merchant: "M-CANTEEN", Mode: "pos", Rig: rig.Config{Camera: true, Keypad: "serial"}},
		{ID: shopID, Merchant: "M-SHOP", Mode: "pos", Rig: rig.Config{Scanner: true, Keypad: "serial"}},
		{ID: cardID, Merchant: "M-LAUNDRY", Mode: "card", FixedAmount: 300, Rig: rig.Config{Card: "pn532"}},
		{ID: showerID, Merchant: "M-SHOWER", Mode: "shower", Rig: rig.Config{Valve: true, Keypad: "serial", Card: "rdm6300"}},
	}
	merchants := [][3]string{{"M-CANTEEN", "一食堂", "yungu"}, {"M-SHOP", "校园超市", "yungu"}, {"M-LAUNDRY", "洗衣房", "yungu"}, {"M-SHOWER", "云谷浴室", "yungu"}}
	if err := c.StartAuthorizer(merchants, boxes); err != nil {
		return c, err
	}
	for _, b := range boxes {
		if err := c.StartBox(b); err != nil {
			return c, err
		}
	}
	for _, b := range boxes {
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := c.WaitOnline(wctx, b.ID)
		cancel()
		c.Timeline.Add(Event{Who: "terminal", Where: b.ID, What: "terminald online (" + b.Mode + ")", Result: okOr(err), OK: err == nil})
		if err != nil {
			return c, err
		}
	}
	d := &day{c: c, ctx: ctx}
	for _, step := range []func() error{
		d.activation, d.codePayments, d.webWallet, d.cardTaps, d.codeRefusals, d.wechat, d.showers, d.pages, d.outage, d.lifecycle,
		d.account, d.offlineAct,
		d.backOffice,
		d.moneyBackOffice,
	} {
		if err := step(); err != nil {
			return c, err
		}
	}
	return c, nil
}

type day struct {
	c   *Campus
	ctx context.Context
}

func (d *day) s(no string) *Student { return d.c.Students[no] }

// check records one expected outcome.
func (d *day) check(who, where, what string, amount int64, channel, got, want string) {
	d.c.Timeline.Add(Event{Who: who, Where: where, What: what, Amount: amount, Channel: channel, Result: got, Want: want, OK: got == want})
}

// outcome turns an API error into a result word: "ok" or a reason code.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	var r *protocol.Reason
	if errors.As(err, &r) {
		return r.Code
	}
	return "error: " + err.Error()
}

func okOr(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func (d *day) wait(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(d.ctx, timeout)
}

// --- activation -------------------------------------------------------

func (d *day) activation() error {
	ctx := d.ctx
	for _, s := range d.c.sortedStudents() {
		if err := s.App.Login(ctx); err != nil {
			return fmt.Errorf("login %s: %w", s.No, err)
		}
	}
	zw := d.s("2024001")
	// The bank checks holder details: a wrong phone is refused by field.
	_, err := zw.App.BindCard(ctx, phone.BankCard{BankCode: zw.BankCode, CardNumber: zw.BankCard, Phone: "13900009999"})
	d.check(zw.Name, "app", "bind card with a phone the bank does not have", 0, "", outcome(err), protocol.ErrBankPhoneMismatch.Code)
	for _, s := range d.c.sortedStudents() {
		_, err := s.App.BindCard(ctx, phone.BankCard{BankCode: s.BankCode, CardNumber: s.BankCard})
		d.check(s.Name, "app", "bind card → wallet activated", 0, "", outcome(err), "ok")
		if err != nil {
			return err
		}
		if _, err := s.App.SetPaymentPassword(ctx, "", "135790"); err != nil {
			return fmt.Errorf("payment password %s: %w", s.No, err)
		}
		if _, err := s.App.SetWaterPassword(ctx, "", "246810"); err != nil {
			return fmt.Errorf("water password %s: %w", s.No, err)
		}
		if _, err := s.App.RegisterDevice(ctx); err != nil {
			return fmt.Errorf("register device %s: %w", s.No, err)
		}
	}
	w, err := zw.App.SignPasswordFree(ctx)
	d.check(zw.Name, "app", "sign the password-free contract", 0, "", outcome(err), "ok")
	if err == nil && !w.PasswordFree {
		d.check(zw.Name, "app", "password-free shown as signed", 0, "", "unsigned", "signed")
	}
	ln := d.s("2024002")
	w, err = ln.App.Wallet(ctx)
	warn := "no warning"
	if err == nil && w.PasswordFreeWarning {
		warn = "warned"
	}
	d.check(ln.Name, "app", "中专生 without password-free is warned", 0, "", warn, "warned")
	for _, t := range []struct {
		no     string
		amount int64
	}{{"2024001", 100_00}, {"2024002", 50_00}, {"2024003", 200_00}, {"2024004", 14_99}, {"2024005", 100_00}, {"2024006", 30_00}} {
		s := d.s(t.no)
		r, err := s.App.TopUp(ctx, t.amount)
		ch := ""
		if r != nil {
			ch = r.Transaction.Channel
		}
		d.check(s.Name, "app", "top-up from the bound card", t.amount, ch, outcome(err), "ok")
	}
	return nil
}

// --- POS payments -----------------------------------------------------

// keysFor is what a cashier types for an amount: "12.50\n".
func keysFor(cents int64) string { return protocol.FormatCents(cents) + "\n" }

// posPay pays at the canteen POS (camera).
func (d *day) posPay(cents int64, text string) (Screen, error) { return d.payAt(posID, cents, text) }

// payAt keys the amount on a POS, shows text to its scanner (the camera,
// or the serial barcode scanner) and returns the result screen.
func (d *day) payAt(id string, cents int64, text string) (Screen, error) {
	ctx, cancel := d.wait(25 * time.Second)
	defer cancel()
	// A code refused by the box's own checks leaves the sale open with the
	// reason as a prompt, so the student can show another code; anything
	// else ends in a result screen.
	return d.sale(ctx, id, cents, text, "amount awaiting a code",
		func(s Screen) bool { return s.Kind == device.ScreenAwait },
		func(s Screen) bool { return s.Kind == device.ScreenAwait && s.Message != "" })
}

// sale keys the amount on a POS, waits for a screen that is ready for a
// code, shows text to its scanner and returns the result screen — or the
// screen refused reports, after which the cashier cancels the sale.
func (d *day) sale(ctx context.Context, id string, cents int64, text, what string, ready, refused func(Screen) bool) (Screen, error) {
	return d.saleShowing(ctx, id, cents, what, ready, refused, showText(text))
}

// showText shows text as a code to a box's camera (a phone screen showing
// it) or, without one, to its serial scanner.
func showText(text string) func(*rig.Rig) error {
	return func(r *rig.Rig) error {
		via := rig.ViaScanner
		if r.Camera != nil {
			via = rig.ViaCamera
		}
		return r.ShowVia(via, text)
	}
}

// saleShowing is sale with the code shown to the box's scanner by show.
func (d *day) saleShowing(ctx context.Context, id string, cents int64, what string, ready, refused func(Screen) bool, show func(*rig.Rig) error) (Screen, error) {
	b := d.c.Boxes[id]
	mark := b.Display.Mark()
	// Cancel whatever sale is open, then key the amount.
	if err := b.Rig.Key("\x1b" + keysFor(cents)); err != nil {
		return Screen{}, err
	}
	if _, err := b.Display.WaitAfter(ctx, mark, what, ready); err != nil {
		return Screen{}, err
	}
	shown := b.Display.Mark()
	if err := show(b.Rig); err != nil {
		return Screen{}, err
	}
	defer b.Rig.Blank()
	res, err := b.Display.WaitAfter(ctx, shown, "a result", func(s Screen) bool { return s.Kind == device.ScreenResult || refused(s) })
	if err == nil && res.Kind != device.ScreenResult {
		b.Rig.Key("\x1b") // the cashier cancels the sale
	}
	return res, err
}

// result turns a result screen into "approved" or the reason code shown.
func result(s Screen) string {
	if s.Result == "ok" {
		return "approved"
	}
	if r := s.Reason(); r != "" {
		return r
	}
	return "declined: " + s.Message
}

// lastChannel is the channel of the student's newest transaction.
func (d *day) lastChannel(s *Student) string {
	txs, err := s.App.Transactions(d.ctx)
	if err != nil || len(txs) == 0 {
		return ""
	}
	return txs[0].Channel
}

func (d *day) codePayments() error {
	zw := d.s("2024001")
	code, err := zw.App.Code()
	if err != nil {
		return err
	}
	res, err := d.posPay(12_50, code)
	if err != nil {
		return err
	}
	d.check(zw.Name, posID, "payment code, paid from balance", 12_50, d.lastChannel(zw), result(res), "approved")
	// The balance (¥87.50) does not cover ¥120.00: the whole amount goes
	// to the bound bank card.
	code, _ = zw.App.Code()
	res, err = d.posPay(120_00, code)
	if err != nil {
		return err
	}
	d.check(zw.Name, posID, "payment code beyond the balance → bank card", 120_00, d.lastChannel(zw), result(res), "approved")
	return nil
}

// webWallet: a student opens the web wallet in a real browser (headless
// Chromium), the page makes a payment code with its WebCrypto key and the
// WebAssembly build of protocol/, and the canteen camera reads a photo of
// the phone screen.
func (d *day) webWallet() error {
	cj := d.s("2024005")
	if _, err := browsertest.Chromium(); err != nil {
		if d.c.opt.RequireBrowser {
			return err
		}
		d.c.Timeline.Add(Event{Who: cj.Name, Where: "web wallet", What: "web wallet code (no Chromium here: skipped)", Result: "skipped", OK: true})
		return nil
	}
	ctx, cancel := d.wait(60 * time.Second)
	defer cancel()
	shot, code, err := browsertest.PayCodeScreenshot(ctx, d.c.API, cj.No, cj.Password)
	if err != nil {
		return fmt.Errorf("web wallet: %w", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		return fmt.Errorf("web wallet screenshot: %w", err)
	}
	b := d.c.Boxes[posID]
	mark := b.Display.Mark()
	if err := b.Rig.Key("\x1b" + keysFor(4_50)); err != nil {
		return err
	}
	if _, err := b.Display.WaitAfter(ctx, mark, "amount awaiting a code", func(s Screen) bool { return s.Kind == device.ScreenAwait }); err != nil {
		return err
	}
	if err := b.Rig.ShowImage(img); err != nil {
		return err
	}
	res, err := b.Display.Result(ctx, mark)
	b.Rig.Blank()
	if err != nil {
		return err
	}
	got := result(res)
	if protocol.Classify(code) != protocol.KindPayCode {
		got = "not a pay code: " + protocol.Classify(code).String()
	}
	d.check(cj.Name, posID, "web wallet code, photographed by the camera", 4_50, d.lastChannel(cj), got, "approved")
	return nil
}

func (d *day) cardTaps() error {
	ln := d.s("2024002")
	tap := func() (Screen, error) { return d.tapCard(ln) }
	res, err := tap()
	if err != nil {
		return err
	}
	d.check(ln.Name, cardID, "card tap without password-free", 3_00, "", result(res), protocol.ErrPasswordFreeMissing.Code)
	if _, err := ln.App.SignPasswordFree(d.ctx); err != nil {
		return err
	}
	d.check(ln.Name, "app", "sign the password-free contract", 0, "", "ok", "ok")
	res, err = tap()
	if err != nil {
		return err
	}
	d.check(ln.Name, cardID, "card tap with password-free", 3_00, d.lastChannel(ln), result(res), "approved")
	return nil
}

// tapCard taps the student's card on the card box and returns its result.
func (d *day) tapCard(s *Student) (Screen, error) {
	b := d.c.Boxes[cardID]
	ctx, cancel := d.wait(20 * time.Second)
	defer cancel()
	// A real card is lifted off the reader between taps: let the
	// reader poll an empty field a few times first.
	if p, ok := b.Rig.Card.(*cardtwin.PN532); ok {
		if err := p.WaitPolls(ctx, p.Polls()+6); err != nil {
			return Screen{}, err
		}
	}
	mark := b.Display.Mark()
	if err := b.Rig.Tap(s.CardUID); err != nil {
		return Screen{}, err
	}
	// A card the box itself refuses (on its lost list) leaves it waiting
	// for a card, the reason shown; anything else ends in a result.
	return b.Display.WaitAfter(ctx, mark, "a result", func(s Screen) bool { return s.Kind == device.ScreenResult || s.Reason() != "" })
}

func (d *day) codeRefusals() error {
	zw := d.s("2024001")
	id, _ := zw.App.IdentityCode(time.Now())
	res, err := d.posPay(8_00, id)
	if err != nil {
		return err
	}
	d.check(zw.Name, posID, "identity code shown to pay", 8_00, "", result(res), protocol.ErrIdentityCode.Code)
	code, _ := zw.App.Code()
	res, err = d.posPay(6_00, code)
	if err != nil {
		return err
	}
	d.check(zw.Name, posID, "fresh payment code", 6_00, d.lastChannel(zw), result(res), "approved")
	// A screenshot of that code, shown at another till: the authorizer's
	// campus-wide single-use check refuses it.
	shot, _ := zw.App.Screenshot()
	res, err = d.payAt(shopID, 6_00, shot)
	if err != nil {
		return err
	}
	d.check(zw.Name, shopID, "screenshot of the used code, at the shop", 6_00, "", result(res), protocol.ErrCodeUsed.Code)
	old, _ := zw.App.PayCode(time.Now().Add(-3 * time.Minute))
	res, err = d.posPay(6_00, old)
	if err != nil {
		return err
	}
	d.check(zw.Name, posID, "code made three minutes ago", 6_00, "", result(res), protocol.ErrCodeExpired.Code)
	wf := d.s("2024003")
	if _, err := wf.App.SetLimits(d.ctx, 50_00, 100_00); err != nil {
		return err
	}
	d.check(wf.Name, "app", "sets a ¥50.00 per-payment limit", 0, "", "ok", "ok")
	code, _ = wf.App.Code()
	res, err = d.posPay(60_00, code)
	if err != nil {
		return err
	}
	d.check(wf.Name, posID, "payment over the per-payment limit", 60_00, "", result(res), protocol.ErrLimitPerTx.Code)
	code, _ = wf.App.Code()
	res, err = d.posPay(50_00, code)
	if err != nil {
		return err
	}
	d.check(wf.Name, posID, "payment exactly at the limit", 50_00, d.lastChannel(wf), result(res), "approved")
	// Alipay and UnionPay codes are refused as unsupported, on the box.
	res, err = d.posPay(5_00, "2812345678901234567")
	if err != nil {
		return err
	}
	d.check(wf.Name, posID, "Alipay payment code", 5_00, "", result(res), protocol.ErrUnsupportedCode.Code)
	return nil
}

// --- WeChat -----------------------------------------------------------

func (d *day) wechat() error {
	zl := d.s("2024006")
	wx := d.c.WeChat
	code, err := wx.NewPaymentCode(zl.OpenID)
	if err != nil {
		return err
	}
	res, err := d.posPay(9_00, code)
	if err != nil {
		return err
	}
	d.check(zl.Name, posID, "WeChat code before WeChat authentication", 9_00, "", result(res), protocol.ErrWeChatNotLinked.Code)
	login, err := wx.NewLoginCode(zl.OpenID)
	if err != nil {
		return err
	}
	_, err = zl.App.LinkWeChat(d.ctx, login)
	d.check(zl.Name, "app", "WeChat mini-program authentication", 0, "", outcome(err), "ok")
	code, _ = wx.NewPaymentCode(zl.OpenID)
	res, err = d.posPay(9_00, code)
	if err != nil {
		return err
	}
	d.check(zl.Name, posID, "WeChat payment code", 9_00, d.lastChannel(zl), result(res), "approved")
	// The phone asks for the WeChat password; the student enters it.
	if err := wx.SetNeedsPassword(zl.OpenID, true, 2); err != nil {
		return err
	}
	code, _ = wx.NewPaymentCode(zl.OpenID)
	b := d.c.Boxes[posID]
	mark := b.Display.Mark()
	res, err = d.posPay(15_00, code)
	if err != nil {
		return err
	}
	_, werr := b.Display.WaitAfter(d.ctx, mark, "USERPAYING prompt", func(s Screen) bool {
		return s.Kind == device.ScreenWorking && strings.Contains(s.Message+s.Title, "密码")
	})
	d.check(zl.Name, posID, "WeChat asks for the password on the phone", 15_00, "", okOr(werr), "ok")
	d.check(zl.Name, posID, "…then the student enters it", 15_00, d.lastChannel(zl), result(res), "approved")
	// This time the student never enters it: the box reverses at its deadline.
	if err := wx.SetNeedsPassword(zl.OpenID, true, 0); err != nil {
		return err
	}
	before, _ := wx.Balance(zl.OpenID)
	code, _ = wx.NewPaymentCode(zl.OpenID)
	res, err = d.posPay(16_00, code)
	if err != nil {
		return err
	}
	after, _ := wx.Balance(zl.OpenID)
	got := result(res)
	if after != before {
		got += fmt.Sprintf(" (WeChat balance moved by %s)", protocol.FormatCents(after-before))
	}
	d.check(zl.Name, posID, "WeChat password never entered → reversed", 16_00, "", got, protocol.ErrTimeout.Code)
	return wx.SetNeedsPassword(zl.OpenID, false, 0)
}

// --- showers ----------------------------------------------------------

// shower keys account + water password on the shower keypad, opens the tap
// and returns the final result screen.
func (d *day) shower(s *Student, lpm float64, stopAfterLitres float64) (Screen, error) {
	b := d.c.Boxes[showerID]
	ctx, cancel := d.wait(60 * time.Second)
	defer cancel()
	mark := b.Display.Mark()
	if err := b.Rig.Key(s.No + "\n246810\n"); err != nil {
		return Screen{}, err
	}
	started, err := b.Display.WaitAfter(ctx, mark, "shower running or refused", func(x Screen) bool {
		return x.Kind == device.ScreenShower || x.Kind == device.ScreenResult
	})
	if err != nil || started.Kind == device.ScreenResult {
		return started, err
	}
	if err := b.Rig.SetFlow(lpm); err != nil {
		return Screen{}, err
	}
	defer b.Rig.SetFlow(0)
	if stopAfterLitres > 0 {
		if _, err := b.Display.WaitAfter(ctx, mark, "litres metered", func(x Screen) bool {
			var l float64
			fmt.Sscanf(x.Litres, "%g", &l)
			return x.Kind == device.ScreenShower && l >= stopAfterLitres
		}); err != nil {
			return Screen{}, err
		}
		if err := b.Rig.Key("S"); err != nil {
			return Screen{}, err
		}
	}
	return b.Display.Result(ctx, mark)
}

func (d *day) showers() error {
	zw := d.s("2024001")
	res, err := d.shower(zw, 30, 2)
	if err != nil {
		return err
	}
	txs, _ := zw.App.Transactions(d.ctx)
	var charged int64
	if len(txs) > 0 {
		charged = -txs[0].Amount
		if charged < 0 {
			charged = -charged
		}
	}
	d.check(zw.Name, showerID, "shower, stopped with the stop key", charged, "balance", result(res), "approved")
	cj := d.s("2024005")
	res, err = d.shower(cj, 100, 0)
	if err != nil {
		return err
	}
	txs, _ = cj.App.Transactions(d.ctx)
	charged = 0
	if len(txs) > 0 {
		charged = txs[0].Amount
		if charged < 0 {
			charged = -charged
		}
	}
	got := result(res)
	if charged != 15_00 {
		got += fmt.Sprintf(" (charged %s)", protocol.FormatCents(charged))
	}
	d.check(cj.Name, showerID, "shower closed when the cost reached the hold", 15_00, "balance", got, "approved")
	ly := d.s("2024004")
	res, err = d.shower(ly, 30, 1)
	if err != nil {
		return err
	}
	d.check(ly.Name, showerID, "shower with a ¥14.99 balance", 0, "", result(res), protocol.ErrShowerBalanceLow.Code)
	return nil
}

// --- network outage at lunch -----------------------------------------

func (d *day) outage() error {
	b := d.c.Boxes[posID]
	cj := d.s("2024005")
	wf := d.s("2024003")
	ctx, cancel := d.wait(60 * time.Second)
	defer cancel()
	mark := b.Display.Mark()
	cut := time.Now()
	if err := b.Rig.Cut(netcut.Reset); err != nil {
		return err
	}
	d.c.Timeline.Add(Event{Who: "network", Where: posID, What: "broker link cut during lunch", Result: "cut", OK: true})
	if err := b.Rig.Key(keysFor(18_00)); err != nil {
		return err
	}
	off, err := b.Display.WaitAfter(ctx, mark, "static merchant QR", func(s Screen) bool { return s.Kind == device.ScreenOffline && s.QR != "" })
	took := time.Since(cut)
	want := "within 5s"
	got := want
	if err != nil || took > 5*time.Second {
		got = fmt.Sprintf("after %.1fs (%v)", took.Seconds(), err)
	}
	d.check("cashier", posID, "display shows the static merchant QR", 18_00, "", got, want)
	if err != nil {
		return err
	}
	qr, err := b.Display.ReadQR(ctx, off)
	kind := protocol.Classify(qr).String()
	d.check(cj.Name, posID, "phone scans the QR on the display", 0, "", kind, "merchant_qr")
	if err != nil {
		return err
	}
	_, err = cj.App.ScanPay(ctx, qr, 18_00, "000000")
	d.check(cj.Name, "app", "scan-to-pay with a wrong payment password", 18_00, "", outcome(err), protocol.ErrPaymentPasswordWrong.Code)
	r1, err := cj.App.ScanPay(ctx, qr, 18_00, "135790")
	ch := ""
	if r1 != nil {
		ch = r1.Transaction.Channel
	}
	d.check(cj.Name, "app", "scan-to-pay the offline POS", 18_00, ch, outcome(err), "ok")
	r2, err := wf.App.ScanPay(ctx, qr, 7_50, "135790")
	ch = ""
	if r2 != nil {
		ch = r2.Transaction.Channel
	}
	d.check(wf.Name, "app", "scan-to-pay the offline POS", 7_50, ch, outcome(err), "ok")
	mark = b.Display.Mark()
	if err := b.Rig.Restore(); err != nil {
		return err
	}
	d.c.Timeline.Add(Event{Who: "network", Where: posID, What: "broker link restored", Result: "restored", OK: true})
	notes, err := b.Display.WaitAfter(ctx, mark, "static-QR payments for the cashier", func(s Screen) bool { return s.Kind == device.ScreenNotices && len(s.Lines) >= 2 })
	got = fmt.Sprintf("%d payments shown", len(notes.Lines))
	if err != nil {
		got = err.Error()
	}
	d.check("cashier", posID, "POS shows the payments made while offline", 25_50, "", got, "2 payments shown")
	if err := b.Rig.Key("\n"); err != nil { // the cashier confirms
		return err
	}
	depth, err := d.c.journalDepth(ctx, posID)
	got = fmt.Sprintf("journal depth %d", depth)
	if err != nil {
		got = err.Error()
	}
	d.check("terminal", posID, "queued journal entries drained", 0, "", got, "journal depth 0")
	// Scan-to-pay while the POS is online: the authorizer pushes the
	// payment to the till at once.
	mark = b.Display.Mark()
	if _, err := cj.App.ScanPay(ctx, qr, 3_00, "135790"); err != nil {
		return err
	}
	_, err = b.Display.WaitAfter(ctx, mark, "pushed static-QR payment", func(s Screen) bool { return s.Kind == device.ScreenNotices })
	d.check("cashier", posID, "scan-to-pay while online, pushed to the POS", 3_00, "", okOr(err), "ok")
	return b.Rig.Key("\n")
}

// --- wallet life cycle -------------------------------------------------

func (d *day) lifecycle() error {
	ctx := d.ctx
	wf := d.s("2024003")
	w, _ := wf.App.Wallet(ctx)
	bal := int64(0)
	if w != nil {
		bal = w.Balance
	}
	_, err := wf.App.Withdraw(ctx, 20_00)
	d.check(wf.Name, "app", "withdraw to the bound card", 20_00, "bank_card", outcome(err), "ok")
	bal -= 20_00
	_, err = wf.App.Cancel(ctx)
	d.check(wf.Name, "app", "cancel the wallet (balance withdrawn first)", bal, "", outcome(err), "ok")
	code, _ := wf.App.Code()
	res, perr := d.posPay(1_00, code)
	if perr != nil {
		return perr
	}
	d.check(wf.Name, posID, "pay after cancellation", 1_00, "", result(res), protocol.ErrWalletCancelled.Code)
	for i := 1; i <= 4; i++ {
		_, err = wf.App.Reopen(ctx)
		want := "ok"
		if i == 4 {
			want = protocol.ErrReopenLimit.Code
		}
		d.check(wf.Name, "app", fmt.Sprintf("re-open #%d", i), 0, "", outcome(err), want)
		if i < 4 && err == nil {
			if _, err := wf.App.Cancel(ctx); err != nil {
				return err
			}
		}
	}
	ly := d.s("2024004")
	for i := 1; i <= 4; i++ {
		_, err = ly.App.Unbind(ctx)
		want := "ok"
		if i == 4 {
			want = protocol.ErrUnbindLimit.Code
		}
		d.check(ly.Name, "app", fmt.Sprintf("unbind card #%d", i), 0, "", outcome(err), want)
		if i < 4 && err == nil {
			if _, err := ly.App.BindCard(ctx, phone.BankCard{BankCode: ly.BankCode, CardNumber: ly.BankCard}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Summary prints the balances table and runs the ledger check; it returns
// an error when any outcome differed or the ledger is not sound.
func (c *Campus) Summary(ctx context.Context) error {
	fmt.Fprintln(c.opt.Out)
	var rows [][]string
	for _, s := range c.sortedStudents() {
		w, err := s.App.Wallet(ctx)
		if err != nil {
			rows = append(rows, []string{s.No, s.Name, "?", "?", "?", err.Error()})
			continue
		}
		bank, _ := c.Bank.Balance(s.BankCode, s.BankCard)
		rows = append(rows, []string{s.No, s.Name, w.State, "¥" + protocol.FormatCents(w.Balance), "¥" + protocol.FormatCents(w.Held), "¥" + protocol.FormatCents(bank)})
	}
	Table(c.opt.Out, []string{"student", "name", "wallet", "balance", "held", "bank card"}, rows)
	fmt.Fprintln(c.opt.Out)
	out, err := c.Admin("ledger", "check")
	fmt.Fprint(c.opt.Out, "authorizer ledger check: ", out)
	fails := c.Timeline.Failures()
	fmt.Fprintf(c.opt.Out, "\n%d events, %d unexpected\n", c.Timeline.Len(), len(fails))
	for _, f := range fails {
		fmt.Fprintf(c.opt.Out, "  ✗ %s %s %s: got %s, expected %s\n", f.Who, f.Where, f.What, f.Result, f.Want)
	}
	if err != nil {
		return fmt.Errorf("scenario: ledger check failed: %w", err)
	}
	if len(fails) > 0 {
		return errFailed
	}
	return nil
}

func sortStudents(s []*Student) { sort.Slice(s, func(i, j int) bool { return s[i].No < s[j].No }) }

func (c *Campus) dumpLogs() {}
