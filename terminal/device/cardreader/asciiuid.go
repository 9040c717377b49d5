package cardreader

import (
	"fmt"
	"io"
)

// MaxASCIIUID is the longest UID text accepted from an ASCII-line reader
// (a 10-byte NFCID1 is 20 hex characters; decimal IDs are shorter).
const MaxASCIIUID = 32

// ASCIIParser reads one UID per line, as hex ("04A1B2C3", "04:a1:b2:c3")
// or decimal ("0012345678") text. Lines end with CR, LF or CRLF; empty lines
// are ignored. Control bytes (NUL, STX/ETX framing some readers add) are
// dropped; ':', '-' and spaces between digits are removed; letters are
// upper-cased. A line with any other character, or longer than
// MaxASCIIUID digits, is discarded with an error. The zero value is ready.
type ASCIIParser struct {
	buf []byte
	bad error // the current line is being discarded for this reason
}

// Feed consumes one byte and returns a UID when b completes a valid line.
func (p *ASCIIParser) Feed(b byte) (uid string, ok bool, err error) {
	switch {
	case b == '\r' || b == '\n':
		defer p.reset()
		if p.bad != nil {
			return "", false, p.bad
		}
		if len(p.buf) == 0 {
			return "", false, nil
		}
		return string(p.buf), true, nil
	case b < 0x20 || b == 0x7f, b == ':' || b == '-' || b == ' ':
		return "", false, nil
	case p.bad != nil:
		return "", false, nil
	case b >= '0' && b <= '9', b >= 'A' && b <= 'F':
	case b >= 'a' && b <= 'f':
		b -= 'a' - 'A'
	default:
		p.bad, p.buf = ErrBadChar, p.buf[:0]
		return "", false, nil
	}
	if len(p.buf) >= MaxASCIIUID {
		p.bad, p.buf = ErrTooLong, p.buf[:0]
		return "", false, nil
	}
	p.buf = append(p.buf, b)
	return "", false, nil
}

func (p *ASCIIParser) reset() { p.buf, p.bad = p.buf[:0], nil }

// ASCIIReader is an ASCII-line UID reader.
type ASCIIReader struct{ *streamReader }

// OpenASCII opens an ASCII-line UID reader on a serial port.
func OpenASCII(path string, cfg Config) (*ASCIIReader, error) {
	cfg.fill(9600)
	p, err := openPort(path, cfg.Baud)
	if err != nil {
		return nil, fmt.Errorf("cardreader: open %s: %w", path, err)
	}
	return NewASCII(p, path, cfg), nil
}

// NewASCII runs an ASCII-line reader on any byte stream; Halt closes it.
func NewASCII(port io.ReadWriteCloser, name string, cfg Config) *ASCIIReader {
	cfg.fill(9600)
	return &ASCIIReader{startStream(port, name, SourceASCII, &ASCIIParser{}, cfg, false)}
}
