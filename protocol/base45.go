package protocol

import "errors"

// base45 (RFC 9285) packs bytes into the 45-character QR alphanumeric set,
// so a QR code can use alphanumeric mode (5.5 bits/char) instead of byte
// mode: the same code is a smaller, easier-to-scan symbol.
const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

var base45Index [256]int8

func init() {
	for i := range base45Index {
		base45Index[i] = -1
	}
	for i := 0; i < len(base45Alphabet); i++ {
		base45Index[base45Alphabet[i]] = int8(i)
	}
}

var errBase45 = errors.New("base45: invalid input")

// Base45Encode encodes b per RFC 9285: each 2 bytes → 3 characters, a
// trailing byte → 2 characters.
func Base45Encode(b []byte) string {
	out := make([]byte, 0, (len(b)+1)/2*3)
	for i := 0; i+1 < len(b); i += 2 {
		n := int(b[i])<<8 | int(b[i+1])
		out = append(out, base45Alphabet[n%45], base45Alphabet[n/45%45], base45Alphabet[n/2025])
	}
	if len(b)%2 == 1 {
		n := int(b[len(b)-1])
		out = append(out, base45Alphabet[n%45], base45Alphabet[n/45])
	}
	return string(out)
}

// Base45Decode decodes RFC 9285 text; it rejects characters outside the
// alphabet, a dangling single character and groups that overflow.
func Base45Decode(s string) ([]byte, error) {
	if len(s)%3 == 1 {
		return nil, errBase45
	}
	out := make([]byte, 0, len(s)/3*2+1)
	for i := 0; i < len(s); i += 3 {
		var d [3]int
		k := 3
		if len(s)-i == 2 {
			k = 2
		}
		for j := 0; j < k; j++ {
			v := base45Index[s[i+j]]
			if v < 0 {
				return nil, errBase45
			}
			d[j] = int(v)
		}
		if k == 3 {
			n := d[0] + d[1]*45 + d[2]*2025
			if n > 0xFFFF {
				return nil, errBase45
			}
			out = append(out, byte(n>>8), byte(n))
		} else {
			n := d[0] + d[1]*45
			if n > 0xFF {
				return nil, errBase45
			}
			out = append(out, byte(n))
		}
	}
	return out, nil
}
