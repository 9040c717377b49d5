package main

import (
	"bufio"
	"fmt"
	"os/user"
	"strings"
	"text/tabwriter"

	"campuspay/protocol"
	"campuspay/server/authz"
	"campuspay/server/console"
	"campuspay/server/operator"
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
			Software: s.Software, JournalDepth: -1}
	}
	return out
}
