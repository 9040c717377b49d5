package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"campuspay/server/ledger"
)

// BenchmarkPayments measures payments per second through the group-commit
// writer with 1 and 64 concurrent payers, and beside it the raw rate of
// single-row transactions on the same kind of file (WAL,
// synchronous=FULL): the ceiling a store with one transaction per payment
// could not pass.
func BenchmarkPayments(b *testing.B) {
	for _, payers := range []int{1, 64} {
		b.Run("payers="+strconv.Itoa(payers), func(b *testing.B) {
			raw := newRawCommitter(b)
			rawN := min(max(b.N/2, 100), 1000)
			raw.sample(rawN)
			s, _ := openTemp(b, Options{})
			ctx := context.Background()
			for g := range payers {
				w := ledger.AccountID("wallet:" + strconv.Itoa(g))
				if _, err := s.Post(ctx, pay("fund"+strconv.Itoa(g), "bank:CCB", w, ledger.MaxAmount)); err != nil {
					b.Fatal(err)
				}
			}
			before := s.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for g := range payers {
				w := ledger.AccountID("wallet:" + strconv.Itoa(g))
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := s.Post(ctx, pay("p"+strconv.FormatInt(i, 10), w, "merchant:M", 1)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			rate := float64(b.N) / b.Elapsed().Seconds()
			raw.sample(rawN)
			st := s.Stats()
			b.ReportMetric(rate, "payments/s")
			b.ReportMetric(raw.rate(), "raw-commits/s")
			b.ReportMetric(rate/raw.rate(), "x-vs-raw-commit")
			b.ReportMetric(float64(st.Ops-before.Ops)/float64(st.Batches-before.Batches), "ops/batch")
		})
	}
}

// rawCommitter commits single-row transactions on a file with the store's
// durability settings: the baseline. The machine's sync rate drifts, so the
// benchmark samples it right before and right after its own run.
type rawCommitter struct {
	b       *testing.B
	db      *sql.DB
	ins     *sql.Stmt
	n       int
	samples int
	elapsed time.Duration
}

func newRawCommitter(b *testing.B) *rawCommitter {
	b.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(b.TempDir(), "raw.db")+"?_journal_mode=WAL&_synchronous=OFF")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, key TEXT NOT NULL, amount INTEGER NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	r := &rawCommitter{b: b, db: db}
	if r.ins, err = db.Prepare("INSERT INTO t (key, amount) VALUES (?, ?)"); err != nil {
		b.Fatal(err)
	}
	// Grow the WAL past its first checkpoint without syncing, so that the
	// measured commits reuse it like a long-running store does.
	for range 1500 {
		r.commit()
	}
	if _, err := db.Exec("PRAGMA synchronous = FULL"); err != nil {
		b.Fatal(err)
	}
	return r
}

func (r *rawCommitter) commit() {
	r.n++
	if _, err := r.ins.Exec("k"+strconv.Itoa(r.n), r.n); err != nil { // autocommit: one transaction
		r.b.Fatal(err)
	}
}

// sample times n commits.
func (r *rawCommitter) sample(n int) {
	start := time.Now()
	for range n {
		r.commit()
	}
	r.elapsed += time.Since(start)
	r.samples += n
}

func (r *rawCommitter) rate() float64 { return float64(r.samples) / r.elapsed.Seconds() }
