package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"campuspay/hwsim/netcut"
	"campuspay/hwsim/rig/ctl"
)

const ctlUsage = `Usage: hwsim ctl [--addr ADDR] COMMAND ARGS

Commands:
  tap T UID                        tap a card (hex UID) on terminal T's reader
  key T KEYS                       type on T's keypad; \n is Enter, \e Cancel, \b Backspace
  show [--via scanner|camera] T TEXT
                                   show a code to T's scanner (or camera)
  screenshot T FILE                hold a phone showing FILE (PNG/JPEG) to T's camera
  blank T                          take the phone out of T's camera view
  flow T LPM                       open T's shower tap to LPM litres/minute (0 closes)
  valve T                          print T's valve state and pulse counter (JSON)
  net [--mode reset|blackhole] T cut|restore
                                   cut or restore T's network
  status                           list the terminals

Flags:
`

func runCtl(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hwsim ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := os.Getenv("HWSIM_CTL")
	if def == "" {
		def = "127.0.0.1:7070"
	}
	addr := fs.String("addr", def, "control API address or URL (env HWSIM_CTL)")
	timeout := fs.Duration("timeout", 10*time.Second, "request timeout")
	fs.Usage = func() {
		fmt.Fprint(stderr, ctlUsage)
		fs.PrintDefaults()
	}
	if code, done := parse(fs, args); done {
		return code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	base := *addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	c := ctl.NewClient(base)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hwsim ctl: "+format+"\n", a...)
		return 2
	}
	done := func(err error) int {
		if err != nil {
			return fail(stderr, "ctl", err)
		}
		fmt.Fprintln(stdout, "ok")
		return 0
	}
	cmd, cargs := rest[0], rest[1:]
	switch cmd {
	case "tap":
		if len(cargs) != 2 {
			return usageErr("usage: tap T UID")
		}
		return done(c.Tap(ctx, cargs[0], cargs[1]))
	case "key":
		if len(cargs) != 2 {
			return usageErr("usage: key T KEYS")
		}
		keys, err := unescape(cargs[1])
		if err != nil {
			return usageErr("key: %v", err)
		}
		return done(c.Key(ctx, cargs[0], keys))
	case "show":
		sf := flag.NewFlagSet("hwsim ctl show", flag.ContinueOnError)
		sf.SetOutput(stderr)
		via := sf.String("via", "", "scanner or camera (default: the scanner if the box has one)")
		if code, stop := parse(sf, cargs); stop {
			return code
		}
		if sf.NArg() != 2 {
			return usageErr("usage: show [--via scanner|camera] T TEXT")
		}
		return done(c.ShowVia(ctx, sf.Arg(0), *via, sf.Arg(1)))
	case "screenshot":
		if len(cargs) != 2 {
			return usageErr("usage: screenshot T FILE")
		}
		img, err := os.ReadFile(cargs[1])
		if err != nil {
			return fail(stderr, "ctl", err)
		}
		return done(c.Screenshot(ctx, cargs[0], img))
	case "blank":
		if len(cargs) != 1 {
			return usageErr("usage: blank T")
		}
		return done(c.Blank(ctx, cargs[0]))
	case "flow":
		if len(cargs) != 2 {
			return usageErr("usage: flow T LPM")
		}
		lpm, err := strconv.ParseFloat(cargs[1], 64)
		if err != nil || lpm < 0 || lpm > 100 {
			return usageErr("flow: %q is not a flow of 0..100 litres/minute", cargs[1])
		}
		return done(c.Flow(ctx, cargs[0], lpm))
	case "valve":
		if len(cargs) != 1 {
			return usageErr("usage: valve T")
		}
		v, err := c.Valve(ctx, cargs[0])
		if err != nil {
			return fail(stderr, "ctl", err)
		}
		b, _ := json.Marshal(v)
		fmt.Fprintf(stdout, "%s\n", b)
		return 0
	case "net":
		nf := flag.NewFlagSet("hwsim ctl net", flag.ContinueOnError)
		nf.SetOutput(stderr)
		mode := nf.String("mode", ctl.ModeReset, "how to cut: reset (connections closed) or blackhole (traffic dropped)")
		if code, stop := parse(nf, cargs); stop {
			return code
		}
		if nf.NArg() != 2 {
			return usageErr("usage: net [--mode reset|blackhole] T cut|restore")
		}
		t := nf.Arg(0)
		switch nf.Arg(1) {
		case "cut":
			switch *mode {
			case ctl.ModeReset:
				return done(c.Cut(ctx, t, netcut.Reset))
			case ctl.ModeBlackhole:
				return done(c.Cut(ctx, t, netcut.Blackhole))
			}
			return usageErr("net: --mode must be reset or blackhole")
		case "restore":
			return done(c.Restore(ctx, t))
		}
		return usageErr("net: want cut or restore, not %q", nf.Arg(1))
	case "status":
		if len(cargs) != 0 {
			return usageErr("usage: status")
		}
		st, err := c.Status(ctx)
		if err != nil {
			return fail(stderr, "ctl", err)
		}
		printStatus(stdout, st)
		return 0
	}
	return usageErr("unknown command %q (run hwsim ctl --help)", cmd)
}

func printStatus(w io.Writer, st []ctl.TerminalStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TERMINAL\tDEVICES\tVALVE\tNETWORK")
	for _, s := range st {
		var devs []string
		d := s.Devices
		if d.Card != "" {
			devs = append(devs, "card:"+d.CardDriver)
		}
		if d.Scanner != "" {
			devs = append(devs, "scanner")
		}
		if d.Keypad != "" {
			devs = append(devs, "keypad:"+d.KeypadDriver)
		}
		if d.Camera != "" {
			devs = append(devs, "camera")
		}
		valve := "-"
		if v := s.Valve; v != nil {
			pos := "closed"
			if v.Open {
				pos = "open"
			}
			valve = fmt.Sprintf("%s %g l/min %d pulses", pos, v.FlowLPM, v.Pulses)
		}
		netState := "-"
		if s.HasNet {
			netState = "up"
			if s.NetCut {
				netState = "CUT"
			}
		}
		if len(devs) == 0 {
			devs = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Terminal, strings.Join(devs, ","), valve, netState)
	}
	tw.Flush()
}

// unescape reads the escapes a shell leaves in "12.50\n": \n Enter, \r,
// \t, \b Backspace, \e ESC (Cancel), \\ and \xHH.
func unescape(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("%q ends in a lone backslash", s)
		}
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'b':
			b.WriteByte('\b')
		case 'e':
			b.WriteByte(0x1b)
		case '\\':
			b.WriteByte('\\')
		case 'x':
			if i+2 >= len(s) {
				return "", fmt.Errorf("%q: \\x needs two hex digits", s)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("%q: \\x needs two hex digits", s)
			}
			b.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("%q: unknown escape \\%c", s, s[i])
		}
	}
	return b.String(), nil
}
