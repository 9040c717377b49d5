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

// BenchmarkIdleFrame is what an idle scanner costs per frame: a whole
// Decode call with the camera's default 80 ms budget on camera frames with
// nothing in view (640×480 to 12 megapixels, noise, moiré), beside the
// pipeline before candidate regions ("before": every frame met the
// fallbacks until the budget ran out) and plain gozxing on the same frames.
// time_x_before below 1 is the saving.
func BenchmarkIdleFrame(b *testing.B) {
	var frames []gocv.Mat
	for _, o := range []hwcam.Options{{}, {Noise: 20, Glare: 0.8}, {Moire: 0.6, Noise: 6},
		{Width: 1280, Height: 720, Noise: 8}, {Width: 4000, Height: 3000, Noise: 4}} {
		cam, err := hwcam.New(o)
		if err != nil {
			b.Fatal(err)
		}
		for n := range 2 {
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
	const budget = 80 * time.Millisecond // camera.Config's default
	d := newDecoder(b, Options{Budget: budget})
	before := newDecoder(b, Options{Budget: budget})
	before.legacy = true
	var tPlain, tPipe, tBefore time.Duration
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
			d.Decode(f)
			t2 := time.Now()
			before.Decode(f)
			tPlain += t1.Sub(t0)
			tPipe += t2.Sub(t1)
			tBefore += time.Since(t2)
			n++
		}
	}
	ms := func(t time.Duration) float64 { return float64(t.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(ms(tPlain), "plain_ms/frame")
	b.ReportMetric(ms(tPipe), "pipeline_ms/frame")
	b.ReportMetric(ms(tBefore), "before_ms/frame")
	if tBefore > 0 {
		b.ReportMetric(float64(tPipe)/float64(tBefore), "time_x_before")
	}
	if tPlain > 0 {
		b.ReportMetric(float64(tPipe)/float64(tPlain), "time_x_plain")
	}
}

// BenchmarkPhotos decodes, per image set (zxing-cpp's samples) and per
// category of the real-photo-like set (photoSet), every image once per
// pass with plain gozxing and with the pipeline as the terminal runs it
// (one Decode call, the camera's default 80 ms budget), and — when
// Debian's zxing-cpp reader (ZXingReader, zxing-cpp-tools) is installed —
// with zxing-cpp in one process run over the set's PNG files. It reports
// images with at least one right code (first pass) and ms per image;
// zxing-cpp's time includes reading the PNG files and starting the
// process. For photos with several codes, *_all counts images with every
// code read.
func BenchmarkPhotos(b *testing.B) {
	type set struct {
		name string
		imgs []photo
	}
	var sets []set
	for _, name := range []string{"qrcode-1", "qrcode-2", "qrcode-3", "code128-1"} {
		var imgs []photo
		for _, s := range loadSamples(b, name) {
			m := gocv.IMRead(s.path, gocv.IMReadGrayScale)
			imgs = append(imgs, photo{cat: name, m: m, want: []string{s.want}})
		}
		b.Cleanup(func() {
			for _, p := range imgs {
				p.m.Close()
			}
		})
		sets = append(sets, set{"samples/" + name, imgs})
	}
	byCat := map[string][]photo{}
	for _, p := range photoSet(b) {
		byCat[p.cat] = append(byCat[p.cat], p)
	}
	for _, c := range photoCats {
		sets = append(sets, set{"photos/" + c, byCat[c]})
	}
	for _, st := range sets {
		b.Run(st.name, func(b *testing.B) {
			plain, pipe, cpp := newTally(), newTally(), newTally()
			t0 := time.Now()
			cppGot, haveCPP := zxingCPP(b, mats(st.imgs))
			tCPP := time.Since(t0)
			if haveCPP {
				for i, p := range st.imgs {
					cpp.add(p, cppGot[i])
				}
			}
			d := newDecoder(b, Options{Budget: 80 * time.Millisecond})
			var tPlain, tPipe time.Duration
			n, pass := 0, 0
			for b.Loop() {
				for _, p := range st.imgs {
					buf, err := p.m.DataPtrUint8()
					if err != nil {
						b.Fatal(err)
					}
					t0 := time.Now()
					ps, _ := Plain(buf, p.m.Cols(), p.m.Rows())
					t1 := time.Now()
					qs, _ := d.Decode(p.m)
					tPlain += t1.Sub(t0)
					tPipe += time.Since(t1)
					n++
					if pass == 0 {
						plain.add(p, texts(ps))
						pipe.add(p, texts(qs))
					}
				}
				pass++
			}
			c := st.imgs[0].cat
			ms := func(t time.Duration, n int) float64 { return float64(t.Microseconds()) / 1000 / float64(n) }
			b.ReportMetric(float64(len(st.imgs)), "images")
			b.ReportMetric(float64(plain.any[c]), "plain_read")
			b.ReportMetric(float64(pipe.any[c]), "pipeline_read")
			b.ReportMetric(float64(pipe.misread[c]), "pipeline_misreads")
			b.ReportMetric(ms(tPlain, n), "plain_ms/img")
			b.ReportMetric(ms(tPipe, n), "pipeline_ms/img")
			if c == "multi" {
				b.ReportMetric(float64(pipe.all[c]), "pipeline_all")
				b.ReportMetric(float64(cpp.all[c]), "zxingcpp_all")
			}
			if haveCPP {
				b.ReportMetric(float64(cpp.any[c]), "zxingcpp_read")
				b.ReportMetric(ms(tCPP, len(st.imgs)), "zxingcpp_ms/img")
			}
		})
	}
}
