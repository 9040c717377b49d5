package keypad

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"campuspay/hwsim/twin"
	"campuspay/hwsim/twin/keypadtwin"
	"campuspay/terminal/device"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func feedKeys(d Decoder, in []byte) []device.Key {
	var keys []device.Key
	for _, b := range in {
		if k, ok := d.Feed(b); ok {
			keys = append(keys, k)
		}
	}
	return keys
}

func keys(s string) []device.Key {
	var out []device.Key
	for _, r := range s {
		out = append(out, device.Key(r))
	}
	return out
}

func TestSerialParser(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []device.Key
	}{
		{"amount and CR", "12.50\r", keys("12.50\n")},
		{"LF is Enter", "7\n", keys("7\n")},
		{"CRLF is one Enter", "7\r\n8\r\n", keys("7\n8\n")},
		{"CR CR is two Enters", "\r\r", keys("\n\n")},
		{"LF LF is two Enters", "\n\n", keys("\n\n")},
		{"cancel", "\x1bCc", []device.Key{device.KeyCancel, device.KeyCancel, device.KeyCancel}},
		{"backspace", "\x08\x7f", []device.Key{device.KeyBackspace, device.KeyBackspace}},
		{"stop and func", "SsFf", []device.Key{device.KeyStop, device.KeyStop, device.KeyFunc, device.KeyFunc}},
		{"noise ignored", "\x00\xffx*#\x02 9", keys("9")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := feedKeys(&SerialParser{}, []byte(tc.in)); !slices.Equal(got, tc.want) {
				t.Fatalf("keys %q, want %q", got, tc.want)
			}
		})
	}
}

// ev builds a 64-bit input_event (little-endian) with a non-zero time, so
// the parser is seen to skip the timeval.
func ev(typ, code uint16, value int32) []byte {
	rec := make([]byte, 24)
	copy(rec, []byte{0x10, 0x27, 0, 0, 0, 0, 0, 0, 0x40, 0x42, 0x0f, 0, 0, 0, 0, 0}) // 10000 s, 1000000 µs
	rec[16], rec[17] = byte(typ), byte(typ>>8)
	rec[18], rec[19] = byte(code), byte(code>>8)
	v := uint32(value)
	rec[20], rec[21], rec[22], rec[23] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return rec
}

const (
	evSyn = 0x00
	evMsc = 0x04
)

// press is what a keyboard reports for one key: MSC_SCAN, down, SYN, up, SYN.
func press(code uint16) []byte {
	return bytes.Join([][]byte{ev(evMsc, 4, 0x70000+int32(code)), ev(evKey, code, 1), ev(evSyn, 0, 0), ev(evKey, code, 0), ev(evSyn, 0, 0)}, nil)
}

func TestEvdevParser(t *testing.T) {
	if NativeEventSize != 24 {
		t.Skip("vectors are for 64-bit input_event")
	}
	tests := []struct {
		name string
		in   []byte
		want []device.Key
	}{
		// KEY_1 (2), KEY_2 (3), KEY_DOT (52), KEY_5 (6), KEY_0 (11), KEY_ENTER (28)
		{"main row amount", bytes.Join([][]byte{press(2), press(3), press(52), press(6), press(11), press(28)}, nil), keys("12.50\n")},
		// KEY_KP1 (79), KEY_KP2 (80), KEY_KPDOT (83), KEY_KP5 (76), KEY_KP0 (82), KEY_KPENTER (96)
		{"keypad amount", bytes.Join([][]byte{press(79), press(80), press(83), press(76), press(82), press(96)}, nil), keys("12.50\n")},
		{"keypad 7 8 9 4 6 3", bytes.Join([][]byte{press(71), press(72), press(73), press(75), press(77), press(81)}, nil), keys("789463")},
		// KEY_ESC (1), KEY_BACKSPACE (14), KEY_S (31), KEY_F (33), KEY_F1 (59)
		{"control keys", bytes.Join([][]byte{press(1), press(14), press(31), press(33), press(59)}, nil),
			[]device.Key{device.KeyCancel, device.KeyBackspace, device.KeyStop, device.KeyFunc, device.KeyFunc}},
		// autorepeat (value 2) and release (0) are not presses
		{"repeat and release ignored", bytes.Join([][]byte{ev(evKey, 2, 1), ev(evKey, 2, 2), ev(evKey, 2, 2), ev(evKey, 2, 0)}, nil), keys("1")},
		// KEY_A (30), KEY_NUMLOCK (69): not keypad keys
		{"unmapped keys ignored", bytes.Join([][]byte{press(30), press(69), press(10)}, nil), keys("9")},
		// EV_REL with code 2 value 1 must not be mistaken for KEY_1
		{"other event types ignored", ev(0x02, 2, 1), nil},
		{"half a record waits", ev(evKey, 2, 1)[:20], nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := feedKeys(&EvdevParser{}, tc.in); !slices.Equal(got, tc.want) {
				t.Fatalf("keys %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEvdev32BitRecords(t *testing.T) {
	// 16-byte records: timeval of two 32-bit longs.
	rec := ev(evKey, 28, 1)[8:]
	if got := feedKeys(&EvdevParser{Size: 16}, rec); !slices.Equal(got, keys("\n")) {
		t.Fatalf("keys %q", got)
	}
}

func TestEncodeEvent(t *testing.T) {
	got := feedKeys(&EvdevParser{}, append(EncodeEvent(evKey, 11, 1), EncodeEvent(evKey, 11, 0)...))
	if !slices.Equal(got, keys("0")) {
		t.Fatalf("keys %q", got)
	}
}

func FuzzSerialParser(f *testing.F) {
	f.Add([]byte("12.50\r\n"))
	f.Add([]byte("\x1bCSF\x08\x7f\x00\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, k := range feedKeys(&SerialParser{}, in) {
			if !validKey(k) {
				t.Fatalf("invalid key %q", k)
			}
		}
	})
}

// Any byte stream yields only valid keys, and once the record in progress
// is completed, the next press is read (the parser never loses alignment).
func FuzzEvdevParser(f *testing.F) {
	f.Add(press(2))
	f.Add(append(press(96), 0x01, 0x02))
	f.Add(bytes.Repeat([]byte{0x01, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x00}, 7))
	f.Fuzz(func(t *testing.T, in []byte) {
		var p EvdevParser
		for _, k := range feedKeys(&p, in) {
			if !validKey(k) {
				t.Fatalf("invalid key %q", k)
			}
		}
		// Complete the current record, then a press must be read.
		pad := (NativeEventSize - len(in)%NativeEventSize) % NativeEventSize
		feedKeys(&p, make([]byte, pad))
		if got := feedKeys(&p, press(28)); !slices.Equal(got, keys("\n")) {
			t.Fatalf("after % X: %q", in, got)
		}
	})
}

func validKey(k device.Key) bool {
	switch k {
	case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '.',
		device.KeyEnter, device.KeyCancel, device.KeyBackspace, device.KeyStop, device.KeyFunc:
		return true
	}
	return false
}

func wantKeys(t *testing.T, ctx context.Context, k device.Keypad, want []device.Key) {
	t.Helper()
	var got []device.Key
	for len(got) < len(want) {
		key, err := k.Key(ctx)
		if err != nil {
			t.Fatalf("Key after %q: %v", got, err)
		}
		got = append(got, key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
}

func checkHalt(t *testing.T, ctx context.Context, k device.Keypad) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := k.Key(ctx); errc <- err }()
	if err := k.Halt(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Key across Halt: %v", err)
	}
	if _, err := k.Key(ctx); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Key after Halt: %v", err)
	}
	if err := k.Halt(); err != nil {
		t.Fatal(err)
	}
}

// The serial keypad driver on the twin's pty, through go.bug.st/serial.
func TestSerialOnTwin(t *testing.T) {
	ctx := ctxT(t)
	// Garbage restricted to bytes that are no key; every key its own write.
	tw, err := keypadtwin.OpenSerial(keypadtwin.Config{
		Link:  filepath.Join(t.TempDir(), "T01", "keypad"),
		Enter: "\r\n",
		Noise: twin.Noise{Garbage: 3, GarbageBytes: []byte{0x00, 0xff, 'x', '#', 0x11}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	k, err := OpenSerial(tw.Path(), SerialConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tw.Type("12.50\n")
	wantKeys(t, ctx, k, keys("12.50\n"))
	tw.Type("9\b\x1bSF")
	wantKeys(t, ctx, k, []device.Key{'9', device.KeyBackspace, device.KeyCancel, device.KeyStop, device.KeyFunc})
	checkHalt(t, ctx, k)

	k2, err := OpenSerial(tw.Path(), SerialConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Halt()
	tw.Type("3\n")
	wantKeys(t, ctx, k2, keys("3\n"))
}

// The evdev driver reading records from a pipe, chunked oddly.
func TestEvdevOnPipe(t *testing.T) {
	if NativeEventSize != 24 {
		t.Skip("64-bit records")
	}
	ctx := ctxT(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	k := NewEvdev(r, "pipe", EvdevConfig{})
	stream := bytes.Join([][]byte{press(2), press(3), press(83), press(6), press(82), press(96)}, nil)
	for len(stream) > 0 {
		n := min(7, len(stream)) // records split across writes
		w.Write(stream[:n])
		stream = stream[n:]
	}
	wantKeys(t, ctx, k, keys("12.50\n"))
	checkHalt(t, ctx, k)
}

// The evdev driver opening the evdev twin's FIFO by path, like
// /dev/input/eventN; the grab fails on a FIFO and must not matter.
func TestEvdevOnTwin(t *testing.T) {
	if NativeEventSize != 24 {
		t.Skip("64-bit records")
	}
	ctx := ctxT(t)
	tw, err := keypadtwin.OpenEvdev(filepath.Join(t.TempDir(), "event0"))
	if err != nil {
		t.Fatal(err)
	}
	defer tw.Close()
	k, err := OpenEvdev(tw.Path(), EvdevConfig{Grab: true})
	if err != nil {
		t.Fatal(err)
	}
	tw.Type("12.50\n")
	wantKeys(t, ctx, k, keys("12.50\n"))
	tw.Type("C\bSF")
	wantKeys(t, ctx, k, []device.Key{device.KeyCancel, device.KeyBackspace, device.KeyStop, device.KeyFunc})
	checkHalt(t, ctx, k)

	k2, err := OpenEvdev(tw.Path(), EvdevConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Halt()
	tw.Type("7\n")
	wantKeys(t, ctx, k2, keys("7\n"))
}

func TestKeyLineFailure(t *testing.T) {
	ctx := ctxT(t)
	pr, pw := io.Pipe()
	k := NewSerial(pr, "pipe", SerialConfig{})
	defer k.Halt()
	pw.Write([]byte("5"))
	pw.CloseWithError(errors.New("unplugged"))
	wantKeys(t, ctx, k, keys("5"))
	if _, err := k.Key(ctx); err == nil || errors.Is(err, device.ErrHalted) {
		t.Fatalf("Key on dead line: %v", err)
	}
}
