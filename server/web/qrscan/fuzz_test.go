package qrscan

import (
	"math/rand"
	"testing"
)

// FuzzDecodeGray feeds arbitrary frames (camera pixels are outside bytes)
// to the decoder: it must never panic, and whatever it reads must be
// encodable text.
func FuzzDecodeGray(f *testing.F) {
	size, mods, err := Encode("CM1:SEED")
	if err != nil {
		f.Fatal(err)
	}
	rgba, n := render(size, mods, 2, false, 0, rand.New(rand.NewSource(1)))
	gray := make([]byte, n*n)
	for i := range gray {
		gray[i] = rgba[i*4]
	}
	f.Add(gray, n)
	f.Add(make([]byte, 16*16), 16)
	f.Add([]byte{0, 255, 0, 255}, 2)
	f.Fuzz(func(t *testing.T, lum []byte, w int) {
		if w <= 0 || w > 512 || len(lum) < w {
			return
		}
		h := len(lum) / w
		text, err := DecodeGray(lum[:w*h], w, h)
		if err == nil {
			if _, _, err := Encode(text); err != nil {
				t.Fatalf("decoded %q cannot be encoded again: %v", text, err)
			}
		}
	})
}

// FuzzDecodeRGBA checks the size checks of the RGBA entry point.
func FuzzDecodeRGBA(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, 1, 1)
	f.Add([]byte{}, 0, 0)
	f.Add(make([]byte, 8*8*4), 8, 9)
	f.Fuzz(func(t *testing.T, rgba []byte, w, h int) {
		if w > 256 || h > 256 {
			return
		}
		_, _ = DecodeRGBA(rgba, w, h)
	})
}
