package protocol

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The shared table of annotated test vectors (testdata/vectors.json) is
// the single source for the encoder tests, the decoder tests and the fuzz
// seeds. Regenerate with: go test ./protocol -run TestVectors -update
var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

// Fixed keys: Ed25519 seeds, never used outside tests.
var (
	issuerSeed = bytes32(0x11)
	deviceSeed = bytes32(0x22)
	otherSeed  = bytes32(0x33)
	vecNow     = time.Date(2026, 9, 1, 4, 30, 0, 0, time.UTC) // 12:30 Asia/Shanghai, lunch
)

func bytes32(b byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

func issuerKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(issuerSeed) }
func deviceKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(deviceSeed) }
func otherKey() ed25519.PrivateKey  { return ed25519.NewKeyFromSeed(otherSeed) }

func testKeys() IssuerKeys { return IssuerKeys{1: issuerKey().Public().(ed25519.PublicKey)} }

// Field is one annotated byte range of a vector.
type Field struct {
	Name string `json:"name"`
	Hex  string `json:"hex"`
	Note string `json:"note,omitempty"`
}

// Vector is one entry of testdata/vectors.json.
type Vector struct {
	Name   string  `json:"name"`
	Kind   string  `json:"kind"` // "code" | "merchant_qr" | "classify"
	Note   string  `json:"note"`
	Text   string  `json:"text"`
	Fields []Field `json:"fields,omitempty"`
	// For codes: verification at VerifyAt with Want purpose gives Err ("" = ok).
	VerifyAt time.Time `json:"verify_at,omitzero"`
	Want     string    `json:"want,omitempty"`
	Err      string    `json:"err,omitempty"`
	// For classify: the expected Kind name.
	Class string `json:"class,omitempty"`
	// For offline (kind "offline"): CheckOffline of the code, verified at
	// VerifyAt, paying Amount after Spent, under a policy of MaxPerHour
	// revoking RevokedAllowances, gives Err ("" = accepted).
	Amount            int64        `json:"amount,omitempty"`
	Spent             OfflineSpend `json:"spent,omitzero"`
	MaxPerHour        int          `json:"max_per_hour,omitempty"`
	RevokedAllowances []uint32     `json:"revoked_allowances,omitempty"`
	NoPolicy          bool         `json:"no_policy,omitempty"`
}

func mustCert(t testing.TB, user, device uint32, exp time.Time) []byte {
	t.Helper()
	c, err := IssueCertificate(Certificate{KeyID: 1, UserID: user, DeviceID: device,
		DeviceKey: deviceKey().Public().(ed25519.PublicKey), Expires: exp}, issuerKey())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCode(t testing.TB, cert []byte, key ed25519.PrivateKey, p Purpose, at time.Time, seq uint16) string {
	t.Helper()
	s, err := MakeCode(cert, key, p, at, seq)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCertV2(t testing.TB, user, device uint32, exp time.Time, a Allowance) []byte {
	t.Helper()
	c, err := IssueCertificate(Certificate{KeyID: 1, UserID: user, DeviceID: device,
		DeviceKey: deviceKey().Public().(ed25519.PublicKey), Expires: exp, Allowance: &a}, issuerKey())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func codeFields(text string) []Field {
	b, err := Base45Decode(text[len(CodePrefix):])
	if err != nil {
		return nil
	}
	h := hex.EncodeToString
	if len(b) == CodeV2Size {
		return []Field{
			{"prefix", hex.EncodeToString([]byte(CodePrefix)), "ASCII \"CW1:\" (not base45)"},
			{"purpose", h(b[0:1]), "1 pay, 2 identity"},
			{"time", h(b[1:5]), "unix seconds, big-endian"},
			{"seq", h(b[5:7]), "per-device counter"},
			{"cert.version", h(b[7:8]), "2: carries an offline allowance"},
			{"cert.key_id", h(b[8:9]), "issuer key id"},
			{"cert.user", h(b[9:13]), "user id"},
			{"cert.device", h(b[13:17]), "device id"},
			{"cert.device_key", h(b[17:49]), "Ed25519 public key"},
			{"cert.expires", h(b[49:53]), "unix seconds"},
			{"cert.allowance_id", h(b[53:57]), "allowance id"},
			{"cert.allowance_amount", h(b[57:61]), "cents"},
			{"cert.allowance_until", h(b[61:65]), "unix seconds; not valid at or after"},
			{"cert.flags", h(b[65:66]), "bit 0: may be spent offline"},
			{"cert.signature", h(b[66:130]), "issuer Ed25519 over \"CPCERT2\"||cert[0:59]"},
			{"signature", h(b[130:194]), "device Ed25519 over \"CPCODE1\"||code[0:130]"},
		}
	}
	if len(b) != CodeSize {
		return nil
	}
	return []Field{
		{"prefix", hex.EncodeToString([]byte(CodePrefix)), "ASCII \"CW1:\" (not base45)"},
		{"purpose", h(b[0:1]), "1 pay, 2 identity"},
		{"time", h(b[1:5]), "unix seconds, big-endian"},
		{"seq", h(b[5:7]), "per-device counter"},
		{"cert.version", h(b[7:8]), "1"},
		{"cert.key_id", h(b[8:9]), "issuer key id"},
		{"cert.user", h(b[9:13]), "user id"},
		{"cert.device", h(b[13:17]), "device id"},
		{"cert.device_key", h(b[17:49]), "Ed25519 public key"},
		{"cert.expires", h(b[49:53]), "unix seconds"},
		{"cert.signature", h(b[53:117]), "issuer Ed25519 over \"CPCERT1\"||cert[0:46]"},
		{"signature", h(b[117:181]), "device Ed25519 over \"CPCODE1\"||code[0:117]"},
	}
}

// buildVectors computes the vectors from the fixed keys.
func buildVectors(t testing.TB) []Vector {
	exp := vecNow.Add(30 * 24 * time.Hour)
	cert := mustCert(t, 1001, 7, exp)
	expiredCert := mustCert(t, 1001, 7, vecNow.Add(-time.Second))
	pay := mustCode(t, cert, deviceKey(), PurposePay, vecNow, 1)
	ident := mustCode(t, cert, deviceKey(), PurposeIdentity, vecNow, 2)
	wrongDev := mustCode(t, cert, otherKey(), PurposePay, vecNow, 3)
	oldCert := mustCode(t, expiredCert, deviceKey(), PurposePay, vecNow, 4)
	forged, _ := IssueCertificate(Certificate{KeyID: 1, UserID: 1001, DeviceID: 7,
		DeviceKey: deviceKey().Public().(ed25519.PublicKey), Expires: exp}, otherKey())
	forgedCode := mustCode(t, forged, deviceKey(), PurposePay, vecNow, 5)
	mqr, err := IssueMerchantQR(MerchantQR{KeyID: 1, Issued: vecNow, Merchant: "M001", Terminal: "T-CANTEEN-01", Campus: "yungu"}, issuerKey())
	if err != nil {
		t.Fatal(err)
	}
	edge := vecNow.Add(CodeValidity + MaxClockSkew)
	// Offline: a version 2 certificate with a ¥30 allowance valid 24 h.
	until := vecNow.Add(24 * time.Hour)
	allow := Allowance{ID: 42, Amount: 3000, ValidUntil: until, Offline: true}
	certV2 := mustCertV2(t, 1001, 7, exp, allow)
	offPay := mustCode(t, certV2, deviceKey(), PurposePay, vecNow, 10)
	offIdent := mustCode(t, certV2, deviceKey(), PurposeIdentity, vecNow, 11)
	offLate := mustCode(t, certV2, deviceKey(), PurposePay, until.Add(-5*time.Second), 15) // fresh at until
	offOther := mustCode(t, certV2, otherKey(), PurposePay, vecNow, 12)                    // another device's certificate
	noFlag := allow
	noFlag.Offline = false
	offNoFlag := mustCode(t, mustCertV2(t, 1001, 7, exp, noFlag), deviceKey(), PurposePay, vecNow, 13)
	raw, _ := Base45Decode(offPay[len(CodePrefix):])
	raw[60] ^= 0x10 // allowance amount 3000 → 7096: the issuer signature no longer holds
	offAltered := CodePrefix + Base45Encode(raw)
	forgedV2, _ := IssueCertificate(Certificate{KeyID: 1, UserID: 1001, DeviceID: 7,
		DeviceKey: deviceKey().Public().(ed25519.PublicKey), Expires: exp, Allowance: &allow}, otherKey())
	offForged := mustCode(t, forgedV2, deviceKey(), PurposePay, vecNow, 14)
	raw, _ = Base45Decode(offPay[len(CodePrefix):])
	raw[65] = 0x03 // a reserved flag bit
	offReserved := CodePrefix + Base45Encode(raw)
	return []Vector{
		{Name: "pay_ok", Kind: "code", Note: "a fresh payment code verified 1 s after it was made", Text: pay, Fields: codeFields(pay), VerifyAt: vecNow.Add(time.Second), Want: "pay"},
		{Name: "pay_at_validity_edge", Kind: "code", Note: "exactly CodeValidity+MaxClockSkew after: still valid", Text: pay, VerifyAt: edge, Want: "pay"},
		{Name: "pay_expired", Kind: "code", Note: "one second past the edge", Text: pay, VerifyAt: edge.Add(time.Second), Want: "pay", Err: ErrCodeExpired.Code},
		{Name: "pay_skew_edge", Kind: "code", Note: "verifier clock MaxClockSkew behind the phone: valid", Text: pay, VerifyAt: vecNow.Add(-MaxClockSkew), Want: "pay"},
		{Name: "pay_not_yet_valid", Kind: "code", Note: "verifier clock more than MaxClockSkew behind", Text: pay, VerifyAt: vecNow.Add(-MaxClockSkew - time.Second), Want: "pay", Err: ErrCodeNotYetValid.Code},
		{Name: "identity_at_pay", Kind: "code", Note: "identity code presented for payment", Text: ident, Fields: codeFields(ident), VerifyAt: vecNow, Want: "pay", Err: ErrIdentityCode.Code},
		{Name: "identity_ok", Kind: "code", Note: "identity code for identification", Text: ident, VerifyAt: vecNow, Want: "identity"},
		{Name: "pay_at_identity", Kind: "code", Note: "payment code where identity is asked", Text: pay, VerifyAt: vecNow, Want: "identity", Err: ErrCodeWrongPurpose.Code},
		{Name: "bad_device_signature", Kind: "code", Note: "signed by a key that is not the certificate's", Text: wrongDev, VerifyAt: vecNow, Want: "pay", Err: ErrCodeBadSig.Code},
		{Name: "cert_expired", Kind: "code", Note: "certificate expired one second before", Text: oldCert, VerifyAt: vecNow, Want: "pay", Err: ErrCodeCertExpired.Code},
		{Name: "forged_cert", Kind: "code", Note: "certificate signed by a non-issuer key", Text: forgedCode, VerifyAt: vecNow, Want: "pay", Err: ErrCodeBadCertSig.Code},
		{Name: "truncated", Kind: "code", Note: "last three characters cut", Text: pay[:len(pay)-3], VerifyAt: vecNow, Want: "pay", Err: ErrCodeMalformed.Code},
		{Name: "lowercase", Kind: "code", Note: "base45 has no lower case", Text: CodePrefix + "abc", VerifyAt: vecNow, Want: "pay", Err: ErrCodeMalformed.Code},
		{Name: "offline_pay_ok", Kind: "code", Note: "version 2 certificate with a ¥30 allowance (id 42, valid 24 h): verifies as any code", Text: offPay, Fields: codeFields(offPay), VerifyAt: vecNow.Add(time.Second), Want: "pay"},
		{Name: "offline_identity_at_pay", Kind: "code", Note: "identity code under a version 2 certificate", Text: offIdent, VerifyAt: vecNow, Want: "pay", Err: ErrIdentityCode.Code},
		{Name: "offline_other_device", Kind: "code", Note: "another device's certificate (and allowance), signed by a key that is not the certificate's", Text: offOther, VerifyAt: vecNow, Want: "pay", Err: ErrCodeBadSig.Code},
		{Name: "offline_altered_allowance", Kind: "code", Note: "allowance amount altered after issue", Text: offAltered, VerifyAt: vecNow, Want: "pay", Err: ErrCodeBadCertSig.Code},
		{Name: "offline_forged_cert", Kind: "code", Note: "version 2 certificate signed by a non-issuer key", Text: offForged, VerifyAt: vecNow, Want: "pay", Err: ErrCodeBadCertSig.Code},
		{Name: "offline_reserved_flag", Kind: "code", Note: "a reserved flag bit set", Text: offReserved, VerifyAt: vecNow, Want: "pay", Err: ErrCodeMalformed.Code},
		{Name: "offline_accept", Kind: "offline", Note: "¥12.50 offline, nothing spent yet at this terminal", Text: offPay, VerifyAt: vecNow, Amount: 1250, MaxPerHour: 3},
		{Name: "offline_accept_to_the_cent", Kind: "offline", Note: "spend reaches the allowance exactly", Text: offPay, VerifyAt: vecNow, Amount: 1750, Spent: OfflineSpend{Total: 1250, LastHour: 1}, MaxPerHour: 3},
		{Name: "offline_exceeded", Kind: "offline", Note: "one cent over the allowance at this terminal", Text: offPay, VerifyAt: vecNow, Amount: 1751, Spent: OfflineSpend{Total: 1250, LastHour: 1}, MaxPerHour: 3, Err: ErrOfflineExceeded.Code},
		{Name: "offline_velocity", Kind: "offline", Note: "the hour's cap reached", Text: offPay, VerifyAt: vecNow, Amount: 100, Spent: OfflineSpend{Total: 300, LastHour: 3}, MaxPerHour: 3, Err: ErrOfflineVelocity.Code},
		{Name: "offline_expired", Kind: "offline", Note: "a fresh code at the allowance's valid-until", Text: offLate, VerifyAt: until, Amount: 100, MaxPerHour: 3, Err: ErrOfflineExpired.Code},
		{Name: "offline_revoked_allowance", Kind: "offline", Note: "the allowance was turned off and the terminal has the list", Text: offPay, VerifyAt: vecNow, Amount: 100, MaxPerHour: 3, RevokedAllowances: []uint32{42}, Err: ErrOfflineRevoked.Code},
		{Name: "offline_no_flag", Kind: "offline", Note: "version 2 certificate whose offline flag is clear", Text: offNoFlag, VerifyAt: vecNow, Amount: 100, MaxPerHour: 3, Err: ErrOfflineNotAllowed.Code},
		{Name: "offline_v1_cert", Kind: "offline", Note: "a version 1 code carries no allowance", Text: pay, VerifyAt: vecNow, Amount: 100, MaxPerHour: 3, Err: ErrOfflineNotAllowed.Code},
		{Name: "offline_no_policy", Kind: "offline", Note: "a terminal whose config has no offline policy (showers, excluded merchants)", Text: offPay, VerifyAt: vecNow, Amount: 100, NoPolicy: true, Err: ErrOffline.Code},
		{Name: "merchant_qr", Kind: "merchant_qr", Note: "static QR of the canteen POS", Text: mqr},
		{Name: "class_pay", Kind: "classify", Text: pay, Class: "pay_code"},
		{Name: "class_identity", Kind: "classify", Text: ident, Class: "identity_code"},
		{Name: "class_merchant", Kind: "classify", Text: mqr, Class: "merchant_qr"},
		{Name: "class_wechat_10", Kind: "classify", Text: "101234567890123456", Class: "wechat"},
		{Name: "class_wechat_15", Kind: "classify", Text: "151234567890123456", Class: "wechat"},
		{Name: "class_wechat_16_prefix", Kind: "classify", Note: "prefix 16 is not WeChat", Text: "161234567890123456", Class: "unknown"},
		{Name: "class_wechat_17_digits", Kind: "classify", Text: "13123456789012345", Class: "unknown"},
		{Name: "class_alipay_25_16", Kind: "classify", Text: "2512345678901234", Class: "alipay"},
		{Name: "class_alipay_30_24", Kind: "classify", Text: "301234567890123456789012", Class: "alipay"},
		{Name: "class_alipay_25_25", Kind: "classify", Note: "25 digits is too long", Text: "2512345678901234567890123", Class: "unknown"},
		{Name: "class_alipay_31", Kind: "classify", Text: "3112345678901234", Class: "unknown"},
		{Name: "class_unionpay", Kind: "classify", Text: "6212345678901234567", Class: "unionpay"},
		{Name: "class_unionpay_18", Kind: "classify", Text: "621234567890123456", Class: "unknown"},
		{Name: "class_malformed", Kind: "classify", Text: CodePrefix + "0000", Class: "malformed"},
		{Name: "class_url", Kind: "classify", Text: "https://example.invalid/x", Class: "unknown"},
		{Name: "class_trailing_newline", Kind: "classify", Text: "101234567890123456\r\n", Class: "wechat"},
	}
}

func loadVectors(t testing.TB) []Vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v []Vector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	return v
}

// TestVectors checks that the encoder still produces the committed bytes.
func TestVectors(t *testing.T) {
	got := buildVectors(t)
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(filepath.Join("testdata", "vectors.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := loadVectors(t)
	if len(got) != len(want) {
		t.Fatalf("vectors: built %d, file has %d (run with -update after a deliberate change)", len(got), len(want))
	}
	for i := range want {
		if got[i].Text != want[i].Text || got[i].Name != want[i].Name {
			t.Errorf("vector %s: encoder output differs from testdata (layout changed?)", want[i].Name)
		}
	}
}

// TestVectorsDecode runs the decoder side over the committed table.
func TestVectorsDecode(t *testing.T) {
	keys := testKeys()
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			switch v.Kind {
			case "code":
				want := PurposePay
				if v.Want == "identity" {
					want = PurposeIdentity
				}
				_, err := VerifyCode(v.Text, keys, v.VerifyAt, want)
				if v.Err == "" && err != nil {
					t.Fatalf("want ok, got %v", err)
				}
				if v.Err != "" && AsReason(err).Code != v.Err {
					t.Fatalf("want %s, got %v", v.Err, err)
				}
			case "offline":
				c, err := VerifyCode(v.Text, keys, v.VerifyAt, PurposePay)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				var p *OfflinePolicy
				if !v.NoPolicy {
					p = &OfflinePolicy{MaxPerHour: v.MaxPerHour, RevokedAllowances: v.RevokedAllowances}
				}
				err = CheckOffline(c, p, nil, v.VerifyAt, v.Amount, v.Spent)
				if v.Err == "" && err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if v.Err != "" && AsReason(err).Code != v.Err {
					t.Fatalf("want %s, got %v", v.Err, err)
				}
			case "merchant_qr":
				m, err := VerifyMerchantQR(v.Text, keys)
				if err != nil {
					t.Fatal(err)
				}
				if m.Merchant != "M001" || m.Terminal != "T-CANTEEN-01" || m.Campus != "yungu" || !m.Issued.Equal(vecNow) {
					t.Fatalf("merchant QR fields: %+v", m)
				}
			case "classify":
				if got := Classify(v.Text).String(); got != v.Class {
					t.Fatalf("Classify = %s, want %s", got, v.Class)
				}
			}
			// Annotated fields must reassemble the code bytes exactly.
			if len(v.Fields) > 0 {
				var all []byte
				for _, f := range v.Fields[1:] {
					b, err := hex.DecodeString(f.Hex)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, b...)
				}
				if Base45Encode(all) != v.Text[len(CodePrefix):] {
					t.Fatal("annotated fields do not reassemble the code")
				}
			}
		})
	}
}
