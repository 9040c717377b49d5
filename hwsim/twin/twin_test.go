package twin

import (
	"bytes"
	"testing"
)

// chunks records each Write separately.
type chunks struct{ writes [][]byte }

func (c *chunks) Write(b []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}

func TestWireSplitsAndGarbles(t *testing.T) {
	var c chunks
	w := NewWire(&c, Noise{Garbage: 5, GarbageBytes: []byte{0xEE}, Split: 3})
	frame := []byte("0123456789ABCDEF")
	if err := w.Send(frame); err != nil {
		t.Fatal(err)
	}
	all := bytes.Join(c.writes, nil)
	g := bytes.IndexByte(all, '0')
	if g < 1 || g > 5 || !bytes.Equal(all[:g], bytes.Repeat([]byte{0xEE}, g)) {
		t.Fatalf("garbage prefix % X", all[:max(g, 0)])
	}
	if !bytes.Equal(all[g:], frame) {
		t.Fatalf("frame changed: %q", all[g:])
	}
	for i, wr := range c.writes[1:] {
		if len(wr) < 1 || len(wr) > 3 {
			t.Fatalf("chunk %d has %d bytes, want 1..3", i, len(wr))
		}
	}
}

func TestWireClean(t *testing.T) {
	var c chunks
	w := NewWire(&c, Noise{})
	w.Send([]byte("abc"))
	w.SendRaw([]byte("de"))
	if len(c.writes) != 2 || string(c.writes[0]) != "abc" || string(c.writes[1]) != "de" {
		t.Fatalf("writes %q", c.writes)
	}
}
