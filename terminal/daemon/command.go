package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"campuspay/protocol"
	"campuspay/terminal/journal"
)

// CrashAtEnv names the crash-test hook: TERMINALD_CRASH_AT=Held (or
// Held:2 for the second time) makes the daemon SIGKILL itself right after
// that journal state is durable. Tests use it to prove that a kill at any
// point loses nothing and charges nothing twice.
const CrashAtEnv = "TERMINALD_CRASH_AT"

// Command runs terminald with args (without the program name) and
// returns the exit code.
func Command(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("terminald", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "path of the JSON config `file`")
	logLevel := fs.String("log-level", "", "log `level`: debug, info, warn or error (default: the config's log_level, else info)")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: terminald --config FILE [--log-level LEVEL]\n\n"+
			"The campus payment terminal daemon (modes pos, card, shower).\n"+
			"Logs are JSON lines on stderr; Prometheus metrics on status_listen's /metrics.\n"+
			"The broker password comes from broker.password_file or broker.password_env.\n"+
			"%s=STATE[:N] kills the daemon after that journal state (crash tests only).\n\n", CrashAtEnv)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Fprintln(stdout, "terminald", Version)
		return 0
	}
	if *cfgPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	lvl, err := ParseLogLevel(*logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "terminald: --log-level:", err)
		return 2
	}
	cfg, err := LoadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "terminald:", err)
		return 1
	}
	if *logLevel == "" {
		lvl, _ = ParseLogLevel(cfg.LogLevel) // checked by LoadConfig
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl})).With("service", "terminald")
	opts := Options{Logger: log}
	if v := os.Getenv(CrashAtEnv); v != "" {
		hook, err := crashHook(v)
		if err != nil {
			fmt.Fprintln(stderr, "terminald:", err)
			return 2
		}
		log.Warn("crash hook armed", "at", v)
		opts.OnState = hook
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	m, err := New(cfg, opts)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	if err := m.Run(ctx); err != nil {
		log.Error("stopped on error", "err", err)
		return 1
	}
	return 0
}

func crashHook(v string) (func(protocol.TxID, journal.State), error) {
	name, nth, _ := strings.Cut(v, ":")
	want, ok := journal.ParseState(name)
	if !ok {
		return nil, fmt.Errorf("%s=%q: unknown state", CrashAtEnv, v)
	}
	n := int64(1)
	if nth != "" {
		var err error
		if n, err = strconv.ParseInt(nth, 10, 64); err != nil || n < 1 {
			return nil, fmt.Errorf("%s=%q: bad count", CrashAtEnv, v)
		}
	}
	var seen atomic.Int64
	return func(_ protocol.TxID, s journal.State) {
		if s == want && seen.Add(1) == n {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never run past the crash point
		}
	}, nil
}
