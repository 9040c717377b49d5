package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// A primary and its streaming standby, for failover tests:
//
//	primary, _ := pgtest.Start(pgtest.Options{})
//	standby, _ := primary.StartStandby(true) // synchronous: every commit waits for it
//	dsn := pgtest.MultiHostURL("campuspay", primary, standby)
//	...
//	primary.Kill()     // the primary's host dies
//	standby.Promote()  // pg_ctl promote: the standby takes writes
//
// A client on the multi-host URL (target_session_attrs=read-write) finds
// whichever is the primary.

// StartStandby makes a streaming replica of c: pg_basebackup -R of c into
// a new temporary directory, started on a free port with c's options. With
// synchronous set, c is then made to wait for it on every commit
// (synchronous_standby_names = '*'), and StartStandby returns once the
// standby streams synchronously. The caller must Stop it.
func (c *Cluster) StartStandby(synchronous bool) (*Cluster, error) {
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Cluster{Dir: dir, bin: c.bin, opt: c.opt, exited: make(chan struct{})}
	fail := func(err error) (*Cluster, error) {
		s.Stop()
		return nil, err
	}
	cred, err := s.claimDir()
	if err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	// -R writes standby.signal and primary_conninfo; initdb's trust rules
	// let the loopback replication connection in.
	bb := exec.Command(filepath.Join(c.bin, "pg_basebackup"), "-D", data, "-R", "-X", "stream", "-c", "fast",
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", "postgres", "--no-sync")
	bb.Dir = dir
	bb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := bb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgtest: pg_basebackup: %w\n%s", err, out))
	}
	if err := s.runOnFreePort(s.bin, data, cred, s.opt); err != nil {
		return fail(err)
	}
	if synchronous {
		if err := c.waitForStandby(s); err != nil {
			return fail(err)
		}
	}
	return s, nil
}

// waitForStandby makes c's commits wait for a standby and returns once
// one streams synchronously.
func (c *Cluster) waitForStandby(s *Cluster) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: primary: %w", err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{"ALTER SYSTEM SET synchronous_standby_names = '*'", "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("pgtest: %s: %w", q, err)
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").Scan(&n)
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			log, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
			return fmt.Errorf("pgtest: standby not streaming synchronously (%v, %v):\n%s", err, ctx.Err(), log)
		case <-tick.C:
		}
	}
}

// Kill ends the postmaster with SIGKILL, as if its host died: no
// shutdown checkpoint, the port refuses connections at once. The
// directory stays until Stop.
func (c *Cluster) Kill() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Kill()
	<-c.exited
}

// Promote turns a standby into a primary (pg_ctl promote) and returns
// once it takes writes.
func (c *Cluster) Promote() error {
	cred, err := runAs()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(c.bin, "pg_ctl"), "promote", "-D", filepath.Join(c.Dir, "data"), "-w", "-t", "60")
	cmd.Dir = c.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: pg_ctl promote: %w\n%s", err, out)
	}
	return nil
}

// CreateDatabase creates an empty database and returns its connection
// string (for programs; tests use NewDatabase, which also drops it).
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := c.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.ConnString(name), nil
}

// MultiHostURL is a postgres:// URL for database db listing every
// cluster's host, with target_session_attrs=read-write: a client connects
// to whichever of them takes writes.
func MultiHostURL(db string, clusters ...*Cluster) string {
	var hosts []string
	for _, c := range clusters {
		hosts = append(hosts, "127.0.0.1:"+strconv.Itoa(c.Port))
	}
	return "postgres://postgres@" + strings.Join(hosts, ",") + "/" + url.PathEscape(db) +
		"?sslmode=disable&target_session_attrs=read-write"
}
