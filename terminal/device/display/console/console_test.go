package console

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"

	"campuspay/terminal/device"
	"campuspay/terminal/device/display"
)

const payload = "CPM1:M0042:T0007:SIG.3F9A0C77B2E14D5A"

// qrLines picks the half-block rows out of rendered text.
func qrLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if len([]rune(l)) < 21 {
			continue
		}
		if strings.Trim(l, " ▀▄█") == "" {
			out = append(out, l)
		}
	}
	return out
}

// parseHalfBlocks turns half-block lines back into modules (true = dark).
func parseHalfBlocks(t *testing.T, lines []string, darkBlocks bool) [][]bool {
	t.Helper()
	var rows [][]bool
	for _, l := range lines {
		top, bottom := []bool{}, []bool{}
		for _, r := range l {
			var ti, bi bool // ink in top / bottom half
			switch r {
			case '█':
				ti, bi = true, true
			case '▀':
				ti = true
			case '▄':
				bi = true
			case ' ':
			default:
				t.Fatalf("unexpected rune %q", r)
			}
			top = append(top, ti == darkBlocks)
			bottom = append(bottom, bi == darkBlocks)
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

// expected builds the module matrix straight from gozxing's encoder, with
// the quiet zone, independently of display.QR.
func expected(t *testing.T, s string) [][]bool {
	t.Helper()
	code, err := encoder.Encoder_encode(s, decoder.ErrorCorrectionLevel_M, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := code.GetMatrix()
	q := display.QuietZone
	n := in.GetWidth() + 2*q
	rows := make([][]bool, n)
	for y := range rows {
		rows[y] = make([]bool, n)
		for x := range rows[y] {
			ix, iy := x-q, y-q
			rows[y][x] = ix >= 0 && iy >= 0 && ix < in.GetWidth() && iy < in.GetHeight() && in.Get(ix, iy) == 1
		}
	}
	return rows
}

// rasterise draws modules at scale px each, as the terminal would show
// them: blocks in the foreground colour, the rest in the background.
func rasterise(rows [][]bool, scale int) image.Image {
	img := image.NewGray(image.Rect(0, 0, len(rows[0])*scale, len(rows)*scale))
	for y, row := range rows {
		for x, dark := range row {
			c := color.Gray{Y: 255}
			if dark {
				c.Y = 0
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray(x*scale+dx, y*scale+dy, c)
				}
			}
		}
	}
	return img
}

func decode(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return res.GetText()
}

func TestQRHalfBlocksRoundTrip(t *testing.T) {
	for _, dark := range []bool{false, true} {
		var buf bytes.Buffer
		c := New(&buf, Options{DarkBlocks: dark})
		err := c.Show(device.Screen{Kind: device.ScreenOffline, Title: "请扫码付款", TitleEN: "Scan to pay", QR: payload})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("dark blocks %v:\n%s", dark, buf.String())
		got := parseHalfBlocks(t, qrLines(buf.String()), dark)
		want := expected(t, payload)
		// An odd module count leaves one padding row, which must be light.
		if len(got) != len(want)+len(want)%2 {
			t.Fatalf("parsed %d rows, want %d", len(got), len(want))
		}
		for y := range got {
			for x := range got[y] {
				w := y < len(want) && want[y][x]
				if got[y][x] != w {
					t.Fatalf("dark=%v: module (%d,%d) = %v, want %v", dark, x, y, got[y][x], w)
				}
			}
		}
		if text := decode(t, rasterise(got, 4)); text != payload {
			t.Fatalf("decoded %q", text)
		}
	}
}

func TestRenderScreens(t *testing.T) {
	cases := []struct {
		name string
		s    device.Screen
		want []string
		not  []string
	}{
		{"await", device.Screen{Kind: device.ScreenAwait, Title: "请出示付款码", TitleEN: "Show your payment code", Amount: 1250, Online: true},
			[]string{"● 在线 Online", "请出示付款码\nShow your payment code\n", "金额 Amount: ¥12.50"}, []string{"成功", "失败"}},
		{"amount zero", device.Screen{Kind: device.ScreenAmount, Title: "请输入金额"}, []string{"¥0.00", "○ 离线 Offline"}, nil},
		{"ok", device.Screen{Kind: device.ScreenResult, OK: true, Amount: 800, Message: "支付成功", MessageEN: "Paid"},
			[]string{"✔ 成功 Success", "支付成功\nPaid\n", "¥8.00"}, []string{"失败"}},
		{"fail", device.Screen{Kind: device.ScreenResult, Message: "余额不足", MessageEN: "Insufficient balance"},
			[]string{"✘ 失败 Failed", "余额不足"}, []string{"Amount"}},
		{"shower", device.Screen{Kind: device.ScreenShower, Litres: 12.34, Amount: 320, Hold: 1500},
			[]string{"用水 Water: 12.3 L", "费用 Cost: ¥3.20", "预授权 Hold: ¥15.00"}, nil},
		{"input", device.Screen{Kind: device.ScreenInput, Title: "请输入用水密码", Input: "****"}, []string{"输入 Input: ****_"}, nil},
		{"notices", device.Screen{Kind: device.ScreenNotices, Lines: []string{"12:01 ¥8.00 张*", "12:05 ¥3.50 李*"}},
			[]string{"· 12:01 ¥8.00 张*\n· 12:05 ¥3.50 李*\n"}, nil},
		{"blank", device.Screen{Kind: device.ScreenBlank, Title: "x"}, nil, []string{"x", "─"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.s, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in\n%s", w, got)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in\n%s", n, got)
				}
			}
		})
	}
}

func TestUnencodableQRStillShowsText(t *testing.T) {
	var buf bytes.Buffer
	err := New(&buf, Options{}).Show(device.Screen{Kind: device.ScreenOffline, Title: "离线", QR: strings.Repeat("x", 4000)})
	if err == nil || !strings.Contains(buf.String(), "离线") || !strings.Contains(buf.String(), "QR unavailable") {
		t.Fatalf("err %v, text\n%s", err, buf.String())
	}
}

func TestHaltBlanksAndRefuses(t *testing.T) {
	var buf bytes.Buffer
	c := New(&buf, Options{Clear: true})
	if err := c.Show(device.Screen{Kind: device.ScreenIdle, Title: "欢迎"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), clear) {
		t.Fatal("no clear before screen")
	}
	buf.Reset()
	for range 2 {
		if err := c.Halt(); err != nil {
			t.Fatal(err)
		}
	}
	if buf.String() != clear {
		t.Fatalf("halt wrote %q", buf.String())
	}
	if err := c.Show(device.Screen{Kind: device.ScreenIdle}); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Show after Halt = %v", err)
	}
}
