package console

import (
	"encoding/binary"
	"errors"
)

// alignedFont rebuilds the first font of a TrueType collection (or a
// single font) as a single font whose tables start on 4-byte boundaries,
// as the OpenType spec asks and golang.org/x/image/font/sfnt requires:
// WenQuanYi Micro Hei's collection has unaligned tables. Table contents
// are copied unchanged.
func alignedFont(b []byte) ([]byte, error) {
	bad := errors.New("not a TrueType font or collection")
	if len(b) < 12 {
		return nil, bad
	}
	off := uint32(0)
	if string(b[:4]) == "ttcf" {
		if len(b) < 16 {
			return nil, bad
		}
		off = binary.BigEndian.Uint32(b[12:])
	}
	if uint64(off)+12 > uint64(len(b)) {
		return nil, bad
	}
	n := int(binary.BigEndian.Uint16(b[off+4:]))
	dir := uint64(off) + 12
	if dir+uint64(n)*16 > uint64(len(b)) {
		return nil, bad
	}
	head := 12 + 16*n
	out := make([]byte, head, len(b))
	copy(out, b[off:off+12])
	for i := range n {
		rec := b[dir+uint64(i)*16 : dir+uint64(i)*16+16]
		o, l := uint64(binary.BigEndian.Uint32(rec[8:])), uint64(binary.BigEndian.Uint32(rec[12:]))
		if o+l > uint64(len(b)) {
			return nil, bad
		}
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
		nr := out[12+16*i : 12+16*i+16]
		copy(nr, rec[:8]) // tag, checksum
		binary.BigEndian.PutUint32(nr[8:], uint32(len(out)))
		binary.BigEndian.PutUint32(nr[12:], uint32(l))
		out = append(out, b[o:o+l]...)
	}
	return out, nil
}
