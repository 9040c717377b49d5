package protocol

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"
)

// A version 2 certificate round-trips its allowance through a code, and a
// version 1 code under the same keys still verifies (old phones keep
// paying while terminals and the authorizer move to version 2).
func TestAllowanceRoundTrip(t *testing.T) {
	a := Allowance{ID: 77, Amount: 3000, ValidUntil: vecNow.Add(24 * time.Hour), Offline: true}
	cert := mustCertV2(t, 1001, 7, vecNow.Add(time.Hour), a)
	if len(cert) != CertificateV2Size {
		t.Fatalf("certificate %d bytes, want %d", len(cert), CertificateV2Size)
	}
	c, err := VerifyCode(mustCode(t, cert, deviceKey(), PurposePay, vecNow, 1), testKeys(), vecNow, PurposePay)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Cert.Allowance; got == nil || *got != a || c.Cert.Version() != 2 || c.Cert.UserID != 1001 || c.Cert.DeviceID != 7 {
		t.Fatalf("allowance %+v, version %d", got, c.Cert.Version())
	}
	old, err := VerifyCode(mustCode(t, mustCert(t, 1001, 7, vecNow.Add(time.Hour)), deviceKey(), PurposePay, vecNow, 2), testKeys(), vecNow, PurposePay)
	if err != nil || old.Cert.Allowance != nil || old.Cert.Version() != 1 {
		t.Fatalf("version 1 code: %v, %+v", err, old)
	}
}

func TestIssueCertificateRefusesBadAllowance(t *testing.T) {
	pub := deviceKey().Public().(ed25519.PublicKey)
	for _, a := range []Allowance{
		{ID: 0, Amount: 100, ValidUntil: vecNow},
		{ID: 1, Amount: 0, ValidUntil: vecNow},
		{ID: 1, Amount: MaxAmount + 1, ValidUntil: vecNow},
		{ID: 1, Amount: 100},
	} {
		if _, err := IssueCertificate(Certificate{KeyID: 1, UserID: 1, DeviceID: 1, DeviceKey: pub, Expires: vecNow, Allowance: &a}, issuerKey()); err == nil {
			t.Errorf("issued with %+v", a)
		}
	}
}

// The checks a terminal makes offline, in their order: a revoked device
// is refused before anything about its allowance.
func TestCheckOfflineOrder(t *testing.T) {
	a := Allowance{ID: 5, Amount: 1000, ValidUntil: vecNow.Add(time.Hour), Offline: true}
	c, err := VerifyCode(mustCode(t, mustCertV2(t, 1, 9, vecNow.Add(time.Hour), a), deviceKey(), PurposePay, vecNow, 1), testKeys(), vecNow, PurposePay)
	if err != nil {
		t.Fatal(err)
	}
	p := &OfflinePolicy{MaxPerHour: 2, RevokedAllowances: []uint32{5}}
	for _, tc := range []struct {
		name    string
		p       *OfflinePolicy
		revoked []uint32
		amount  int64
		spent   OfflineSpend
		want    error
	}{
		{"no policy before a revoked device", nil, []uint32{9}, 100, OfflineSpend{}, ErrOffline},
		{"revoked device before a revoked allowance", p, []uint32{9}, 100, OfflineSpend{}, ErrDeviceRevoked},
		{"revoked allowance before the amount", p, nil, 5000, OfflineSpend{}, ErrOfflineRevoked},
		{"amount before velocity", &OfflinePolicy{MaxPerHour: 2}, nil, 1001, OfflineSpend{LastHour: 2}, ErrOfflineExceeded},
		{"zero amount", &OfflinePolicy{MaxPerHour: 2}, nil, 0, OfflineSpend{}, ErrOfflineExceeded},
		{"velocity", &OfflinePolicy{MaxPerHour: 2}, nil, 1, OfflineSpend{LastHour: 2}, ErrOfflineVelocity},
		{"accepted", &OfflinePolicy{MaxPerHour: 2}, nil, 1000, OfflineSpend{LastHour: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckOffline(c, tc.p, tc.revoked, vecNow, tc.amount, tc.spent); !errors.Is(err, tc.want) && (err != nil || tc.want != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestOfflineCodeQRSize measures the offline code: 295 characters of the
// alphanumeric set, still QR version 10 at level M (capacity 311).
func TestOfflineCodeQRSize(t *testing.T) {
	a := Allowance{ID: 0xFFFFFFFF, Amount: MaxAmount, ValidUntil: time.Unix(0xFFFFFFFF, 0), Offline: true}
	text := mustCode(t, mustCertV2(t, 0xFFFFFFFF, 0xFFFFFFFF, time.Unix(0xFFFFFFFF, 0), a), deviceKey(), PurposePay, vecNow, 0xFFFF)
	if len(text) != 295 {
		t.Fatalf("offline code is %d characters, want 295", len(text))
	}
	q, err := encoder.Encoder_encodeWithoutHint(text, decoder.ErrorCorrectionLevel_M)
	if err != nil {
		t.Fatal(err)
	}
	if q.GetMode() != decoder.Mode_ALPHANUMERIC || q.GetVersion().GetVersionNumber() != 10 {
		t.Fatalf("offline code: mode %v, QR version %d; want alphanumeric, 10", q.GetMode(), q.GetVersion().GetVersionNumber())
	}
	t.Logf("offline code: %d characters, QR version %d-M", len(text), q.GetVersion().GetVersionNumber())
}
