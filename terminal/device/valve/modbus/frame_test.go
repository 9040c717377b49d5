package modbus

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Byte-exact frames. The CRC is the last two bytes, low byte first.
var frameVectors = []struct {
	name  string
	frame Frame
	wire  string
}{
	// Modbus over Serial Line v1.02 example: slave 0x11, read 3 holding
	// registers from 0x006B.
	{"spec read holding", ReadRequest(0x11, FuncReadHoldingRegisters, 0x006B, 3), "11 03 006B 0003 7687"},
	// slave 1, read coil 0 (valve state).
	{"read coil 0", ReadRequest(1, FuncReadCoils, 0, 1), "01 01 0000 0001 FDCA"},
	// response: 1 byte of coils, bit 0 = 1 (open).
	{"coils open", BitsResponse(1, FuncReadCoils, []bool{true}), "01 01 01 01 9048"},
	{"coils closed", BitsResponse(1, FuncReadCoils, []bool{false}), "01 01 01 00 5188"},
	// 10 coils: bits LSB first, second byte carries coils 8 and 9.
	{"coils 10", BitsResponse(1, FuncReadCoils, []bool{true, false, true, false, false, false, false, true, false, true}), "01 01 02 85 02 " + crcHex("01 01 02 85 02")},
	// write coil 0 on (FF00) / off (0000); the response echoes the request.
	{"coil on", WriteSingleCoilRequest(1, 0, true), "01 05 0000 FF00 8C3A"},
	{"coil off", WriteSingleCoilRequest(1, 0, false), "01 05 0000 0000 CDCA"},
	// read the pulse counter: 2 input registers from 0.
	{"read input 0+2", ReadRequest(1, FuncReadInputRegisters, 0, 2), "01 04 0000 0002 71CB"},
	{"read holding 0+2", ReadRequest(1, FuncReadHoldingRegisters, 0, 2), "01 03 0000 0002 C40B"},
	{"read holding 0+10", ReadRequest(1, FuncReadHoldingRegisters, 0, 10), "01 03 0000 000A C5CD"},
	// counter 123456 = 0x0001E240: high word first.
	{"counter response", RegistersResponse(1, FuncReadInputRegisters, []uint16{0x0001, 0xE240}), "01 04 04 0001 E240 E314"},
	// exception 02 (illegal data address) to function 03.
	{"exception", ExceptionResponse(1, FuncReadHoldingRegisters, ExceptionIllegalDataAddress), "01 83 02 C0F1"},
}

func crcHex(s string) string {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	c := CRC(b)
	return hex.EncodeToString([]byte{byte(c), byte(c >> 8)})
}

func TestFrameVectors(t *testing.T) {
	for _, v := range frameVectors {
		t.Run(v.name, func(t *testing.T) {
			want := unhex(t, v.wire)
			if got := v.frame.Bytes(); !bytes.Equal(got, want) {
				t.Fatalf("encode = % X, want % X", got, want)
			}
			dir := Responses
			if v.name == "spec read holding" || strings.HasPrefix(v.name, "read ") || strings.HasPrefix(v.name, "coil ") {
				dir = Requests
			}
			got := feedAll(t, NewParser(dir), want)
			if len(got) != 1 {
				t.Fatalf("parsed %d frames, want 1", len(got))
			}
			if got[0].Slave != v.frame.Slave || got[0].Function != v.frame.Function || !bytes.Equal(got[0].Data, v.frame.Data) {
				t.Fatalf("parsed %v, want %v", got[0], v.frame)
			}
		})
	}
}

func TestCRC(t *testing.T) {
	// CRC-16/MODBUS check value over "123456789".
	if got := CRC([]byte("123456789")); got != 0x4B37 {
		t.Fatalf("CRC(123456789) = %04X, want 4B37", got)
	}
	if got := CRC(nil); got != 0xFFFF {
		t.Fatalf("CRC(nil) = %04X, want FFFF", got)
	}
}

// feedAll feeds b one byte at a time and fails on any error.
func feedAll(t *testing.T, p *Parser, b []byte) []Frame {
	t.Helper()
	var out []Frame
	for i, c := range b {
		f, ok, err := p.Feed(c)
		if err != nil {
			t.Fatalf("byte %d (%02X): %v", i, c, err)
		}
		if ok {
			out = append(out, f)
		}
	}
	return out
}

func TestParserStream(t *testing.T) {
	// Three responses back to back, fed byte at a time: the parser must
	// find each boundary from the function code and byte count alone.
	var stream []byte
	stream = append(stream, unhex(t, "01 01 01 01 9048")...)
	stream = append(stream, unhex(t, "01 04 04 0001 E240 E314")...)
	stream = append(stream, unhex(t, "01 83 02 C0F1")...)
	stream = append(stream, unhex(t, "01 05 0000 FF00 8C3A")...)
	got := feedAll(t, NewParser(Responses), stream)
	if len(got) != 4 {
		t.Fatalf("got %d frames, want 4", len(got))
	}
	if ex, ok := got[2].Exception(); !ok || ex != ExceptionIllegalDataAddress {
		t.Fatalf("frame 3 exception = %v %v", ex, ok)
	}
	// A multi-register write request has a byte count at offset 6.
	req := Frame{Slave: 7, Function: FuncWriteMultipleRegisters, Data: unhex(t, "0001 0002 04 000A 0102")}
	got = feedAll(t, NewParser(Requests), append(req.Bytes(), unhex(t, "01 05 0000 FF00 8C3A")...))
	if len(got) != 2 || !bytes.Equal(got[0].Data, req.Data) {
		t.Fatalf("got %v", got)
	}
}

func TestParserErrors(t *testing.T) {
	cases := []struct {
		name string
		dir  Direction
		wire string
		want error
	}{
		{"bad crc", Responses, "01 01 01 01 9049", ErrCRC},
		{"unknown function", Responses, "01 2B", ErrFrame},
		{"exception for 0", Responses, "01 80", ErrFrame},
		{"zero byte count", Responses, "01 03 00", ErrFrame},
		{"odd register bytes", Responses, "01 04 03", ErrFrame},
		{"too many registers", Responses, "01 03 FC", ErrFrame},
		{"unknown request", Requests, "01 07", ErrFrame},
		{"bad request crc", Requests, "01 05 0000 FF00 8C3B", ErrCRC},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewParser(c.dir)
			var err error
			for _, b := range unhex(t, c.wire) {
				if _, _, err = p.Feed(b); err != nil {
					break
				}
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if p.Buffered() != 0 {
				t.Fatalf("parser holds %d bytes after an error", p.Buffered())
			}
			// It resynchronises on the next good frame.
			good := ReadRequest(1, FuncReadCoils, 0, 1).Bytes()
			if c.dir == Responses {
				good = BitsResponse(1, FuncReadCoils, []bool{true}).Bytes()
			}
			if got := feedAll(t, p, good); len(got) != 1 {
				t.Fatalf("no frame after resync")
			}
		})
	}
}

func TestSilence(t *testing.T) {
	cases := []struct {
		baud int
		want time.Duration
	}{
		{9600, 4010416 * time.Nanosecond}, // 3.5 × 11 bits / 9600
		{19200, 2005208 * time.Nanosecond},
		{38400, 1750 * time.Microsecond}, // fixed above 19200
		{115200, 1750 * time.Microsecond},
	}
	for _, c := range cases {
		if got := Silence(c.baud); got != c.want {
			t.Errorf("Silence(%d) = %v, want %v", c.baud, got, c.want)
		}
	}
}

func TestExceptionError(t *testing.T) {
	var err error = ExceptionIllegalDataAddress
	if !strings.Contains(err.Error(), "illegal data address") {
		t.Fatal(err)
	}
	var ex Exception
	if !errors.As(error(Exception(0x42)), &ex) || !strings.Contains(ex.Error(), "unknown") {
		t.Fatal(ex)
	}
}

// FuzzParser feeds arbitrary bytes one at a time in both directions: it
// must never panic, never hold more than a frame, and every frame it
// returns must re-encode to the bytes it came from.
func FuzzParser(f *testing.F) {
	for _, v := range frameVectors {
		f.Add(unhex(f, v.wire))
	}
	f.Add(unhex(f, "00 FF 55 01 01 01 01 9048"))
	f.Add(unhex(f, "07 10 0001 0002 04 000A 0102 0000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, dir := range []Direction{Requests, Responses} {
			p := NewParser(dir)
			start := 0
			for i, c := range b {
				f, ok, err := p.Feed(c)
				if p.Buffered() > MaxADU {
					t.Fatalf("buffered %d", p.Buffered())
				}
				if err != nil {
					start = i + 1
					continue
				}
				if ok {
					if got := f.Bytes(); !bytes.Equal(got, b[start:i+1]) {
						t.Fatalf("frame %v re-encodes to % X, came from % X", f, got, b[start:i+1])
					}
					start = i + 1
				}
			}
		}
	})
}
