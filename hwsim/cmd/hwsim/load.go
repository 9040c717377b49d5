package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"campuspay/hwsim/load"
)

const loadUsage = `usage: hwsim load [flags]

Sizes a deployment: sets up a campus (bank simulator, authorizer config,
students, devices and terminals in one "authorizer provision"), then drives
--terminals simulated terminals, each with its own broker credentials,
paying with real signed codes of --students students: first against a bare
paho echo responder, then against "authorizer serve", on the embedded
broker or Mosquitto. Closed loop (--concurrency in flight) or open loop
(--rate per second; each request's deadline is the terminal's auth timeout).
Prints payments/s, latency percentiles, timeouts, the CPU of each process,
the authorizer/echo ratio, "ledger check" and the late charges (payment
transfers the terminals never saw approved in time).

With --scale 1,2,3 the same load goes, in one run, on one Mosquitto, to the
bare echo, to one authorizer on SQLite, and to 1, 2 and 3 authorizers
sharing one PostgreSQL (fsync on; a throw-away cluster, or --database), and
a table compares their payments/s.

flags:
`

// runLoad is "hwsim load" (and "hwsim load echo", the baseline responder
// it starts as a process of its own).
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "echo" {
		return runLoadEcho(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("hwsim load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	exe, _ := os.Executable()
	bin := fs.String("bin", filepath.Dir(exe), "folder with the authorizer and hwsim `binaries`")
	dir := fs.String("dir", "", "run `folder` (default: a new temporary folder, kept for its logs); one subfolder per broker")
	brokers := fs.String("broker", "embedded", "`brokers` to measure, comma-separated: embedded, mosquitto")
	students := fs.Int("students", 1000, "registered students paying (`N`)")
	terminals := fs.Int("terminals", 100, "simulated terminals (`N`), each with its own broker credentials")
	conc := fs.Int("concurrency", 256, "closed loop: requests in flight (`N`)")
	rate := fs.Float64("rate", 0, "open loop: requests per second (`R`); 0 = closed loop")
	duration := fs.Duration("duration", 10*time.Second, "load `duration` of each phase")
	payments := fs.Int("payments", 0, "stop each phase after `N` requests (0: --duration only)")
	amount := fs.Int64("amount", 100, "`cents` per payment")
	authTimeout := fs.Duration("auth-timeout", 5*time.Second, "terminals' auth timeout (auth_timeout_ms of their config): each request's `deadline`")
	drain := fs.Duration("drain", 0, "after the load, wait at most this `long` for late answers (default auth timeout + 5s)")
	warmup := fs.Duration("warmup", 0, "offer the load this `long` before each measured phase, unmeasured (a fresh authorizer is slow for about its first second); its latencies are printed apart")
	reverse := fs.Bool("reverse", false, "terminals reverse each payment unanswered at its deadline, as terminald does")
	echo := fs.Bool("echo", true, "run the echo baseline phase")
	authz := fs.Bool("authorizer", true, "run the authorizer phase")
	scale := fs.String("scale", "", "numbers of authorizers on PostgreSQL to compare, e.g. `1,2,3` (with the echo and SQLite; Mosquitto)")
	database := fs.String("database", "", "with --scale: postgres:// `URL` of a server where the run may create its databases (default: a throw-away cluster; PostgreSQL must be installed)")
	fs.Usage = func() { fmt.Fprint(stderr, loadUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "campuspay-load-")
		if err != nil {
			fmt.Fprintf(stderr, "hwsim load: %v\n", err)
			return 1
		}
		*dir = d
	}
	l := load.Load{Concurrency: *conc, Rate: *rate, Duration: *duration, Payments: *payments, Amount: *amount, Drain: *drain, Reverse: *reverse, Warmup: *warmup}
	if *scale != "" {
		var ns []int
		for _, f := range strings.Split(*scale, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				fmt.Fprintf(stderr, "hwsim load: --scale %q: want numbers of authorizers, e.g. 1,2,3\n", *scale)
				return 2
			}
			ns = append(ns, n)
		}
		fmt.Fprintf(stdout, "== scale: %d terminals, %d students, ", *terminals, *students)
		if *rate > 0 {
			fmt.Fprintf(stdout, "open loop %.0f/s", *rate)
		} else {
			fmt.Fprintf(stdout, "closed loop %d in flight", *conc)
		}
		fmt.Fprintf(stdout, ", %v per phase (folder %s)\n", *duration, *dir)
		rows, err := load.Scale(ctx, load.ScaleOptions{Bin: *bin, Dir: *dir, Students: *students, Terminals: *terminals, Load: l,
			AuthTimeout: *authTimeout, Authorizers: ns, Database: *database, Out: stdout})
		if err != nil {
			fmt.Fprintf(stderr, "hwsim load: %v\n", err)
			return 1
		}
		for _, r := range rows {
			if t := r.Tally; t != nil && (!t.CheckOK || len(t.Missing) > 0) {
				return 1
			}
		}
		return 0
	}
	code := 0
	for _, b := range strings.Split(*brokers, ",") {
		b = strings.TrimSpace(b)
		fmt.Fprintf(stdout, "== %s broker: %d terminals, %d students, ", b, *terminals, *students)
		if *rate > 0 {
			fmt.Fprintf(stdout, "open loop %.0f/s", *rate)
		} else {
			fmt.Fprintf(stdout, "closed loop %d in flight", *conc)
		}
		fmt.Fprintf(stdout, ", %v per phase (folder %s)\n", *duration, filepath.Join(*dir, b))
		rep, err := load.Run(ctx, load.Options{Bin: *bin, Dir: filepath.Join(*dir, b), Broker: b, Students: *students, Terminals: *terminals,
			Load: l,
			Echo: *echo, Authorizer: *authz, AuthTimeout: *authTimeout, Out: stdout})
		if err != nil {
			fmt.Fprintf(stderr, "hwsim load: %v\n", err)
			return 1
		}
		load.PrintRatio(stdout, rep)
		if t := rep.Tally; t != nil && (!t.CheckOK || len(t.Missing) > 0) {
			code = 1
		}
	}
	return code
}

func runLoadEcho(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("hwsim load echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o load.EchoOptions
	fs.StringVar(&o.Broker, "broker", "", "external broker `URL` (tcp://127.0.0.1:1883); password in $HWSIM_ECHO_PASSWORD")
	fs.StringVar(&o.User, "user", "echo-1", "service `user` on the external broker")
	fs.StringVar(&o.Listen, "listen", "", "instead: run the embedded broker on this `address`")
	fs.StringVar(&o.Creds, "creds", "", "with --listen: `file` written by authorizer provision (terminal passwords)")
	fs.StringVar(&o.Ready, "ready", "", "create this `file` once subscribed")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hwsim load echo (--broker URL [--user U] | --listen ADDR --creds FILE) [--ready FILE]\n\nThe load test's baseline: answers every terminal request with its own payload.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	o.Password = os.Getenv("HWSIM_ECHO_PASSWORD")
	if (o.Broker == "") == (o.Listen == "") {
		fs.Usage()
		return 2
	}
	o.Log = slog.New(slog.NewTextHandler(stderr, nil))
	if err := load.Echo(ctx, o); err != nil {
		fmt.Fprintf(stderr, "hwsim load echo: %v\n", err)
		return 1
	}
	return 0
}
