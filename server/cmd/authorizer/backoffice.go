package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"

	"campuspay/protocol"
	"campuspay/server/authz"
	"campuspay/server/console"
	"campuspay/server/operator"
	"campuspay/server/wallet"
)

// The back office on the command line: the same actions as the console
// (server/console), audited as "cli:USER".

// cliActor is the audit log's name for this command's user.
func cliActor() console.Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return console.CLIActor(name)
}

func (c *cli) operatorAdd(args []string) int {
	fs := c.newFlags("operator add", "operator add --name NAME --role admin|helpdesk|finance|merchant [--merchant ID] [--totp] < PASSWORD\n\nthe password is read from the first line of standard input")
	name := fs.String("name", "", "login `name` (2–32 of a-z 0-9 . _ -)")
	role := fs.String("role", "", "`role`: admin, helpdesk, finance or merchant")
	merchant := fs.String("merchant", "", "merchant role: the `merchant` id they manage")
	totp := fs.Bool("totp", false, "require a one-time code (TOTP): prints the secret to enter in an authenticator app, once")
	if done, code := c.parse(fs, args); done {
		return code
	}
	r, ok := operator.ParseRole(*role)
	if !ok || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	pw, err := bufio.NewReader(c.in).ReadString('\n')
	if err != nil && pw == "" {
		return c.fail(fmt.Errorf("operator add: read the password from standard input: %w", err))
	}
	pw = strings.TrimRight(pw, "\r\n")
	return c.withMain(func(m *Main) int {
		o, secret, err := m.Console.Actions().AddOperator(c.ctx, cliActor(), console.NewOperator{Name: *name, Role: r, Merchant: *merchant, Password: pw, TOTP: *totp})
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.out, "operator %s (%s) saved\n", o.Name, o.Role)
		if secret != nil {
			fmt.Fprintf(c.out, "TOTP secret: %s\n%s\n(shown once)\n", operator.TOTPSecretText(secret), operator.TOTPURI("campuspay", o.Name, secret))
		}
		return 0
	})
}

func (c *cli) operatorList(args []string) int {
	fs := c.newFlags("operator list", "operator list")
	if done, code := c.parse(fs, args); done {
		return code
	}
	return c.withMain(func(m *Main) int {
		ops, err := m.Store.Operators(c.ctx)
		if err != nil {
			return c.fail(err)
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tMERCHANT\tTOTP\tDISABLED")
		for _, o := range ops {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", o.Name, o.Role, o.Merchant, len(o.TOTPSecret) > 0, o.Disabled)
		}
		tw.Flush()
		return 0
	})
}

func (c *cli) operatorDisable(args []string, disabled bool) int {
	verb := "disable"
	if !disabled {
		verb = "enable"
	}
	fs := c.newFlags("operator "+verb, "operator "+verb+" --reason TEXT NAME")
	reason := fs.String("reason", "", "why (required; in the audit log)")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		changed, err := m.Console.Actions().SetOperatorDisabled(c.ctx, cliActor(), fs.Arg(0), disabled, *reason)
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.out, "operator %s %sd (changed: %v)\n", fs.Arg(0), verb, changed)
		return 0
	})
}

// fleetLinks is what the console shows of the terminals' status messages.
func fleetLinks(ss []authz.TerminalStatus) []console.TerminalLink {
	out := make([]console.TerminalLink, len(ss))
	for i, s := range ss {
		out[i] = console.TerminalLink{Terminal: s.Terminal, Online: s.State == protocol.StateOnline, Seen: s.Seen,
			Software: s.Software, JournalDepth: s.JournalDepth, ConfigRevision: s.ConfigRevision}
	}
	return out
}

// studentAction runs one of the desk's actions on a student from the CLI.
func (c *cli) studentAction(name, help string, args []string, extra func(fs *flag.FlagSet) func(m *Main, no, reason string) (console.Outcome, error)) int {
	fs := c.newFlags(name, name+" --reason TEXT "+help)
	reason := fs.String("reason", "", "why (required; in the audit log)")
	run := extra(fs)
	if done, code := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		o, err := run(m, fs.Arg(0), *reason)
		if err != nil {
			return c.fail(err)
		}
		if !o.Changed {
			fmt.Fprintf(c.out, "%s %s: nothing to change\n", name, fs.Arg(0))
			return 0
		}
		fmt.Fprintf(c.out, "%s %s: done\n", name, fs.Arg(0))
		if o.TempPassword != "" {
			fmt.Fprintf(c.out, "temporary login password: %s (give it to the student; shown once)\n", o.TempPassword)
		}
		if o.Password != "" {
			fmt.Fprintf(c.out, "broker password: %s (shown once)\n", o.Password)
		}
		return 0
	})
}

// backOfficeCommand runs the back office's verbs; ok is false for a
// command that is not one.
func (c *cli) backOfficeCommand(cmd string, args []string) (code int, ok bool) {
	act := func(m *Main) *console.Actions { return m.Console.Actions() }
	noExtra := func(f func(m *Main, no, reason string) (console.Outcome, error)) func(*flag.FlagSet) func(*Main, string, string) (console.Outcome, error) {
		return func(*flag.FlagSet) func(*Main, string, string) (console.Outcome, error) { return f }
	}
	switch cmd {
	case "student search":
		return c.studentSearch(args), true
	case "student show":
		return c.studentShow(args), true
	case "student freeze", "student unfreeze":
		frozen := cmd == "student freeze"
		return c.studentAction(cmd, "STUDENT_NO", args, noExtra(func(m *Main, no, reason string) (console.Outcome, error) {
			return act(m).Freeze(c.ctx, cliActor(), no, frozen, reason)
		})), true
	case "card lost", "card found":
		lost := cmd == "card lost"
		return c.studentAction(cmd, "STUDENT_NO", args, noExtra(func(m *Main, no, reason string) (console.Outcome, error) {
			return act(m).CardLost(c.ctx, cliActor(), no, lost, reason)
		})), true
	case "card replace":
		return c.studentAction(cmd, "--uid UID STUDENT_NO", args, func(fs *flag.FlagSet) func(*Main, string, string) (console.Outcome, error) {
			uid := fs.String("uid", "", "the new card's `UID` (hex)")
			return func(m *Main, no, reason string) (console.Outcome, error) {
				return act(m).ReplaceCard(c.ctx, cliActor(), no, *uid, reason)
			}
		}), true
	case "student reset-password":
		return c.studentAction(cmd, "--which login|payment|water STUDENT_NO", args, func(fs *flag.FlagSet) func(*Main, string, string) (console.Outcome, error) {
			which := fs.String("which", "", "`password`: login, payment or water")
			return func(m *Main, no, reason string) (console.Outcome, error) {
				return act(m).ResetPassword(c.ctx, cliActor(), no, *which, reason)
			}
		}), true
	case "device revoke":
		return c.studentAction(cmd, "--device ID STUDENT_NO", args, func(fs *flag.FlagSet) func(*Main, string, string) (console.Outcome, error) {
			dev := fs.Uint("device", 0, "device `id` (student show lists them)")
			return func(m *Main, no, reason string) (console.Outcome, error) {
				return act(m).RevokeDevice(c.ctx, cliActor(), no, uint32(*dev), reason)
			}
		}), true
	case "terminal revoke", "terminal rotate":
		rotate := cmd == "terminal rotate"
		return c.studentAction(cmd, "TERMINAL", args, noExtra(func(m *Main, id, reason string) (console.Outcome, error) {
			if rotate {
				o, err := act(m).RotateTerminal(c.ctx, cliActor(), id, reason)
				if err == nil {
					err = saveMosquittoEntry(c.common.data, id, o.Password)
				}
				return o, err
			}
			return act(m).RevokeTerminal(c.ctx, cliActor(), id, reason)
		})), true
	case "terminal placard":
		return c.terminalPlacard(args), true
	case "audit list":
		return c.auditList(args), true
	}
	return 0, false
}

func (c *cli) studentSearch(args []string) int {
	fs := c.newFlags("student search", "student search TEXT\n\nby student number (prefix), name (part), card UID or phone (exact)")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		rows, err := m.Console.Actions().SearchStudents(c.ctx, fs.Arg(0))
		if err != nil {
			return c.fail(err)
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STUDENT_NO\tNAME\tCARD\tPHONE\tSTATE\tFROZEN")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", r.StudentNo, r.Name, r.CardUID, r.Phone, r.State, r.Frozen)
		}
		tw.Flush()
		return 0
	})
}

func (c *cli) studentShow(args []string) int {
	fs := c.newFlags("student show", "student show [--json] STUDENT_NO")
	asJSON := fs.Bool("json", false, "print JSON")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		p, err := m.Console.Actions().Student(c.ctx, fs.Arg(0))
		if err != nil {
			return c.fail(err)
		}
		if *asJSON {
			e := json.NewEncoder(c.out)
			e.SetIndent("", "  ")
			e.Encode(p)
			return 0
		}
		w := p.Wallet
		fmt.Fprintf(c.out, "%s %s  state %s  frozen %v\nbalance %s  held %s  available %s\nbank card %s %s  phone %s  ID %s\nlimits %s per payment, %s a day\n",
			w.StudentNo, w.Name, w.State, w.Frozen, protocol.FormatCents(w.Balance), protocol.FormatCents(w.Held), protocol.FormatCents(w.Available),
			w.BankCode, w.BankCard, p.Phone, p.IDNumber, protocol.FormatCents(w.LimitPerTx), protocol.FormatCents(w.LimitDaily))
		for _, cd := range p.Cards {
			fmt.Fprintf(c.out, "card %s current=%v lost=%v\n", cd.UID, cd.Current, cd.Lost)
		}
		for _, d := range p.Devices {
			fmt.Fprintf(c.out, "device %d revoked=%v expires %s\n", d.ID, d.Revoked, d.Expires.In(wallet.Shanghai).Format("2006-01-02"))
		}
		for _, t := range p.Transactions {
			fmt.Fprintf(c.out, "tx %d %s %s %s %s %s %s\n", t.ID, t.Created.In(wallet.Shanghai).Format("2006-01-02 15:04:05"), t.Kind,
				protocol.FormatCents(t.Amount), t.Channel, t.Status, t.Code)
		}
		return 0
	})
}

func (c *cli) terminalPlacard(args []string) int {
	fs := c.newFlags("terminal placard", "terminal placard --out FILE.png TERMINAL")
	out := fs.String("out", "", "write the PNG to this `file`")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 || *out == "" {
		fs.Usage()
		return 2
	}
	return c.withMain(func(m *Main) int {
		font := m.Config.PlacardFont
		if font == "" {
			font = console.DefaultFontPath
		}
		b, err := m.Console.Actions().Placard(c.ctx, fs.Arg(0), font)
		if err != nil {
			return c.fail(err)
		}
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.out, "placard of %s written to %s (A5, %d dpi)\n", fs.Arg(0), *out, console.PlacardDPI)
		return 0
	})
}

func (c *cli) auditList(args []string) int {
	fs := c.newFlags("audit list", "audit list [--q TEXT] [--operator NAME] [--action ACTION] [--target TARGET] [--limit N]")
	var q operator.AuditQuery
	fs.StringVar(&q.Text, "q", "", "substring of operator, action, target or reason")
	fs.StringVar(&q.Operator, "operator", "", "operator `name`")
	fs.StringVar(&q.Action, "action", "", "`action`, or a prefix ending in '.'")
	fs.StringVar(&q.Target, "target", "", "`target`, e.g. user:2024001")
	fs.IntVar(&q.Limit, "limit", 50, "at most `N` entries")
	if done, code := c.parse(fs, args); done {
		return code
	}
	return c.withMain(func(m *Main) int {
		es, err := m.Store.AuditLog(c.ctx, q)
		if err != nil {
			return c.fail(err)
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\tOPERATOR\tACTION\tTARGET\tREASON\tBEFORE\tAFTER")
		for _, e := range es {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.At.In(wallet.Shanghai).Format("2006-01-02 15:04:05"), e.Name, e.Action,
				e.Target, e.Reason, e.Before, e.After)
		}
		tw.Flush()
		return 0
	})
}
