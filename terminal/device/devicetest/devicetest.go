// Package devicetest holds in-memory fakes of every role interface in
// package device, for other packages' unit tests. Events are pushed by the
// test (Push, Tap, Type), outputs are recorded (Screens, Opens), and every
// fake honours Halt: blocking calls return device.ErrHalted afterwards.
// Nothing here sleeps: waiting is done on channels and contexts.
package devicetest

import (
	"context"
	"sync"
	"time"

	"campuspay/terminal/device"
)

// queue is an unbounded FIFO of events with halt semantics, shared by the
// input fakes. Unbounded so that a test can push before anyone reads.
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	ready  chan struct{} // closed and replaced when items are added
	halted chan struct{}
	once   sync.Once
}

func newQueue[T any]() *queue[T] {
	return &queue[T]{ready: make(chan struct{}), halted: make(chan struct{})}
}

func (q *queue[T]) push(v ...T) {
	q.mu.Lock()
	q.items = append(q.items, v...)
	close(q.ready)
	q.ready = make(chan struct{})
	q.mu.Unlock()
}

func (q *queue[T]) pop(ctx context.Context) (T, error) {
	var zero T
	for {
		select {
		case <-q.halted:
			return zero, device.ErrHalted
		default:
		}
		q.mu.Lock()
		if len(q.items) > 0 {
			v := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, nil
		}
		ready := q.ready
		q.mu.Unlock()
		select {
		case <-q.halted:
			return zero, device.ErrHalted
		case <-ctx.Done():
			return zero, ctx.Err()
		case <-ready:
		}
	}
}

func (q *queue[T]) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func (q *queue[T]) halt() { q.once.Do(func() { close(q.halted) }) }

func (q *queue[T]) isHalted() bool {
	select {
	case <-q.halted:
		return true
	default:
		return false
	}
}

// clock returns now() or time.Now when now is nil.
func clock(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}

// Scanner is a fake device.Scanner. The zero value is not usable; use NewScanner.
type Scanner struct {
	Source string           // copied into Scan.Source when a pushed scan has none
	Now    func() time.Time // stamps Scan.At when a pushed scan has none; nil = time.Now
	q      *queue[device.Scan]
}

// NewScanner returns a fake scanner with Source "fake".
func NewScanner() *Scanner { return &Scanner{Source: "fake", q: newQueue[device.Scan]()} }

// Push queues codes to be returned by Scan, in order.
func (s *Scanner) Push(texts ...string) {
	for _, t := range texts {
		s.PushScan(device.Scan{Text: t})
	}
}

// PushScan queues a full Scan; empty Source and zero At are filled in.
func (s *Scanner) PushScan(sc device.Scan) {
	if sc.Source == "" {
		sc.Source = s.Source
	}
	if sc.At.IsZero() {
		sc.At = clock(s.Now)
	}
	s.q.push(sc)
}

// Scan implements device.Scanner.
func (s *Scanner) Scan(ctx context.Context) (device.Scan, error) { return s.q.pop(ctx) }

// Pending reports how many pushed scans have not been read yet.
func (s *Scanner) Pending() int { return s.q.pending() }

// Halt implements device.Scanner.
func (s *Scanner) Halt() error { s.q.halt(); return nil }

// Halted reports whether Halt was called.
func (s *Scanner) Halted() bool { return s.q.isHalted() }

// CardReader is a fake device.CardReader.
type CardReader struct {
	Source string
	Now    func() time.Time
	q      *queue[device.Tap]
}

// NewCardReader returns a fake card reader with Source "fake".
func NewCardReader() *CardReader {
	return &CardReader{Source: "fake", q: newQueue[device.Tap]()}
}

// Tap queues a card presentation with the given UID.
func (c *CardReader) Tap(uid string) { c.PushTap(device.Tap{UID: uid}) }

// PushTap queues a full Tap; empty Source and zero At are filled in.
func (c *CardReader) PushTap(t device.Tap) {
	if t.Source == "" {
		t.Source = c.Source
	}
	if t.At.IsZero() {
		t.At = clock(c.Now)
	}
	c.q.push(t)
}

// Read implements device.CardReader.
func (c *CardReader) Read(ctx context.Context) (device.Tap, error) { return c.q.pop(ctx) }

// Pending reports how many taps have not been read yet.
func (c *CardReader) Pending() int { return c.q.pending() }

// Halt implements device.CardReader.
func (c *CardReader) Halt() error { c.q.halt(); return nil }

// Halted reports whether Halt was called.
func (c *CardReader) Halted() bool { return c.q.isHalted() }

// FaceReader is a fake device.FaceReader (the role is reserved; no driver).
type FaceReader struct {
	Source string
	Now    func() time.Time
	q      *queue[device.Face]
}

// NewFaceReader returns a fake face reader with Source "fake".
func NewFaceReader() *FaceReader { return &FaceReader{Source: "fake", q: newQueue[device.Face]()} }

// Show queues a face matched as the given student number.
func (f *FaceReader) Show(account string) {
	f.q.push(device.Face{Account: account, Score: 1, Source: f.Source, At: clock(f.Now)})
}

// Match implements device.FaceReader.
func (f *FaceReader) Match(ctx context.Context) (device.Face, error) { return f.q.pop(ctx) }

// Halt implements device.FaceReader.
func (f *FaceReader) Halt() error { f.q.halt(); return nil }

// Keypad is a fake device.Keypad.
type Keypad struct{ q *queue[device.Key] }

// NewKeypad returns a fake keypad.
func NewKeypad() *Keypad { return &Keypad{q: newQueue[device.Key]()} }

// Type queues one key per rune of s, with the same mapping as a serial
// keypad: '\n' and '\r' are Enter, ESC and 'C' Cancel, 0x08 and 0x7F
// Backspace, 'S' Stop, 'F' Func. Other runes are queued as they are.
func (k *Keypad) Type(s string) {
	keys := make([]device.Key, 0, len(s))
	for _, r := range s {
		switch r {
		case '\r', '\n':
			keys = append(keys, device.KeyEnter)
		case 'C':
			keys = append(keys, device.KeyCancel)
		case 0x7f:
			keys = append(keys, device.KeyBackspace)
		default:
			keys = append(keys, device.Key(r))
		}
	}
	k.q.push(keys...)
}

// Press queues keys exactly as given.
func (k *Keypad) Press(keys ...device.Key) { k.q.push(keys...) }

// Key implements device.Keypad.
func (k *Keypad) Key(ctx context.Context) (device.Key, error) { return k.q.pop(ctx) }

// Pending reports how many keys have not been read yet.
func (k *Keypad) Pending() int { return k.q.pending() }

// Halt implements device.Keypad.
func (k *Keypad) Halt() error { k.q.halt(); return nil }

// Halted reports whether Halt was called.
func (k *Keypad) Halted() bool { return k.q.isHalted() }
