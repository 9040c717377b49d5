package postgres_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"campuspay/server/ledger/postgres/pgtest"
	"campuspay/server/wallet"
	"campuspay/server/wallet/fieldcrypt"
	"campuspay/server/wallet/postgres"
)

// BenchmarkPayIntents measures the money path's first write — a payment's
// intent and its code's single-use mark (PutIntent) — per second
// with 1 and 64 concurrent payers, beside the raw rate of single-row
// INSERT transactions on one connection to the same cluster, sampled in
// the same run: what one transaction per payment could not pass. The
// cluster runs with fsync on, so a commit is a WAL flush; x-vs-raw-commit
// above 1 is what group commit buys.
func BenchmarkPayIntents(b *testing.B) {
	c := pgtest.New(b, pgtest.Options{Fsync: true})
	for _, payers := range []int{1, 64} {
		b.Run("payers="+strconv.Itoa(payers), func(b *testing.B) {
			dsn := c.NewDatabase(b)
			key, _ := fieldcrypt.NewKey()
			s, err := postgres.Open(ctx, dsn, postgres.Options{FieldKey: key})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			raw := rawCommitRate(b, dsn, 200)
			now := time.Unix(1_800_000_000, 0)
			before := s.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range payers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						k := strconv.FormatInt(i, 10)
						r := &wallet.Record{Key: "T:pos-1:" + k, Kind: wallet.KindPayment, UserID: 1, Terminal: "pos-1", Amount: 100,
							Channel: "balance", Status: wallet.StatusProcessing, Created: now, Updated: now}
						if _, err := s.PutIntent(ctx, r, &wallet.CodeUse{ID: "code-" + k, Expires: now.Add(time.Minute), Now: now}, nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			rate := float64(b.N) / b.Elapsed().Seconds()
			raw = (raw + rawCommitRate(b, dsn, 200)) / 2 // the flush rate drifts: before and after
			after := s.Stats()
			b.ReportMetric(rate, "payments/s")
			b.ReportMetric(raw, "raw-commits/s")
			b.ReportMetric(rate/raw, "x-vs-raw-commit")
			b.ReportMetric(float64(after.Ops-before.Ops)/float64(max(after.Batches-before.Batches, 1)), "ops/batch")
		})
	}
}

// rawCommitRate times n single-row INSERT transactions on one connection.
func rawCommitRate(b *testing.B, dsn string, n int) float64 {
	b.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS raw (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v bigint NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := range n {
		if _, err := conn.Exec(ctx, "INSERT INTO raw (v) VALUES ($1)", i); err != nil {
			b.Fatal(err)
		}
	}
	return float64(n) / time.Since(start).Seconds()
}
