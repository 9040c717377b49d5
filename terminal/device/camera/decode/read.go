package decode

import (
	"fmt"
	"image"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	multiqr "github.com/makiuchi-d/gozxing/multi/qrcode"
	"github.com/makiuchi-d/gozxing/oned"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Symbol is one decoded code.
type Symbol struct {
	Text   string // decoded text, exactly as encoded
	Format string // gozxing's format name: "QR_CODE" or "CODE_128"
}

// gray is an 8-bit single-channel image borrowed from a live Mat (or a Go
// slice). It must not be used after the Mat it came from is closed.
type gray struct {
	buf  []byte
	w, h int
}

// binarizerKind picks gozxing's binarizer.
type binarizerKind int

const (
	hybrid binarizerKind = iota // local thresholds: uneven light
	global                      // one histogram threshold: per-pixel noise
)

// readerSet says which gozxing readers one attempt runs.
type readerSet struct {
	qr      bool // single-QR reader
	multiQR bool // multi-QR reader (finds codes the single reader misses)
	code128 bool // Code128 with TRY_HARDER (tries the image rotated 90°)
	pure    bool // single-QR reader in PURE_BARCODE mode (synthetic, axis-aligned codes)
}

var (
	qrHints   = map[gozxing.DecodeHintType]interface{}{}
	pureHints = map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true}
	tryHarder = map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
)

// read runs one attempt of gozxing on g and returns what it decoded.
func read(g gray, bin binarizerKind, rs readerSet) []Symbol {
	hits := readHits(g, bin, rs)
	if len(hits) == 0 {
		return nil
	}
	out := make([]Symbol, len(hits))
	for i, h := range hits {
		out[i] = h.Symbol
	}
	return out
}

// hit is a decoded symbol and where it was found: the result points
// (finder and alignment pattern centres, barcode ends) in the pixels of
// the image that was read.
type hit struct {
	Symbol
	pts []image.Point
}

// readHits is read with the result points kept. gozxing has panicked on
// malformed input in the past; a panic in one attempt is turned into
// "nothing found" so one odd frame cannot kill the scanner.
func readHits(g gray, bin binarizerKind, rs readerSet) (out []hit) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	if g.w <= 0 || g.h <= 0 || len(g.buf) < g.w*g.h {
		return nil
	}
	src, err := gozxing.NewPlanarYUVLuminanceSource(g.buf, g.w, g.h, 0, 0, g.w, g.h, false)
	if err != nil {
		return nil
	}
	var b gozxing.Binarizer
	if bin == global {
		b = gozxing.NewGlobalHistgramBinarizer(src)
	} else {
		b = gozxing.NewHybridBinarizer(src)
	}
	bmp, err := gozxing.NewBinaryBitmap(b)
	if err != nil {
		return nil
	}
	if rs.qr {
		if r, err := qrcode.NewQRCodeReader().Decode(bmp, qrHints); err == nil {
			out = append(out, hitOf(r))
		}
	}
	if rs.pure && len(out) == 0 {
		if r, err := qrcode.NewQRCodeReader().Decode(bmp, pureHints); err == nil {
			out = append(out, hitOf(r))
		}
	}
	if rs.multiQR && len(out) == 0 {
		if rr, err := multiqr.NewQRCodeMultiReader().DecodeMultiple(bmp, qrHints); err == nil {
			for _, r := range rr {
				out = append(out, hitOf(r))
			}
		}
	}
	if rs.code128 {
		if r, err := oned.NewCode128Reader().Decode(bmp, tryHarder); err == nil {
			out = append(out, hitOf(r))
		}
	}
	return out
}

func symbolOf(r *gozxing.Result) Symbol {
	return Symbol{Text: r.GetText(), Format: r.GetBarcodeFormat().String()}
}

func hitOf(r *gozxing.Result) hit {
	h := hit{Symbol: symbolOf(r)}
	for _, p := range r.GetResultPoints() {
		if p != nil {
			h.pts = append(h.pts, image.Pt(int(p.GetX()), int(p.GetY())))
		}
	}
	return h
}

// normalize fixes gozxing's text: Code128's extended characters (FNC4) are
// ISO-8859-1, but gozxing returns them as raw bytes (invalid UTF-8).
func normalize(s Symbol) Symbol {
	if s.Format == gozxing.BarcodeFormat_CODE_128.String() && !utf8.ValidString(s.Text) {
		s.Text = latin1(s.Text)
	}
	return s
}

func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// Plain decodes g the way a plain gozxing integration would: the QR reader
// and the Code128 reader (TRY_HARDER) over a HybridBinarizer, nothing else.
// It is the baseline the pipeline is measured against.
func Plain(buf []byte, width, height int) ([]Symbol, error) {
	if width <= 0 || height <= 0 || len(buf) < width*height {
		return nil, fmt.Errorf("decode: gray buffer %d bytes for %dx%d", len(buf), width, height)
	}
	return read(gray{buf, width, height}, hybrid, readerSet{qr: true, code128: true}), nil
}
