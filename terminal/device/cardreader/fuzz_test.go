package cardreader

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func isUpperHex(s string) bool {
	return strings.Trim(s, "0123456789ABCDEF") == ""
}

// Whatever precedes it, a line break and a good line are read.
func FuzzASCIIParser(f *testing.F) {
	f.Add([]byte("04A1B2C3\r\n"))
	f.Add([]byte("04:a1:zz\n\x00\x02"))
	f.Add([]byte(strings.Repeat("F", 40)))
	f.Fuzz(func(t *testing.T, garbage []byte) {
		var p ASCIIParser
		got := feed(&p, garbage)
		for _, u := range got.uids {
			if u == "" || len(u) > MaxASCIIUID || !isUpperHex(u) {
				t.Fatalf("bad uid %q", u)
			}
		}
		got = feed(&p, []byte("\r\n04A1B2C3\r\n"))
		if n := len(got.uids); n == 0 || got.uids[n-1] != "04A1B2C3" {
			t.Fatalf("no resync after %q: %q", garbage, got.uids)
		}
	})
}

// Whatever precedes it, a good frame is read (STX always restarts).
func FuzzRDM6300Parser(f *testing.F) {
	f.Add([]byte{0x02, '0', 'A'})
	f.Add(rdm)
	f.Add(bytes.Repeat([]byte{0x02, 0x03}, 10))
	f.Fuzz(func(t *testing.T, garbage []byte) {
		var p RDM6300Parser
		got := feed(&p, garbage)
		for _, u := range got.uids {
			if len(u) != 10 || !isUpperHex(u) {
				t.Fatalf("bad uid %q", u)
			}
		}
		got = feed(&p, rdm)
		if len(got.uids) != 1 || got.uids[0] != "0A00B1C2D3" {
			t.Fatalf("no resync after % X: %q %v", garbage, got.uids, got.errs)
		}
	})
}

// Frames round-trip, and after any garbage and an idle line (zeros) the
// next good frame is read.
func FuzzFrameParser(f *testing.F) {
	f.Add([]byte{}, []byte{0x4B, 0x00})
	f.Add(vecTarget, []byte{0x15})
	f.Add(cat(vecACK, vecNACK, vecError), []byte{0x03, 0x32})
	f.Add([]byte{0x00, 0xFF, 0x80, 0x80, 0xD5}, []byte{})
	f.Add([]byte{0x00, 0x00, 0xFF, 0xFF, 0xFF, 0x01}, bytes.Repeat([]byte{0xAA}, 253))
	f.Fuzz(func(t *testing.T, garbage, data []byte) {
		var p FrameParser
		for _, b := range garbage {
			if fr, ok, _ := p.Feed(b); ok && len(fr.Data) > 254 {
				t.Fatalf("frame longer than LEN allows: %d", len(fr.Data))
			}
		}
		// An idle line: enough zeros to finish any frame in progress.
		for range 300 {
			p.Feed(0x00)
		}
		if len(data) > 254 {
			data = data[:254]
		}
		var last Frame
		var n int
		for _, b := range EncodeFrame(0xD5, data) {
			if fr, ok, _ := p.Feed(b); ok {
				last, n = fr, n+1
			}
		}
		if n != 1 || last.Kind != FrameInfo || last.TFI != 0xD5 || !bytes.Equal(last.Data, data) {
			// A zero-length data with TFI 7F would be the error frame; D5 never is.
			t.Fatalf("after garbage % X: got %d frames, last %+v, want data % X", garbage, n, last, data)
		}
	})
}

func FuzzParseTargetUID(f *testing.F) {
	f.Add([]byte{0x01, 0x01, 0x00, 0x04, 0x08, 0x04, 0xDE, 0xAD, 0xBE, 0xEF})
	f.Add([]byte{0x00})
	f.Add([]byte{0x02, 0x01, 0x00, 0x44, 0x00, 0x0A, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		uid, err := ParseTargetUID(data)
		if err != nil {
			return
		}
		switch len(uid) {
		case 0, 8, 14, 20:
		default:
			t.Fatalf("uid %q has a length no NFCID1 has", uid)
		}
		if uid != "" {
			raw, _ := hex.DecodeString(uid)
			if !bytes.Equal(raw, data[6:6+len(raw)]) {
				t.Fatalf("uid %q is not the NFCID1 in % X", uid, data)
			}
		}
	})
}
