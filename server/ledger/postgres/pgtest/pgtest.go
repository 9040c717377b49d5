// Package pgtest starts throw-away PostgreSQL clusters for tests: initdb
// into a temporary directory, a postmaster on a free loopback port, a fresh
// database per test, and everything stopped and removed afterwards.
//
// A package's tests share one cluster (starting one costs about half a
// second) and each test gets its own database:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		dsn := pgtest.NewDatabase(t) // skips t if PostgreSQL is not installed
//		...
//	}
//
// The postmaster is started directly (not through pg_ctl) as a child of the
// test binary with a parent-death signal, so that it dies with the test
// binary even when that is killed or panics; Main and Cluster.Stop remove
// the data directory, and Start removes directories left behind by test
// binaries that died.
//
// initdb refuses to run as root: when the test runs as root, the cluster is
// initialised and run as the system user "postgres" in a directory chowned
// to it.
//
// For failover tests a cluster gets a streaming standby (StartStandby,
// synchronous or not), can be killed like a dead host (Kill) and a standby
// promoted (Promote); MultiHostURL names both for a client that must find
// the primary. Programs (hwsim load) use Start and CreateDatabase directly.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// BinEnv names an environment variable that overrides where the
// PostgreSQL server binaries (initdb, postgres) are looked for.
const BinEnv = "PGTEST_BIN"

// dirPrefix names the temporary directories of clusters, so that stale ones
// can be found and removed.
const dirPrefix = "campuspay-pgtest-"

// ErrNoBinaries is returned by Start when no PostgreSQL installation is found.
var ErrNoBinaries = errors.New("pgtest: PostgreSQL server binaries not found (install postgresql, or set " + BinEnv + ")")

// Options tune a cluster. The zero value is a fast cluster for tests.
type Options struct {
	// Fsync keeps the server's fsync on (the default turns it off, and
	// full_page_writes with it: a test cluster need not survive a power
	// cut). Benchmarks that compare commit rates want it on.
	Fsync bool
	// Settings are extra "-c name=value" server settings.
	Settings []string
}

// Cluster is a running throw-away PostgreSQL cluster.
type Cluster struct {
	Dir  string // temporary directory holding data/, the socket and the log
	Port int    // TCP port on 127.0.0.1

	bin    string
	opt    Options
	cmd    *exec.Cmd
	exited chan struct{} // closed when the postmaster has exited
	once   sync.Once
	dbSeq  atomic.Int64
}

// BinDir returns the directory with initdb and postgres: $PGTEST_BIN, else
// the newest /usr/lib/postgresql/*/bin. It returns ErrNoBinaries if there
// is none.
func BinDir() (string, error) {
	if d := os.Getenv(BinEnv); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrNoBinaries, BinEnv, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(a) - version(b) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", ErrNoBinaries
}

// version reads the major version out of /usr/lib/postgresql/N/bin.
func version(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return n
}

// Start initialises and starts a cluster. The caller must Stop it.
func Start(opt Options) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{Dir: dir, bin: bin, opt: opt, exited: make(chan struct{})}
	if err := c.start(bin, opt); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(bin string, opt Options) error {
	cred, err := c.claimDir()
	if err != nil {
		return err
	}
	data := filepath.Join(c.Dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	initdb.Dir = c.Dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}

	return c.runOnFreePort(bin, data, cred, opt)
}

// claimDir marks c.Dir as this process's (for removeStale) and gives it
// to the user PostgreSQL runs as; it returns that user's credentials.
func (c *Cluster) claimDir() (*syscall.Credential, error) {
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		if err := os.Chown(c.Dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: chown %s: %w", c.Dir, err)
		}
	}
	return cred, nil
}

// runOnFreePort starts the postmaster on a free port. A port that was
// free a moment ago may be taken by the time the postmaster binds it: it
// tries a few.
func (c *Cluster) runOnFreePort(bin, data string, cred *syscall.Credential, opt Options) error {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return err
		}
		if lastErr = c.run(bin, data, port, cred, opt); lastErr == nil {
			return nil
		}
		if !errors.Is(lastErr, errExited) {
			return lastErr
		}
	}
	return lastErr
}

var errExited = errors.New("pgtest: postgres exited during start")

// run starts the postmaster on port and waits until it accepts connections.
func (c *Cluster) run(bin, data string, port int, cred *syscall.Credential, opt Options) error {
	logPath := filepath.Join(c.Dir, "postgres.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer log.Close()
	args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", c.Dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"}
	if !opt.Fsync {
		args = append(args, "-c", "fsync=off", "-c", "full_page_writes=off")
	}
	for _, s := range opt.Settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = log, log
	// SIGQUIT is PostgreSQL's immediate shutdown: the postmaster and its
	// backends go away with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=2", port)
	for {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			conn.Close(ctx)
			c.cmd, c.exited, c.Port = cmd, exited, port
			return nil
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("%w (port %d):\n%s", errExited, port, out)
		case <-ctx.Done():
			cmd.Process.Signal(syscall.SIGQUIT)
			<-exited
			return fmt.Errorf("pgtest: postgres not ready: %w", err)
		case <-time.After(20 * time.Millisecond): // poll interval while the server starts
		}
	}
}

// runAs returns the credentials to run PostgreSQL with: those of the
// "postgres" user when running as root, none otherwise.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a postgres user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: user postgres has uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStale removes the directories of clusters whose test binary is
// gone (killed before it could clean up).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// New starts a private cluster for tb, stopped and removed when tb ends;
// it skips tb if PostgreSQL is not installed. Prefer Shared (one cluster
// per test binary) unless the test needs its own settings.
func New(tb testing.TB, opt Options) *Cluster {
	tb.Helper()
	c, err := Start(opt)
	if errors.Is(err, ErrNoBinaries) {
		skipOrFail(tb, err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return c
}

// skipOrFail skips tb for want of PostgreSQL on a developer's machine, and
// fails it in CI (CI set in the environment): there a missing PostgreSQL is
// a broken setup (scripts/deps.sh installs it), never a reason to pass.
func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if v := os.Getenv("CI"); v != "" && v != "false" && v != "0" {
		tb.Fatalf("CI=%s and %v", v, err)
	}
	tb.Skipf("skipping: %v", err)
}

// Pause shuts the postmaster down (fast shutdown) and keeps its data: its
// port refuses connections until Resume. For tests of a database outage.
func (c *Cluster) Pause() error {
	if c.cmd == nil {
		return errors.New("pgtest: pause: not running")
	}
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Signal(syscall.SIGQUIT)
		<-c.exited
	}
	return nil
}

// Resume starts the postmaster of a paused cluster again, on the same port,
// and returns once it accepts connections.
func (c *Cluster) Resume() error {
	select {
	case <-c.exited:
	default:
		return errors.New("pgtest: resume: still running")
	}
	cred, err := runAs()
	if err != nil {
		return err
	}
	return c.run(c.bin, filepath.Join(c.Dir, "data"), c.Port, cred, c.opt)
}

// Stop shuts the cluster down (fast shutdown, then immediate if it takes
// more than 10 s) and removes its directory. It is safe to call twice.
func (c *Cluster) Stop() error {
	var err error
	c.once.Do(func() {
		if c.cmd != nil {
			c.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-c.exited:
			case <-time.After(10 * time.Second):
				c.cmd.Process.Signal(syscall.SIGQUIT)
				<-c.exited
			}
		}
		if rerr := os.RemoveAll(c.Dir); rerr != nil {
			err = fmt.Errorf("pgtest: remove %s: %w", c.Dir, rerr)
		}
	})
	return err
}

// ConnString returns a connection string for database db over TCP.
func (c *Cluster) ConnString(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", c.Port, db)
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDatabase creates an empty database named after tb, drops it (closing
// any connections left to it) when tb ends, and returns its connection
// string.
func (c *Cluster) NewDatabase(tb testing.TB) string {
	tb.Helper()
	name := unsafeName.ReplaceAllString(strings.ToLower(tb.Name()), "_")
	name = fmt.Sprintf("t%d_%s", c.dbSeq.Add(1), name)
	if len(name) > 63 {
		name = name[:63]
	}
	ctx := context.Background()
	if err := c.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := c.admin(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.ConnString(name)
}

// admin runs one statement on the maintenance database.
func (c *Cluster) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// The package's shared cluster, started by the first test that asks.
var shared struct {
	mu  sync.Mutex
	c   *Cluster
	err error
}

// Shared returns the test binary's shared cluster, starting it on first
// use; it skips tb if PostgreSQL is not installed and fails it if the
// cluster cannot start. Main stops it.
func Shared(tb testing.TB) *Cluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = Start(Options{})
	}
	switch {
	case errors.Is(shared.err, ErrNoBinaries):
		skipOrFail(tb, shared.err)
	case shared.err != nil:
		tb.Fatalf("start the shared test cluster: %v", shared.err)
	}
	return shared.c
}

// NewDatabase is Shared(tb).NewDatabase(tb).
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return Shared(tb).NewDatabase(tb)
}

// Main runs the tests and then stops the shared cluster, if one was
// started. Use it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c != nil {
		if err := shared.c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		shared.c = nil
	}
	return code
}

// Require skips tb when PostgreSQL is not installed (fails it in CI), for
// tests that start PostgreSQL through a program rather than through
// New or Shared.
func Require(tb testing.TB) {
	tb.Helper()
	if _, err := BinDir(); err != nil {
		skipOrFail(tb, err)
	}
}

// Pid is the postmaster's process ID (its backends are its children).
func (c *Cluster) Pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}
