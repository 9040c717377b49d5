package cardreader

import (
	"fmt"
	"io"
)

// RDM6300 / EM4100 frame bytes.
const (
	rdmSTX = 0x02
	rdmETX = 0x03
	// rdmChars is the ASCII hex between STX and ETX: 10 data characters
	// (version byte + 32-bit tag number) and 2 checksum characters.
	rdmChars = 12
)

// RDM6300Parser decodes RDM6300 frames:
//
//	02 | 10 ASCII hex data chars (5 bytes) | 2 ASCII hex chars: XOR of the 5 bytes | 03
//
// The UID is the 10 data characters, upper-case (e.g. "0A00B1C2D3"). A STX
// anywhere restarts the frame, so a truncated frame followed by a good one
// costs only the truncated one. The zero value is ready.
type RDM6300Parser struct {
	in  bool // between STX and ETX
	n   int
	hex [rdmChars]byte
}

// Feed consumes one byte and returns the UID when b completes a valid frame.
func (p *RDM6300Parser) Feed(b byte) (uid string, ok bool, err error) {
	if b == rdmSTX {
		if p.in {
			err = ErrTruncated
		}
		p.in, p.n = true, 0
		return "", false, err
	}
	if !p.in {
		return "", false, nil // noise between frames
	}
	if p.n < rdmChars {
		v, ok := unhex(b)
		if !ok {
			p.in = false
			return "", false, ErrBadChar
		}
		p.hex[p.n] = "0123456789ABCDEF"[v]
		p.n++
		return "", false, nil
	}
	p.in = false
	if b != rdmETX {
		return "", false, ErrTruncated
	}
	var sum byte
	for i := 0; i < 10; i += 2 {
		sum ^= hexByte(p.hex[i], p.hex[i+1])
	}
	if sum != hexByte(p.hex[10], p.hex[11]) {
		return "", false, ErrChecksum
	}
	return string(p.hex[:10]), true, nil
}

func unhex(b byte) (byte, bool) {
	switch {
	case b >= '0' && b <= '9':
		return b - '0', true
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10, true
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10, true
	}
	return 0, false
}

// hexByte decodes two characters already checked by unhex.
func hexByte(hi, lo byte) byte {
	h, _ := unhex(hi)
	l, _ := unhex(lo)
	return h<<4 | l
}

// RDM6300Reader is an RDM6300 / EM4100 125 kHz reader module.
type RDM6300Reader struct{ *streamReader }

// OpenRDM6300 opens an RDM6300 module on a serial port (9600 8N1).
func OpenRDM6300(path string, cfg Config) (*RDM6300Reader, error) {
	cfg.fill(9600)
	p, err := openPort(path, cfg.Baud)
	if err != nil {
		return nil, fmt.Errorf("cardreader: open %s: %w", path, err)
	}
	return NewRDM6300(p, path, cfg), nil
}

// NewRDM6300 runs an RDM6300 reader on any byte stream; Halt closes it.
func NewRDM6300(port io.ReadWriteCloser, name string, cfg Config) *RDM6300Reader {
	cfg.fill(9600)
	return &RDM6300Reader{startStream(port, name, SourceRDM6300, &RDM6300Parser{}, cfg, true)}
}
