package decode

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

const samplesDir = "/work/shared/testdata/zxing-cpp-samples"

type sample struct {
	set, path, want string
}

func loadSamples(t testing.TB, set string) []sample {
	t.Helper()
	dir := filepath.Join(samplesDir, set)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("samples: %v", err)
	}
	var out []sample
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if ext != ".png" && ext != ".webp" && ext != ".jpg" {
			continue
		}
		stem := strings.TrimSuffix(e.Name(), ext)
		want, err := os.ReadFile(filepath.Join(dir, stem+".txt"))
		if err != nil {
			continue
		}
		out = append(out, sample{set, filepath.Join(dir, e.Name()), string(want)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// escapeNonGraphical mirrors zxing-cpp's comparison: control characters
// become <NUL>..<US>, <DEL>.
func escapeNonGraphical(s string) string {
	names := []string{"NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR", "SO", "SI",
		"DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "FS", "GS", "RS", "US"}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 32:
			b.WriteString("<" + names[r] + ">")
		case r == 127:
			b.WriteString("<DEL>")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func matches(got []Symbol, want string) bool {
	for _, s := range got {
		if escapeNonGraphical(s.Text) == escapeNonGraphical(want) {
			return true
		}
	}
	return false
}

func TestScratchStages(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	d := New(Options{})
	defer d.Close()
	for _, set := range []string{"qrcode-1", "qrcode-2", "qrcode-3", "code128-1"} {
		for _, s := range loadSamples(t, set) {
			m := gocv.IMRead(s.path, gocv.IMReadGrayScale)
			var hits []string
			for _, st := range pipeline {
				if matches(st.run(d, m), s.want) {
					hits = append(hits, st.name)
				}
			}
			m.Close()
			fmt.Printf("%-10s %-40s %v\n", set, filepath.Base(s.path), hits)
		}
	}
}
