package ledger

import (
	"context"
	"fmt"
	"sync"
)

// Batcher is the group-commit queue in front of a Store's single writer
// goroutine. Callers Submit operations; the writer takes whatever is queued
// (at most max, never waiting for more), hands the batch to commit, and
// only after commit has returned answers each caller with its own error.
// What an operation is, and how a batch is committed, is the store's
// business: ledger/sqlite applies each in a savepoint, ledger/postgres
// pipelines them in one round trip.
type Batcher[T any] struct {
	name        string // prefixes errors: "ledger/sqlite"
	max         int
	commit      func(batch []T) []error
	beforeBatch func()

	mu      sync.RWMutex // guards closed against sends on queue
	closed  bool
	queue   chan batchItem[T]
	stopped chan struct{}
}

// batchItem is one queued operation and where its outcome goes.
type batchItem[T any] struct {
	op   T
	done chan error // buffered 1
}

// NewBatcher starts the writer goroutine. commit runs on it, one batch at a
// time, and returns one error per operation, in order; batch is only valid
// during the call. beforeBatch, if not nil (for tests), runs when the writer
// has taken the first operation of a batch, before it takes the rest. name
// prefixes the errors Submit makes itself.
func NewBatcher[T any](name string, max int, commit func(batch []T) []error, beforeBatch func()) *Batcher[T] {
	b := &Batcher[T]{
		name:        name,
		max:         max,
		commit:      commit,
		beforeBatch: beforeBatch,
		queue:       make(chan batchItem[T], 4*max),
		stopped:     make(chan struct{}),
	}
	go b.run()
	return b
}

// Submit queues op for the writer and waits for the batch it lands in to
// be committed. It returns op's own outcome; ErrClosed after Close; the
// context's error if it ended before op was queued; and, if it ended while
// op was queued or being applied, an error saying that the outcome is
// unknown (retrying with the same idempotency key tells).
func (b *Batcher[T]) Submit(ctx context.Context, op T) error {
	it := batchItem[T]{op: op, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case b.queue <- it:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		select { // prefer the real outcome if it is there
		case err := <-it.done:
			return err
		default:
		}
		return fmt.Errorf("%s: outcome unknown, retry with the same key: %w", b.name, ctx.Err())
	}
}

// Close stops accepting operations and returns once every queued one has
// been committed (or failed) and answered. Calling it again returns
// ErrClosed.
func (b *Batcher[T]) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	close(b.queue)
	b.mu.Unlock()
	<-b.stopped
	return nil
}

// Queued reports how many operations wait for the writer to take them.
func (b *Batcher[T]) Queued() int { return len(b.queue) }

// run is the writer goroutine: take what is queued, commit it, answer,
// repeat; exit when the queue is closed and empty.
func (b *Batcher[T]) run() {
	defer close(b.stopped)
	items := make([]batchItem[T], 0, b.max)
	ops := make([]T, 0, b.max)
	var zero T
	for {
		first, ok := <-b.queue
		if !ok {
			return
		}
		if b.beforeBatch != nil {
			b.beforeBatch()
		}
		items = append(items[:0], first)
	fill:
		for len(items) < b.max {
			select {
			case it, ok := <-b.queue:
				if !ok {
					break fill
				}
				items = append(items, it)
			default:
				break fill
			}
		}
		ops = ops[:0]
		for _, it := range items {
			ops = append(ops, it.op)
		}
		errs := b.commit(ops)
		for i, it := range items {
			it.done <- errs[i]
			items[i], ops[i] = batchItem[T]{}, zero // drop references until reused
		}
	}
}
