package load

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"campuspay/server/ledger/postgres/pgtest"
)

// ScaleOptions configure Scale: one load offered, in one run, to the bare
// echo, to one authorizer on SQLite, and to 1, 2, 3… authorizers sharing
// one PostgreSQL (fsync on), all on one Mosquitto.
type ScaleOptions struct {
	Bin, Dir            string
	Students, Terminals int
	Load                Load
	AuthTimeout         time.Duration
	Authorizers         []int // PostgreSQL steps, e.g. 1, 2, 3
	// Database is "" for a throw-away PostgreSQL cluster started for the
	// run (fsync on), or the postgres:// URL of a server on which the run
	// may create (and then drops) one database per step.
	Database string
	Out      io.Writer
}

// ScaleRow is one line of the table.
type ScaleRow struct {
	Name   string
	Result *Result
	Tally  *Tally
}

// Scale runs the steps and prints the table (PrintScale).
func Scale(ctx context.Context, o ScaleOptions) ([]ScaleRow, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	var rows []ScaleRow
	run := func(name, dir string, opt Options) error {
		opt.Bin, opt.Dir, opt.Broker = o.Bin, filepath.Join(o.Dir, dir), Mosquitto
		opt.Students, opt.Terminals, opt.Load, opt.AuthTimeout, opt.Out = o.Students, o.Terminals, o.Load, o.AuthTimeout, o.Out
		opt.Authorizer = true
		fmt.Fprintf(o.Out, "== %s\n", name)
		rep, err := Run(ctx, opt)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if rep.Echo != nil {
			rows = append(rows, ScaleRow{Name: "bare echo (no wallet)", Result: rep.Echo})
		}
		rows = append(rows, ScaleRow{Name: name, Result: rep.Authorizer, Tally: rep.Tally})
		return nil
	}
	if err := run("SQLite, 1 authorizer", "sqlite", Options{Store: StoreSQLite, Echo: true}); err != nil {
		return rows, err
	}
	server, pid, stop, err := scaleServer(ctx, o.Database)
	if err != nil {
		return rows, err
	}
	defer stop()
	for _, n := range o.Authorizers {
		name := fmt.Sprintf("PostgreSQL, %d authorizers", n)
		if n == 1 {
			name = "PostgreSQL, 1 authorizer"
		}
		db := fmt.Sprintf("campuspay_load_%d_%d", n, time.Now().UnixNano())
		dsn, drop, err := createDatabase(ctx, server, db)
		if err != nil {
			return rows, err
		}
		err = run(name, fmt.Sprintf("postgres-%d", n), Options{Store: dsn, Authorizers: n, dbPid: pid})
		drop()
		if err != nil {
			return rows, err
		}
	}
	PrintScale(o.Out, rows)
	return rows, nil
}

// scaleServer returns the URL of the PostgreSQL server the steps use: the
// one given, or a throw-away cluster (fsync on) and its postmaster's pid.
func scaleServer(ctx context.Context, given string) (server string, pid int, stop func(), err error) {
	if given != "" {
		return given, 0, func() {}, nil
	}
	c, err := pgtest.Start(pgtest.Options{Fsync: true})
	if err != nil {
		return "", 0, nil, fmt.Errorf("load: PostgreSQL: %w", err)
	}
	return pgtest.MultiHostURL("postgres", c), c.Pid(), func() { c.Stop() }, nil
}

// createDatabase creates database db on server and returns its URL and a
// function that drops it.
func createDatabase(ctx context.Context, server, db string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", nil, fmt.Errorf("load: connect to %s: %w", redact(server), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		return "", nil, fmt.Errorf("load: create database %s: %w", db, err)
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", nil, fmt.Errorf("load: database URL: %w", err)
	}
	u.Path = "/" + db
	drop := func() {
		if c, err := pgx.Connect(context.Background(), server); err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	return u.String(), drop, nil
}

// redact drops the password from a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(database URL)"
	}
	return u.Redacted()
}

// PrintScale prints the table of a Scale run.
func PrintScale(w io.Writer, rows []ScaleRow) {
	var echo float64
	for _, r := range rows {
		if r.Tally == nil {
			echo = r.Result.Throughput()
		}
	}
	fmt.Fprintf(w, "\n%-26s %10s %8s %9s %9s %17s %13s %9s  %s\n", "deployment (Mosquitto)", "payments/s", "of echo", "p50", "p99",
		"authorizers' CPU", "postgres CPU", "machine", "ledger")
	for _, r := range rows {
		res := r.Result
		authz, pg, machine := 0.0, "-", ""
		for _, c := range res.CPU {
			switch {
			case c.Name == "machine":
				machine = fmt.Sprintf("%.2f/%d", c.Cores(res.Wall), c.Pid)
			case c.Name == "authorizer" || strings.HasPrefix(c.Name, "authz-"):
				authz += c.Cores(res.Wall)
			case c.Name == "postgres":
				pg = fmt.Sprintf("%.2f cores", c.Cores(res.Wall))
			}
		}
		ratio, cpu, ledger := "-", "-", "-"
		if echo > 0 {
			ratio = fmt.Sprintf("%.0f%%", 100*res.Throughput()/echo)
		}
		if r.Tally != nil {
			cpu = fmt.Sprintf("%.2f cores", authz)
			ledger = "check OK"
			if !r.Tally.CheckOK || len(r.Tally.Missing) > 0 {
				ledger = fmt.Sprintf("FAILED (missing %d)", len(r.Tally.Missing))
			}
		}
		fmt.Fprintf(w, "%-26s %10.0f %8s %9s %9s %17s %13s %9s  %s\n", r.Name, res.Throughput(), ratio, ms(res.Percentile(0.5)),
			ms(res.Percentile(0.99)), cpu, pg, machine, ledger)
	}
}
