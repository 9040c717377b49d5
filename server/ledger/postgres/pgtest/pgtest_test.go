package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestNewDatabase: two tests' databases are separate and usable, and a
// database is gone once its test has ended.
func TestNewDatabase(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("a", func(t *testing.T) {
		first = NewDatabase(t)
		conn, err := pgx.Connect(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "CREATE TABLE x (v int); INSERT INTO x VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		var fsync string
		if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
			t.Fatalf("fsync = %q, %v", fsync, err)
		}
	})
	t.Run("b", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("table of another test visible: %d %v", n, err)
		}
	})
	if _, err := pgx.Connect(ctx, first); err == nil {
		t.Fatal("database of a finished test still accepts connections")
	}
}

// TestStartStop: a private cluster with fsync on starts, serves and leaves
// nothing behind.
func TestStartStop(t *testing.T) {
	c, err := Start(Options{Fsync: true})
	if errors.Is(err, ErrNoBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	var fsync string
	err = conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync)
	conn.Close(ctx)
	if err != nil || fsync != "on" {
		t.Errorf("fsync = %q, %v", fsync, err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s left behind: %v", c.Dir, err)
	}
	if _, err := pgx.Connect(ctx, c.ConnString("postgres")); err == nil {
		t.Fatal("stopped cluster accepts connections")
	}
}

// TestNew: a private cluster with extra settings, gone after its test.
func TestNew(t *testing.T) {
	var c *Cluster
	t.Run("private", func(t *testing.T) {
		c = New(t, Options{Settings: []string{"work_mem=7MB"}})
		conn, err := pgx.Connect(context.Background(), c.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var v string
		if err := conn.QueryRow(context.Background(), "SHOW work_mem").Scan(&v); err != nil || v != "7MB" {
			t.Fatalf("work_mem = %q, %v", v, err)
		}
	})
	if c == nil {
		return // skipped
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s left behind: %v", c.Dir, err)
	}
}

// TestRemoveStale: a directory left by a dead test binary is removed, one
// of a live binary is kept.
func TestRemoveStale(t *testing.T) {
	mk := func(pid string) string {
		d, err := os.MkdirTemp("", dirPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if err := os.WriteFile(filepath.Join(d, "owner.pid"), []byte(pid), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	dead := mk("2147483646") // above any pid_max
	live := mk("1")
	removeStale()
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s kept: %v", dead, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live %s removed: %v", live, err)
	}
}

// Pause refuses connections until Resume; the data survives.
func TestPauseResume(t *testing.T) {
	ctx := context.Background()
	c := New(t, Options{})
	dsn := c.ConnString("postgres")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to a paused cluster")
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after resume: %d %v", v, err)
	}
}

// In CI a missing PostgreSQL fails the test instead of skipping it.
func TestMissingBinariesFailInCI(t *testing.T) {
	t.Setenv(BinEnv, t.TempDir()) // no initdb there
	t.Setenv("CI", "true")
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }() // Fatalf/Skipf end the fake test with a panic
		New(ft, Options{})
	}()
	if !ft.failed || ft.skipped {
		t.Fatalf("with CI=true: failed %v, skipped %v", ft.failed, ft.skipped)
	}
	t.Setenv("CI", "")
	ft = &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		New(ft, Options{})
	}()
	if ft.failed || !ft.skipped {
		t.Fatalf("without CI: failed %v, skipped %v", ft.failed, ft.skipped)
	}
}

// fakeTB records Fatalf and Skipf instead of ending the real test.
type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true; panic("skip") }
func (f *fakeTB) Cleanup(func())        {}

// A synchronous standby has every committed row; after the primary is
// killed and the standby promoted, a client on the multi-host URL writes
// to the new primary.
func TestStandbyPromote(t *testing.T) {
	ctx := context.Background()
	primary := New(t, Options{})
	standby, err := primary.StartStandby(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standby.Stop() })
	dsn, err := primary.CreateDatabase(ctx, "failover")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var sync string
	if err := conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&sync); err != nil || sync != "*" {
		t.Fatalf("synchronous_standby_names = %q, %v", sync, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE t (v int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	primary.Kill()
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, MultiHostURL("failover", primary, standby))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	var sum int
	if err := conn.QueryRow(ctx, "SELECT sum(v) FROM t").Scan(&sum); err != nil || sum != 3 {
		t.Fatalf("sum %d, %v: want the committed row and the new one", sum, err)
	}
	if got := conn.PgConn().Conn().RemoteAddr().String(); !strings.HasSuffix(got, fmt.Sprintf(":%d", standby.Port)) {
		t.Fatalf("connected to %s, want the promoted standby on %d", got, standby.Port)
	}
}
