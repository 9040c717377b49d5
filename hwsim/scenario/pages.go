package scenario

import (
	"fmt"
	"strings"
	"time"

	"campuspay/protocol"
)

// pages: after the showers, students read the app's newer pages — 张伟
// checks his shower history (the water the box metered, what it cost) and
// his monthly bill (the balance after each line agrees with the wallet,
// the bill's totals with the lines), and 陈静 scans the canteen's QR and
// is shown whom she is paying before any password.
func (d *day) pages() error {
	ctx, cancel := d.wait(30 * time.Second)
	defer cancel()
	zw := d.s("2024001")

	sh, err := zw.App.Shower(ctx)
	if err != nil {
		return err
	}
	got, what := "no shower", "shower history"
	if len(sh.Sessions) > 0 {
		s := sh.Sessions[0]
		what = fmt.Sprintf("shower history: %.1f L for ¥%s", float64(s.ML)/1000, protocol.FormatCents(s.Amount))
		cost := s.ML * sh.CentsPerLitre / 1000
		switch {
		case s.Status != string(protocol.StatusApproved):
			got = s.Status
		case s.ML < 2000 || s.Amount < cost-1 || s.Amount > cost+1: // stopped after 2 L, charged by the litre
			got = fmt.Sprintf("%d ml charged %s", s.ML, protocol.FormatCents(s.Amount))
		default:
			got = "ok"
		}
	}
	d.check(zw.Name, "app", what, 0, "", got, "ok")

	st, err := zw.App.Statement(ctx, "", "")
	if err != nil {
		return err
	}
	w, err := zw.App.Wallet(ctx)
	if err != nil {
		return err
	}
	var spent, topUp int64
	for _, l := range st.Lines {
		if l.Status == string(protocol.StatusApproved) {
			switch l.Kind {
			case "top_up":
				topUp += l.Amount
			case "payment", "scan_pay", "shower":
				spent += l.Amount
			}
		}
	}
	var billed int64
	for _, v := range st.Totals.Spent {
		billed += v
	}
	got = "ok"
	switch {
	case len(st.Lines) == 0:
		got = "no lines"
	case st.Closing != w.Balance || st.Lines[0].BalanceAfter != w.Balance:
		got = fmt.Sprintf("closing %s, newest line after %s, wallet %s", protocol.FormatCents(st.Closing),
			protocol.FormatCents(st.Lines[0].BalanceAfter), protocol.FormatCents(w.Balance))
	case billed != spent || st.Totals.TopUp != topUp:
		got = fmt.Sprintf("bill spent %d top-up %d, lines %d %d", billed, st.Totals.TopUp, spent, topUp)
	}
	d.check(zw.Name, "app", fmt.Sprintf("monthly bill %s, %d lines, balances", st.Month, len(st.Lines)), w.Balance, "", got, "ok")

	out, err := d.c.Admin("terminal", "list", "--qr")
	if err != nil {
		return fmt.Errorf("scenario: terminal list: %w\n%s", err, out)
	}
	qr := ""
	for _, line := range strings.Split(out, "\n") {
		if id, code, ok := strings.Cut(line, " "); ok && id == posID && protocol.Classify(code) == protocol.KindMerchantQR {
			qr = code
		}
	}
	cj := d.s("2024005")
	payee, err := cj.App.Payee(ctx, qr)
	got = outcome(err)
	if err == nil {
		got = payee.MerchantName + " · " + payee.CampusName
	}
	d.check(cj.Name, posID, "payee named before the password", 0, "", got, "一食堂 · 云谷")
	_, err = cj.App.Payee(ctx, "CM1:NOT-OURS")
	d.check(cj.Name, "app", "foreign QR refused before the password", 0, "", outcome(err), protocol.ErrMerchantQRInvalid.Code)
	return nil
}
