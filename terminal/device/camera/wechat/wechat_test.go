package wechat

import (
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"gocv.io/x/gocv"
)

// qrMat renders text as a gray QR code with module-pixel modules.
func qrMat(t testing.TB, text string, module int) gocv.Mat {
	t.Helper()
	bm, err := qrcode.NewQRCodeWriter().Encode(text, gozxing.BarcodeFormat_QR_CODE, 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, h := bm.GetWidth()*module, bm.GetHeight()*module
	m := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(255, 0, 0, 0), h, w, gocv.MatTypeCV8UC1)
	for y := range h {
		for x := range w {
			if bm.Get(x/module, y/module) {
				m.SetUCharAt(y, x, 0)
			}
		}
	}
	return m
}

func newDetector(t testing.TB) *Detector {
	t.Helper()
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestDecode(t *testing.T) {
	d := newDetector(t)
	gray := qrMat(t, "CW1:WECHAT TEST", 4)
	defer gray.Close()
	bgr := gocv.NewMat()
	defer bgr.Close()
	gocv.CvtColor(gray, &bgr, gocv.ColorGrayToBGR)
	blank := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(200, 0, 0, 0), 120, 160, gocv.MatTypeCV8UC1)
	defer blank.Close()
	cases := []struct {
		name string
		m    gocv.Mat
		want []string
	}{
		{"gray", gray, []string{"CW1:WECHAT TEST"}},
		{"bgr", bgr, []string{"CW1:WECHAT TEST"}},
		{"blank", blank, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := d.Decode(c.m)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	d := newDetector(t)
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := d.Decode(empty); err == nil {
		t.Error("empty Mat: no error")
	}
	f := gocv.NewMatWithSize(8, 8, gocv.MatTypeCV32F)
	defer f.Close()
	if _, err := d.Decode(f); err == nil {
		t.Error("float Mat: no error")
	}
	m := qrMat(t, "X", 2)
	defer m.Close()
	d.Close()
	d.Close() // idempotent
	if _, err := d.Decode(m); err == nil {
		t.Error("closed detector: no error")
	}
}

// FuzzDecode feeds arbitrary pixels to OpenCV's decoder: no crash, no
// exception escaping into Go.
func FuzzDecode(f *testing.F) {
	f.Add(uint8(8), uint8(8), make([]byte, 64))
	seed := qrMat(f, "SEED", 2)
	buf, _ := seed.DataPtrUint8()
	f.Add(uint8(seed.Cols()), uint8(seed.Rows()), append([]byte(nil), buf...))
	seed.Close()
	d := newDetector(f)
	f.Fuzz(func(t *testing.T, w, h uint8, pix []byte) {
		if w == 0 || h == 0 || len(pix) < int(w)*int(h) {
			return
		}
		m, err := gocv.NewMatFromBytes(int(h), int(w), gocv.MatTypeCV8UC1, pix[:int(w)*int(h)])
		if err != nil {
			t.Fatal(err)
		}
		c := m.Clone() // pixels in C memory, as Decode expects of a Mat
		m.Close()
		defer c.Close()
		if _, err := d.Decode(c); err != nil {
			t.Fatal(err)
		}
	})
}
