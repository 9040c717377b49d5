package protocol

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Static merchant QR (DESIGN §2 rule 11): shown by a terminal that is
// offline; only the campus app accepts it. Signed by the authorizer's issuer
// key so a forged sticker is refused by the app and the server.
//
// Layout (big-endian), base45-encoded behind MerchantQRPrefix:
//
//	0      version    1
//	1      issuer key id
//	2..5   issued     unix seconds
//	6      n          length of merchant id (1..32), then n bytes
//	.      m          length of terminal id (1..32), then m bytes
//	.      k          length of campus id (1..32), then k bytes
//	last 64 bytes     Ed25519 signature over "CPMQR1" || everything before it
//
// IDs are printable ASCII without spaces.
const MerchantQRPrefix = "CM1:"

const (
	merchantQRVersion = 1
	maxIDLen          = 32
)

var merchantDomain = []byte("CPMQR1")

// MerchantQR identifies where a scan-to-pay payment goes.
type MerchantQR struct {
	KeyID    byte
	Issued   time.Time
	Merchant string
	Terminal string
	Campus   string

	raw []byte
}

// ValidID reports whether s can be a merchant, terminal or campus id:
// 1–32 characters of [A-Za-z0-9_-]. Terminal ids become MQTT topic levels and
// broker user names, so nothing else is allowed.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// IssueMerchantQR signs m and returns its text.
func IssueMerchantQR(m MerchantQR, issuer ed25519.PrivateKey) (string, error) {
	for _, id := range []string{m.Merchant, m.Terminal, m.Campus} {
		if !ValidID(id) {
			return "", fmt.Errorf("protocol: merchant QR: bad id %q", id)
		}
	}
	u := m.Issued.Unix()
	if u <= 0 || u > 0xFFFFFFFF {
		return "", fmt.Errorf("protocol: merchant QR: issue time out of range")
	}
	b := []byte{merchantQRVersion, m.KeyID, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], uint32(u))
	for _, id := range []string{m.Merchant, m.Terminal, m.Campus} {
		b = append(b, byte(len(id)))
		b = append(b, id...)
	}
	b = append(b, ed25519.Sign(issuer, signed(merchantDomain, b))...)
	return MerchantQRPrefix + Base45Encode(b), nil
}

// ParseMerchantQR reads a merchant QR without verifying it.
func ParseMerchantQR(s string) (*MerchantQR, error) {
	if !strings.HasPrefix(s, MerchantQRPrefix) {
		return nil, ErrMerchantQRInvalid
	}
	b, err := Base45Decode(s[len(MerchantQRPrefix):])
	if err != nil || len(b) < 6+3+ed25519.SignatureSize || b[0] != merchantQRVersion {
		return nil, ErrMerchantQRInvalid
	}
	m := &MerchantQR{KeyID: b[1], Issued: time.Unix(int64(binary.BigEndian.Uint32(b[2:])), 0).UTC()}
	body := b[:len(b)-ed25519.SignatureSize]
	p := 6
	var ids [3]string
	for i := range ids {
		if p >= len(body) {
			return nil, ErrMerchantQRInvalid
		}
		n := int(body[p])
		p++
		if n == 0 || n > maxIDLen || p+n > len(body) {
			return nil, ErrMerchantQRInvalid
		}
		ids[i] = string(body[p : p+n])
		if !ValidID(ids[i]) {
			return nil, ErrMerchantQRInvalid
		}
		p += n
	}
	if p != len(body) {
		return nil, ErrMerchantQRInvalid
	}
	m.Merchant, m.Terminal, m.Campus = ids[0], ids[1], ids[2]
	m.raw = b
	return m, nil
}

// Verify checks the issuer signature.
func (m *MerchantQR) Verify(keys IssuerKeys) error {
	pub, ok := keys[m.KeyID]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return ErrMerchantQRInvalid
	}
	n := len(m.raw) - ed25519.SignatureSize
	if n < 0 || !verifySig(pub, signed(merchantDomain, m.raw[:n]), m.raw[n:]) {
		return ErrMerchantQRInvalid
	}
	return nil
}

// VerifyMerchantQR parses and verifies s.
func VerifyMerchantQR(s string, keys IssuerKeys) (*MerchantQR, error) {
	m, err := ParseMerchantQR(s)
	if err != nil {
		return nil, err
	}
	if err := m.Verify(keys); err != nil {
		return nil, err
	}
	return m, nil
}
