// Package cardtwin simulates serial card readers on pseudo-terminals, each
// speaking its real protocol on the master side so that the terminal's
// drivers open them unchanged:
//
//   - ASCII: one UID per line;
//   - RDM6300: 02 + 10 hex chars + 2 hex checksum chars + 03, repeated a
//     few times per tap like the module does while the tag is present;
//   - PN532 (HSU): answers wake-up, SAMConfiguration, RFConfiguration and
//     InListPassiveTarget with ACK + response frames, "no target" until a
//     card is tapped.
//
// The encoders here are written from the datasheets independently of the
// drivers, so that a shared misunderstanding does not hide behind a test.
package cardtwin

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"campuspay/hwsim/pty"
	"campuspay/hwsim/twin"
)

// Config configures a card-reader twin. Zero fields take defaults.
type Config struct {
	Link  string     // symlink the driver opens, e.g. /tmp/campus/T01/card
	Noise twin.Noise // line faults to inject
	// ASCII only: line terminator, default "\r\n".
	Terminator string
	// RDM6300 only: frames sent per tap (default 3) and the pause between
	// them (default 20 ms; the module repeats while the tag is held).
	Repeats     int
	RepeatEvery time.Duration
	// PN532 only: how many polls a tapped card answers (default 3).
	TapPolls int
}

// ASCII is an ASCII-line UID reader twin.
type ASCII struct {
	port *pty.Port
	wire *twin.Wire
	term string
}

// OpenASCII creates an ASCII-line reader twin.
func OpenASCII(cfg Config) (*ASCII, error) {
	p, err := pty.Open(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("cardtwin: %w", err)
	}
	if cfg.Terminator == "" {
		cfg.Terminator = "\r\n"
	}
	return &ASCII{port: p, wire: twin.NewWire(p, cfg.Noise), term: cfg.Terminator}, nil
}

// Path is the device path a driver opens.
func (a *ASCII) Path() string { return a.port.Path() }

// Tap sends the UID text as one line (hex or decimal, as given).
func (a *ASCII) Tap(uid string) error { return a.wire.Send([]byte(uid + a.term)) }

// SendRaw writes bytes exactly, without noise.
func (a *ASCII) SendRaw(b []byte) error { return a.wire.SendRaw(b) }

// Close removes the symlink and the pseudo-terminal.
func (a *ASCII) Close() error { return a.port.Close() }

// RDM6300 is an RDM6300 / EM4100 module twin.
type RDM6300 struct {
	port    *pty.Port
	wire    *twin.Wire
	repeats int
	every   time.Duration
}

// OpenRDM6300 creates an RDM6300 twin.
func OpenRDM6300(cfg Config) (*RDM6300, error) {
	p, err := pty.Open(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("cardtwin: %w", err)
	}
	if cfg.Repeats <= 0 {
		cfg.Repeats = 3
	}
	if cfg.RepeatEvery <= 0 {
		cfg.RepeatEvery = 20 * time.Millisecond
	}
	return &RDM6300{port: p, wire: twin.NewWire(p, cfg.Noise), repeats: cfg.Repeats, every: cfg.RepeatEvery}, nil
}

// Path is the device path a driver opens.
func (r *RDM6300) Path() string { return r.port.Path() }

// RDM6300Frame encodes an EM4100 ID (10 hex characters: version byte and
// 32-bit tag number) as the module's 14-byte frame.
func RDM6300Frame(id string) ([]byte, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 5 {
		return nil, fmt.Errorf("cardtwin: EM4100 ID %q: want 10 hex characters", id)
	}
	var x byte
	for _, b := range raw {
		x ^= b
	}
	f := []byte{0x02}
	f = append(f, strings.ToUpper(id)...)
	f = append(f, fmt.Sprintf("%02X", x)...)
	return append(f, 0x03), nil
}

// Tap presents a tag: its frame is sent Repeats times. It returns when the
// last frame is written.
func (r *RDM6300) Tap(id string) error {
	f, err := RDM6300Frame(id)
	if err != nil {
		return err
	}
	for i := 0; i < r.repeats; i++ {
		if i > 0 {
			time.Sleep(r.every) // the module's own pace, not a test's synchronisation
		}
		if err := r.wire.Send(f); err != nil {
			return err
		}
	}
	return nil
}

// SendRaw writes bytes exactly, without noise.
func (r *RDM6300) SendRaw(b []byte) error { return r.wire.SendRaw(b) }

// Close removes the symlink and the pseudo-terminal.
func (r *RDM6300) Close() error { return r.port.Close() }
