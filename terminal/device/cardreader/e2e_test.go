package cardreader

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"campuspay/hwsim/twin"
	"campuspay/hwsim/twin/cardtwin"
	"campuspay/terminal/device"
)

// End-to-end tests: each real driver, opened unchanged through
// go.bug.st/serial on its twin's pty symlink.

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func link(t *testing.T) string { return filepath.Join(t.TempDir(), "T01", "card") }

func wantTap(t *testing.T, ctx context.Context, r device.CardReader, uid, source string) {
	t.Helper()
	tap, err := r.Read(ctx)
	if err != nil {
		t.Fatalf("Read: %v (want %s)", err, uid)
	}
	if tap.UID != uid || tap.Source != source || tap.At.IsZero() {
		t.Fatalf("Read = %+v, want UID %s from %s", tap, uid, source)
	}
}

func checkHalt(t *testing.T, ctx context.Context, r device.CardReader) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := r.Read(ctx); errc <- err }()
	if err := r.Halt(); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	if err := <-errc; !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Read across Halt: %v, want ErrHalted", err)
	}
	if _, err := r.Read(ctx); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Read after Halt: %v", err)
	}
	if err := r.Halt(); err != nil {
		t.Fatalf("second Halt: %v", err)
	}
}

func TestASCIIOnTwin(t *testing.T) {
	ctx := ctxT(t)
	tw, err := cardtwin.OpenASCII(cardtwin.Config{Link: link(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	r, err := OpenASCII(tw.Path(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	tw.Tap("04a2b3c4d5e6f7")
	wantTap(t, ctx, r, "04A2B3C4D5E6F7", SourceASCII)
	tw.Tap("0012345678")
	wantTap(t, ctx, r, "0012345678", SourceASCII)
	checkHalt(t, ctx, r)

	// Close and reopen on the same symlink.
	r2, err := OpenASCII(tw.Path(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Halt()
	tw.Tap("DEADBEEF")
	wantTap(t, ctx, r2, "DEADBEEF", SourceASCII)
}

func TestASCIINoisyLine(t *testing.T) {
	ctx := ctxT(t)
	tw, err := cardtwin.OpenASCII(cardtwin.Config{Link: link(t), Noise: twin.Noise{
		// Noise that is not a UID character; split writes.
		Garbage: 6, GarbageBytes: []byte{0x00, 0x02, 0x03, 0x7f, 0x1b}, Split: 2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	r, err := OpenASCII(tw.Path(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Halt()
	tw.SendRaw([]byte("\xff\xfegarbage line\r\n"))
	for _, uid := range []string{"04A1B2C3", "11223344", "0012345678"} {
		tw.Tap(uid)
		wantTap(t, ctx, r, uid, SourceASCII)
	}
}

func TestRDM6300OnTwin(t *testing.T) {
	ctx := ctxT(t)
	// All bytes but STX as garbage: noise between frames must be skipped
	// (a stray STX would only cost the frame it interrupts).
	var noSTX []byte
	for b := range 256 {
		if b != 0x02 {
			noSTX = append(noSTX, byte(b))
		}
	}
	tw, err := cardtwin.OpenRDM6300(cardtwin.Config{Link: link(t), Repeats: 4, RepeatEvery: time.Millisecond,
		Noise: twin.Noise{Garbage: 10, GarbageBytes: noSTX, Split: 5}})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	r, err := OpenRDM6300(tw.Path(), Config{Gap: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// A truncated frame and a bad checksum first.
	tw.SendRaw([]byte{0x02, '6', '2', 'E'})
	tw.SendRaw([]byte("\x020A00B1C2D3AB\x03"))
	// The module repeats each frame 4 times: reported once per tag.
	if err := tw.Tap("62E3086CED"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Tap("0a00b1c2d3"); err != nil {
		t.Fatal(err)
	}
	wantTap(t, ctx, r, "62E3086CED", SourceRDM6300)
	wantTap(t, ctx, r, "0A00B1C2D3", SourceRDM6300)
	checkHalt(t, ctx, r)

	r2, err := OpenRDM6300(tw.Path(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Halt()
	tw.Tap("62E3086CED")
	wantTap(t, ctx, r2, "62E3086CED", SourceRDM6300)
}

// fastPN532 polls quickly; the twin answers at pty speed.
var fastPN532 = Config{PollInterval: 5 * time.Millisecond, Timeout: 300 * time.Millisecond}

func TestPN532OnTwin(t *testing.T) {
	ctx := ctxT(t)
	tw, err := cardtwin.OpenPN532(cardtwin.Config{Link: link(t), TapPolls: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	r, err := OpenPN532(tw.Path(), fastPN532)
	if err != nil {
		t.Fatal(err)
	}
	// "No target" answers until a card comes.
	if err := tw.WaitPolls(ctx, 3); err != nil {
		t.Fatal(err)
	}
	cmds := tw.Commands()
	if cmds[0x14] == 0 || cmds[0x32] == 0 {
		t.Fatalf("driver did not configure the chip: %v", cmds)
	}
	tw.Tap("04A2B3C4D5E6F7")
	wantTap(t, ctx, r, "04A2B3C4D5E6F7", SourcePN532)
	tw.Tap("DEADBEEF")
	wantTap(t, ctx, r, "DEADBEEF", SourcePN532)
	tw.Tap("0102030405060708090A")
	wantTap(t, ctx, r, "0102030405060708090A", SourcePN532)
	checkHalt(t, ctx, r)

	r2, err := OpenPN532(tw.Path(), fastPN532)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Halt()
	tw.Tap("DEADBEEF")
	wantTap(t, ctx, r2, "DEADBEEF", SourcePN532)
}

// A card held on the reader is reported once; taken away and presented
// again, it is reported again.
func TestPN532OncePerPresentation(t *testing.T) {
	ctx := ctxT(t)
	tw, err := cardtwin.OpenPN532(cardtwin.Config{Link: link(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	r, err := OpenPN532(tw.Path(), fastPN532)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Halt()
	tw.Present("DEADBEEF")
	wantTap(t, ctx, r, "DEADBEEF", SourcePN532)
	// Ten more polls with the card still there: nothing new.
	if err := tw.WaitPolls(ctx, tw.Polls()+10); err != nil {
		t.Fatal(err)
	}
	tw.Remove()
	// Enough empty polls for the driver to see the card gone (Misses).
	if err := tw.WaitPolls(ctx, tw.Polls()+DefaultMisses+1); err != nil {
		t.Fatal(err)
	}
	tw.Present("DEADBEEF")
	wantTap(t, ctx, r, "DEADBEEF", SourcePN532)
	tw.Remove()
	// Only two taps were queued in total.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if tap, err := r.Read(short); err == nil {
		t.Fatalf("extra tap %+v", tap)
	}
}

// Garbage before every frame, frames split over writes, and a chip that
// goes back to sleep (reset) must all be survived.
func TestPN532NoisyLineAndReset(t *testing.T) {
	ctx := ctxT(t)
	tw, err := cardtwin.OpenPN532(cardtwin.Config{Link: link(t), TapPolls: 5,
		Noise: twin.Noise{Garbage: 12, Split: 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	r, err := OpenPN532(tw.Path(), fastPN532)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Halt()
	for _, uid := range []string{"04A2B3C4D5E6F7", "DEADBEEF"} {
		tw.Tap(uid)
		wantTap(t, ctx, r, uid, SourcePN532)
	}
	// Reset: the chip ignores commands until woken; the driver times out,
	// wakes it again and carries on.
	tw.Sleep()
	tw.SendRaw([]byte{0x00, 0x00, 0xFF, 0x05}) // and a truncated frame on the line
	tw.Tap("CAFEBABE")
	wantTap(t, ctx, r, "CAFEBABE", SourcePN532)
	if n := tw.Commands()[0x14]; n < 2 {
		t.Fatalf("SAMConfiguration sent %d times; the driver did not re-initialise", n)
	}
}

// The driver sees a corrupt response, NACKs it and gets the resend.
func TestPN532NACKOnCorruptResponse(t *testing.T) {
	ctx := ctxT(t)
	tw, err := cardtwin.OpenPN532(cardtwin.Config{Link: link(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	r, err := OpenPN532(tw.Path(), Config{PollInterval: 5 * time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Halt()
	if err := tw.WaitPolls(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The next response (to a poll) is garbled on the line; with a 5 s
	// timeout, only the NACK gets the intact one in time.
	tw.Corrupt(1)
	tw.Present("DEADBEEF")
	wantTap(t, ctx, r, "DEADBEEF", SourcePN532)
	if tw.NACKs() == 0 {
		t.Fatal("driver did not NACK the corrupt response")
	}
}

func TestOpenMissingPort(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope")
	if _, err := OpenASCII(p, Config{}); err == nil {
		t.Error("OpenASCII of a missing port succeeded")
	}
	if _, err := OpenRDM6300(p, Config{}); err == nil {
		t.Error("OpenRDM6300 of a missing port succeeded")
	}
	if _, err := OpenPN532(p, Config{}); err == nil {
		t.Error("OpenPN532 of a missing port succeeded")
	}
}

// Issue 13 (1): a card already in the field at the driver's first poll
// (left on the reader across a restart) is reported Held; taken off and
// presented again, it is a new presentation.
func TestPN532CardInTheFieldAtStartIsHeld(t *testing.T) {
	ctx := ctxT(t)
	tw, err := cardtwin.OpenPN532(cardtwin.Config{Link: link(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	tw.Present("04A2B3C4D5E6F7")
	r, err := OpenPN532(tw.Path(), fastPN532)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Halt()
	if tap, err := r.Read(ctx); err != nil || tap.UID != "04A2B3C4D5E6F7" || tap.Presentation != device.PresentationHeld {
		t.Fatalf("Read = %+v, %v; want the card, held", tap, err)
	}
	tw.Remove()
	if err := tw.WaitPolls(ctx, tw.Polls()+DefaultMisses+1); err != nil {
		t.Fatal(err)
	}
	tw.Present("04A2B3C4D5E6F7")
	if tap, err := r.Read(ctx); err != nil || tap.UID != "04A2B3C4D5E6F7" || tap.Presentation != device.PresentationNew {
		t.Fatalf("Read = %+v, %v; want the card, new", tap, err)
	}
}

// settable is a clock the test moves (read by the driver's goroutine).
type settable struct{ ns atomic.Int64 }

func (c *settable) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *settable) add(d time.Duration) { c.ns.Add(int64(d)) }

// An RDM6300 repeats its frame while the tag stays: the first frame
// within Gap of opening is a tag that was already there (Held); a first
// frame later is a new presentation.
func TestRDM6300TagInTheFieldAtStartIsHeld(t *testing.T) {
	ctx := ctxT(t)
	tw, err := cardtwin.OpenRDM6300(cardtwin.Config{Link: link(t), Repeats: 2, RepeatEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	clk := &settable{}
	clk.ns.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	for _, tc := range []struct {
		after time.Duration
		want  device.Presentation
	}{{0, device.PresentationHeld}, {2 * time.Second, device.PresentationNew}} {
		r, err := OpenRDM6300(tw.Path(), Config{Gap: time.Second, MaxAge: time.Hour, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		clk.add(tc.after)
		if err := tw.Tap("62E3086CED"); err != nil {
			t.Fatal(err)
		}
		if tap, err := r.Read(ctx); err != nil || tap.UID != "62E3086CED" || tap.Presentation != tc.want {
			t.Fatalf("first frame %v after opening: Read = %+v, %v; want presentation %d", tc.after, tap, err, tc.want)
		}
		// Another tag is not the first sighting: a new presentation.
		if err := tw.Tap("0A00B1C2D3"); err != nil {
			t.Fatal(err)
		}
		if tap, err := r.Read(ctx); err != nil || tap.UID != "0A00B1C2D3" || tap.Presentation != device.PresentationNew {
			t.Fatalf("second tag: Read = %+v, %v; want new", tap, err)
		}
		if err := r.Halt(); err != nil {
			t.Fatal(err)
		}
	}
}
