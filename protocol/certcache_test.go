package protocol

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

// A warm certificate cache must not weaken any check: every rejection of
// TestCodeRejections still happens after the good code's certificate was
// cached, an expired certificate is refused even when cached, and the
// cache stays bounded. The codes go through a SigBatch as the
// authorizer's do.
func TestCertCacheKeepsEveryCheck(t *testing.T) {
	cache := NewCertCache(8)
	v := &Verifier{Certs: cache, Sigs: new(SigBatch)}
	cert := mustCert(t, 1, 2, vecNow.Add(time.Hour))
	good := mustCode(t, cert, deviceKey(), PurposePay, vecNow, 9)
	for i := 0; i < 2; i++ {
		if _, err := VerifyCodeWith(good, testKeys(), vecNow, PurposePay, v); err != nil {
			t.Fatalf("good code, pass %d: %v", i, err)
		}
	}
	if n := cache.Len(); n != 1 {
		t.Fatalf("cache holds %d certificates, want 1", n)
	}
	raw, _ := Base45Decode(good[len(CodePrefix):])
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return CodePrefix + Base45Encode(b)
	}
	for _, tc := range []struct {
		name string
		text string
		keys IssuerKeys
		now  time.Time
		want Purpose
		err  error
	}{
		{"unknown issuer", good, IssuerKeys{2: testKeys()[1]}, vecNow, PurposePay, ErrCodeUnknownIssuer},
		{"other key, same id", good, IssuerKeys{1: deviceKey().Public().(ed25519.PublicKey)}, vecNow, PurposePay, ErrCodeBadCertSig},
		{"user flipped", flip(12), testKeys(), vecNow, PurposePay, ErrCodeBadCertSig},
		{"cert sig flipped", flip(60), testKeys(), vecNow, PurposePay, ErrCodeBadCertSig},
		{"time flipped", flip(4), testKeys(), vecNow, PurposePay, ErrCodeBadSig},
		{"device sig flipped", flip(150), testKeys(), vecNow, PurposePay, ErrCodeBadSig},
		{"wrong purpose", good, testKeys(), vecNow, PurposeIdentity, ErrCodeWrongPurpose},
		{"stale code", good, testKeys(), vecNow.Add(CodeValidity + MaxClockSkew + time.Second), PurposePay, ErrCodeExpired},
		{"expired certificate", good, testKeys(), vecNow.Add(time.Hour), PurposePay, ErrCodeCertExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyCodeWith(tc.text, tc.keys, tc.now, tc.want, v); !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	for u := uint32(10); u < 40; u++ {
		c := mustCode(t, mustCert(t, u, u, vecNow.Add(time.Hour)), deviceKey(), PurposePay, vecNow, 1)
		if _, err := VerifyCodeWith(c, testKeys(), vecNow, PurposePay, v); err != nil {
			t.Fatal(err)
		}
	}
	if n := cache.Len(); n > 8 {
		t.Fatalf("cache of 8 holds %d certificates", n)
	}
	var none *Verifier // nil caches nothing and verifies in full
	if _, err := VerifyCodeWith(flip(60), testKeys(), vecNow, PurposePay, none); !errors.Is(err, ErrCodeBadCertSig) {
		t.Fatalf("nil cache: %v", err)
	}
}
