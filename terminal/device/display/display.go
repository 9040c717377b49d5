// Package display holds what the customer-display drivers share: money as
// the customer reads it and the QR module matrix. The drivers are web (a
// local page for a kiosk browser) and console (text with half-block QR).
package display

import (
	"fmt"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
)

// QuietZone is the light margin around a QR code, in modules, that the
// standard requires for reliable scanning.
const QuietZone = 4

// Yuan formats cents as the customer reads it: 1250 → "¥12.50".
func Yuan(cents int64) string {
	sign := ""
	u := uint64(cents)
	if cents < 0 {
		sign, u = "-", uint64(-cents) // math.MinInt64 wraps to itself as uint64, which is its magnitude
	}
	return fmt.Sprintf("%s¥%d.%02d", sign, u/100, u%100)
}

// QR encodes payload at error-correction level M and returns its modules,
// one matrix cell per module, with the quiet zone included
// (true = dark module).
func QR(payload string) (*gozxing.BitMatrix, error) {
	hints := map[gozxing.EncodeHintType]any{
		gozxing.EncodeHintType_ERROR_CORRECTION: decoder.ErrorCorrectionLevel_M,
		gozxing.EncodeHintType_MARGIN:           QuietZone,
	}
	m, err := qrcode.NewQRCodeWriter().Encode(payload, gozxing.BarcodeFormat_QR_CODE, 0, 0, hints)
	if err != nil {
		return nil, fmt.Errorf("display: encode QR (%d bytes): %w", len(payload), err)
	}
	return m, nil
}
