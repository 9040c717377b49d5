package scenario

import (
	"context"
	"fmt"
	"time"

	"campuspay/protocol"
	"campuspay/terminal/device"
)

// offlineAct (issue 17): the whole campus network goes down — the
// authorizer and its embedded broker stopped — and three students whose
// phones are offline too pay by code at the two POS boxes under their
// offline allowances, one of them overspending across both; a code over
// the allowance is refused at the till. (A screenshot shown again at one
// till never reaches it: the scanners drop a repeated read; the till's own
// seen-code rule is tested in terminal/modes.) The
// network returns: the journals drain, every payment settles (the
// overspend from the bank card), and the balances table and `ledger
// check` that end the day agree.
func (d *day) offlineAct() error {
	ctx, cancel := d.wait(150 * time.Second)
	defer cancel()
	zw, cj, zl := d.s("2024001"), d.s("2024005"), d.s("2024006")
	// 赵磊 keeps exactly ¥30.00: all of it goes into the allowance's hold,
	// so what he overspends can only come from the bank card.
	w, err := zl.App.Wallet(ctx)
	if err != nil {
		return err
	}
	switch {
	case w.Available > 30_00:
		_, err = zl.App.Withdraw(ctx, w.Available-30_00)
	case w.Available < 30_00:
		_, err = zl.App.TopUp(ctx, 30_00-w.Available)
	}
	if err != nil {
		return fmt.Errorf("offline act: set 赵磊's balance: %w", err)
	}
	allowances := []struct {
		s     *Student
		cents int64
	}{{zw, 20_00}, {cj, 30_00}, {zl, 30_00}}
	before := map[string]int64{}
	for _, a := range allowances {
		o, err := a.s.App.RequestAllowance(ctx, a.cents)
		held := ""
		if o != nil && o.Allowance != nil {
			held = "held ¥" + protocol.FormatCents(o.Allowance.Held)
		}
		d.check(a.s.Name, "app", "offline allowance (a hold on the wallet)", a.cents, "", fmt.Sprint(outcome(err), " ", held), "ok held ¥"+protocol.FormatCents(a.cents))
		if err != nil {
			return err
		}
		bw, err := a.s.App.Wallet(ctx)
		if err != nil {
			return err
		}
		before[a.s.No] = bw.Balance
	}
	bankBefore, _ := d.c.Bank.Balance(zl.BankCode, zl.BankCard)

	// The network goes down: authorizer and broker stopped.
	marks := map[string]int{posID: d.c.Boxes[posID].Display.Mark(), shopID: d.c.Boxes[shopID].Display.Mark()}
	d.c.Authorizer.Kill()
	d.c.Timeline.Add(Event{Who: "network", Where: "campus", What: "network down: authorizer and broker stopped", Result: "down", OK: true})
	for _, id := range []string{posID, shopID} {
		b := d.c.Boxes[id]
		if err := b.Rig.Key("\x1b"); err != nil {
			return err
		}
		_, err := b.Display.WaitAfter(ctx, marks[id], "offline screen", func(s Screen) bool { return s.Kind == device.ScreenOffline })
		d.check("terminal", id, "POS offline: offline codes or the static QR", 0, "", okOr(err), "ok")
		if err != nil {
			return err
		}
	}
	pay := func(s *Student, id string, cents int64, code, what, want string) error {
		res, err := d.offlinePay(ctx, id, cents, code)
		if err != nil {
			return err
		}
		got := result(res)
		if got == "approved" && res.Message != offlineMark {
			got = "approved without the offline mark: " + res.Message
		}
		d.check(s.Name, id, what, cents, "offline", got, want)
		return nil
	}
	code, err := zw.App.Code()
	if err != nil {
		return err
	}
	if err := pay(zw, shopID, 12_50, code, "offline code (phone offline too)", "approved"); err != nil {
		return err
	}
	code, _ = cj.App.Code()
	if err := pay(cj, posID, 31_00, code, "offline code over the allowance", protocol.ErrOfflineExceeded.Code); err != nil {
		return err
	}
	code, _ = cj.App.Code()
	if err := pay(cj, posID, 8_00, code, "offline code", "approved"); err != nil {
		return err
	}
	code, _ = zl.App.Code()
	if err := pay(zl, posID, 25_00, code, "offline code", "approved"); err != nil {
		return err
	}
	code, _ = zl.App.Code()
	if err := pay(zl, shopID, 20_00, code, "offline code at a second till: ¥45 on a ¥30 allowance", "approved"); err != nil {
		return err
	}

	// The network returns: the journals drain and everything settles.
	if err := d.c.startAuthorizer(); err != nil {
		return err
	}
	d.c.Timeline.Add(Event{Who: "network", Where: "campus", What: "network back: authorizer and broker restarted", Result: "up", OK: true})
	for _, id := range []string{posID, shopID} {
		depth, err := d.c.journalDepth(ctx, id)
		got := fmt.Sprintf("journal depth %d", depth)
		if err != nil {
			got = err.Error()
		}
		d.check("terminal", id, "offline payments uploaded and settled", 0, "", got, "journal depth 0")
	}
	for _, a := range []struct {
		s     *Student
		spent int64
		held  int64
	}{{zw, 12_50, 7_50}, {cj, 8_00, 22_00}, {zl, 30_00, 0}} {
		w, err := a.s.App.Wallet(ctx)
		got := "?"
		if err == nil {
			got = fmt.Sprintf("balance -¥%s, held ¥%s", protocol.FormatCents(before[a.s.No]-w.Balance), protocol.FormatCents(w.Held))
		}
		d.check(a.s.Name, "app", "settled: from the allowance's hold", a.spent, "balance", got,
			fmt.Sprintf("balance -¥%s, held ¥%s", protocol.FormatCents(a.spent), protocol.FormatCents(a.held)))
		txs, err := a.s.App.Transactions(ctx)
		n := 0
		for _, t := range txs {
			if t.Offline && t.Status == string(protocol.StatusApproved) {
				n++
			}
		}
		want := 1
		if a.s == zl {
			want = 2
		}
		d.check(a.s.Name, "app", "details show the payments marked offline", 0, "", fmt.Sprintf("%d offline", n), fmt.Sprintf("%d offline", want))
	}
	bankAfter, _ := d.c.Bank.Balance(zl.BankCode, zl.BankCard)
	d.check(zl.Name, "bank", "overspend recovered from the bank card", 15_00, "bank_card",
		"¥"+protocol.FormatCents(bankBefore-bankAfter), "¥15.00")
	o, err := zl.App.OfflineStatus(ctx)
	got := outcome(err)
	if err == nil {
		got = "debt ¥" + protocol.FormatCents(o.Debt)
	}
	d.check(zl.Name, "app", "no debt left", 0, "", got, "debt ¥0.00")
	return nil
}

// offlineMark is what a terminal's result screen says of a payment it
// accepted offline.
const offlineMark = "离线支付"

// offlinePay keys the amount on an offline POS, shows the code to its
// scanner and returns the result screen — or the offline screen with the
// refusal's reason.
func (d *day) offlinePay(ctx context.Context, id string, cents int64, text string) (Screen, error) {
	amount := "¥" + protocol.FormatCents(cents)
	return d.sale(ctx, id, cents, text, "offline screen with the amount",
		func(s Screen) bool { return s.Kind == device.ScreenOffline && s.Amount == amount && s.Input == "" },
		func(s Screen) bool {
			return s.Kind == device.ScreenOffline && s.Reason() != "" && s.Reason() != protocol.ErrOffline.Code
		})
}
