package ledgertest

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"campuspay/server/ledger"
)

// SeedEnv names the environment variable that replays a logged seed.
const SeedEnv = "LEDGERTEST_SEED"

// seeded returns a random source whose seed is logged, so that a failure
// can be replayed with LEDGERTEST_SEED.
func seeded(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(SeedEnv); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		seed = n
	}
	t.Logf("random seed %d (replay with %s=%d)", seed, SeedEnv, seed)
	return rand.New(rand.NewPCG(seed, 0x1edc))
}

// watch reads the account's balance over and over until stop is called,
// and fails t if it ever sees it negative or over-held.
func watch(t *testing.T, s ledger.Store, a ledger.AccountID) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		reads := 0
		for {
			select {
			case <-done:
				t.Logf("watched %s %d times", a, reads)
				return
			default:
			}
			b, err := s.Balance(context.Background(), a)
			reads++
			if err != nil {
				t.Errorf("watch %s: %v", a, err)
				return
			}
			if b.Posted < 0 || b.Held < 0 || b.Available < 0 {
				t.Errorf("watch %s: saw %+v", a, b)
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// testConcurrentSameKey: many callers retrying one payment at once move
// the money exactly once and all learn the same ledger ID.
func testConcurrentSameKey(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	fund(t, s, "wallet:1", 1000)
	const n = 50
	results := make([]ledger.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = s.Post(ctx, pay("same", "wallet:1", "merchant:M", 700)) })
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if !results[i].Duplicate {
			fresh++
		}
		if results[i].ID != results[0].ID {
			t.Fatalf("caller %d got ID %d, caller 0 got %d", i, results[i].ID, results[0].ID)
		}
	}
	if fresh != 1 {
		t.Fatalf("%d callers saw a fresh application, want 1", fresh)
	}
	wantBalance(t, s, "wallet:1", 300, 0)
	wantBalance(t, s, "merchant:M", 700, 0)
}

// testConcurrentPayments: 1,000 payments race for one wallet that can pay
// for about half of them.
func testConcurrentPayments(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	rng := seeded(t)
	const w, m = ledger.AccountID("wallet:1"), ledger.AccountID("merchant:M")
	const funds, n = 50_000, 1000
	fund(t, s, w, funds)
	amounts := make([]int64, n)
	for i := range amounts {
		amounts[i] = 1 + rng.Int64N(199)
	}
	errs := make([]error, n)
	stop := watch(t, s, w)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = s.Post(ctx, pay(keyf("pay", i), w, m, amounts[i])) })
	}
	wg.Wait()
	stop()

	var paid, ok int64
	minRefused := int64(1 << 62)
	for i, err := range errs {
		switch {
		case err == nil:
			paid += amounts[i]
			ok++
		case errors.Is(err, ledger.ErrInsufficient):
			minRefused = min(minRefused, amounts[i])
		default:
			t.Fatalf("payment %d: %v", i, err)
		}
	}
	t.Logf("%d of %d payments went through, %d cents", ok, n, paid)
	if ok == 0 || ok == n {
		t.Fatalf("%d of %d payments went through: the test should exhaust the wallet", ok, n)
	}
	wantBalance(t, s, w, funds-paid, 0)
	wantBalance(t, s, m, paid, 0)
	wantBalance(t, s, "bank:CCB", -funds, 0)
	// The balance only falls, so every refusal saw less than it asked for,
	// and what is left is less than the smallest refused payment.
	if funds-paid >= minRefused {
		t.Fatalf("%d left but a payment of %d was refused", funds-paid, minRefused)
	}
	// Every success is in the ledger, once.
	count := 0
	for before := int64(0); ; {
		es, err := s.Transfers(ctx, m, before, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		count += len(es)
		before = es[len(es)-1].Result.ID
	}
	if int64(count) != ok {
		t.Fatalf("merchant lists %d transfers, %d payments succeeded", count, ok)
	}
}

// testConcurrentHolds mixes showers (hold, then capture or void) with
// payments on one wallet.
func testConcurrentHolds(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	rng := seeded(t)
	const w = ledger.AccountID("wallet:1")
	const funds = 100_000
	const showers, payments = 200, 400
	fund(t, s, w, funds)
	type plan struct {
		amount, capture int64 // capture < 0: void
	}
	plans := make([]plan, showers)
	for i := range plans {
		p := plan{amount: 100 + rng.Int64N(1400)}
		p.capture = rng.Int64N(p.amount + 1)
		if rng.IntN(4) == 0 {
			p.capture = -1
		}
		plans[i] = p
	}
	payAmounts := make([]int64, payments)
	for i := range payAmounts {
		payAmounts[i] = 1 + rng.Int64N(300)
	}
	captured := make([]int64, showers)
	paid := make([]int64, payments)
	stop := watch(t, s, w)
	var wg sync.WaitGroup
	for i, p := range plans {
		wg.Go(func() {
			key := keyf("shower", i)
			h, err := s.PlaceHold(ctx, hold(key, w, p.amount))
			if errors.Is(err, ledger.ErrInsufficient) {
				return
			}
			if err != nil || h.State != ledger.HoldActive {
				t.Errorf("hold %d: %+v %v", i, h, err)
				return
			}
			if p.capture < 0 {
				if _, err := s.VoidHold(ctx, key, T0); err != nil {
					t.Errorf("void %d: %v", i, err)
				}
				return
			}
			if _, _, err := s.CaptureHold(ctx, key, p.capture, "merchant:shower", "", T0); err != nil {
				t.Errorf("capture %d: %v", i, err)
				return
			}
			captured[i] = p.capture
		})
	}
	for i, a := range payAmounts {
		wg.Go(func() {
			_, err := s.Post(ctx, pay(keyf("pay", i), w, "merchant:M", a))
			switch {
			case err == nil:
				paid[i] = a
			case !errors.Is(err, ledger.ErrInsufficient):
				t.Errorf("payment %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	stop()
	var sumCaptured, sumPaid int64
	for _, c := range captured {
		sumCaptured += c
	}
	for _, p := range paid {
		sumPaid += p
	}
	t.Logf("captured %d, paid %d of %d", sumCaptured, sumPaid, funds)
	wantBalance(t, s, w, funds-sumCaptured-sumPaid, 0)
	wantBalance(t, s, "merchant:shower", sumCaptured, 0)
	wantBalance(t, s, "merchant:M", sumPaid, 0)
}
