package ledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestBatcherAnswersEachOpWithItsOwnError queues operations while the
// writer is held, so that they land in one batch, and checks that each
// caller gets its own outcome, in queue order.
func TestBatcherAnswersEachOpWithItsOwnError(t *testing.T) {
	entered, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var batches [][]int
	b := NewBatcher("test", 8, func(batch []int) []error {
		mu.Lock()
		batches = append(batches, append([]int(nil), batch...))
		mu.Unlock()
		errs := make([]error, len(batch))
		for i, op := range batch {
			if op%2 == 1 {
				errs[i] = fmt.Errorf("odd %d", op)
			}
		}
		return errs
	}, func() {
		once.Do(func() { close(entered); <-gate })
	})
	ctx := context.Background()
	first := make(chan error, 1)
	go func() { first <- b.Submit(ctx, 0) }()
	waitChan(t, entered)
	results := make([]chan error, 5)
	for i := range results {
		results[i] = make(chan error, 1)
		go func() { results[i] <- b.Submit(ctx, i+1) }()
		waitFor(t, func() bool { return b.Queued() == i+1 })
	}
	close(gate)
	if err := <-first; err != nil {
		t.Fatalf("op 0: %v", err)
	}
	for i, c := range results {
		err := <-c
		if odd := (i+1)%2 == 1; odd != (err != nil) {
			t.Errorf("op %d: err %v", i+1, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	want := "[[0 1 2 3 4 5]]" // all taken after the first
	if got := fmt.Sprint(batches); got != want {
		t.Errorf("batches %s, want %s", got, want)
	}
}

// TestBatcherCloseDrains checks that Close answers every queued operation
// before it returns, and refuses work afterwards.
func TestBatcherCloseDrains(t *testing.T) {
	gate := make(chan struct{})
	var once sync.Once
	var committed sync.WaitGroup
	b := NewBatcher("test", 2, func(batch []int) []error {
		committed.Add(-len(batch))
		return make([]error, len(batch))
	}, func() { once.Do(func() { <-gate }) })
	const n = 7
	committed.Add(n)
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- b.Submit(context.Background(), i) }()
	}
	waitFor(t, func() bool { return b.Queued() == n-1 })
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	committed.Wait()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Submit(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v, want ErrClosed", err)
	}
	if err := b.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second close: %v, want ErrClosed", err)
	}
}

// TestBatcherContextEnds checks the two ways a caller can give up: before
// its operation is queued (the context's error), and while it waits in
// the queue (outcome unknown, wrapping the context's error).
func TestBatcherContextEnds(t *testing.T) {
	entered, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	b := NewBatcher("ledger/test", 1, func(batch []int) []error {
		return make([]error, len(batch))
	}, func() { once.Do(func() { close(entered); <-gate }) })
	defer b.Close()
	defer close(gate)
	go b.Submit(context.Background(), 0)
	waitChan(t, entered)

	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() { waiting <- b.Submit(ctx, 1) }()
	waitFor(t, func() bool { return b.Queued() == 1 })
	cancel()
	err := <-waiting
	if !errors.Is(err, context.Canceled) || err.Error() != "ledger/test: outcome unknown, retry with the same key: context canceled" {
		t.Fatalf("cancelled while queued: %v", err)
	}
	// A dead context is only sure to win over a free place in the queue
	// (4×max) when there is none: fill it first.
	for i := b.Queued(); i < 4; i++ {
		go b.Submit(context.Background(), 2)
	}
	waitFor(t, func() bool { return b.Queued() == 4 })
	if err := b.Submit(ctx, 3); err != context.Canceled {
		t.Fatalf("cancelled before queued: %v", err)
	}
}

func waitChan(t *testing.T, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
	}
}

// waitFor spins on cond: the queue length has no event to wait on.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		runtime.Gosched()
	}
}
