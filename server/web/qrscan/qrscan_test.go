package qrscan

import (
	"math/rand"
	"testing"
)

// render draws a module matrix as an RGBA frame with a quiet zone, scaled,
// optionally inverted and with pixel noise.
func render(size int, mods []byte, scale int, invert bool, noise int, r *rand.Rand) ([]byte, int) {
	n := (size + 8) * scale
	rgba := make([]byte, n*n*4)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			mx, my := x/scale-4, y/scale-4
			dark := mx >= 0 && my >= 0 && mx < size && my < size && mods[my*size+mx] == 1
			v := 255
			if dark != invert {
				v = 0
			}
			if noise > 0 {
				v += r.Intn(2*noise+1) - noise
				v = min(max(v, 0), 255)
			}
			i := (y*n + x) * 4
			rgba[i], rgba[i+1], rgba[i+2], rgba[i+3] = byte(v), byte(v), byte(v), 255
		}
	}
	return rgba, n
}

func TestEncodeDecode(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	text := "CM1:" + "8 9W2DK+AN1ZQ0KCCL$ZH:X0/5T*$G:7PA6N9:TD2*7FJ-DPB0CI.8LCNQ-6P5T4FDGIW:KPNSS7"
	for _, tc := range []struct {
		name   string
		invert bool
		noise  int
	}{{"plain", false, 0}, {"inverted", true, 0}, {"noisy", false, 60}} {
		size, mods, err := Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		rgba, n := render(size, mods, 4, tc.invert, tc.noise, r)
		got, err := DecodeRGBA(rgba, n, n)
		if err != nil || got != text {
			t.Fatalf("%s: %q %v", tc.name, got, err)
		}
	}
	if _, err := DecodeRGBA(make([]byte, 40), 10, 10); err == nil {
		t.Fatal("short buffer accepted")
	}
	blank := make([]byte, 64*64*4)
	if _, err := DecodeRGBA(blank, 64, 64); err != ErrNotFound {
		t.Fatalf("blank frame: %v", err)
	}
}

// TestEveryCodeReads draws wallet-code-shaped texts (the CW1 prefix and
// base45 to 276 characters, version 10-M) perfectly and reads each back.
// gozxing's single-QR reader alone misses about 2 % of them.
func TestEveryCodeReads(t *testing.T) {
	const base45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	r := rand.New(rand.NewSource(7))
	n := 300
	if testing.Short() {
		n = 60
	}
	for i := 0; i < n; i++ {
		b := []byte("CW1:")
		for len(b) < 276 {
			b = append(b, base45[r.Intn(len(base45))])
		}
		text := string(b)
		size, mods, err := Encode(text)
		if err != nil {
			t.Fatal(err)
		}
		rgba, w := render(size, mods, 4, false, 0, r)
		if got, err := DecodeRGBA(rgba, w, w); err != nil || got != text {
			t.Fatalf("code %d %q: read %q (%v)", i, text, got, err)
		}
	}
}
