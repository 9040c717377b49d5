package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"campuspay/protocol"
	"campuspay/server/console"
	"campuspay/server/settle"
	"campuspay/server/wallet"
)

// moneyCommand runs refund sale, settle day and settle reconcile: the
// admin commands that use the config's bank and WeChat gateways.
func (c *cli) moneyCommand(name string, args []string) int {
	c.money = true
	switch name {
	case "refund sale":
		return c.refundSale(args)
	case "settle day":
		return c.settleDay(args)
	}
	return c.settleReconcile(args)
}

func (c *cli) refundSale(args []string) int {
	fs := c.newFlags("refund sale", "refund sale (--sale KEY | --terminal ID --tx TX) --amount YUAN --key KEY --reason TEXT\n\n"+
		"refunds part or all of an approved sale back through its channel (balance, bank card, WeChat);\n"+
		"the same --key again returns the same refund and moves nothing more")
	saleKey := fs.String("sale", "", "the sale's record `key` (tx list --keys shows it)")
	term := fs.String("terminal", "", "the sale's `terminal`")
	tx := fs.String("tx", "", "the sale's transaction `ID`")
	amount := fs.String("amount", "", "`yuan` to refund, e.g. 12.50")
	key := fs.String("key", "", "idempotency `key` of this refund (1–64 printable characters)")
	reason := fs.String("reason", "", "why (required; in the audit log, shown to the student by WeChat)")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if *saleKey == "" && *term != "" && *tx != "" {
		*saleKey = wallet.SaleKey(*term, protocol.TxID(*tx))
	}
	cents, err := protocol.ParseYuan(*amount)
	if err != nil || *saleKey == "" || *key == "" {
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		v, err := m.Console.Actions().Refund(c.ctx, cliActor(), console.RefundBody{Sale: *saleKey, Key: *key, Amount: cents, Reason: *reason})
		if err != nil {
			r := protocol.AsReason(err)
			if v != nil && v.Status == string(wallet.StatusProcessing) {
				fmt.Fprintf(c.out, "refund %s of %s: %s, still processing: it is finished by the same command or by serve's recovery\n",
					protocol.FormatCents(cents), *saleKey, r.Code)
				return 1
			}
			return c.fail(fmt.Errorf("%s / %s (%w)", r.ZH, r.EN, err))
		}
		note := ""
		if v.ToWallet {
			note = " (the card or WeChat refused it: paid to the wallet balance)"
		}
		fmt.Fprintf(c.out, "refunded %s of %s to %s%s: record %d %s; refunded so far %s\n", protocol.FormatCents(v.Amount), *saleKey, v.Channel, note,
			v.ID, v.Status, protocol.FormatCents(v.Refunded))
		return 0
	})
}

func (c *cli) settleDay(args []string) int {
	fs := c.newFlags("settle day", "settle day --date YYYY-MM-DD [--merchant ID]\n\none CSV line per merchant and channel: sales, refunds and net in yuan (day in China time)")
	date := fs.String("date", "", "the `day`, YYYY-MM-DD (China time)")
	merchant := fs.String("merchant", "", "only this merchant (`ID`)")
	if done, code := c.parse(fs, args); done {
		return code
	}
	from, to, err := settle.Day(*date)
	if err != nil {
		fmt.Fprintln(c.errw, "authorizer:", err)
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		lines, names, err := m.Svc.SettlementLines(c.ctx, *merchant, from, to)
		if err != nil {
			return c.fail(err)
		}
		if err := settle.WriteCSV(c.out, *date, settle.Totals(lines, names)); err != nil {
			return c.fail(err)
		}
		return 0
	})
}

func (c *cli) settleReconcile(args []string) int {
	fs := c.newFlags("settle reconcile", "settle reconcile --date YYYY-MM-DD [--csv]\n\ncompares the ledger's movements with the bank's statement and WeChat's bill of the day;\nlists every mismatch (missing on our side, missing on theirs, amount differs); exit 1 if any")
	date := fs.String("date", "", "the `day`, YYYY-MM-DD (China time)")
	asCSV := fs.Bool("csv", false, "print the mismatches as CSV")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if _, _, err := settle.Day(*date); err != nil {
		fmt.Fprintln(c.errw, "authorizer:", err)
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		parties, err := m.ReconcileParties()
		if err != nil {
			return c.fail(err)
		}
		rep, err := settle.ReconcileDay(c.ctx, *date, parties)
		if err != nil {
			return c.fail(err)
		}
		if *asCSV {
			if err := settle.WriteMismatchesCSV(c.out, rep); err != nil {
				return c.fail(err)
			}
		} else {
			writeReconciliation(c, rep)
		}
		if rep.Mismatches() > 0 {
			return 1
		}
		return 0
	})
}

func writeReconciliation(c *cli, rep settle.Report) {
	for _, p := range rep.Parties {
		fmt.Fprintf(c.out, "%s %s: ours %d movements (net %s), theirs %d (net %s), %d mismatches\n", rep.Date, p.Party,
			p.Ours, settle.Yuan(p.OursNet), p.Theirs, settle.Yuan(p.TheirsNet), len(p.Mismatches))
		if len(p.Mismatches) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  KIND\tKEY\tOURS\tTHEIRS")
		for _, m := range p.Mismatches {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.Kind, m.Key, settle.Yuan(m.Ours), settle.Yuan(m.Theirs))
		}
		tw.Flush()
	}
	fmt.Fprintf(c.out, "%s: %d mismatches\n", rep.Date, rep.Mismatches())
}

// errNoStatements: the configured gateway cannot give statements.
var errNoStatements = errors.New("the bank gateway is not configured (bank.base_url): no statement to reconcile with")

// ReconcileParties are the outside parties of the reconciliation: the
// bank always, WeChat Pay when configured. The console uses them too.
func (m *Main) ReconcileParties() ([]settle.Party, error) {
	bs, ok := m.Bank.(settle.StatementSource)
	if !ok {
		return nil, errNoStatements
	}
	parties := []settle.Party{settle.BankParty(m.Svc.BankMovements, bs)}
	if ws, ok := m.WeChat.(settle.BillSource); ok {
		parties = append(parties, settle.WeChatParty(m.Svc.WeChatMovements, ws))
	}
	return parties, nil
}
