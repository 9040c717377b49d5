package walbuf_test

import (
	"bufio"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"campuspay/server/walbuf"
)

// open opens path through the VFS as the wallet's writer does.
func open(t *testing.T, path, extra string) *sql.DB {
	t.Helper()
	if err := walbuf.Register(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path+"?vfs="+walbuf.Name+"&_journal_mode=WAL&_synchronous=FULL"+extra)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// plain opens path through SQLite's own VFS, as the readers and a later
// release without walbuf do.
func plain(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec1(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// check asserts that the database reads whole through SQLite's own VFS
// and holds want rows summing to sum.
func check(t *testing.T, path string, want, sum int64) {
	t.Helper()
	db := plain(t, path)
	intact(t, db)
	var n, s int64
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(v), 0) FROM t`).Scan(&n, &s); err != nil {
		t.Fatal(err)
	}
	if n != want || s != sum {
		t.Fatalf("%d rows summing to %d, want %d summing to %d", n, s, want, sum)
	}
}

// intact fails the test unless SQLite finds db whole.
func intact(t *testing.T, db *sql.DB) {
	t.Helper()
	var ok string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
}

// writerCmd is this test binary run as the writer of path (TestMain),
// with env added.
func writerCmd(t *testing.T, path string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), "WALBUF_WRITER="+path), env...)
	return cmd
}

// A transaction's frames reach the WAL in a few writes, not two for each
// page, and what was committed reads back through SQLite's own VFS, from
// another connection while the writer stays open.
func TestGathersFrames(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	db := open(t, p, "")
	exec1(t, db, `CREATE TABLE t(k INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`)
	asked0, made0 := walbuf.Stats()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		if _, err := tx.Exec(`INSERT INTO t VALUES (?, ?, randomblob(200))`, i, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	asked, made := walbuf.Stats()
	asked, made = asked-asked0, made-made0
	// 2000 rows of 200-odd bytes are about 110 pages: 220 writes asked.
	if asked < 200 || made == 0 || made*20 > asked {
		t.Fatalf("SQLite asked %d writes and %d were made; want at least 200 gathered into a twentieth", asked, made)
	}
	check(t, p, 2000, 1999*2000/2)
}

// A transaction larger than the buffer, one whose pages spill to the WAL
// and are written again before it commits (the in-buffer rewrite and the
// read-back of frames not yet written), and one rolled back all leave the
// database as SQLite alone would.
func TestSpillsRewritesAndRollbacks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	db := open(t, p, "&_cache_size=20") // 20 pages: a big transaction spills
	exec1(t, db,
		`CREATE TABLE t(k INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`,
		// About 12 MiB of rows in one transaction: more than the 8 MiB
		// buffer, so some frames go out as the buffer fills.
		`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000)
		 INSERT INTO t SELECT x, 1, randomblob(4000) FROM c`,
	)
	check(t, p, 3000, 3000)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // each pass rewrites every page spilled by the one before
		if _, err := tx.Exec(`UPDATE t SET v = v + 1, pad = randomblob(4000)`); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	check(t, p, 3000, 6*3000)
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE t SET v = 0, pad = randomblob(4000)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// One small row changed between large inserts that make the cache
	// spill: its page is spilled again and again, its frame rewritten
	// while still gathered.
	tx, err = db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if _, err := tx.Exec(`INSERT INTO t VALUES (?, 0, randomblob(30000))`, 10000+i); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`UPDATE t SET v = v + 1 WHERE k = 1`); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	check(t, p, 3200, 6*3000+200)
	exec1(t, db, `DELETE FROM t WHERE k >= 10000`)
	exec1(t, db, `DELETE FROM t WHERE k > 1000`, `PRAGMA wal_checkpoint(TRUNCATE)`, `VACUUM`, `INSERT INTO t VALUES (5000, 4, x'00')`)
	check(t, p, 1001, 6*1000+200+4)
}

// The test binary run as a writer that commits one row per transaction,
// printing each committed sum, until it is killed.
func TestMain(m *testing.M) {
	if path := os.Getenv("WALBUF_WRITER"); path != "" {
		if err := writer(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writer(path string) error {
	if err := walbuf.Register(); err != nil {
		return err
	}
	if v := os.Getenv("WALBUF_FSIZE"); v != "" {
		// A full disk, as near as a process can make one: a write past
		// the limit fails (EFBIG) instead of killing the process.
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return err
		}
		signal.Ignore(syscall.SIGXFSZ)
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			return err
		}
	}
	db, err := sql.Open("sqlite3", path+"?vfs="+walbuf.Name+"&_journal_mode=WAL&_synchronous=FULL")
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v INTEGER, pad BLOB)`); err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	for i := int64(1); ; i++ {
		// Several rows a transaction, some large, so that a kill can land
		// between a commit's writes.
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for j := range 4 {
			if _, err := tx.Exec(`INSERT INTO t(v, pad) VALUES (?, randomblob(?))`, i, 100+1000*j); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit %d: %w", i, err)
		}
		fmt.Fprintln(w, i) // committed: 4 rows of v = i
		w.Flush()
	}
}

// kill -9 at random points of a writer's life: every transaction it was
// told was committed is in the database, none is there in part, and the
// file reads whole through SQLite's own VFS.
func TestKillNineLosesNothingCommitted(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	rnd := rand.New(rand.NewPCG(7, 11))
	var committed int64 // transactions committed over all the writer's lives
	for round := range 5 {
		cmd := writerCmd(t, p)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		stopAt := 50 + rnd.IntN(400)
		var last int64
		for n := 0; n < stopAt && sc.Scan(); n++ {
			if last, err = strconv.ParseInt(sc.Text(), 10, 64); err != nil {
				t.Fatal(err)
			}
		}
		cmd.Process.Kill() // SIGKILL
		for sc.Scan() {    // acknowledged before the kill landed
			if last, err = strconv.ParseInt(sc.Text(), 10, 64); err != nil {
				t.Fatal(err)
			}
		}
		cmd.Wait()
		if last == 0 {
			t.Fatalf("round %d: the writer committed nothing: %s", round, stderr.String())
		}
		committed += last
		db := plain(t, p)
		intact(t, db)
		// Each life numbers its transactions from 1; each transaction has
		// exactly 4 rows. At most one transaction past the last one
		// acknowledged may have committed before the kill.
		var rows, partial int64
		if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`SELECT COUNT(*) FROM (SELECT v, COUNT(*) n FROM t GROUP BY v HAVING n % 4 != 0)`).Scan(&partial); err != nil {
			t.Fatal(err)
		}
		if partial != 0 {
			t.Fatalf("round %d: %d transactions are in the database in part", round, partial)
		}
		if rows < 4*committed || rows > 4*(committed+1) {
			t.Fatalf("round %d: %d rows, want %d (or 4 more: a commit the kill cut before it was printed)", round, rows, 4*committed)
		}
		committed = rows / 4
		db.Close()
	}
}

// A write that fails when the gathered frames go out (the file may not
// grow: a full disk) fails that commit and no other: every transaction
// acknowledged before it is in the database, the failed one is not there
// even in part, and a writer without the limit carries on.
func TestFullDiskFailsTheCommit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.db")
	cmd := writerCmd(t, p, "WALBUF_FSIZE=1000000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		t.Fatal("the writer never failed under a 1 MB file limit")
	}
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		t.Fatalf("nothing committed before the limit: %s", stderr.String())
	}
	last, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("commit %d: ", last+1); !strings.Contains(stderr.String(), want) {
		t.Fatalf("the writer stopped with %q, want the failure of commit %d", stderr.String(), last+1)
	}
	check4 := func(want int64) {
		t.Helper()
		db := plain(t, p)
		defer db.Close()
		intact(t, db)
		var rows int64
		if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != want {
			t.Fatalf("%d rows, want %d", rows, want)
		}
	}
	check4(4 * last)
	db := open(t, p, "")
	exec1(t, db, `INSERT INTO t(v, pad) VALUES (-1, x'00')`)
	db.Close()
	check4(4*last + 1)
}
