package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"campuspay/server/ledger/postgres/pgtest"
	"campuspay/server/wallet"
	"campuspay/server/wallet/fieldcrypt"
	"campuspay/server/wallet/postgres"
)

// Payments queued while the writer is busy are committed together, in one
// transaction; each still gets its own outcome (one owner per code).
func TestGroupCommit(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	key, _ := fieldcrypt.NewKey()
	gate := make(chan struct{})
	var once sync.Once
	hold := func() { once.Do(func() { <-gate }) } // holds only the first batch
	s, err := postgres.Open(ctx, dsn, postgres.WithBeforeBatch(postgres.Options{FieldKey: key}, hold))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1_800_000_000, 0)
	const n = 16
	owners := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &wallet.Record{Key: fmt.Sprint("T:pos-1:", i), Kind: wallet.KindPayment, Status: wallet.StatusProcessing, Created: now, Updated: now}
			code := fmt.Sprint("code-", i%4) // four codes, four payments each
			var err error
			if owners[i], err = s.PutIntent(ctx, r, &wallet.CodeUse{ID: code, Expires: now.Add(time.Minute), Now: now}, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	// The first write is taken and held; wait until the rest (and the
	// sweep of expired codes, queued by the first payment) are queued.
	for s.Queued() < n-1 {
		<-time.After(time.Millisecond) // polling the queue's length, not timing anything
	}
	close(gate)
	wg.Wait()
	byCode := map[string]string{}
	for i, o := range owners {
		code := fmt.Sprint("code-", i%4)
		if prev, ok := byCode[code]; ok && prev != o {
			t.Fatalf("%s owned by %s and %s", code, prev, o)
		}
		byCode[code] = o
	}
	st := s.Stats()
	if st.MaxBatch < n-1 {
		t.Fatalf("stats %+v: the queued payments were not committed together", st)
	}
}
