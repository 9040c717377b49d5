package serialscan

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"campuspay/hwsim/twin"
	"campuspay/hwsim/twin/scannertwin"
	"campuspay/terminal/device"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openTwin(t *testing.T, cfg scannertwin.Config) *scannertwin.Twin {
	t.Helper()
	cfg.Link = filepath.Join(t.TempDir(), "T01", "scanner")
	tw, err := scannertwin.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tw.Close() })
	return tw
}

func wantScan(t *testing.T, ctx context.Context, s *Scanner, text string) {
	t.Helper()
	sc, err := s.Scan(ctx)
	if err != nil {
		t.Fatalf("Scan: %v (want %q)", err, text)
	}
	if sc.Text != text || sc.Source != Source || sc.At.IsZero() {
		t.Fatalf("Scan = %+v, want text %q", sc, text)
	}
}

// The real driver, opened on the twin's symlink through go.bug.st/serial.
func TestScannerOnTwin(t *testing.T) {
	ctx := ctxT(t)
	tw := openTwin(t, scannertwin.Config{})
	s, err := Open(tw.Path(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Halt()
	code := "CW1:6BFOXN*TS0BTTVZ35QWLT9AMRNJ5XKG"
	for _, text := range []string{code, "134567890123456789", "付款码-不可用"} {
		if err := tw.Show(text); err != nil {
			t.Fatal(err)
		}
		wantScan(t, ctx, s, text)
	}
}

// Control-byte garbage and frames split across many writes.
func TestScannerNoisyLine(t *testing.T) {
	ctx := ctxT(t)
	tw := openTwin(t, scannertwin.Config{
		Terminator: "\r",
		Noise:      twin.Noise{Garbage: 8, GarbageBytes: []byte{0x00, 0x02, 0x03, 0x07, 0x11, 0x13}, Split: 3},
	})
	s, err := Open(tw.Path(), Config{MaxLine: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Halt()
	// An over-long line and an invalid UTF-8 line are skipped.
	if err := tw.SendRaw([]byte(strings.Repeat("X", 80) + "\r\n\xff\xfe\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"CODE-ONE", "CODE-TWO", "CODE-THREE"} {
		if err := tw.Show(text); err != nil {
			t.Fatal(err)
		}
		wantScan(t, ctx, s, text)
	}
}

func TestScannerDedupOnTwin(t *testing.T) {
	ctx := ctxT(t)
	tw := openTwin(t, scannertwin.Config{})
	var mu sync.Mutex
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := Open(tw.Path(), Config{Window: 2 * time.Second, MaxAge: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Halt()
	// A scanner in continuous mode sends the same code again and again;
	// the clock does not move, so only the first is reported. "B" proves
	// the repeats were read and dropped, not still in flight.
	for _, text := range []string{"A", "A", "A", "B"} {
		if err := tw.Show(text); err != nil {
			t.Fatal(err)
		}
	}
	wantScan(t, ctx, s, "A")
	wantScan(t, ctx, s, "B")
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	tw.Show("A")
	wantScan(t, ctx, s, "A")
}

// A code read while nobody waited is dropped once older than MaxAge.
func TestScannerDropsStale(t *testing.T) {
	ctx := ctxT(t)
	pr, pw := io.Pipe()
	var mu sync.Mutex
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := New(pr, "pipe", Config{MaxAge: 3 * time.Second, Now: clock})
	defer s.Halt()
	pw.Write([]byte("OLD\n")) // returns once the driver has read it
	pw.Write([]byte("\n"))    // and this once OLD was parsed and queued
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	go pw.Write([]byte("NEW\n"))
	wantScan(t, ctx, s, "NEW")
}

func TestScannerHaltUnblocksScan(t *testing.T) {
	ctx := ctxT(t)
	tw := openTwin(t, scannertwin.Config{})
	s, err := Open(tw.Path(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := s.Scan(ctx); errc <- err }()
	if err := s.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Scan after Halt: %v, want ErrHalted", err)
	}
	if _, err := s.Scan(ctx); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("second Scan: %v", err)
	}
	if err := s.Halt(); err != nil {
		t.Fatalf("second Halt: %v", err)
	}

	// Reopen on the same symlink: the twin is still there.
	s2, err := Open(tw.Path(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Halt()
	tw.Show("AFTER-REOPEN")
	wantScan(t, ctx, s2, "AFTER-REOPEN")
}

func TestScannerContextEnds(t *testing.T) {
	tw := openTwin(t, scannertwin.Config{})
	s, err := Open(tw.Path(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Halt()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Scan(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Scan: %v, want context.Canceled", err)
	}
}

// When the line dies (USB unplugged, simulator gone), Scan reports it.
func TestScannerLineFailure(t *testing.T) {
	ctx := ctxT(t)
	pr, pw := io.Pipe()
	s := New(pr, "pipe", Config{})
	defer s.Halt()
	pw.CloseWithError(errors.New("unplugged"))
	if _, err := s.Scan(ctx); err == nil || errors.Is(err, device.ErrHalted) {
		t.Fatalf("Scan on dead line: %v", err)
	}
}

func TestOpenMissingPort(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "nope"), Config{}); err == nil {
		t.Fatal("Open of a missing port succeeded")
	}
}
