package modes

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strconv"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/terminal/journal"
)

// offlineBox is a POS whose config accepts offline codes (at most 2 per
// allowance per hour), whose clock was set by a live config, and a phone
// whose certificate carries a ¥30 allowance.
type offlineBox struct {
	*harness
	issuer ed25519.PrivateKey
}

func newOfflineBox(t *testing.T) *offlineBox {
	h := newHarness(t, protocol.ModePOS, func(c *protocol.Config) { c.Offline = &protocol.OfflinePolicy{MaxPerHour: 2} })
	ipub, ipriv, _ := ed25519.GenerateKey(h.rnd)
	b := &offlineBox{harness: h, issuer: ipriv}
	cfg := *h.cfg
	cfg.Revision, cfg.ServerTime = 2, h.now
	cfg.IssuerKeys = []protocol.IssuerKey{{ID: 1, Key: base64.StdEncoding.EncodeToString(ipub)}}
	h.must(h.m.Handle(context.Background(), ConfigEvent{&cfg}))
	h.cfg = &cfg
	h.cert = b.certFor(h.device, 900, &protocol.Allowance{ID: 42, Amount: 30_00, ValidUntil: h.now.Add(24 * time.Hour), Offline: true})
	return b
}

func (b *offlineBox) certFor(dev ed25519.PrivateKey, device uint32, a *protocol.Allowance) []byte {
	c, err := protocol.IssueCertificate(protocol.Certificate{KeyID: 1, UserID: 42, DeviceID: device,
		DeviceKey: dev.Public().(ed25519.PublicKey), Expires: b.now.Add(30 * 24 * time.Hour), Allowance: a}, b.issuer)
	b.must(err)
	return c
}

// amount keys an amount and Enter while offline.
func (b *offlineBox) amount(s string) {
	b.t.Helper()
	b.keys(s + "\n")
	if b.m.State() != StateAwait {
		b.t.Fatalf("state %v after keying %s", b.m.State(), s)
	}
}

func (b *offlineBox) offlineEntries() []protocol.JournalEntry {
	var out []protocol.JournalEntry
	for _, e := range b.entries() {
		if e.Kind == protocol.EntryOffline {
			out = append(out, e)
		}
	}
	return out
}

// Offline, a POS takes a code under an allowance: journal first, then the
// display says 离线支付; the entry carries the code for settlement; the
// same code again is refused here (single use at one terminal).
func TestOfflineAccepted(t *testing.T) {
	b := newOfflineBox(t)
	b.step(down(), StateIdle, "S Offline 0 | "+protocol.ErrOffline.ZH)
	b.amount("12.50")
	code := b.payCode(protocol.PurposePay)
	b.step(scan(code), StateResult, "J Offline", "S Result ok=true 1250 | 离线支付")
	es := b.offlineEntries()
	if len(es) != 1 || es[0].Cred != code || es[0].Amount != 12_50 || es[0].Status != protocol.StatusApproved || !es[0].At.Equal(b.now) {
		t.Fatalf("entries %+v", es)
	}
	if err := es[0].Validate(); err != nil {
		t.Fatal(err)
	}
	if tx := b.tx(es[0].Tx); tx.State != journal.StateOffline || tx.EntrySeq != es[0].Seq || !tx.State.Final() {
		t.Fatalf("tx %+v", tx)
	}
	b.step(tick(), StateResult)
	b.advance(DefaultResultHold)
	b.step(tick(), StateIdle, "S Offline 0 | "+protocol.ErrOffline.ZH)
	b.amount("1")
	b.step(scan(code), StateAwait, "S Offline 100 | "+protocol.ErrCodeUsed.ZH)
	if n := len(b.link.requests()); n != 0 {
		t.Fatalf("%d requests sent offline", n)
	}
}

// Each refusal offline, with its reason on the display; nothing is
// journalled for any of them.
func TestOfflineRefusals(t *testing.T) {
	b := newOfflineBox(t)
	b.step(down(), StateIdle, "S Offline 0 | "+protocol.ErrOffline.ZH)
	good := b.cert
	_, otherIssuer, _ := ed25519.GenerateKey(b.rnd)
	_, otherDevice, _ := ed25519.GenerateKey(b.rnd)
	allowance := &protocol.Allowance{ID: 42, Amount: 30_00, ValidUntil: b.now.Add(24 * time.Hour), Offline: true}
	forged, err := protocol.IssueCertificate(protocol.Certificate{KeyID: 1, UserID: 42, DeviceID: 900,
		DeviceKey: b.device.Public().(ed25519.PublicKey), Expires: b.now.Add(time.Hour), Allowance: allowance}, otherIssuer)
	b.must(err)
	altered := append([]byte(nil), good...)
	altered[50+3] ^= 0x01 // the allowance amount
	plain := b.certFor(b.device, 900, nil)
	short := b.certFor(b.device, 900, &protocol.Allowance{ID: 43, Amount: 30_00, ValidUntil: b.now.Add(time.Minute), Offline: true})
	revokedDev := b.certFor(b.device, 901, allowance)
	revokedAllow := b.certFor(b.device, 900, &protocol.Allowance{ID: 44, Amount: 30_00, ValidUntil: b.now.Add(time.Hour), Offline: true})
	cfg := *b.cfg
	cfg.Revision, cfg.RevokedDevices = 3, []uint32{901}
	cfg.Offline = &protocol.OfflinePolicy{MaxPerHour: 2, RevokedAllowances: []uint32{44}}
	b.must(b.m.Handle(context.Background(), ConfigEvent{&cfg}))
	with := func(cert []byte, dev ed25519.PrivateKey) string {
		b.seq++
		s, err := protocol.MakeCode(cert, dev, protocol.PurposePay, b.now, b.seq)
		b.must(err)
		return s
	}
	b.amount("31")
	for _, tc := range []struct {
		name string
		code string
		want *protocol.Reason
	}{
		{"forged certificate", with(forged, b.device), protocol.ErrCodeBadCertSig},
		{"altered allowance", with(altered, b.device), protocol.ErrCodeBadCertSig},
		{"another device's certificate", with(good, otherDevice), protocol.ErrCodeBadSig},
		{"no allowance", with(plain, b.device), protocol.ErrOfflineNotAllowed},
		{"revoked device", with(revokedDev, b.device), protocol.ErrDeviceRevoked},
		{"revoked allowance", with(revokedAllow, b.device), protocol.ErrOfflineRevoked},
		{"more than the allowance", with(good, b.device), protocol.ErrOfflineExceeded},
		{"identity code", b.payCode(protocol.PurposeIdentity), protocol.ErrIdentityCode},
		{"WeChat code", "134567890123456789", protocol.ErrOfflineNotAllowed},
	} {
		b.step(scan(tc.code), StateAwait, "S Offline 3100 | "+tc.want.ZH)
	}
	// The allowance ends: a fresh code under it is refused.
	b.cert = short
	b.advance(time.Minute)
	b.step(scan(b.payCode(protocol.PurposePay)), StateAwait, "S Offline 3100 | "+protocol.ErrOfflineExpired.ZH)
	if es := b.offlineEntries(); len(es) != 0 {
		t.Fatalf("journalled %+v", es)
	}
}

// The allowance's spend at this terminal stays within its amount, and its
// payments here within the hourly cap.
func TestOfflineAmountAndVelocity(t *testing.T) {
	b := newOfflineBox(t)
	b.must(b.m.Handle(context.Background(), down()))
	pay := func(amount string, want *protocol.Reason) {
		b.t.Helper()
		b.amount(amount)
		if want == nil {
			b.step(scan(b.payCode(protocol.PurposePay)), StateResult, "J Offline", "S Result ok=true "+centsOf(amount)+" | 离线支付")
			b.advance(DefaultResultHold)
			b.must(b.m.Handle(context.Background(), tick()))
			return
		}
		b.step(scan(b.payCode(protocol.PurposePay)), StateAwait, "S Offline "+centsOf(amount)+" | "+want.ZH)
		b.keys("\x1b") // cancel
	}
	pay("20", nil)
	pay("10.01", protocol.ErrOfflineExceeded) // 20 + 10.01 > 30
	pay("10", nil)                            // exactly 30
	b.cert = b.certFor(b.device, 900, &protocol.Allowance{ID: 50, Amount: 30_00, ValidUntil: b.now.Add(24 * time.Hour), Offline: true})
	pay("1", nil)
	pay("1", nil)
	pay("1", protocol.ErrOfflineVelocity) // third in the hour under allowance 50
	b.advance(time.Hour)
	pay("1", nil) // the hour has passed
	if n := len(b.offlineEntries()); n != 5 {
		t.Fatalf("%d offline entries, want 5", n)
	}
}

// A box that restarts while offline has no trusted clock: it refuses
// offline codes until a server time arrives.
func TestOfflineNoClockAfterRestart(t *testing.T) {
	b := newOfflineBox(t)
	b.newMachine(protocol.ModePOS) // restarted: the cached config, no server time seen yet
	b.must(b.m.Handle(context.Background(), down()))
	b.amount("5")
	b.step(scan(b.payCode(protocol.PurposePay)), StateAwait, "S Offline 500 | "+protocol.ErrOfflineNoClock.ZH)
	cfg := *b.cfg
	cfg.Revision, cfg.ServerTime = 9, b.now
	b.must(b.m.Handle(context.Background(), ConfigEvent{&cfg}))
	b.step(scan(b.payCode(protocol.PurposePay)), StateResult, "J Offline", "S Result ok=true 500 | 离线支付")
}

func centsOf(yuan string) string {
	c, err := protocol.ParseYuan(yuan)
	if err != nil {
		panic(err)
	}
	return strconv.FormatInt(c, 10)
}
