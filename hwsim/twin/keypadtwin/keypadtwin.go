// Package keypadtwin simulates the terminal's keypads: a serial keypad on
// a pseudo-terminal (one byte per key), and an evdev keypad as a FIFO of
// struct input_event records that the evdev driver opens like
// /dev/input/eventN.
package keypadtwin

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"campuspay/hwsim/pty"
	"campuspay/hwsim/twin"
)

// Config configures a serial keypad twin.
type Config struct {
	Link  string     // symlink the driver opens, e.g. /tmp/campus/T01/keypad
	Enter string     // bytes sent for '\n'; default "\r"
	Noise twin.Noise // line faults; keep Garbage to bytes that are not keys
}

// Serial is a serial keypad twin.
type Serial struct {
	port  *pty.Port
	wire  *twin.Wire
	enter string
}

// OpenSerial creates a serial keypad twin.
func OpenSerial(cfg Config) (*Serial, error) {
	p, err := pty.Open(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("keypadtwin: %w", err)
	}
	if cfg.Enter == "" {
		cfg.Enter = "\r"
	}
	return &Serial{port: p, wire: twin.NewWire(p, cfg.Noise), enter: cfg.Enter}, nil
}

// Path is the device path a driver opens.
func (s *Serial) Path() string { return s.port.Path() }

// Type presses one key per character: digits, '.', '\n' (Enter), ESC or
// 'C' (Cancel), '\b' (Backspace), 'S' (Stop), 'F' (Func).
func (s *Serial) Type(keys string) error {
	for i := 0; i < len(keys); i++ {
		b := []byte{keys[i]}
		if keys[i] == '\n' {
			b = []byte(s.enter)
		}
		if err := s.wire.Send(b); err != nil {
			return err
		}
	}
	return nil
}

// SendRaw writes bytes exactly, without noise.
func (s *Serial) SendRaw(b []byte) error { return s.wire.SendRaw(b) }

// Close removes the symlink and the pseudo-terminal.
func (s *Serial) Close() error { return s.port.Close() }

// Evdev is an evdev keypad twin: a FIFO carrying input_event records.
type Evdev struct {
	path string
	f    *os.File
}

// OpenEvdev creates a FIFO at path (replacing a stale one) and holds it
// open for reading and writing, so the driver's open does not block and
// its reads see no EOF when it reopens.
func OpenEvdev(path string) (*Evdev, error) {
	os.Remove(path)
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return nil, fmt.Errorf("keypadtwin: mkfifo %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("keypadtwin: open %s: %w", path, err)
	}
	return &Evdev{path: path, f: f}, nil
}

// Path is the device path a driver opens.
func (e *Evdev) Path() string { return e.path }

// evdev key codes for Type (linux/input-event-codes.h).
var evCodes = map[byte]uint16{
	'1': 2, '2': 3, '3': 4, '4': 5, '5': 6, '6': 7, '7': 8, '8': 9, '9': 10, '0': 11,
	'.': 83, '\n': 96, 0x1b: 1, 'C': 1, '\b': 14, 'S': 31, 'F': 59,
}

// Type presses and releases one key per character (as Serial.Type), each
// followed by a SYN_REPORT, as a real keyboard reports them.
func (e *Evdev) Type(keys string) error {
	var out []byte
	for i := 0; i < len(keys); i++ {
		code, ok := evCodes[keys[i]]
		if !ok {
			return fmt.Errorf("keypadtwin: no key for %q", keys[i])
		}
		out = append(out, event(0x04, 0x04, int32(code))...) // EV_MSC MSC_SCAN
		out = append(out, event(0x01, code, 1)...)           // key down
		out = append(out, event(0x00, 0, 0)...)              // SYN_REPORT
		out = append(out, event(0x01, code, 0)...)           // key up
		out = append(out, event(0x00, 0, 0)...)
	}
	if _, err := e.f.Write(out); err != nil {
		return fmt.Errorf("keypadtwin: write %s: %w", e.path, err)
	}
	return nil
}

// event encodes a 64-bit struct input_event (little-endian, time zero).
func event(typ, code uint16, value int32) []byte {
	rec := make([]byte, 24)
	rec[16], rec[17] = byte(typ), byte(typ>>8)
	rec[18], rec[19] = byte(code), byte(code>>8)
	v := uint32(value)
	rec[20], rec[21], rec[22], rec[23] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	return rec
}

// Close removes the FIFO.
func (e *Evdev) Close() error {
	err := e.f.Close()
	os.Remove(e.path)
	if err != nil {
		return fmt.Errorf("keypadtwin: close %s: %w", e.path, err)
	}
	return nil
}

// Queued reports how many key bytes the driver has not read yet.
func (s *Serial) Queued() (int, error) { return s.port.Queued() }
