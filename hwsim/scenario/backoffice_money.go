package scenario

// The back office's money act of the demo day: finance logs in to the
// console, refunds part of a card-funded sale to the bank card, and the
// day is settled (CSV per merchant and channel) and reconciled with the
// bank's statement and WeChat's bill — no mismatch; then the bank
// simulator "loses" the refund from its statement and the reconciliation
// lists exactly that movement.

import (
	"fmt"
	"strings"
	"time"
)

const (
	financeOperator = "finance1"
	financePassword = "demo-finance-2024"
)

// moneyBackOffice is the act; the demo day runs it after the wallet life
// cycle.
func (d *day) moneyBackOffice() error {
	ctx, cancel := d.wait(90 * time.Second)
	defer cancel()
	day := time.Now().In(chinaZone).Format(time.DateOnly)
	if err := d.c.AddOperator(financeOperator, "finance", financePassword); err != nil {
		return err
	}
	fin, err := d.c.ConsoleLogin(ctx, financeOperator, financePassword)
	d.check("finance", "console", "operator "+financeOperator+" logs in", 0, "", outcome(err), "ok")
	if err != nil {
		return err
	}
	// 张伟's ¥120.00 at the canteen went to his bank card (codePayments).
	zw := d.s("2024001")
	var sales struct {
		Sales []struct {
			Key, Channel, Status string
			Amount, Refunded     int64
			Refundable           bool
		}
	}
	if err := fin.do(ctx, "GET", "/sales?student="+zw.No, nil, &sales); err != nil {
		return err
	}
	sale := ""
	for _, s := range sales.Sales {
		if s.Channel == "bank_card" && s.Amount == 120_00 && s.Refundable {
			sale = s.Key
			break
		}
	}
	if sale == "" {
		d.check("finance", "console", "find the card-funded sale to refund", 120_00, "bank_card", "not found", "found")
		return nil
	}
	bankBefore, _ := d.c.Bank.Balance(zw.BankCode, zw.BankCard)
	body := map[string]any{"sale": sale, "key": "demo-refund-1", "amount": 20_00, "reason": "多收了一份菜 / charged for a dish not served"}
	var rf struct {
		Channel  string
		Refunded int64
	}
	err = fin.do(ctx, "POST", "/refunds", body, &rf)
	d.check("finance", "console", "refund ¥20.00 of 张伟's ¥120.00 card sale → bank card", 20_00, rf.Channel, outcome(err), "ok")
	err = fin.do(ctx, "POST", "/refunds", body, &rf) // a double click
	bankAfter, _ := d.c.Bank.Balance(zw.BankCode, zw.BankCard)
	d.check("finance", "console", "the same refund clicked twice: one refund", 20_00, "bank_card",
		fmt.Sprintf("%s, card +%d", outcome(err), bankAfter-bankBefore), fmt.Sprintf("ok, card +%d", 20_00))
	body["key"], body["amount"] = "demo-refund-2", 100_01
	err = fin.do(ctx, "POST", "/refunds", body, nil)
	d.check("finance", "console", "refund beyond what is left of the sale", 100_01, "", outcome(err), "REFUND_EXCEEDS_SALE")

	csv, err := d.c.Admin("settle", "day", "--date", day)
	d.check("finance", "authorizer", "settle day (CSV per merchant and channel)", 0, "", okOr(err), "ok")
	fmt.Fprintf(d.c.opt.Out, "\nsettlement of %s:\n%s\n", day, csv)
	out, err := d.c.Admin("settle", "reconcile", "--date", day)
	fmt.Fprintf(d.c.opt.Out, "reconciliation of %s:\n%s\n", day, out)
	d.check("finance", "authorizer", "reconcile with the bank statement and WeChat bill", 0, "", commandResult(out, err), day+": 0 mismatches")

	// The deliberate mismatch: the bank's statement leaves out the refund.
	entries, err := d.c.Bank.Statement(bankClient, day)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Op == "refund" {
			d.c.Bank.SkipInStatement(e.Key)
		}
	}
	out, err = d.c.Admin("settle", "reconcile", "--date", day)
	fmt.Fprintf(d.c.opt.Out, "reconciliation after the bank 'lost' the refund from its statement:\n%s\n", out)
	d.check("finance", "authorizer", "a refund missing from the bank statement is listed", 20_00, "bank_card", commandResult(out, nil), day+": 1 mismatches")
	return nil
}

// chinaZone is the zone of the settlement day.
var chinaZone = time.FixedZone("CST", 8*3600)

// commandResult is a command's last line of output; with an error other
// than a plain exit status (the reconciliation exits 1 on a mismatch),
// the error.
func commandResult(out string, err error) string {
	if err != nil && !strings.Contains(err.Error(), "exit status") {
		return err.Error()
	}
	return lastLine(out)
}
