package keypad

import (
	"fmt"
	"io"
	"log/slog"

	"go.bug.st/serial"

	"campuspay/terminal/device"
)

// SerialParser maps a serial keypad's bytes to keys:
//
//	'0'..'9' '.'      themselves
//	CR, LF, CRLF      Enter (CRLF is one Enter, not two)
//	ESC, 'C'/'c'      Cancel
//	BS (0x08), DEL    Backspace
//	'S'/'s'           Stop
//	'F'/'f'           Func
//
// Anything else is line noise and ignored. The zero value is ready.
type SerialParser struct {
	afterCR bool
}

// Feed consumes one byte and returns the key it stands for, if any.
func (p *SerialParser) Feed(b byte) (device.Key, bool) {
	afterCR := p.afterCR
	p.afterCR = b == '\r'
	switch b {
	case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '.':
		return device.Key(b), true
	case '\r':
		return device.KeyEnter, true
	case '\n':
		if afterCR {
			return 0, false
		}
		return device.KeyEnter, true
	case 0x1b, 'C', 'c':
		return device.KeyCancel, true
	case 0x08, 0x7f:
		return device.KeyBackspace, true
	case 'S', 's':
		return device.KeyStop, true
	case 'F', 'f':
		return device.KeyFunc, true
	}
	return 0, false
}

// SerialConfig configures a serial keypad.
type SerialConfig struct {
	Baud   int          // default 9600
	Logger *slog.Logger // nil means silent
}

// OpenSerial opens a serial keypad (e.g. /dev/ttyUSB1 or a hwsim symlink).
// Modem control lines are not touched: pseudo-terminals refuse them.
func OpenSerial(path string, cfg SerialConfig) (*Keypad, error) {
	if cfg.Baud <= 0 {
		cfg.Baud = 9600
	}
	p, err := serial.Open(path, &serial.Mode{BaudRate: cfg.Baud})
	if err != nil {
		return nil, fmt.Errorf("keypad: open %s: %w", path, err)
	}
	_ = p.ResetInputBuffer() // keys pressed before we listened are stale
	return NewSerial(p, path, cfg), nil
}

// NewSerial runs a serial keypad on any byte stream; Halt closes it.
func NewSerial(r io.ReadCloser, name string, cfg SerialConfig) *Keypad {
	return start(r, name, &SerialParser{}, cfg.Logger)
}
