// Package twin holds what every device twin shares: the wire that writes a
// device's frames to its pseudo-terminal, optionally with line noise
// (garbage bytes between frames) and split into several writes, so the real
// drivers are exercised on the imperfect lines they meet in the field.
// The per-family twins live in sub-packages (cardtwin, scannertwin,
// keypadtwin).
package twin

import (
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// Noise describes line faults injected by a Wire. The zero value is a clean line.
type Noise struct {
	// Garbage, when > 0, writes up to this many random bytes before each frame.
	Garbage int
	// GarbageBytes, when set, draws the garbage from these bytes only
	// (e.g. to avoid a protocol's start byte); default: any byte value.
	GarbageBytes []byte
	// Split, when > 0, writes each frame in chunks of 1..Split bytes.
	Split int
	// SplitDelay is waited between chunks, so the driver's reads see the
	// pieces separately (a pty otherwise may coalesce them).
	SplitDelay time.Duration
	// Rand is the randomness source; default: a fixed seed, so runs repeat.
	Rand *rand.Rand
}

// Wire writes frames to a device line (the master side of a pty).
type Wire struct {
	mu    sync.Mutex // one frame at a time: frames never interleave
	w     io.Writer
	noise Noise
	rnd   *rand.Rand
}

// NewWire returns a Wire writing to w with the given noise.
func NewWire(w io.Writer, noise Noise) *Wire {
	r := noise.Rand
	if r == nil {
		r = rand.New(rand.NewPCG(1, 2))
	}
	return &Wire{w: w, noise: noise, rnd: r}
}

// Send writes one frame, with garbage before it and split as configured.
func (w *Wire) Send(frame []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.noise.Garbage; n > 0 {
		g := make([]byte, w.rnd.IntN(n)+1)
		for i := range g {
			if len(w.noise.GarbageBytes) > 0 {
				g[i] = w.noise.GarbageBytes[w.rnd.IntN(len(w.noise.GarbageBytes))]
			} else {
				g[i] = byte(w.rnd.UintN(256))
			}
		}
		if err := w.write(g); err != nil {
			return err
		}
	}
	if w.noise.Split <= 0 {
		return w.write(frame)
	}
	for len(frame) > 0 {
		n := min(w.rnd.IntN(w.noise.Split)+1, len(frame))
		if err := w.write(frame[:n]); err != nil {
			return err
		}
		frame = frame[n:]
		if len(frame) > 0 && w.noise.SplitDelay > 0 {
			time.Sleep(w.noise.SplitDelay)
		}
	}
	return nil
}

// SendRaw writes bytes as they are, with no noise (e.g. a truncated frame
// a test injects on purpose).
func (w *Wire) SendRaw(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.write(b)
}

func (w *Wire) write(b []byte) error {
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("twin: write: %w", err)
	}
	return nil
}
