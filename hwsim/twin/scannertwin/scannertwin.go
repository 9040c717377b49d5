// Package scannertwin simulates a USB-CDC barcode scanner on a
// pseudo-terminal: Show(text) sends the code as one terminated line, the
// way a real scanner in "keyboard off, serial on" mode does.
package scannertwin

import (
	"fmt"

	"campuspay/hwsim/pty"
	"campuspay/hwsim/twin"
)

// Config configures a scanner twin.
type Config struct {
	Link       string     // symlink the driver opens, e.g. /tmp/campus/T01/scanner
	Terminator string     // line end; default "\r\n" (scanners' factory default)
	Noise      twin.Noise // line faults to inject
}

// Twin is a simulated barcode scanner.
type Twin struct {
	port *pty.Port
	wire *twin.Wire
	term string
}

// Open creates the scanner's pseudo-terminal and symlink.
func Open(cfg Config) (*Twin, error) {
	p, err := pty.Open(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("scannertwin: %w", err)
	}
	if cfg.Terminator == "" {
		cfg.Terminator = "\r\n"
	}
	return &Twin{port: p, wire: twin.NewWire(p, cfg.Noise), term: cfg.Terminator}, nil
}

// Path is the device path a driver opens.
func (t *Twin) Path() string { return t.port.Path() }

// Show makes the scanner read a code: the text and the terminator are sent.
func (t *Twin) Show(text string) error {
	return t.wire.Send([]byte(text + t.term))
}

// SendRaw writes bytes with no terminator and no noise (line faults that a
// test wants exactly).
func (t *Twin) SendRaw(b []byte) error { return t.wire.SendRaw(b) }

// Close removes the symlink and the pseudo-terminal.
func (t *Twin) Close() error { return t.port.Close() }
