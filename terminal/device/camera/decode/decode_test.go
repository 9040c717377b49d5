package decode

import (
	"math/rand"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
	"gocv.io/x/gocv"
)

func newDecoder(t testing.TB, opts Options) *Decoder {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// qrGray renders text as a QR code (EC M, 4-module quiet zone) with
// module-pixel modules, dark on light; invert flips it.
func qrGray(t testing.TB, text string, module int, invert bool) gocv.Mat {
	t.Helper()
	hints := map[gozxing.EncodeHintType]interface{}{gozxing.EncodeHintType_ERROR_CORRECTION: "M"}
	bm, err := qrcode.NewQRCodeWriter().Encode(text, gozxing.BarcodeFormat_QR_CODE, 0, 0, hints)
	if err != nil {
		t.Fatal(err)
	}
	return bitsToMat(t, bm, module, invert)
}

func bitsToMat(t testing.TB, bm *gozxing.BitMatrix, module int, invert bool) gocv.Mat {
	t.Helper()
	w, h := bm.GetWidth()*module, bm.GetHeight()*module
	buf := make([]byte, w*h)
	for y := range h {
		for x := range w {
			dark := bm.Get(x/module, y/module) != invert
			if !dark {
				buf[y*w+x] = 255
			}
		}
	}
	m, err := gocv.NewMatFromBytes(h, w, gocv.MatTypeCV8U, buf)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Clone() // own the pixels in C memory
	m.Close()
	return c
}

func TestDecodeKinds(t *testing.T) {
	code128, err := oned.NewCode128Writer().Encode("TERM-0042", gozxing.BarcodeFormat_CODE_128, 300, 80, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, want, format string
		mat                func(t *testing.T) gocv.Mat
	}{
		{"qr", "HELLO CAMPUS", "QR_CODE", func(t *testing.T) gocv.Mat { return qrGray(t, "HELLO CAMPUS", 4, false) }},
		{"qr inverted", "DARK MODE", "QR_CODE", func(t *testing.T) gocv.Mat { return qrGray(t, "DARK MODE", 4, true) }},
		{"code128", "TERM-0042", "CODE_128", func(t *testing.T) gocv.Mat { return bitsToMat(t, code128, 1, false) }},
		{"qr bgr", "COLOUR", "QR_CODE", func(t *testing.T) gocv.Mat {
			g := qrGray(t, "COLOUR", 4, false)
			defer g.Close()
			c := gocv.NewMat()
			gocv.CvtColor(g, &c, gocv.ColorGrayToBGR)
			return c
		}},
	}
	d := newDecoder(t, Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.mat(t)
			defer m.Close()
			got, err := d.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Text != c.want || got[0].Format != c.format {
				t.Fatalf("got %+v, want %q %s", got, c.want, c.format)
			}
		})
	}
}

// TestFirstStageReadsEveryCode draws wallet-code-shaped texts (the CW1
// prefix and base45 to 276 characters, version 10-M) cleanly at the
// virtual camera's scale and reads each in the first stage alone, so a
// student's code is never left to the fallbacks (or to a refresh) just
// because of its content.
func TestFirstStageReadsEveryCode(t *testing.T) {
	const base45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
	r := rand.New(rand.NewSource(7))
	n := 200
	if testing.Short() {
		n = 40
	}
	d := newDecoder(t, Options{})
	for i := 0; i < n; i++ {
		b := []byte("CW1:")
		for len(b) < 276 {
			b = append(b, base45[r.Intn(len(base45))])
		}
		text := string(b)
		m := qrGray(t, text, 4, false)
		got := d.stages[0].run(d, m)
		m.Close()
		if len(got) != 1 || got[0].Text != text {
			t.Fatalf("code %d %q: first stage read %+v", i, text, got)
		}
	}
}

// TestBudget: with a clock that jumps a second per reading and a 1 ns
// budget each call runs plain gozxing and one fallback stage, resuming
// where the previous call stopped, so the inverted code (read by the
// "invert" stage) is found on the call that reaches that stage, and the
// next call starts there again. Without a budget the first call finds it.
func TestBudget(t *testing.T) {
	m := qrGray(t, "INVERTED", 4, true)
	defer m.Close()
	now := time.Unix(0, 0)
	tick := func() time.Time { now = now.Add(time.Second); return now }
	invertAt := slices.Index(Stages(), "invert") // calls needed: one per fallback up to it
	if invertAt < 1 {
		t.Fatalf("no invert stage in %v", Stages())
	}
	d := newDecoder(t, Options{Budget: time.Nanosecond, Now: tick})
	for call := 1; call <= invertAt; call++ {
		got, err := d.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		if found := len(got) > 0; found != (call == invertAt) {
			t.Fatalf("call %d: got %+v", call, got)
		}
	}
	if got, _ := d.Decode(m); len(got) == 0 {
		t.Fatal("the stage that succeeded was not tried first on the next call")
	}
	unlimited := newDecoder(t, Options{Now: tick})
	if got, _ := unlimited.Decode(m); len(got) == 0 {
		t.Fatal("no budget: not found")
	}
}

func TestDecodeErrors(t *testing.T) {
	d := newDecoder(t, Options{})
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := d.Decode(empty); err == nil {
		t.Error("empty Mat: no error")
	}
	if _, err := d.DecodeGray(make([]byte, 10), 4, 4); err == nil {
		t.Error("short buffer: no error")
	}
	if _, err := Plain(nil, 1, 1); err == nil {
		t.Error("Plain short buffer: no error")
	}
	f := gocv.NewMatWithSize(8, 8, gocv.MatTypeCV32F)
	defer f.Close()
	if _, err := d.Decode(f); err == nil {
		t.Error("float Mat: no error")
	}
}

// TestQrencodePeer decodes codes made by an independent encoder
// (qrencode, installed by make deps).
func TestQrencodePeer(t *testing.T) {
	bin, err := exec.LookPath("qrencode")
	if err != nil {
		t.Skip("qrencode not installed")
	}
	wallet := "CW1:" + strings.Repeat("6BFOXN*TS0BI$ZDFRH%:PL5N6F1UA+WD0:/AGBV9.6SS$D2K0ZIOKWF", 6)[:276]
	cases := []struct {
		name, text string
		args       []string
	}{
		{"wallet 280 EC M", wallet, []string{"-l", "M", "-s", "3"}},
		{"wallet 280 EC M 2px", wallet, []string{"-l", "M", "-s", "2"}},
		{"byte mode", "https://pay.campus.example/m/42?t=7", []string{"-l", "M", "-s", "4"}},
		{"utf-8", "云谷 食堂 3号窗口", []string{"-l", "Q", "-s", "4"}},
		{"tiny margin", "CW1:ABC", []string{"-l", "L", "-s", "5", "-m", "1"}},
	}
	d := newDecoder(t, Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "x.png")
			args := append(append([]string{"-o", file}, c.args...), c.text)
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("qrencode: %v: %s", err, out)
			}
			m := gocv.IMRead(file, gocv.IMReadGrayScale)
			defer m.Close()
			got, err := d.Decode(m)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 || got[0].Text != c.text {
				t.Fatalf("got %+v, want %q", got, c.text)
			}
		})
	}
}

// FuzzDecodeGray feeds arbitrary bytes as a gray frame: the decoder must
// neither panic nor crash in OpenCV.
func FuzzDecodeGray(f *testing.F) {
	f.Add(uint8(8), uint8(8), make([]byte, 64))
	f.Add(uint8(21), uint8(21), []byte(strings.Repeat("\x00\xff", 300)))
	f.Add(uint8(1), uint8(1), []byte{0})
	m := qrGray(f, "SEED", 2, false)
	seed, _ := m.DataPtrUint8()
	f.Add(uint8(m.Cols()), uint8(m.Rows()), append([]byte(nil), seed...))
	m.Close()
	d := newDecoder(f, Options{})
	f.Fuzz(func(t *testing.T, w, h uint8, buf []byte) {
		if w == 0 || h == 0 || len(buf) < int(w)*int(h) {
			if _, err := d.DecodeGray(buf, int(w), int(h)); err == nil {
				t.Fatal("short buffer accepted")
			}
			return
		}
		if _, err := d.DecodeGray(buf, int(w), int(h)); err != nil {
			t.Fatal(err)
		}
	})
}
