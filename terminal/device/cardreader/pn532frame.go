package cardreader

// PN532 frame layout (UM0701-02 §6.2), normal information frame:
//
//	00 (preamble) | 00 FF (start code) | LEN | LCS | TFI | PD0..PDn | DCS | 00 (postamble)
//
// LEN counts TFI and data; LEN+LCS == 0 and TFI+PD0+...+PDn+DCS == 0
// (mod 256). TFI is D4 host→PN532, D5 PN532→host. Special frames:
//
//	ACK   00 00 FF 00 FF 00
//	NACK  00 00 FF FF 00 00
//	error 00 00 FF 01 FF 7F 81 00 (application-level error)
//	extended (LEN FF FF): not used by this driver, skipped.
const (
	tfiHost  = 0xD4
	tfiPN532 = 0xD5
	tfiError = 0x7F
)

// FrameKind tells the kind of a PN532 frame. Numbers are explicit: they are logged.
type FrameKind int

// Frame kinds.
const (
	FrameInfo  FrameKind = 0 // normal information frame
	FrameACK   FrameKind = 1
	FrameNACK  FrameKind = 2
	FrameError FrameKind = 3 // application-level error frame
)

// Frame is one decoded PN532 frame.
type Frame struct {
	Kind FrameKind
	TFI  byte   // FrameInfo: D4 or D5
	Data []byte // FrameInfo: PD0..PDn (command code first)
}

// Wire forms of the special frames.
var (
	pn532ACK  = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	pn532NACK = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
)

// EncodeFrame builds a normal information frame. len(data) must be < 255.
func EncodeFrame(tfi byte, data []byte) []byte {
	n := byte(len(data) + 1)
	f := make([]byte, 0, len(data)+8)
	f = append(f, 0x00, 0x00, 0xFF, n, -n, tfi)
	f = append(f, data...)
	sum := tfi
	for _, b := range data {
		sum += b
	}
	return append(f, -sum, 0x00)
}

type pnState int

const (
	pnSync0 pnState = iota // waiting for the 00 of the start code
	pnSync1                // got 00, waiting for FF (more 00s are preamble)
	pnLen
	pnLCS
	pnBody // TFI and data
	pnDCS
)

// FrameParser decodes PN532 frames from a byte stream, resumably. Noise
// and broken frames are skipped: a bad length or data checksum is reported
// and the parser looks for the next start code (the failing byte itself is
// examined again, in case it starts the next frame). The postamble is not
// required. The zero value is ready.
type FrameParser struct {
	st   pnState
	n    byte // LEN
	body []byte
	sum  byte
}

// Feed consumes one byte and returns a frame when b completes one.
func (p *FrameParser) Feed(b byte) (f Frame, ok bool, err error) {
	switch p.st {
	case pnSync0:
		if b == 0x00 {
			p.st = pnSync1
		}
	case pnSync1:
		switch b {
		case 0xFF:
			p.st = pnLen
		case 0x00:
		default:
			p.st = pnSync0
		}
	case pnLen:
		p.n, p.st = b, pnLCS
	case pnLCS:
		switch {
		case p.n == 0x00 && b == 0xFF:
			p.st = pnSync0
			return Frame{Kind: FrameACK}, true, nil
		case p.n == 0xFF && b == 0x00:
			p.st = pnSync0
			return Frame{Kind: FrameNACK}, true, nil
		case p.n == 0xFF && b == 0xFF:
			p.st = pnSync0
			return Frame{}, false, ErrExtended
		case p.n+b != 0:
			return p.fail(b, ErrLenChecksum)
		case p.n == 0:
			return p.fail(b, ErrEmptyFrame)
		}
		p.body, p.sum, p.st = p.body[:0], 0, pnBody
	case pnBody:
		p.body = append(p.body, b)
		p.sum += b
		if len(p.body) == int(p.n) {
			p.st = pnDCS
		}
	case pnDCS:
		p.st = pnSync0
		if p.sum+b != 0 {
			return p.fail(b, ErrChecksum)
		}
		if p.n == 1 && p.body[0] == tfiError {
			return Frame{Kind: FrameError}, true, nil
		}
		data := append([]byte(nil), p.body[1:]...)
		return Frame{Kind: FrameInfo, TFI: p.body[0], Data: data}, true, nil
	}
	return Frame{}, false, nil
}

// fail drops the current frame and lets b start the next one.
func (p *FrameParser) fail(b byte, err error) (Frame, bool, error) {
	p.st = pnSync0
	if b == 0x00 {
		p.st = pnSync1
	}
	return Frame{}, false, err
}

// ParseTargetUID reads the first target's NFCID1 from an
// InListPassiveTarget (106 kbps type A) response, data after D5 4B:
//
//	NbTg | Tg | SENS_RES (2) | SEL_RES | NFCIDLength | NFCID1 ... | [ATS]
//
// It returns "" with no error when no target was found, and the UID as
// upper-case hex otherwise. NFCID1 must be 4, 7 or 10 bytes.
func ParseTargetUID(data []byte) (string, error) {
	if len(data) < 1 {
		return "", ErrBadUID
	}
	if data[0] == 0 {
		return "", nil
	}
	if len(data) < 6 {
		return "", ErrBadUID
	}
	n := int(data[5])
	if n != 4 && n != 7 && n != 10 || len(data) < 6+n {
		return "", ErrBadUID
	}
	const digits = "0123456789ABCDEF"
	uid := make([]byte, 0, 2*n)
	for _, b := range data[6 : 6+n] {
		uid = append(uid, digits[b>>4], digits[b&15])
	}
	return string(uid), nil
}
