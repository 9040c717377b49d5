// Package qrscan decodes a QR code from an RGBA frame with gozxing. It is
// pure Go so the web wallet's WebAssembly build can read merchant QR codes
// from the phone camera or a picked photo.
package qrscan

import (
	"errors"
	"fmt"
	"image"
	"image/draw"

	"github.com/makiuchi-d/gozxing"
	multiqr "github.com/makiuchi-d/gozxing/multi/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"
)

// ErrNotFound means no QR code was read from the frame.
var ErrNotFound = errors.New("qrscan: no QR code found")

// DecodeRGBA reads one QR code from an RGBA buffer (4 bytes per pixel, as a
// canvas's ImageData gives). It tries the hybrid binarizer (uneven light)
// then the global histogram one (noise), then the inverted image; with each,
// the single-QR reader and then the multi-QR reader.
//
// The multi-QR reader is not optional: gozxing's single reader misses about
// 2 % of perfectly drawn codes of our size (it picks a wrong triple of
// finder-pattern candidates among look-alikes in the data), and the
// multi-QR reader, which tries the other triples, reads them all
// (TestEveryCodeReads).
func DecodeRGBA(rgba []byte, w, h int) (string, error) {
	if w <= 0 || h <= 0 || len(rgba) < w*h*4 {
		return "", errors.New("qrscan: frame size does not match the buffer")
	}
	lum := make([]byte, w*h)
	for i := range lum {
		p := rgba[i*4 : i*4+3]
		// ITU-R BT.601 luma, integer weights.
		lum[i] = byte((299*int(p[0]) + 587*int(p[1]) + 114*int(p[2])) / 1000)
	}
	return DecodeGray(lum, w, h)
}

// DecodeImage reads one QR code from a decoded picture (a PNG screenshot,
// a display's QR image), as a phone camera pointed at it would.
func DecodeImage(img image.Image) (string, error) {
	rgba := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(rgba, rgba.Rect, img, img.Bounds().Min, draw.Src)
	return DecodeRGBA(rgba.Pix, rgba.Rect.Dx(), rgba.Rect.Dy())
}

// DecodeGray reads one QR code from an 8-bit luminance buffer.
func DecodeGray(lum []byte, w, h int) (string, error) {
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	reader := qrcode.NewQRCodeReader()
	multi := multiqr.NewQRCodeMultiReader()
	for _, inverted := range []bool{false, true} {
		buf := lum
		if inverted {
			buf = make([]byte, len(lum))
			for i, v := range lum {
				buf[i] = 255 - v
			}
		}
		src, err := gozxing.NewPlanarYUVLuminanceSource(buf, w, h, 0, 0, w, h, false)
		if err != nil {
			return "", err
		}
		for _, bin := range []gozxing.Binarizer{gozxing.NewHybridBinarizer(src), gozxing.NewGlobalHistgramBinarizer(src)} {
			bmp, err := gozxing.NewBinaryBitmap(bin)
			if err != nil {
				continue
			}
			if res, err := reader.Decode(bmp, hints); err == nil {
				return res.GetText(), nil
			}
			if rs, err := multi.DecodeMultiple(bmp, hints); err == nil && len(rs) > 0 {
				return rs[0].GetText(), nil
			}
		}
	}
	return "", ErrNotFound
}

// Encode lays out text as a QR symbol at error-correction level M and
// returns its module matrix, row-major, 1 = dark, without the quiet zone.
func Encode(text string) (size int, modules []byte, err error) {
	q, werr := encoder.Encoder_encodeWithoutHint(text, decoder.ErrorCorrectionLevel_M)
	if werr != nil {
		return 0, nil, fmt.Errorf("qrscan: encode: %w", werr)
	}
	m := q.GetMatrix()
	size = m.GetWidth()
	modules = make([]byte, size*size)
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			if m.Get(x, y) == 1 {
				modules[y*size+x] = 1
			}
		}
	}
	return size, modules, nil
}
