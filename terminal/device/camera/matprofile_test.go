//go:build matprofile

package camera

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"gocv.io/x/gocv"

	hwcam "campuspay/hwsim/camera"
)

// TestNoMatLeak scans a file source to its end and halts: every Mat the
// driver, the decoder and the virtual camera created must be closed.
// Run with: go test -tags matprofile ./terminal/device/camera/
func TestNoMatLeak(t *testing.T) {
	base := gocv.MatProfile.Count()
	cam, err := hwcam.New(hwcam.Options{Blur: 1.2, Tilt: 20, Noise: 6})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := cam.WriteFrames(dir, 2); err != nil { // blank: every stage runs
		t.Fatal(err)
	}
	if err := cam.Show(wallet280); err != nil {
		t.Fatal(err)
	}
	pattern, err := cam.WriteFrames(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	// A sticker beside a blurred, tilted phone: regions, crops and the
	// fallback stages on them.
	multi, err := hwcam.New(hwcam.Options{CodeSize: 0.5, Poster: "CM1:STICKER", Blur: 1.6, Tilt: 30, Width: 1600, Height: 1200})
	if err != nil {
		t.Fatal(err)
	}
	if err := multi.Show(wallet280); err != nil {
		t.Fatal(err)
	}
	multiPattern, err := multi.WriteFrames(t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{dir + "/frame_%03d.png", pattern, multiPattern} {
		s, err := Open(Config{Source: src, Budget: -1, Now: newClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := s.Scan(context.Background()); err != nil {
				if !errors.Is(err, ErrEndOfStream) {
					t.Fatal(err)
				}
				break
			}
		}
		if err := s.Halt(); err != nil {
			t.Fatal(err)
		}
	}
	if got := gocv.MatProfile.Count(); got != base {
		var b bytes.Buffer
		gocv.MatProfile.WriteTo(&b, 1)
		t.Fatalf("Mat count %d, baseline %d: leaked Mats:\n%s", got, base, b.String())
	}
}
