package ledgertest

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"campuspay/server/ledger"
)

// Gate holds a store's group-commit writer so that a test can line up
// operations in one batch. Install Hook as the store's before-batch hook
// (each store has a test-only option for it, run when the writer has taken
// the first operation of a batch); Block then makes the writer take one
// operation (an ExpireHolds) and wait until Release before it takes the
// rest of its batch. Operations submitted meanwhile queue up and land in
// that batch. A Gate blocks once.
type Gate struct {
	entered, gate chan struct{}
	mu            sync.Mutex
	armed         bool
}

// NewGate returns an open gate.
func NewGate() *Gate {
	return &Gate{entered: make(chan struct{}), gate: make(chan struct{})}
}

// Hook is the store's before-batch hook: it waits on the gate once Block
// has armed it.
func (g *Gate) Hook() {
	g.mu.Lock()
	a := g.armed
	g.armed = false
	g.mu.Unlock()
	if a {
		close(g.entered)
		<-g.gate
	}
}

// Block arms the gate, sends s's writer an ExpireHolds and returns once the
// writer waits on the gate.
func (g *Gate) Block(t testing.TB, s ledger.Store) {
	t.Helper()
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
	go s.ExpireHolds(context.Background(), T0)
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("writer did not start a batch")
	}
}

// Release lets the writer go on.
func (g *Gate) Release() { close(g.gate) }

// WaitQueued spins until queued (a store's queue length: there is no event
// to wait on) reports at least n operations.
func WaitQueued(t testing.TB, queued func() int, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d operations queued, want %d", queued(), n)
		}
		runtime.Gosched()
	}
}
