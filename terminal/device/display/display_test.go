package display

import (
	"math"
	"testing"

	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"
)

func TestYuan(t *testing.T) {
	cases := []struct {
		cents int64
		want  string
	}{
		{0, "¥0.00"}, {5, "¥0.05"}, {1250, "¥12.50"}, {1500, "¥15.00"}, {100000, "¥1000.00"},
		{-150, "-¥1.50"}, {math.MinInt64, "-¥92233720368547758.08"},
	}
	for _, c := range cases {
		if got := Yuan(c.cents); got != c.want {
			t.Errorf("Yuan(%d) = %q, want %q", c.cents, got, c.want)
		}
	}
}

func TestQRHasQuietZoneAndLevelM(t *testing.T) {
	payload := "CPM1:MERCHANT-0042:TERMINAL-7"
	m, err := QR(payload)
	if err != nil {
		t.Fatal(err)
	}
	code, err := encoder.Encoder_encode(payload, decoder.ErrorCorrectionLevel_M, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := code.GetMatrix()
	if m.GetWidth() != in.GetWidth()+2*QuietZone || m.GetHeight() != in.GetHeight()+2*QuietZone {
		t.Fatalf("size %dx%d for %d modules", m.GetWidth(), m.GetHeight(), in.GetWidth())
	}
	for y := range m.GetHeight() {
		for x := range m.GetWidth() {
			want := false
			if ix, iy := x-QuietZone, y-QuietZone; ix >= 0 && iy >= 0 && ix < in.GetWidth() && iy < in.GetHeight() {
				want = in.Get(ix, iy) == 1
			}
			if m.Get(x, y) != want {
				t.Fatalf("module (%d,%d) = %v, want %v", x, y, m.Get(x, y), want)
			}
		}
	}
	if _, err := QR(""); err == nil {
		t.Fatal("empty payload encoded")
	}
}
