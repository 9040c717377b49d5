package console

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
)

// setPNGDPI inserts a pHYs chunk (pixels per metre) after the IHDR chunk of
// a PNG made by image/png, so that printing software prints it at dpi
// (A5 for a placard) instead of guessing 72 or 96.
func setPNGDPI(p []byte, dpi int) []byte {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	if len(p) < ihdrEnd || !bytes.Equal(p[12:16], []byte("IHDR")) {
		return p
	}
	ppm := uint32(float64(dpi)/0.0254 + 0.5)
	var chunk bytes.Buffer
	binary.Write(&chunk, binary.BigEndian, uint32(9))
	body := make([]byte, 0, 13)
	body = append(body, "pHYs"...)
	body = binary.BigEndian.AppendUint32(body, ppm)
	body = binary.BigEndian.AppendUint32(body, ppm)
	body = append(body, 1) // unit: metre
	chunk.Write(body)
	binary.Write(&chunk, binary.BigEndian, crc32.ChecksumIEEE(body))
	out := make([]byte, 0, len(p)+chunk.Len())
	out = append(out, p[:ihdrEnd]...)
	out = append(out, chunk.Bytes()...)
	return append(out, p[ihdrEnd:]...)
}
