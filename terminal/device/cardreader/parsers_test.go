package cardreader

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

type decoded struct {
	uids []string
	errs []error
}

// feed runs a Decoder one byte at a time.
func feed(d Decoder, in []byte) decoded {
	var r decoded
	for _, b := range in {
		uid, ok, err := d.Feed(b)
		if err != nil {
			r.errs = append(r.errs, err)
		}
		if ok {
			r.uids = append(r.uids, uid)
		}
	}
	return r
}

func checkDecoded(t *testing.T, got decoded, uids []string, errs []error) {
	t.Helper()
	if !slices.Equal(got.uids, uids) {
		t.Errorf("uids %q, want %q", got.uids, uids)
	}
	if len(got.errs) != len(errs) {
		t.Fatalf("errors %v, want %v", got.errs, errs)
	}
	for i := range errs {
		if !errors.Is(got.errs[i], errs[i]) {
			t.Errorf("error %d: %v, want %v", i, got.errs[i], errs[i])
		}
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestASCIIParser(t *testing.T) {
	tests := []struct {
		name string
		in   string
		uids []string
		errs []error
	}{
		{"hex CRLF", "04A1B2C3\r\n", []string{"04A1B2C3"}, nil},
		{"lower case upper-cased", "04a1b2c3d4e5f6\n", []string{"04A1B2C3D4E5F6"}, nil},
		{"separators removed", "04:A1:B2:C3\r04-A1-B2-C3\r04 A1 B2 C3\n", []string{"04A1B2C3", "04A1B2C3", "04A1B2C3"}, nil},
		{"decimal as-is", "0012345678\r\n", []string{"0012345678"}, nil},
		{"STX/ETX framing dropped", "\x020012345678\x03\r\n", []string{"0012345678"}, nil},
		{"blank lines ignored", "\r\n\n\r", nil, nil},
		{"bad char skips line, resync", "04A1ZZ\r\n04A1B2C3\n", []string{"04A1B2C3"}, []error{ErrBadChar}},
		{"too long skipped", "0123456789ABCDEF0123456789ABCDEF0\r\n99\n", []string{"99"}, []error{ErrTooLong}},
		{"32 digits is fine", "0123456789ABCDEF0123456789ABCDEF\n", []string{"0123456789ABCDEF0123456789ABCDEF"}, nil},
		{"unterminated waits", "04A1", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkDecoded(t, feed(&ASCIIParser{}, []byte(tc.in)), tc.uids, tc.errs)
		})
	}
}

// rdm is a valid RDM6300 frame for tag 0A 00 B1 C2 D3:
// XOR = 0A^00^B1^C2^D3 = 0xAA.
var rdm = cat(
	[]byte{0x02},         // STX
	[]byte("0A00B1C2D3"), // version 0A, tag number 00B1C2D3
	[]byte("AA"),         // XOR of the 5 data bytes
	[]byte{0x03},         // ETX
)

func TestRDM6300Parser(t *testing.T) {
	// 62E3086CED: XOR 62^E3^08^6C^ED = 0x08, the classic datasheet example.
	classic := cat([]byte{0x02}, []byte("62E3086CED08"), []byte{0x03})
	badSum := cat([]byte{0x02}, []byte("0A00B1C2D3AB"), []byte{0x03})
	lower := cat([]byte{0x02}, []byte("0a00b1c2d3aa"), []byte{0x03})
	tests := []struct {
		name string
		in   []byte
		uids []string
		errs []error
	}{
		{"one frame", rdm, []string{"0A00B1C2D3"}, nil},
		{"datasheet example", classic, []string{"62E3086CED"}, nil},
		{"lower-case hex accepted", lower, []string{"0A00B1C2D3"}, nil},
		{"repeated while present", cat(rdm, rdm, rdm), []string{"0A00B1C2D3", "0A00B1C2D3", "0A00B1C2D3"}, nil},
		{"noise between frames", cat([]byte{0xFF, 0x00, 'x', 0x03}, rdm, []byte("\r\n"), rdm), []string{"0A00B1C2D3", "0A00B1C2D3"}, nil},
		{"bad checksum skipped", cat(badSum, rdm), []string{"0A00B1C2D3"}, []error{ErrChecksum}},
		// A frame cut short by a new STX: the new frame is read.
		{"truncated then good", cat(rdm[:7], rdm), []string{"0A00B1C2D3"}, []error{ErrTruncated}},
		{"non-hex inside", cat([]byte{0x02, '0', 'G'}, rdm), []string{"0A00B1C2D3"}, []error{ErrBadChar}},
		{"missing ETX", cat(rdm[:13], []byte{'X'}, rdm), []string{"0A00B1C2D3"}, []error{ErrTruncated}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkDecoded(t, feed(&RDM6300Parser{}, tc.in), tc.uids, tc.errs)
		})
	}
}

// Annotated PN532 vectors (UM0701-02).
var (
	// SAMConfiguration normal mode, timeout 0x14, IRQ on.
	vecSAM = []byte{0x00, 0x00, 0xFF, 0x05, 0xFB, 0xD4, 0x14, 0x01, 0x14, 0x01, 0x02, 0x00}
	// InListPassiveTarget, MaxTg 1, 106 kbps type A.
	vecInList = []byte{0x00, 0x00, 0xFF, 0x04, 0xFC, 0xD4, 0x4A, 0x01, 0x00, 0xE1, 0x00}
	// GetFirmwareVersion response: PN532 v1.6, support 7 (datasheet example).
	vecFirmware = []byte{0x00, 0x00, 0xFF, 0x06, 0xFA, 0xD5, 0x03, 0x32, 0x01, 0x06, 0x07, 0xE8, 0x00}
	// SAMConfiguration response.
	vecSAMResp = []byte{0x00, 0x00, 0xFF, 0x02, 0xFE, 0xD5, 0x15, 0x16, 0x00}
	// InListPassiveTarget response: 1 target, Tg 1, SENS_RES 0004,
	// SEL_RES 08, NFCID1 length 4: DE AD BE EF.
	vecTarget = []byte{0x00, 0x00, 0xFF, 0x0C, 0xF4, 0xD5, 0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0x96, 0x00}
	// No target.
	vecNoTarget = []byte{0x00, 0x00, 0xFF, 0x03, 0xFD, 0xD5, 0x4B, 0x00, 0xE0, 0x00}
	vecACK      = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	vecNACK     = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
	vecError    = []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}
)

func TestEncodeFrame(t *testing.T) {
	if got := EncodeFrame(0xD4, []byte{0x14, 0x01, 0x14, 0x01}); !bytes.Equal(got, vecSAM) {
		t.Errorf("SAMConfiguration % X, want % X", got, vecSAM)
	}
	if got := EncodeFrame(0xD4, []byte{0x4A, 0x01, 0x00}); !bytes.Equal(got, vecInList) {
		t.Errorf("InListPassiveTarget % X, want % X", got, vecInList)
	}
	if got := EncodeFrame(0xD5, []byte{0x03, 0x32, 0x01, 0x06, 0x07}); !bytes.Equal(got, vecFirmware) {
		t.Errorf("firmware % X, want % X", got, vecFirmware)
	}
}

type frames struct {
	fs   []Frame
	errs []error
}

func feedFrames(in []byte) frames {
	var p FrameParser
	var r frames
	for _, b := range in {
		f, ok, err := p.Feed(b)
		if err != nil {
			r.errs = append(r.errs, err)
		}
		if ok {
			r.fs = append(r.fs, f)
		}
	}
	return r
}

func info(tfi byte, data ...byte) Frame { return Frame{Kind: FrameInfo, TFI: tfi, Data: data} }

func TestFrameParser(t *testing.T) {
	corruptDCS := slices.Clone(vecTarget)
	corruptDCS[17]++
	corruptLCS := slices.Clone(vecSAMResp)
	corruptLCS[4] = 0x00
	// Extended frame: 00 00 FF FF FF LENM LENL LCS TFI ... (not used here).
	extended := []byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0xFE, 0xD5, 0x15, 0x16, 0x00}
	tests := []struct {
		name string
		in   []byte
		fs   []Frame
		errs []error
	}{
		{"ACK", vecACK, []Frame{{Kind: FrameACK}}, nil},
		{"NACK", vecNACK, []Frame{{Kind: FrameNACK}}, nil},
		{"error frame", vecError, []Frame{{Kind: FrameError}}, nil},
		{"SAM response", vecSAMResp, []Frame{info(0xD5, 0x15)}, nil},
		{"firmware", vecFirmware, []Frame{info(0xD5, 0x03, 0x32, 0x01, 0x06, 0x07)}, nil},
		{"host command", vecInList, []Frame{info(0xD4, 0x4A, 0x01, 0x00)}, nil},
		{"ACK then response, back to back", cat(vecACK, vecTarget),
			[]Frame{{Kind: FrameACK}, info(0xD5, 0x4B, 0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xDE, 0xAD, 0xBE, 0xEF)}, nil},
		{"no postamble", cat(vecSAMResp[:8], vecACK), []Frame{info(0xD5, 0x15), {Kind: FrameACK}}, nil},
		{"long preamble and wake-up bytes", cat([]byte{0x55, 0x55, 0, 0, 0, 0, 0}, vecSAMResp), []Frame{info(0xD5, 0x15)}, nil},
		{"garbage then frame", cat([]byte{0xFF, 0x13, 0x00, 0x42, 0xFF}, vecNoTarget), []Frame{info(0xD5, 0x4B, 0x00)}, nil},
		{"bad data checksum, resync", cat(corruptDCS, vecNoTarget), []Frame{info(0xD5, 0x4B, 0x00)}, []error{ErrChecksum}},
		{"bad length checksum, resync", cat(corruptLCS, vecNoTarget), []Frame{info(0xD5, 0x4B, 0x00)}, []error{ErrLenChecksum}},
		{"truncated frame then ACK", cat(vecTarget[:9], vecACK), nil, nil},
		{"extended frame skipped", cat(extended, vecACK), []Frame{{Kind: FrameACK}}, []error{ErrExtended}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := feedFrames(tc.in)
			if len(got.fs) != len(tc.fs) {
				t.Fatalf("frames %+v, want %+v", got.fs, tc.fs)
			}
			for i := range tc.fs {
				g, w := got.fs[i], tc.fs[i]
				if g.Kind != w.Kind || g.TFI != w.TFI || !bytes.Equal(g.Data, w.Data) {
					t.Errorf("frame %d: %+v, want %+v", i, g, w)
				}
			}
			if len(got.errs) != len(tc.errs) {
				t.Fatalf("errors %v, want %v", got.errs, tc.errs)
			}
			for i := range tc.errs {
				if !errors.Is(got.errs[i], tc.errs[i]) {
					t.Errorf("error %d: %v, want %v", i, got.errs[i], tc.errs[i])
				}
			}
		})
	}
}

func TestParseTargetUID(t *testing.T) {
	uid7 := []byte{0x04, 0xA2, 0xB3, 0xC4, 0xD5, 0xE6, 0xF7}
	uid10 := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0A}
	tests := []struct {
		name string
		data []byte // after D5 4B
		uid  string
		err  error
	}{
		{"no target", []byte{0x00}, "", nil},
		{"4-byte MIFARE Classic", []byte{0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xDE, 0xAD, 0xBE, 0xEF}, "DEADBEEF", nil},
		{"7-byte Ultralight", cat([]byte{0x01, 0x01, 0x00, 0x44, 0x00, 0x07}, uid7), "04A2B3C4D5E6F7", nil},
		{"10-byte", cat([]byte{0x01, 0x01, 0x00, 0x44, 0x00, 0x0A}, uid10), "0102030405060708090A", nil},
		{"with ATS after UID", []byte{0x01, 0x01, 0x03, 0x44, 0x20, 0x04, 0x11, 0x22, 0x33, 0x44, 0x05, 0x78, 0x80, 0x70, 0x02}, "11223344", nil},
		{"empty", nil, "", ErrBadUID},
		{"short header", []byte{0x01, 0x01, 0x00}, "", ErrBadUID},
		{"length 5 invalid", []byte{0x01, 0x01, 0x00, 0x04, 0x08, 0x05, 1, 2, 3, 4, 5}, "", ErrBadUID},
		{"truncated UID", []byte{0x01, 0x01, 0x00, 0x44, 0x00, 0x07, 1, 2}, "", ErrBadUID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uid, err := ParseTargetUID(tc.data)
			if uid != tc.uid || !errors.Is(err, tc.err) {
				t.Fatalf("ParseTargetUID = %q, %v; want %q, %v", uid, err, tc.uid, tc.err)
			}
		})
	}
}

func TestPresence(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := Presence{Gap: time.Second}
	steps := []struct {
		uid  string
		ms   int
		want bool
	}{
		{"A", 0, true},
		{"A", 100, false}, // RDM6300 repeats while held
		{"A", 900, false},
		{"A", 1800, false}, // still held: 900 ms since the last frame
		{"B", 1850, true},  // another card
		{"A", 1900, true},  // A again after B: a new presentation
		{"A", 3000, true},  // 1.1 s of silence: taken away and tapped again
		{"A", 2000, true},  // clock stepped back
	}
	for i, s := range steps {
		if got := p.New(s.uid, at(s.ms)); got != s.want {
			t.Errorf("step %d: New(%q, +%dms) = %v, want %v", i, s.uid, s.ms, got, s.want)
		}
	}
}
