package precheck

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/terminal/journal"
)

var base = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

type fixture struct {
	cfg    *protocol.Config
	cert   []byte
	device ed25519.PrivateKey
	other  ed25519.PrivateKey // an issuer the terminal does not know
}

func newFixture(t testing.TB) *fixture {
	r := rand.New(rand.NewSource(7))
	ipub, ipriv, _ := ed25519.GenerateKey(r)
	dpub, dpriv, _ := ed25519.GenerateKey(r)
	_, opriv, _ := ed25519.GenerateKey(r)
	cert, err := protocol.IssueCertificate(protocol.Certificate{KeyID: 1, UserID: 42, DeviceID: 900,
		DeviceKey: dpub, Expires: base.Add(30 * 24 * time.Hour)}, ipriv)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		cfg: &protocol.Config{Terminal: "T1", IssuerKeys: []protocol.IssuerKey{{ID: 1, Key: base64.StdEncoding.EncodeToString(ipub)}},
			LostCards: []string{"04A2B3C4"}},
		cert: cert, device: dpriv, other: opriv,
	}
}

func (f *fixture) code(t testing.TB, p protocol.Purpose, at time.Time, seq uint16) string {
	s, err := protocol.MakeCode(f.cert, f.device, p, at, seq)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestScan(t *testing.T) {
	f := newFixture(t)
	j, err := journal.Open(filepath.Join(t.TempDir(), "j.db"), journal.Options{Terminal: "T1", Now: func() time.Time { return base }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// The terminal's own clock is 5 minutes slow; the server corrected it.
	clk := &Clock{Local: func() time.Time { return base.Add(-5 * time.Minute) }}
	clk.Observe(base)
	c := &Checker{Seen: j, Now: clk.Now}
	revoked := *f.cfg
	revoked.RevokedDevices = []uint32{900}
	otherCert, _ := protocol.IssueCertificate(protocol.Certificate{KeyID: 1, UserID: 1, DeviceID: 1,
		DeviceKey: f.device.Public().(ed25519.PublicKey), Expires: base.Add(time.Hour)}, f.other)
	forged, _ := protocol.MakeCode(otherCert, f.device, protocol.PurposePay, base, 1)

	fresh := f.code(t, protocol.PurposePay, base.Add(-20*time.Second), 1)
	tests := []struct {
		name string
		cfg  *protocol.Config
		text string
		want error
		kind protocol.CredKind
	}{
		{"pay code fresh on corrected clock", f.cfg, fresh + "\n", nil, protocol.CredCode},
		{"same code again (screenshot)", f.cfg, fresh, protocol.ErrCodeUsed, ""},
		{"identity code", f.cfg, f.code(t, protocol.PurposeIdentity, base, 2), protocol.ErrIdentityCode, ""},
		{"expired code", f.cfg, f.code(t, protocol.PurposePay, base.Add(-2*time.Minute), 3), protocol.ErrCodeExpired, ""},
		{"code from the future", f.cfg, f.code(t, protocol.PurposePay, base.Add(time.Minute), 4), protocol.ErrCodeNotYetValid, ""},
		{"revoked phone", &revoked, f.code(t, protocol.PurposePay, base, 5), protocol.ErrDeviceRevoked, ""},
		{"forged certificate", f.cfg, forged, protocol.ErrCodeBadCertSig, ""},
		{"malformed campus code", f.cfg, "CW1:ABC", protocol.ErrCodeMalformed, ""},
		{"wechat", f.cfg, "134567890123456789", nil, protocol.CredWeChat},
		{"alipay", f.cfg, "281234567890123456", protocol.ErrUnsupportedCode, ""},
		{"unionpay", f.cfg, "6212345678901234567", protocol.ErrUnsupportedCode, ""},
		{"unknown text", f.cfg, "https://example.invalid/x", protocol.ErrUnknownCode, ""},
		{"merchant qr", f.cfg, "", protocol.ErrUnknownCode, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := c.Scan(context.Background(), tc.cfg, tc.text)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if tc.want == nil && cred.Kind != tc.kind {
				t.Fatalf("kind %q, want %q", cred.Kind, tc.kind)
			}
			if tc.want == protocol.ErrIdentityCode && protocol.AsReason(err).ZH != "这是身份码，不能用于支付，请出示付款码" {
				t.Fatalf("identity message %q", protocol.AsReason(err).ZH)
			}
		})
	}
	// The code that was refused as revoked was not remembered as seen.
	if _, err := c.Scan(context.Background(), f.cfg, f.code(t, protocol.PurposePay, base, 5)); err != nil {
		t.Fatalf("code refused for a revoked phone is usable once un-revoked: %v", err)
	}
}

func TestCard(t *testing.T) {
	f := newFixture(t)
	c := &Checker{}
	if _, err := c.Card(f.cfg, "04a2b3c4"); !errors.Is(err, protocol.ErrCardLost) {
		t.Fatalf("lost card: %v", err)
	}
	cred, err := c.Card(f.cfg, "0455")
	if err != nil || cred.Kind != protocol.CredCard || cred.Text != "0455" {
		t.Fatalf("card: %+v %v", cred, err)
	}
	if _, err := c.Card(f.cfg, " "); !errors.Is(err, protocol.ErrCardUnknown) {
		t.Fatalf("empty uid: %v", err)
	}
}

// FuzzScan feeds arbitrary scanner text: Scan never panics, and every
// refusal is a reason the display can show.
func FuzzScan(f *testing.F) {
	for _, s := range []string{"", "CW1:", "CW1:ABC", "CM1:XYZ", "134567890123456789", "281234567890123456",
		"6212345678901234567", "12", "CW1:" + string(make([]byte, 300))} {
		f.Add(s)
	}
	fx := newFixture(f)
	f.Add(fx.code(f, protocol.PurposePay, base, 1))
	seen := map[string]bool{}
	c := &Checker{Seen: seenFunc(func(id string) bool { fresh := !seen[id]; seen[id] = true; return fresh }),
		Now: func() time.Time { return base }}
	f.Fuzz(func(t *testing.T, text string) {
		cred, err := c.Scan(context.Background(), fx.cfg, text)
		if err != nil {
			var r *protocol.Reason
			if !errors.As(err, &r) {
				t.Fatalf("non-reason error %v", err)
			}
			return
		}
		if cred.Kind != protocol.CredCode && cred.Kind != protocol.CredWeChat {
			t.Fatalf("accepted %q as %q", text, cred.Kind)
		}
	})
}

type seenFunc func(id string) bool

func (f seenFunc) SeeCode(_ context.Context, id string, _ time.Time) (bool, error) { return f(id), nil }
