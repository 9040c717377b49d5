package decode

import (
	"testing"

	"gocv.io/x/gocv"

	hwcam "campuspay/hwsim/camera"
)

// TestVirtualCameraLimits films a phone showing a 280-character wallet
// code (QR version 10, EC M) with hwsim's virtual camera at 640×480, the
// code 288 px tall (~4.4 px per module), and counts how many of 4 frames
// plain gozxing and the pipeline read. The pipeline's counts are floors;
// the "limit" rows document where it gives up.
func TestVirtualCameraLimits(t *testing.T) {
	const frames = 4
	cases := []struct {
		name string
		opts hwcam.Options
		min  int // pipeline floor out of frames
	}{
		{"defocus σ2.0", hwcam.Options{Blur: 2}, 4},
		{"defocus σ2.2", hwcam.Options{Blur: 2.2}, 4},
		{"defocus σ2.5 (limit)", hwcam.Options{Blur: 2.5}, 3},
		{"tilt 35°", hwcam.Options{Tilt: 35}, 4},
		{"tilt 45° (limit)", hwcam.Options{Tilt: 45}, 1},
		{"noise σ20 + glare 0.8", hwcam.Options{Noise: 20, Glare: 0.8}, 4},
		{"screen moiré 0.6 + roll 7°", hwcam.Options{Moire: 0.6, Rotate: 7}, 4},
		{"moiré + blur 1 + tilt 20° + noise + glare", hwcam.Options{Moire: 0.5, Blur: 1, Tilt: 20, Noise: 6, Glare: 0.3}, 4},
		{"small: 2 px/module", hwcam.Options{CodeSize: 0.3}, 3},
		{"blur 1.5 + tilt 30°", hwcam.Options{Blur: 1.5, Tilt: 30}, 4},
		{"blur 1.5 + tilt 30° + roll 20° + noise 8 + glare", hwcam.Options{Blur: 1.5, Tilt: 30, Rotate: 20, Noise: 8, Glare: 0.4}, 3},
		{"blur 2 + tilt 35° + noise 10 + glare (beyond)", hwcam.Options{Blur: 2, Tilt: 35, Noise: 10, Glare: 0.5}, 0},
	}
	want := "CW1:" + wallet276
	d := newDecoder(t, Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cam, err := hwcam.New(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := cam.Show(want); err != nil {
				t.Fatal(err)
			}
			plain, ours := 0, 0
			for n := range frames {
				f, err := cam.Frame(n)
				if err != nil {
					t.Fatal(err)
				}
				g := gocv.NewMat()
				gocv.CvtColor(f, &g, gocv.ColorBGRToGray)
				f.Close()
				buf, err := g.DataPtrUint8()
				if err != nil {
					t.Fatal(err)
				}
				p, _ := Plain(buf, g.Cols(), g.Rows())
				got, err := d.Decode(g)
				g.Close()
				if err != nil {
					t.Fatal(err)
				}
				if matches(p, want) {
					plain++
				}
				if matches(got, want) {
					ours++
				}
			}
			t.Logf("plain gozxing %d/%d  pipeline %d/%d", plain, frames, ours, frames)
			if ours < c.min {
				t.Errorf("pipeline read %d/%d frames, floor %d", ours, frames, c.min)
			}
		})
	}
}
