package postgres

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"campuspay/server/ledger"
	"campuspay/server/ledger/postgres/pgtest"
)

// BenchmarkPayments measures payments per second through the pipelined
// group-commit writer with 1 and 64 concurrent payers (each with its own
// wallet, all paying one merchant: the hot row of a lunch rush), on one
// Store and on two Stores sharing the database, and beside it the raw rate
// of single-row INSERT transactions on one connection to the same
// cluster: what a store with one transaction per payment could not pass.
// The cluster runs with fsync on, so a commit is a WAL flush.
func BenchmarkPayments(b *testing.B) {
	c := pgtest.New(b, pgtest.Options{Fsync: true})
	for _, tc := range []struct{ payers, stores int }{{1, 1}, {64, 1}, {64, 2}} {
		b.Run("payers="+strconv.Itoa(tc.payers)+"/stores="+strconv.Itoa(tc.stores), func(b *testing.B) {
			dsn := c.NewDatabase(b)
			raw := newRawCommitter(b, dsn)
			rawN := min(max(b.N/2, 100), 1000)
			raw.sample(rawN)
			ctx := context.Background()
			var stores []*Store
			for range tc.stores {
				stores = append(stores, open(b, dsn, Options{}))
			}
			for g := range tc.payers {
				w := ledger.AccountID("wallet:" + strconv.Itoa(g))
				if _, err := stores[0].Post(ctx, pay("fund"+strconv.Itoa(g), "bank:CCB", w, ledger.MaxAmount)); err != nil {
					b.Fatal(err)
				}
			}
			var before Stats
			for _, s := range stores {
				st := s.Stats()
				before.Ops += st.Ops
				before.Batches += st.Batches
			}
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for g := range tc.payers {
				w := ledger.AccountID("wallet:" + strconv.Itoa(g))
				s := stores[g%len(stores)]
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
			var after Stats
			for _, s := range stores {
				st := s.Stats()
				after.Ops += st.Ops
				after.Batches += st.Batches
			}
			b.ReportMetric(rate, "payments/s")
			b.ReportMetric(raw.rate(), "raw-commits/s")
			b.ReportMetric(rate/raw.rate(), "x-vs-raw-commit")
			b.ReportMetric(float64(after.Ops-before.Ops)/float64(after.Batches-before.Batches), "ops/batch")
		})
	}
}

// rawCommitter commits single-row INSERTs, one transaction each, on its
// own connection: the baseline. The machine's flush rate drifts, so the
// benchmark samples it right before and right after its own run.
type rawCommitter struct {
	b       *testing.B
	conn    *pgx.Conn
	n       int
	samples int
	elapsed time.Duration
}

func newRawCommitter(b *testing.B, dsn string) *rawCommitter {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, "CREATE TABLE raw (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key text NOT NULL, amount bigint NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	r := &rawCommitter{b: b, conn: conn}
	for range 100 { // prepare the statement, warm the table
		r.commit()
	}
	return r
}

func (r *rawCommitter) commit() {
	r.n++
	if _, err := r.conn.Exec(context.Background(), "INSERT INTO raw (key, amount) VALUES ($1, $2)", "k"+strconv.Itoa(r.n), r.n); err != nil {
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
