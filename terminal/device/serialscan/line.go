package serialscan

import (
	"errors"
	"unicode/utf8"
)

// Line errors. Each one means a line was discarded; the parser has already
// resynchronised and the next line is read normally.
var (
	ErrLineTooLong = errors.New("serialscan: line too long")
	ErrBadText     = errors.New("serialscan: line is not valid UTF-8")
)

// DefaultMaxLine fits the longest payment code (~300 characters) with room.
const DefaultMaxLine = 512

// LineParser splits a scanner's byte stream into lines. It is resumable:
// bytes can be fed one at a time, in any chunking, with the same result.
//
// CR, LF and CRLF end a line; empty lines are ignored (so CRLF yields one
// line). NUL and other C0 control bytes are line noise and dropped, except
// GS (0x1D), which GS1 barcodes use as a field separator. A line longer than
// Max is reported once as ErrLineTooLong and skipped up to its terminator.
type LineParser struct {
	Max int // maximum line length in bytes; 0 means DefaultMaxLine

	buf      []byte
	overflow bool // discarding the rest of an over-long line
}

// Feed consumes one byte. When b ends a line it returns the line (ok true),
// or a non-nil error if that line was discarded.
func (p *LineParser) Feed(b byte) (line string, ok bool, err error) {
	switch {
	case b == '\r' || b == '\n':
		if p.overflow {
			p.overflow = false
			p.buf = p.buf[:0]
			return "", false, ErrLineTooLong
		}
		if len(p.buf) == 0 {
			return "", false, nil
		}
		line = string(p.buf)
		p.buf = p.buf[:0]
		if !utf8.ValidString(line) {
			return "", false, ErrBadText
		}
		return line, true, nil
	case (b < 0x20 && b != 0x1d) || b == 0x7f:
		return "", false, nil
	}
	if p.overflow {
		return "", false, nil
	}
	max := p.Max
	if max <= 0 {
		max = DefaultMaxLine
	}
	if len(p.buf) >= max {
		p.overflow = true
		p.buf = p.buf[:0]
		return "", false, nil
	}
	p.buf = append(p.buf, b)
	return "", false, nil
}

// Reset forgets a partly received line (e.g. after reopening the port).
func (p *LineParser) Reset() {
	p.buf = p.buf[:0]
	p.overflow = false
}
