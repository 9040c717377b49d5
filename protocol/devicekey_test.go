package protocol

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// Issue 13 item 8: a weak (all-zero, small-order, non-canonical) device
// key is refused before certification, and a certificate carrying one is
// refused by every verifier.
func TestCheckDeviceKey(t *testing.T) {
	good, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	for _, tc := range []struct {
		name string
		key  []byte
		ok   bool
	}{
		{"generated", good, true},
		{"all zero", make([]byte, 32), false},
		{"identity", h("0100000000000000000000000000000000000000000000000000000000000000"), false},
		{"identity, x sign set", h("0100000000000000000000000000000000000000000000000000000000000080"), false},
		{"order 2", h("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), false},
		{"order 4, sign set", h("0000000000000000000000000000000000000000000000000000000000000080"), false},
		{"order 8", h("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), false},
		{"order 8, sign set", h("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"), false},
		{"order 8 (other y)", h("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"), false},
		{"order 8 (other y), sign set", h("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"), false},
		{"y = p", h("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), false},
		{"y = p+1", h("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), false},
		{"y = 2^255-1", h("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"), false},
		{"short", good[:31], false},
		{"long", append(append([]byte(nil), good...), 0), false},
	} {
		err := CheckDeviceKey(tc.key)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrDeviceKeyInvalid)) {
			t.Errorf("%s: CheckDeviceKey = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}

	// The identity key "signs" every message with R = identity, S = 0 under
	// a cofactorless verifier: the reason the key must never be certified.
	_, issuer, _ := ed25519.GenerateKey(rand.Reader)
	weak := h("0100000000000000000000000000000000000000000000000000000000000000")
	exp := time.Unix(2_000_000_000, 0)
	if _, err := IssueCertificate(Certificate{KeyID: 1, UserID: 7, DeviceID: 9, DeviceKey: weak, Expires: exp}, issuer); !errors.Is(err, ErrDeviceKeyInvalid) {
		t.Fatalf("IssueCertificate(identity key) = %v, want DEVICE_KEY_INVALID", err)
	}
	// A certificate an older authorizer issued for it is refused, and so
	// are codes under it.
	cert := make([]byte, CertificateSize)
	cert[0], cert[1] = certVersion, 1
	copy(cert[10:42], weak)
	cert[42], cert[43], cert[44], cert[45] = 0x77, 0x35, 0x94, 0x00
	copy(cert[certSignedLen:], ed25519.Sign(issuer, signed(certDomain, cert[:certSignedLen])))
	c, err := ParseCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	keys := IssuerKeys{1: issuer.Public().(ed25519.PublicKey)}
	if err := c.Verify(keys, time.Unix(1_900_000_000, 0)); !errors.Is(err, ErrCodeBadCertSig) {
		t.Fatalf("Verify(certificate of the identity key) = %v, want %s", err, ErrCodeBadCertSig.Code)
	}
	body, _, err := CodeBody(cert, PurposePay, time.Unix(1_900_000_000, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	sig := append(append([]byte{0x01}, make([]byte, 31)...), make([]byte, 32)...) // R = identity, S = 0
	code, err := FinishCode(body, sig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCode(code, keys, time.Unix(1_900_000_000, 0), PurposePay); err == nil {
		t.Fatal("a forged code under the identity key verified")
	}
}
