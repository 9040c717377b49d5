package protocol

import (
	"image"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"
)

// TestCodesAsQR renders generated codes as QR symbols and reads them back
// with gozxing, and pins the symbol size the README promises: a wallet code
// is alphanumeric mode, version 10 at level M.
func TestCodesAsQR(t *testing.T) {
	cert := mustCert(t, 1001, 7, vecNow.Add(time.Hour))
	mqr, _ := IssueMerchantQR(MerchantQR{KeyID: 1, Issued: vecNow, Merchant: "M001", Terminal: "T-CANTEEN-01", Campus: "yungu"}, issuerKey())
	texts := []string{mqr}
	for seq := uint16(0); seq < 5; seq++ {
		texts = append(texts, mustCode(t, cert, deviceKey(), PurposePay, vecNow.Add(time.Duration(seq)*time.Second), seq))
	}
	texts = append(texts, mustCode(t, cert, deviceKey(), PurposeIdentity, vecNow, 0))
	for i, text := range texts {
		q, werr := encoder.Encoder_encodeWithoutHint(text, decoder.ErrorCorrectionLevel_M)
		if werr != nil {
			t.Fatal(werr)
		}
		if q.GetMode() != decoder.Mode_ALPHANUMERIC {
			t.Fatalf("text %d: mode %v, want alphanumeric", i, q.GetMode())
		}
		if i > 0 && q.GetVersion().GetVersionNumber() != 10 {
			t.Fatalf("wallet code: QR version %d, want 10", q.GetVersion().GetVersionNumber())
		}
		img, err := qrcode.NewQRCodeWriter().Encode(text, gozxing.BarcodeFormat_QR_CODE, 400, 400,
			map[gozxing.EncodeHintType]any{gozxing.EncodeHintType_ERROR_CORRECTION: decoder.ErrorCorrectionLevel_M})
		if err != nil {
			t.Fatal(err)
		}
		bmp, err := gozxing.NewBinaryBitmapFromImage(toGray(img))
		if err != nil {
			t.Fatal(err)
		}
		res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
		if err != nil {
			t.Fatalf("text %d: decode: %v", i, err)
		}
		if res.GetText() != text {
			t.Fatalf("text %d: read %q", i, res.GetText())
		}
		if Classify(res.GetText()) == KindUnknown {
			t.Fatalf("text %d: read back as unknown", i)
		}
	}
}

func toGray(m image.Image) *image.Gray {
	b := m.Bounds()
	g := image.NewGray(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g.Set(x, y, m.At(x, y))
		}
	}
	return g
}
