package console

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"

	"campuspay/protocol"
	"campuspay/server/web/qrscan"
)

// DefaultFontPath is the font of the printed placards: WenQuanYi Micro Hei
// (Debian's fonts-wqy-microhei, installed by scripts/deps.sh), which has
// the Chinese glyphs.
const DefaultFontPath = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

// A placard is an A5 sheet at 300 dpi (148 × 210 mm): the static
// collection code of one till, big enough to scan from a queue, with the
// merchant's name and what to do, in Chinese and English — for a power
// cut, when the box itself is dark.
const (
	PlacardDPI    = 300
	PlacardWidth  = 1748 // 148 mm at 300 dpi
	PlacardHeight = 2480 // 210 mm
	placardModule = 20   // px per QR module (1.7 mm): read from a metre away
)

// Placard is what a placard shows.
type Placard struct {
	MerchantName string
	Terminal     string
	QR           string // the till's static merchant QR payload
}

var (
	fontMu    sync.Mutex
	fontCache = map[string]*sfnt.Font{}
)

// loadFont reads the first font of a TrueType/OpenType file or collection.
func loadFont(path string) (*sfnt.Font, error) {
	fontMu.Lock()
	defer fontMu.Unlock()
	if f := fontCache[path]; f != nil {
		return f, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("placard font (install fonts-wqy-microhei or set placard_font): %w", err)
	}
	if b, err = alignedFont(b); err != nil {
		return nil, fmt.Errorf("placard font %s: %w", path, err)
	}
	f, err := sfnt.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("placard font %s: %w", path, err)
	}
	fontCache[path] = f
	return f, nil
}

// RenderPlacard draws p as a PNG at PlacardDPI with the font at fontPath.
func RenderPlacard(p Placard, fontPath string) ([]byte, error) {
	f, err := loadFont(fontPath)
	if err != nil {
		return nil, err
	}
	n, modules, err := qrscan.Encode(p.QR)
	if err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, PlacardWidth, PlacardHeight))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	ink := image.NewUniform(color.RGBA{0x14, 0x36, 0x5d, 0xff})
	// Header band.
	draw.Draw(img, image.Rect(0, 0, PlacardWidth, 300), ink, image.Point{}, draw.Src)
	y := 0
	var text func(s string, size float64, c image.Image, top int) (int, error)
	text = func(s string, size float64, c image.Image, top int) (int, error) {
		face, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: PlacardDPI, Hinting: font.HintingFull})
		if err != nil {
			return 0, err
		}
		defer face.Close()
		d := &font.Drawer{Dst: img, Src: c, Face: face}
		w := d.MeasureString(s).Ceil()
		if w > PlacardWidth-120 { // too long for the sheet: smaller
			return text(s, size*float64(PlacardWidth-120)/float64(w), c, top)
		}
		m := face.Metrics()
		d.Dot = fixed.P((PlacardWidth-w)/2, top+m.Ascent.Ceil())
		d.DrawString(s)
		return top + (m.Ascent + m.Descent).Ceil(), nil
	}
	type line struct {
		s    string
		size float64
		c    image.Image
		gap  int
	}
	qrPx := (n + 8) * placardModule // with a 4-module quiet zone each side
	for _, l := range []line{
		{"扫码付款", 28, image.White, 40},
		{"Scan to pay", 16, image.White, 0},
		{p.MerchantName, 26, ink, 90},
	} {
		if y, err = text(l.s, l.size, l.c, y+l.gap); err != nil {
			return nil, err
		}
	}
	y += 40
	x0 := (PlacardWidth - qrPx) / 2
	black := image.NewUniform(color.Black)
	for r := 0; r < n; r++ {
		for col := 0; col < n; col++ {
			if modules[r*n+col] == 1 {
				px := x0 + (col+4)*placardModule
				py := y + (r+4)*placardModule
				draw.Draw(img, image.Rect(px, py, px+placardModule, py+placardModule), black, image.Point{}, draw.Src)
			}
		}
	}
	y += qrPx + 30
	for _, l := range []line{
		{"请打开一卡通App扫描此码，输入金额与支付密码付款", 11, ink, 0},
		{"Open the campus card app, scan this code, enter the amount and your payment password", 8, ink, 20},
		{"停电或收银机无法使用时，请向收银员出示付款成功页面", 11, ink, 40},
		{"During a power cut, show the cashier the payment-success page", 8, ink, 20},
		{"终端 Till " + p.Terminal, 9, ink, 40},
	} {
		if y, err = text(l.s, l.size, l.c, y+l.gap); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("%w: placard: %v", protocol.ErrInternal, err)
	}
	return setPNGDPI(b.Bytes(), PlacardDPI), nil // png.Encoder writes no resolution
}
