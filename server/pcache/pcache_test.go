package pcache

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

func TestInstalled(t *testing.T) {
	if err := Err(); err != nil {
		t.Fatal(err)
	}
}

// The wrapper moves, finds and drops a page exactly as SQLite's own cache
// does, through the swap that balance_nonroot makes.
func TestSwapSequence(t *testing.T) {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err != nil { // initializes SQLite
		t.Fatal(err)
	}
	if err := selfCheck(); err != nil {
		t.Fatal(err)
	}
}

// Random-order inserts into indexes split pages and make SQLite park pages
// under the lock-byte page's number; savepoints rolled back and released
// around them, commits, and a second connection reading, must all see an
// intact database with exactly the rows committed.
func TestSplitsUnderSavepoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	w, err := sql.Open("sqlite3", path+"?_journal_mode=WAL&_synchronous=FULL&_cache_size=-65536")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite3", path+"?mode=ro&_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := w.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE, v BLOB NOT NULL)")
	exec("CREATE INDEX t_v ON t (v)")
	rng := rand.New(rand.NewPCG(1, 2))
	before := Parked()
	var want, sum int64
	for batch := 0; batch < 60; batch++ {
		exec("BEGIN IMMEDIATE")
		for op := 0; op < 40; op++ {
			exec("SAVEPOINT op")
			n := rng.Int64N(1 << 40)
			v := make([]byte, 100+rng.IntN(300))
			for i := range v {
				v[i] = byte(rng.Uint32())
			}
			exec("INSERT INTO t (k, v) VALUES (?, ?)", fmt.Sprintf("%016x", n), v)
			if op%7 == 3 {
				exec("ROLLBACK TO op")
			} else {
				want++
				sum += int64(len(v))
			}
			exec("RELEASE op")
		}
		exec("COMMIT")
		var n, s int64
		if err := r.QueryRow("SELECT count(*), coalesce(sum(length(v)), 0) FROM t").Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		if n != want || s != sum {
			t.Fatalf("batch %d: reader sees %d rows of %d bytes, want %d of %d", batch, n, s, want, sum)
		}
	}
	if Parked() == before {
		t.Fatal("no page was parked under the lock-byte page's number: the test did not reach the swap")
	}
	var ok string
	if err := w.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q, %v", ok, err)
	}
}
