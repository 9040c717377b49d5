package pty

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.bug.st/serial"
)

// readFull reads n bytes from r, giving up when ctx ends.
func readFull(ctx context.Context, t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	got := make([]byte, 0, n)
	buf := make([]byte, 512)
	for len(got) < n {
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d bytes: %v", len(got), n, ctx.Err())
		}
		m, err := r.Read(buf)
		got = append(got, buf[:m]...)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	return got
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// Every byte value must cross in both directions unchanged, including
// CR, LF, ^C, ^S/^Q, ^D, DEL, 0xFF: no echo, no line discipline.
func TestAllBytesBothWays(t *testing.T) {
	link := filepath.Join(t.TempDir(), "T01", "card")
	p, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if dst, err := os.Readlink(link); err != nil || dst != p.SlaveName() {
		t.Fatalf("symlink: %q %v, want %q", dst, err, p.SlaveName())
	}

	ser, err := serial.Open(p.Path(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer ser.Close()
	if err := ser.SetReadTimeout(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	want := bytes.Repeat(allBytes(), 4)
	if _, err := p.Write(want); err != nil {
		t.Fatal(err)
	}
	if got := readFull(ctx, t, ser, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("master→slave changed bytes:\n got %x\nwant %x", got, want)
	}

	if _, err := ser.Write(want); err != nil {
		t.Fatal(err)
	}
	p.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readFull(ctx, t, p, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("slave→master changed bytes:\n got %x\nwant %x", got, want)
	}
}

// The driver may close and reopen its port; the simulator's side must keep
// working (it holds the slave open, else the master reads EIO).
func TestDriverReopen(t *testing.T) {
	p, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Path() != p.SlaveName() {
		t.Fatalf("Path %q without link, want %q", p.Path(), p.SlaveName())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := range 3 {
		ser, err := serial.Open(p.Path(), &serial.Mode{BaudRate: 9600})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		// Modem lines are refused on a pty (FACTS.md); it must not matter.
		_ = ser.SetDTR(true)
		msg := []byte{'h', 'i', byte(i)}
		if _, err := ser.Write(msg); err != nil {
			t.Fatal(err)
		}
		if got := readFull(ctx, t, p, 3); !bytes.Equal(got, msg) {
			t.Fatalf("round %d: got %q", i, got)
		}
		if err := ser.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCloseRemovesLinkAndUnblocksRead(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	p, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 1))
		errc <- err
	}()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Read after Close returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("symlink still there after Close: %v", err)
	}
}

// A new pty at the same link replaces a stale symlink (a crashed hwsim).
func TestReplaceStaleLink(t *testing.T) {
	link := filepath.Join(t.TempDir(), "card")
	if err := os.Symlink("/dev/pts/nonexistent", link); err != nil {
		t.Fatal(err)
	}
	p, err := Open(link)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if dst, _ := os.Readlink(link); dst != p.SlaveName() {
		t.Fatalf("link points to %q, want %q", dst, p.SlaveName())
	}
}
