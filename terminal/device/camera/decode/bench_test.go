package decode

import (
	"testing"
	"time"

	"gocv.io/x/gocv"

	hwcam "campuspay/hwsim/camera"
)

type benchImage struct {
	m    gocv.Mat // gray
	want string
}

// benchSets loads the images the benchmark decodes: zxing-cpp's samples
// and virtual-camera frames of a phone showing a 280-character wallet code
// in the hard cases (defocus, steep tilt, noise, glare).
func benchSets(b *testing.B) map[string][]benchImage {
	sets := map[string][]benchImage{}
	for _, set := range []string{"qrcode-1", "qrcode-2", "qrcode-3", "code128-1"} {
		for _, s := range loadSamples(b, set) {
			m := gocv.IMRead(s.path, gocv.IMReadGrayScale)
			sets["samples"] = append(sets["samples"], benchImage{m, s.want})
		}
	}
	wallet := "CW1:" + wallet276
	for _, o := range []hwcam.Options{
		{Blur: 2}, {Blur: 2.2}, {Tilt: 35}, {Tilt: 45}, {Blur: 1.5, Tilt: 30},
		{Blur: 1.5, Tilt: 30, Rotate: 20, Noise: 8, Glare: 0.4}, {CodeSize: 0.3}, {Noise: 20, Glare: 0.8},
		{Moire: 0.6, Rotate: 7}, {Moire: 0.5, Blur: 1, Tilt: 20, Noise: 6, Glare: 0.3},
	} {
		cam, err := hwcam.New(o)
		if err != nil {
			b.Fatal(err)
		}
		if err := cam.Show(wallet); err != nil {
			b.Fatal(err)
		}
		for n := range 3 {
			f, err := cam.Frame(n)
			if err != nil {
				b.Fatal(err)
			}
			g := gocv.NewMat()
			gocv.CvtColor(f, &g, gocv.ColorBGRToGray)
			f.Close()
			sets["camera"] = append(sets["camera"], benchImage{g, wallet})
		}
	}
	b.Cleanup(func() {
		for _, imgs := range sets {
			for _, im := range imgs {
				im.m.Close()
			}
		}
	})
	return sets
}

// wallet276 completes "CW1:" to a 280-character base45-style payload.
const wallet276 = "6BFOXN*TS0BI$ZDFRH%:PL5N6F1UA+WD0:/AGBV9.6SS$D2K0ZIOKWF6BFOXN*TS0BI$ZDFRH%:PL5N6F1UA+WD0:/AGBV9.6SS$D2K0ZIOKWF" +
	"6BFOXN*TS0BI$ZDFRH%:PL5N6F1UA+WD0:/AGBV9.6SS$D2K0ZIOKWF6BFOXN*TS0BI$ZDFRH%:PL5N6F1UA+WD0:/AGBV9.6SS$D2K0ZIOKWF" +
	"6BFOXN*TS0BI$ZDFRH%:PL5N6F1UA+WD0:/AGBV9.6SS$D2K0ZIOKW"

// BenchmarkDecode decodes the same images with plain gozxing, the
// pipeline and the pipeline with wechat_qrcode, and reports each one's
// decode rate and time per image, and the pipeline's ratios to plain.
func BenchmarkDecode(b *testing.B) {
	sets := benchSets(b)
	d := newDecoder(b, Options{})
	dw := newDecoder(b, Options{WeChat: true})
	for _, name := range []string{"samples", "camera"} {
		imgs := sets[name]
		b.Run(name, func(b *testing.B) {
			var tPlain, tPipe, tWeChat time.Duration
			var okPlain, okPipe, okWeChat, n int
			for b.Loop() {
				for _, im := range imgs {
					buf, err := im.m.DataPtrUint8()
					if err != nil {
						b.Fatal(err)
					}
					t0 := time.Now()
					p, _ := Plain(buf, im.m.Cols(), im.m.Rows())
					t1 := time.Now()
					q, _ := d.Decode(im.m)
					t2 := time.Now()
					w, _ := dw.Decode(im.m)
					t3 := time.Now()
					tPlain += t1.Sub(t0)
					tPipe += t2.Sub(t1)
					tWeChat += t3.Sub(t2)
					n++
					if matches(p, im.want) {
						okPlain++
					}
					if matches(q, im.want) {
						okPipe++
					}
					if matches(w, im.want) {
						okWeChat++
					}
				}
			}
			perImg := func(t time.Duration) float64 { return float64(t.Microseconds()) / 1000 / float64(n) }
			pct := func(ok int) float64 { return 100 * float64(ok) / float64(n) }
			b.ReportMetric(pct(okPlain), "plain_%")
			b.ReportMetric(pct(okPipe), "pipeline_%")
			b.ReportMetric(pct(okWeChat), "pipeline+wechat_%")
			b.ReportMetric(perImg(tPlain), "plain_ms/img")
			b.ReportMetric(perImg(tPipe), "pipeline_ms/img")
			b.ReportMetric(perImg(tWeChat), "pipeline+wechat_ms/img")
			if okPlain > 0 {
				b.ReportMetric(float64(okPipe)/float64(okPlain), "decoded_x_plain")
			}
			if tPlain > 0 {
				b.ReportMetric(float64(tPipe)/float64(tPlain), "time_x_plain")
			}
		})
	}
}

// BenchmarkIdleFrame is what an idle scanner costs: the first stage (the
// one every frame meets) on camera frames with nothing in view, beside
// plain gozxing on the same frames. The first stage adds the multi-QR
// reader when the single reader finds nothing, so its ratio is above 1.
func BenchmarkIdleFrame(b *testing.B) {
	var frames []gocv.Mat
	for _, o := range []hwcam.Options{{}, {Noise: 20, Glare: 0.8}, {Moire: 0.6, Noise: 6}} {
		cam, err := hwcam.New(o)
		if err != nil {
			b.Fatal(err)
		}
		for n := range 3 {
			f, err := cam.Frame(n)
			if err != nil {
				b.Fatal(err)
			}
			g := gocv.NewMat()
			gocv.CvtColor(f, &g, gocv.ColorBGRToGray)
			f.Close()
			frames = append(frames, g)
		}
	}
	b.Cleanup(func() {
		for _, f := range frames {
			f.Close()
		}
	})
	d := newDecoder(b, Options{})
	var tPlain, tFirst time.Duration
	n := 0
	for b.Loop() {
		for _, f := range frames {
			buf, err := f.DataPtrUint8()
			if err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			Plain(buf, f.Cols(), f.Rows())
			t1 := time.Now()
			d.stages[0].run(d, f)
			tPlain += t1.Sub(t0)
			tFirst += time.Since(t1)
			n++
		}
	}
	b.ReportMetric(float64(tPlain.Microseconds())/1000/float64(n), "plain_ms/frame")
	b.ReportMetric(float64(tFirst.Microseconds())/1000/float64(n), "first_stage_ms/frame")
	if tPlain > 0 {
		b.ReportMetric(float64(tFirst)/float64(tPlain), "time_x_plain")
	}
}
