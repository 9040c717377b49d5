// Command authorizer is the campus e-wallet's central authorizer and its
// admin tool.
//
//	authorizer [--data DIR] [--config FILE] COMMAND [flags] [args]
//
//	serve                    run the daemon (HTTP API; MQTT side wired by serve's Daemons)
//	roster import FILE.csv   import students (idempotent)
//	merchant add|list        manage merchants
//	terminal add|list        manage terminals (prints a new broker password once)
//	ledger check             verify the ledger (exit 1 on problems)
//	ledger transfers         one account's transfers (--json for tools)
//	ledger merge             move a first-release ledger.db into wallet.db
//	provision                load-test data in bulk for hwsim load
//	tx list                  list transactions, newest first
//	operator add|list|...    back-office operators (the console on /console/)
//	backup DIR               online backup of the data folder
//	restore DIR              restore a backup into an empty data folder
//
// --data (default ./data) holds wallet.db (the ledger inside it; a
// folder from the first release also has ledger.db), issuer.key,
// seal.key and wallet-fields.key (the key of the personal data in
// wallet.db; keys created on first run, mode 0600); --config defaults to
// DATA/authorizer.json when it exists.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// common are the flags every command accepts.
type common struct {
	data, config string
	version      bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.data, "data", c.data, "data `folder`: SQLite files and keys")
	fs.StringVar(&c.config, "config", c.config, "config `file` (JSON); default DATA/authorizer.json if present")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
}

// cli runs one invocation; tests call run with buffers.
type cli struct {
	ctx    context.Context
	in     io.Reader // operator add reads the password from it
	out    io.Writer
	errw   io.Writer
	common common
	opts   Options // test hooks (Bank, WeChat, Now)
	money  bool    // the command moves money or reads statements: the config's bank and WeChat are used
	ready  func(net.Addr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runIn(ctx, args, os.Stdin, stdout, stderr)
}

// runIn is run with standard input.
func runIn(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return (&cli{ctx: ctx, in: stdin, out: stdout, errw: stderr, common: common{data: "data"}}).main(args)
}

const usage = `usage: authorizer [--data DIR] [--config FILE] COMMAND [flags] [args]

commands:
  serve                  run the authorizer (HTTP API on --http)
  roster import FILE     import students from CSV
  merchant add|list      manage merchants
  terminal add|list      manage terminals
  ledger check           verify the ledger invariants (exit 1 on problems)
  ledger transfers       list one account's transfers (--json for tools)
  ledger merge           move a first-release folder's ledger.db into wallet.db (serve stopped)
  tx list                list transactions, newest first
  refund sale            refund part or all of a sale through its channel
  settle day             a day's totals per merchant and channel (CSV)
  settle reconcile       a day's reconciliation with the bank's statement and
                         WeChat's bill: every mismatch (exit 1 if any)
  provision              load-test data in bulk (students, devices, terminals)
  broker mosquitto       write Mosquitto's config, password file and ACL
                         for the registered terminals
  operator add|list|disable|enable
                         back-office operators (console on /console/)
  student search|show|freeze|unfreeze|reset-password
  card lost|found|replace, device revoke
  terminal revoke|rotate|placard
  audit list             the help desk's actions (docs/console.md), audited
  backup DIR             consistent online backup of the data folder (while serving)
  restore DIR            restore a backup into an empty --data folder

Run "authorizer COMMAND --help" for a command's flags.
`

// newFlags makes a FlagSet for a command, with the common flags.
func (c *cli) newFlags(name, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.errw)
	fs.Usage = func() {
		fmt.Fprintf(c.errw, "usage: authorizer %s\n\nflags:\n", help)
		fs.PrintDefaults()
	}
	c.common.register(fs)
	return fs
}

// parse parses args; done reports that the command must stop with code.
func (c *cli) parse(fs *flag.FlagSet, args []string) (done bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, 0
		}
		return true, 2
	}
	if c.common.version {
		fmt.Fprintln(c.out, "authorizer", version)
		return true, 0
	}
	return false, 0
}

func (c *cli) main(args []string) int {
	fs := c.newFlags("authorizer", "[--data DIR] [--config FILE] COMMAND ...")
	fs.Usage = func() { fmt.Fprint(c.errw, usage, "\nflags:\n"); fs.PrintDefaults() }
	if done, code := c.parse(fs, args); done {
		return code
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	cmd, rest := rest[0], rest[1:]
	sub := ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		sub = rest[0]
	}
	if code, ok := c.backOfficeCommand(cmd+" "+sub, rest[min(1, len(rest)):]); ok {
		return code
	}
	switch cmd + " " + sub {
	case "roster import":
		return c.rosterImport(rest[1:])
	case "merchant add":
		return c.merchantAdd(rest[1:])
	case "merchant list":
		return c.merchantList(rest[1:])
	case "terminal add":
		return c.terminalAdd(rest[1:])
	case "terminal list":
		return c.terminalList(rest[1:])
	case "ledger check":
		return c.ledgerCheck(rest[1:])
	case "ledger transfers":
		return c.ledgerTransfers(rest[1:])
	case "ledger merge":
		return c.ledgerMerge(rest[1:])
	case "tx list":
		return c.txList(rest[1:])
	case "broker mosquitto":
		return c.brokerMosquitto(rest[1:])
	case "operator add":
		return c.operatorAdd(rest[1:])
	case "operator list":
		return c.operatorList(rest[1:])
	case "operator disable":
		return c.operatorDisable(rest[1:], true)
	case "operator enable":
		return c.operatorDisable(rest[1:], false)
	case "settle day", "settle reconcile", "refund sale":
		return c.moneyCommand(cmd+" "+sub, rest[1:])
	}
	switch cmd {
	case "serve":
		return c.serve(rest)
	case "provision":
		return c.provision(rest)
	case "backup":
		return c.backup(rest)
	case "restore":
		return c.restore(rest)
	case "help":
		fs.Usage()
		return 0
	case "roster", "merchant", "terminal", "ledger", "tx", "broker", "operator", "student", "card", "device", "audit", "settle", "refund":
		if sub == "" && len(rest) > 0 && (rest[0] == "--help" || rest[0] == "-help" || rest[0] == "-h") {
			fmt.Fprint(c.errw, usage)
			return 0
		}
		if sub == "" && len(rest) > 0 && (rest[0] == "--version" || rest[0] == "-version") {
			fmt.Fprintln(c.out, "authorizer", version)
			return 0
		}
	}
	fmt.Fprintf(c.errw, "authorizer: unknown command %q\n\n%s", strings.TrimSpace(cmd+" "+sub), usage)
	return 2
}

// open opens the daemon's state for a command. Admin commands move no
// money, so they need no bank or WeChat credentials.
func (c *cli) open() (*Main, error) { return c.openFor(false) }

func (c *cli) openFor(serve bool) (*Main, error) {
	o := c.opts
	o.Data, o.ConfigPath = c.common.data, c.common.config
	o.Serve = serve
	if !serve && !c.money && o.Bank == nil {
		o.Bank = unconfiguredBank{}
		o.NoWeChat = true
	}
	if o.Log == nil && !serve {
		o.Log = slog.New(slog.NewTextHandler(c.errw, nil))
	}
	if o.LogOutput == nil {
		o.LogOutput = c.errw
	}
	return Open(o)
}

// withMain opens the daemon's state for an admin command, runs f with it
// and closes it again; f's result is the exit code.
func (c *cli) withMain(f func(m *Main) int) int {
	m, err := c.open()
	if err != nil {
		return c.fail(err)
	}
	defer m.Close()
	return f(m)
}

func (c *cli) fail(err error) int {
	fmt.Fprintln(c.errw, "authorizer:", err)
	return 1
}

func (c *cli) serve(args []string) int {
	fs := c.newFlags("serve", "serve [--http ADDR] [--log-level LEVEL] [--pprof ADDR]")
	addr := fs.String("http", "", "HTTP API listen `address` (default: the config's \"http\", 127.0.0.1:8080)")
	level := fs.String("log-level", "", "log `level`: debug, info, warn or error (default: the config's log_level, info)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback `address` (e.g. 127.0.0.1:6060); off by default")
	if done, code := c.parse(fs, args); done {
		return code
	}
	c.opts.LogLevel = *level
	setServeGC()
	// One serve per SQLite data folder, and none while `ledger merge`
	// moves the ledger (the lock goes with the process, kill -9 included).
	sqlite, err := c.usesSQLite()
	if err != nil {
		return c.fail(err)
	} else if sqlite {
		unlock, err := lockDataFolder(c.common.data)
		if err != nil {
			return c.fail(err)
		}
		defer unlock()
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(sqliteProcs(defaultProcs))
		}
	}
	m, err := c.openFor(true)
	if err != nil {
		return c.fail(err)
	}
	defer m.Close()
	if *pprofAddr != "" {
		ln, err := listenLoopback("pprof", *pprofAddr)
		if err != nil {
			return c.fail(err)
		}
		m.Daemons = append(m.Daemons, pprofDaemon(ln, m.Log))
	}
	if err := wireServe(c.ctx, m, c.common.data); err != nil {
		return c.fail(err)
	}
	if err := m.Run(c.ctx, *addr, c.ready); err != nil {
		return c.fail(err)
	}
	return 0
}

// serveGCPercent and serveMemoryLimit are serve's garbage collector
// settings unless the environment sets GOGC or GOMEMLIMIT. The money path
// allocates per message and keeps little (a live heap of a few tens of MB
// under load): a heap target of 21 times the live heap makes the collector
// run a twentieth as often. Measured with hwsim load, closed loop through
// Mosquitto, 8 alternating pairs: authorizer CPU per answer ÷ the
// generator's 1.655 against 1.721 with GOGC=400, payments/s +5 %, for a
// resident set of ~280 MB against ~155 MB (docs/money-path.md item 8).
// The soft limit keeps a larger live heap (a full certificate cache, a
// burst of queued messages) from growing the target without bound: past
// it the collector runs as often as it must to stay under.
const (
	serveGCPercent   = 2000
	serveMemoryLimit = 1 << 30
)

// setServeGC applies serveGCPercent and serveMemoryLimit where the
// environment does not set its own.
func setServeGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
}

// defaultProcs is GOMAXPROCS as Go set it (the CPUs it may use), taken
// before serve changes it.
var defaultProcs = runtime.GOMAXPROCS(0)

// sqliteProcs is GOMAXPROCS for serve on SQLite: the CPUs Go would use,
// plus two. Every SQLite statement is a cgo call; one that lasts past a
// few tens of microseconds (a commit's fsync, a page read) loses its P to
// the run queue, and coming back it waits for a free one behind every
// runnable goroutine — at a lunch rush hundreds of them (the runtime's
// scheduling latency under a closed-loop load: p90 12.6 ms, p99 29 ms
// with the CPUs alone). Two spare Ps let the writer back from its commit
// and a read back from a page find one free. One P for each connection
// into SQLite (ten) was the rule until measured against two: as many
// payments a second in a closed loop, but idle Ps make the runtime wake a
// sleeping thread for almost every goroutine made runnable, a context
// switch each, and at half load p99 was higher in three pairs of three
// (docs/money-path.md, Sizing).
func sqliteProcs(cpus int) int {
	return cpus + 2
}

func (c *cli) rosterImport(args []string) int {
	fs := c.newFlags("roster import", "roster import [--every N] FILE.csv\n\ncolumns (with a header line): student number, name, ID number, phone, category, campus (id or name), card UID, initial password\nlines sharing a student number or card are all refused")
	every := fs.Int("every", 1000, "report progress every `N` lines")
	if done, code := c.parse(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return c.fail(err)
	}
	defer f.Close()
	return c.withMain(func(m *Main) int {
		// The whole file first: duplicates within it are refused on every
		// line involved (wallet.ImportRoster).
		entries, bad, lines, err := wallet.ParseRoster(f)
		if err != nil {
			return c.fail(err)
		}
		failed := len(bad)
		for _, b := range bad {
			rosterLineError(c.errw, b.Line, b.StudentNo, b.Err)
		}
		count := map[wallet.ImportOutcome]int{}
		done := 0
		err = m.Svc.ImportRoster(c.ctx, entries, func(i int, o wallet.ImportOutcome, err error) {
			if err != nil {
				rosterLineError(c.errw, entries[i].Line, entries[i].StudentNo, err)
				failed++
			} else {
				count[o]++
			}
			if done++; *every > 0 && done%*every == 0 {
				fmt.Fprintf(c.out, "%d of %d lines: %d new, %d updated, %d unchanged, %d errors\n", done, len(entries),
					count[wallet.ImportNew], count[wallet.ImportUpdated], count[wallet.ImportUnchanged], failed)
			}
		})
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.out, "done: %d lines: %d new, %d updated, %d unchanged, %d errors\n", lines, count[wallet.ImportNew],
			count[wallet.ImportUpdated], count[wallet.ImportUnchanged], failed)
		if failed > 0 {
			return 1
		}
		return 0
	})
}

// rosterLineError prints one roster line's error: the reason in Chinese
// and English, then what exactly was wrong.
func rosterLineError(w io.Writer, line int, no string, err error) {
	r := protocol.AsReason(err)
	msg := r.ZH + " / " + r.EN
	detail := strings.TrimSuffix(err.Error(), ": "+r.Error())
	if r == protocol.ErrInternal {
		detail = err.Error()
	}
	if detail != "" && detail != r.Error() {
		msg += " (" + detail + ")"
	}
	fmt.Fprintf(w, "line %d: %s: %s\n", line, no, msg)
}

func (c *cli) merchantAdd(args []string) int {
	fs := c.newFlags("merchant add", "merchant add --id ID --name NAME --campus CAMPUS")
	id := fs.String("id", "", "merchant `id` ([A-Za-z0-9_-], ≤ 32)")
	name := fs.String("name", "", "display `name`")
	campus := fs.String("campus", "", "`campus` id from the config")
	if done, code := c.parse(fs, args); done {
		return code
	}
	return c.withMain(func(m *Main) int {
		if err := m.Svc.AddMerchant(c.ctx, wallet.Merchant{ID: *id, Name: *name, Campus: *campus}); err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.out, "merchant %s saved\n", *id)
		return 0
	})
}

func (c *cli) merchantList(args []string) int {
	fs := c.newFlags("merchant list", "merchant list")
	if done, code := c.parse(fs, args); done {
		return code
	}
	return c.withMain(func(m *Main) int {
		ms, err := m.Svc.Merchants(c.ctx)
		if err != nil {
			return c.fail(err)
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCAMPUS")
		for _, x := range ms {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", x.ID, x.Name, x.Campus)
		}
		tw.Flush()
		return 0
	})
}

func (c *cli) terminalAdd(args []string) int {
	fs := c.newFlags("terminal add", "terminal add --id ID --merchant ID --mode pos|card|shower [--fixed-amount CENTS] [--campus CAMPUS] [--name NAME]")
	id := fs.String("id", "", "terminal `id` (its broker user name)")
	merchant := fs.String("merchant", "", "`merchant` id")
	mode := fs.String("mode", "pos", "`mode`: pos, card or shower")
	fixed := fs.Int64("fixed-amount", 0, "card mode: fixed amount in `cents` (0: keyed)")
	campus := fs.String("campus", "", "`campus` (default: the merchant's)")
	name := fs.String("name", "", "the window or till as students know it, shown before scan-to-pay (`name`, e.g. 二楼3号窗口)")
	if done, code := c.parse(fs, args); done {
		return code
	}
	return c.withMain(func(m *Main) int {
		pw, err := m.Svc.AddTerminal(c.ctx, wallet.Terminal{ID: *id, Merchant: *merchant, Mode: protocol.Mode(*mode), FixedAmount: *fixed,
			Campus: *campus, Name: *name})
		if err != nil {
			return c.fail(err)
		}
		if err := saveMosquittoEntry(c.common.data, *id, pw); err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.out, "terminal %s saved\nbroker user: %s\nbroker password: %s\n(shown once; only its hash is stored — run \"terminal add\" again to issue a new one)\n", *id, *id, pw)
		return 0
	})
}

func (c *cli) terminalList(args []string) int {
	fs := c.newFlags("terminal list", "terminal list [--qr]")
	qr := fs.Bool("qr", false, "also print each terminal's static merchant QR payload")
	if done, code := c.parse(fs, args); done {
		return code
	}
	return c.withMain(func(m *Main) int {
		ts, err := m.Store.Terminals(c.ctx)
		if err != nil {
			return c.fail(err)
		}
		// Link states as the running serve last saw them (Last Will aware).
		states := readStatuses(c.common.data)
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMERCHANT\tCAMPUS\tMODE\tFIXED\tLINK\tCONN_SEQ\tSINCE")
		for _, t := range ts {
			link, seq, since := "never seen", "-", "-"
			if st, ok := states[t.ID]; ok {
				link, seq, since = st.State, fmt.Sprint(st.ConnSeq), st.Seen.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Merchant, t.Campus, t.Mode, protocol.FormatCents(t.FixedAmount), link, seq, since)
		}
		tw.Flush()
		if *qr {
			for _, t := range ts {
				fmt.Fprintf(c.out, "%s %s\n", t.ID, t.MerchantQR)
			}
		}
		return 0
	})
}

func (c *cli) ledgerCheck(args []string) int {
	fs := c.newFlags("ledger check", "ledger check")
	if done, code := c.parse(fs, args); done {
		return code
	}
	return c.withMain(func(m *Main) int {
		r, err := m.Svc.CheckLedger(c.ctx)
		if err != nil {
			return c.fail(err)
		}
		fmt.Fprintf(c.out, "transfers %d, postings %d, accounts %d, holds %d, sum %d\n", r.Transfers, r.Postings, r.Accounts, r.Holds, r.Sum)
		for _, p := range r.Problems {
			fmt.Fprintln(c.out, "PROBLEM:", p)
		}
		if !r.OK() {
			fmt.Fprintln(c.out, "ledger check FAILED")
			return 1
		}
		fmt.Fprintln(c.out, "ledger OK")
		return 0
	})
}

func (c *cli) txList(args []string) int {
	fs := c.newFlags("tx list", "tx list [--limit N] [--before ID] [--user STUDENT_NO] [--keys]")
	limit := fs.Int("limit", 50, "at most `N` transactions")
	before := fs.Int64("before", 0, "only transactions with an id below `ID`")
	user := fs.String("user", "", "only this student's (`student number`)")
	keys := fs.Bool("keys", false, "print each record's key (what refund sale --sale takes)")
	if done, code := c.parse(fs, args); done {
		return code
	}
	return c.withMain(func(m *Main) int {
		var recs []wallet.Record
		var err error
		if *user != "" {
			u, err := m.Store.UserByStudentNo(c.ctx, *user)
			if err != nil {
				return c.fail(err)
			}
			recs, err = m.Store.Records(c.ctx, u.ID, *before, *limit)
			if err != nil {
				return c.fail(err)
			}
		} else if recs, err = m.Svc.AllTransactions(c.ctx, *before, *limit); err != nil {
			return c.fail(err)
		}
		tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tTIME\tKIND\tUSER\tTERMINAL\tMERCHANT\tAMOUNT\tCHANNEL\tSTATUS\tCODE"+map[bool]string{true: "\tKEY"}[*keys])
		for _, r := range recs {
			line := fmt.Sprintf("%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s", r.ID, r.Created.In(wallet.Shanghai).Format("2006-01-02 15:04:05"),
				r.Kind, r.UserID, r.Terminal, r.Merchant, protocol.FormatCents(r.Amount), r.Channel, r.Status, r.Code)
			if *keys {
				line += "\t" + r.Key
			}
			fmt.Fprintln(tw, line)
		}
		tw.Flush()
		return 0
	})
}
