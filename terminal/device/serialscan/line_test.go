package serialscan

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

type lineResult struct {
	lines []string
	errs  []error
}

// feedAll feeds in one byte at a time, as a slow line would deliver it.
func feedAll(p *LineParser, in []byte) lineResult {
	var r lineResult
	for _, b := range in {
		line, ok, err := p.Feed(b)
		if err != nil {
			r.errs = append(r.errs, err)
		}
		if ok {
			r.lines = append(r.lines, line)
		}
	}
	return r
}

func TestLineParser(t *testing.T) {
	long := bytes.Repeat([]byte("A"), 20)
	tests := []struct {
		name  string
		max   int
		in    []byte
		lines []string
		errs  []error
	}{
		{"CR", 0, []byte("CW1:ABC\r"), []string{"CW1:ABC"}, nil},
		{"LF", 0, []byte("CW1:ABC\n"), []string{"CW1:ABC"}, nil},
		{"CRLF is one line", 0, []byte("CW1:ABC\r\n"), []string{"CW1:ABC"}, nil},
		{"two lines mixed endings", 0, []byte("A1\nB2\r\nC3\r"), []string{"A1", "B2", "C3"}, nil},
		{"blank lines ignored", 0, []byte("\r\n\r\n\n\rX\r\n"), []string{"X"}, nil},
		{"no terminator yet", 0, []byte("partial"), nil, nil},
		{"NULs dropped", 0, []byte("\x00\x00AB\x00C\r\n"), []string{"ABC"}, nil},
		// 0x02/0x03 framing and BEL are noise; GS (FNC1 in GS1 codes) is data.
		{"controls dropped, GS kept", 0, []byte("\x02(01)123\x1d(10)X\x07\x03\r"), []string{"(01)123\x1d(10)X"}, nil},
		{"DEL dropped", 0, []byte("A\x7fB\n"), []string{"AB"}, nil},
		{"UTF-8 kept", 0, []byte("付款码\n"), []string{"付款码"}, nil},
		{"invalid UTF-8 line skipped", 0, []byte("\xff\xfe\x80\r\nOK\r\n"), []string{"OK"}, []error{ErrBadText}},
		// max 10: 20 bytes overflow, reported once at the terminator; the
		// next line is read normally.
		{"overflow skipped then resync", 10, append(append(long, "\r\n"...), "NEXT\n"...), []string{"NEXT"}, []error{ErrLineTooLong}},
		{"exactly max is fine", 4, []byte("ABCD\n"), []string{"ABCD"}, nil},
		{"max+1 overflows", 4, []byte("ABCDE\nok\n"), []string{"ok"}, []error{ErrLineTooLong}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := LineParser{Max: tc.max}
			r := feedAll(&p, tc.in)
			if !equalStrings(r.lines, tc.lines) {
				t.Errorf("lines %q, want %q", r.lines, tc.lines)
			}
			if len(r.errs) != len(tc.errs) {
				t.Fatalf("errors %v, want %v", r.errs, tc.errs)
			}
			for i := range r.errs {
				if !errors.Is(r.errs[i], tc.errs[i]) {
					t.Errorf("error %d: %v, want %v", i, r.errs[i], tc.errs[i])
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLineParserReset(t *testing.T) {
	var p LineParser
	feedAll(&p, []byte("stale-half"))
	p.Reset()
	if r := feedAll(&p, []byte("fresh\n")); !equalStrings(r.lines, []string{"fresh"}) {
		t.Fatalf("after Reset: %q", r.lines)
	}
}

func TestDedup(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	d := Dedup{Window: 2 * time.Second}
	steps := []struct {
		text string
		ms   int
		want bool
	}{
		{"A", 0, true},
		{"A", 500, false},  // continuous-mode repeat
		{"B", 600, true},   // another code is not suppressed
		{"A", 2400, false}, // within 2 s of its last sighting (500 ms)
		{"A", 4500, true},  // 2.1 s after the last sighting: a new scan
		{"B", 4500, true},
		{"A", 1000, true}, // the clock stepped back: never suppress forever
	}
	for i, s := range steps {
		if got := d.Fresh(s.text, at(s.ms)); got != s.want {
			t.Errorf("step %d: Fresh(%q, +%dms) = %v, want %v", i, s.text, s.ms, got, s.want)
		}
	}
}

// The parser never panics, and every line it yields is non-empty, within
// the limit and free of terminators and NULs.
func FuzzLineParser(f *testing.F) {
	f.Add([]byte("CW1:ABC\r\n"), uint8(3))
	f.Add([]byte("\x00\x00A\rB\n\nC"), uint8(1))
	f.Add(append(bytes.Repeat([]byte("Z"), 600), "\r\nok\n"...), uint8(7))
	f.Add([]byte("\xff\xfe\r\n付款码\n"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, max uint8) {
		var one LineParser
		one.Max = int(max)
		r := feedAll(&one, in)
		limit := int(max)
		if limit == 0 {
			limit = DefaultMaxLine
		}
		for _, l := range r.lines {
			if l == "" || len(l) > limit || bytes.ContainsAny([]byte(l), "\r\n\x00") {
				t.Fatalf("bad line %q (max %d)", l, limit)
			}
		}
	})
}
