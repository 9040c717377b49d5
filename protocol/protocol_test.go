package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"math/rand"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBase45RFC9285(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{"AB", "BB8"},
		{"Hello!!", "%69 VD92EX0"},
		{"base-45", "UJCLQE7W581"},
		{"ietf!", "QED8WEX0"},
		{"", ""},
	} {
		if got := Base45Encode([]byte(tc.in)); got != tc.out {
			t.Errorf("encode %q = %q, want %q", tc.in, got, tc.out)
		}
		got, err := Base45Decode(tc.out)
		if err != nil || string(got) != tc.in {
			t.Errorf("decode %q = %q, %v", tc.out, got, err)
		}
	}
	for _, bad := range []string{"GGW", "A", "ZZZ", "aa", "BB8A", "::"} {
		if _, err := Base45Decode(bad); err == nil {
			t.Errorf("decode %q: want error", bad)
		}
	}
}

func TestBase45RoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for n := 0; n < 300; n++ {
		b := make([]byte, r.Intn(200))
		r.Read(b)
		s := Base45Encode(b)
		for i := 0; i < len(s); i++ {
			if !strings.ContainsRune(base45Alphabet, rune(s[i])) {
				t.Fatalf("char %q outside the QR alphanumeric set", s[i])
			}
		}
		got, err := Base45Decode(s)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %x failed: %v", b, err)
		}
	}
}

func TestCodeRoundTrip(t *testing.T) {
	cert := mustCert(t, 4294967295, 123456, vecNow.Add(time.Hour))
	s := mustCode(t, cert, deviceKey(), PurposePay, vecNow, 65535)
	if len(s) != len(CodePrefix)+272 {
		t.Fatalf("code length %d, want 276 (QR v10-M alphanumeric)", len(s))
	}
	c, err := VerifyCode(s, testKeys(), vecNow, PurposePay)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cert.UserID != 4294967295 || c.Cert.DeviceID != 123456 || c.Seq != 65535 || !c.Time.Equal(vecNow) {
		t.Fatalf("fields: %+v", c)
	}
	if c.ID() != "123456-"+itoa(vecNow.Unix())+"-65535" {
		t.Fatalf("ID = %s", c.ID())
	}
	// The same code scanned twice has the same ID; the next code does not.
	c2, _ := ParseCode(mustCode(t, cert, deviceKey(), PurposePay, vecNow, 0))
	if c2.ID() == c.ID() {
		t.Fatal("distinct codes share an ID")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestCodeRejections(t *testing.T) {
	cert := mustCert(t, 1, 2, vecNow.Add(time.Hour))
	good := mustCode(t, cert, deviceKey(), PurposePay, vecNow, 9)
	raw, _ := Base45Decode(good[len(CodePrefix):])
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return CodePrefix + Base45Encode(b)
	}
	cases := []struct {
		name string
		text string
		keys IssuerKeys
		err  error
	}{
		{"no prefix", good[len(CodePrefix):], testKeys(), ErrCodeMalformed},
		{"other prefix", "CW2:" + good[len(CodePrefix):], testKeys(), ErrCodeMalformed},
		{"purpose 3", func() string { b := append([]byte(nil), raw...); b[0] = 3; return CodePrefix + Base45Encode(b) }(), testKeys(), ErrCodeMalformed},
		{"cert version", flip(7), testKeys(), ErrCodeMalformed},
		{"unknown issuer", good, IssuerKeys{2: testKeys()[1]}, ErrCodeUnknownIssuer},
		{"user flipped", flip(12), testKeys(), ErrCodeBadCertSig},
		{"cert sig flipped", flip(60), testKeys(), ErrCodeBadCertSig},
		{"time flipped", flip(4), testKeys(), ErrCodeBadSig},
		{"seq flipped", flip(6), testKeys(), ErrCodeBadSig},
		{"device sig flipped", flip(150), testKeys(), ErrCodeBadSig},
		{"extra byte", CodePrefix + Base45Encode(append(append([]byte(nil), raw...), 0)), testKeys(), ErrCodeMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyCode(tc.text, tc.keys, vecNow, PurposePay)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
}

func TestCertificateExpiryBoundary(t *testing.T) {
	exp := vecNow.Add(time.Minute)
	cert := mustCert(t, 1, 2, exp)
	s := mustCode(t, cert, deviceKey(), PurposePay, exp.Add(-time.Second), 0)
	if _, err := VerifyCode(s, testKeys(), exp.Add(-time.Second), PurposePay); err != nil {
		t.Fatalf("one second before expiry: %v", err)
	}
	if _, err := VerifyCode(s, testKeys(), exp, PurposePay); !errors.Is(err, ErrCodeCertExpired) {
		t.Fatalf("at expiry: %v", err)
	}
}

func TestFreshnessWindow(t *testing.T) {
	cert := mustCert(t, 1, 2, vecNow.Add(time.Hour))
	s := mustCode(t, cert, deviceKey(), PurposePay, vecNow, 0)
	for _, tc := range []struct {
		at  time.Duration
		err error
	}{
		{-MaxClockSkew - time.Nanosecond, ErrCodeNotYetValid},
		{-MaxClockSkew, nil},
		{0, nil},
		{CodeValidity, nil},
		{CodeValidity + MaxClockSkew, nil},
		{CodeValidity + MaxClockSkew + time.Nanosecond, ErrCodeExpired},
	} {
		_, err := VerifyCode(s, testKeys(), vecNow.Add(tc.at), PurposePay)
		if !errors.Is(err, tc.err) && !(err == nil && tc.err == nil) {
			t.Errorf("at %v: got %v, want %v", tc.at, err, tc.err)
		}
	}
}

func TestMakeCodeRefusesBadInput(t *testing.T) {
	cert := mustCert(t, 1, 2, vecNow.Add(time.Hour))
	if _, err := MakeCode(cert[:10], deviceKey(), PurposePay, vecNow, 0); err == nil {
		t.Error("short certificate accepted")
	}
	if _, err := MakeCode(cert, deviceKey(), Purpose(9), vecNow, 0); err == nil {
		t.Error("bad purpose accepted")
	}
	if _, err := MakeCode(cert, deviceKey(), PurposePay, time.Unix(0, 0), 0); err == nil {
		t.Error("time 0 accepted")
	}
	if _, err := IssueCertificate(Certificate{DeviceKey: []byte{1}}, issuerKey()); err == nil {
		t.Error("short device key accepted")
	}
}

func TestMerchantQR(t *testing.T) {
	m := MerchantQR{KeyID: 1, Issued: vecNow, Merchant: "M-7", Terminal: "T_1", Campus: "yungu"}
	s, err := IssueMerchantQR(m, issuerKey())
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyMerchantQR(s, testKeys())
	if err != nil || got.Merchant != "M-7" || got.Terminal != "T_1" || got.Campus != "yungu" {
		t.Fatalf("%+v %v", got, err)
	}
	raw, _ := Base45Decode(s[len(MerchantQRPrefix):])
	tamper := append([]byte(nil), raw...)
	tamper[8] ^= 1 // a merchant id byte
	for name, text := range map[string]string{
		"tampered":     MerchantQRPrefix + Base45Encode(tamper),
		"wrong prefix": CodePrefix + s[len(MerchantQRPrefix):],
		"short":        MerchantQRPrefix + Base45Encode(raw[:20]),
		"empty":        MerchantQRPrefix,
	} {
		if _, err := VerifyMerchantQR(text, testKeys()); !errors.Is(err, ErrMerchantQRInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	forged, _ := IssueMerchantQR(m, otherKey())
	if _, err := VerifyMerchantQR(forged, testKeys()); !errors.Is(err, ErrMerchantQRInvalid) {
		t.Errorf("forged: %v", err)
	}
	for _, bad := range []string{"", "has space", "a/b", strings.Repeat("x", 33), "中文"} {
		if _, err := IssueMerchantQR(MerchantQR{Issued: vecNow, Merchant: bad, Terminal: "T", Campus: "c"}, issuerKey()); err == nil {
			t.Errorf("id %q accepted", bad)
		}
	}
}

func TestParseYuan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"12.50", 1250, true}, {"12.5", 1250, true}, {"3", 300, true}, {"0.01", 1, true},
		{".5", 50, true}, {"100000", 100_000_00, true}, {" 7.00 ", 700, true},
		{"100000.01", 0, false}, {"0", 0, false}, {"0.00", 0, false}, {"1.234", 0, false},
		{"-1", 0, false}, {"1e3", 0, false}, {"", 0, false}, {".", 0, false}, {"1..2", 0, false},
		{"１２", 0, false}, {"9999999999", 0, false},
	} {
		got, err := ParseYuan(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseYuan(%q) = %d, %v", tc.in, got, err)
		}
	}
	for c, s := range map[int64]string{0: "0.00", 1: "0.01", 1250: "12.50", -1500: "-15.00", 100_000_00: "100000.00"} {
		if FormatCents(c) != s {
			t.Errorf("FormatCents(%d) = %s", c, FormatCents(c))
		}
	}
}

func TestTxID(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	seen := map[TxID]bool{}
	var ids []TxID
	for i := 0; i < 2000; i++ {
		at := vecNow.Add(time.Duration(i) * time.Millisecond)
		id, err := NewTxID(at, r)
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatal("duplicate id")
		}
		seen[id] = true
		ids = append(ids, id)
		if !id.Time().Equal(at.Truncate(time.Millisecond)) {
			t.Fatalf("Time() = %v, want %v", id.Time(), at)
		}
		if _, err := ParseTxID(string(id)); err != nil {
			t.Fatal(err)
		}
	}
	if !sort.SliceIsSorted(ids, func(i, j int) bool { return ids[i] < ids[j] }) {
		t.Fatal("ids are not time-sortable as strings")
	}
	for _, bad := range []string{"", "01ARZ3NDEKTSV4RRFFQ69G5FA", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU", "01arz3ndektsv4rrffq69g5fav"} {
		if _, err := ParseTxID(bad); err == nil {
			t.Errorf("ParseTxID(%q) accepted", bad)
		}
	}
}

func TestTopics(t *testing.T) {
	for _, c := range channels {
		topic := Topic(c, "T-01")
		term, got, err := ParseTopic(topic)
		if err != nil || term != "T-01" || got != c {
			t.Errorf("%s: %s %s %v", topic, term, got, err)
		}
	}
	if Topic(ChanRequest, "T1") != "campuspay/v1/up/T1/req" || Topic(ChanJournalAck, "T1") != "campuspay/v1/down/T1/journal/ack" {
		t.Error("topic layout changed")
	}
	if AuthorizerFilter(ChanRequest, "authz") != "$share/authz/campuspay/v1/up/+/req" {
		t.Error("shared filter")
	}
	for _, bad := range []string{"campuspay/v1/down/T1/req", "campuspay/v1/up/T1/resp", "campuspay/v2/up/T1/req", "campuspay/v1/up/+/req", "campuspay/v1/up/T1", "x"} {
		if _, _, err := ParseTopic(bad); err == nil {
			t.Errorf("ParseTopic(%q) accepted", bad)
		}
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	tx, _ := NewTxID(vecNow, rand.New(rand.NewSource(1)))
	bal := int64(850)
	req := &Request{Op: OpPay, Tx: tx, Terminal: "T1", At: vecNow, Amount: 1250, Cred: &Credential{Kind: CredCode, Text: "CW1:X"}}
	b, err := Encode(req)
	if err != nil {
		t.Fatal(err)
	}
	var req2 Request
	if err := Decode(b, &req2); err != nil {
		t.Fatal(err)
	}
	if req2.V != Version || req2.Amount != 1250 || req2.Cred.Text != "CW1:X" {
		t.Fatalf("%+v", req2)
	}
	resp := &Response{Op: OpPay, Tx: tx, Terminal: "T1", Status: StatusDeclined, Balance: &bal, ServerTime: vecNow}
	resp.SetReason(ErrLimitDaily)
	b, _ = Encode(resp)
	var resp2 Response
	if err := Decode(b, &resp2); err != nil {
		t.Fatal(err)
	}
	if resp2.Reason() != ErrLimitDaily || *resp2.Balance != 850 {
		t.Fatalf("%+v", resp2)
	}
	e := &JournalEntry{Terminal: "T1", Seq: 1, Tx: tx, Kind: EntryShower, Status: StatusApproved, Amount: 300, ML: 12000, At: vecNow}
	b, _ = Encode(e)
	if err := Decode(b, &JournalEntry{}); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRejects(t *testing.T) {
	tx, _ := NewTxID(vecNow, rand.New(rand.NewSource(1)))
	ok := `{"v":1,"op":"pay","tx":"` + string(tx) + `","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":100,"cred":{"kind":"card","text":"04A1"}}`
	if err := Decode([]byte(ok), &Request{}); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for name, body := range map[string]string{
		"version 2":      strings.Replace(ok, `"v":1`, `"v":2`, 1),
		"unknown field":  strings.Replace(ok, `"op"`, `"x":1,"op"`, 1),
		"zero amount":    strings.Replace(ok, `"amount":100`, `"amount":0`, 1),
		"huge amount":    strings.Replace(ok, `"amount":100`, `"amount":10000001`, 1),
		"no credential":  strings.Replace(ok, `,"cred":{"kind":"card","text":"04A1"}`, ``, 1),
		"bad cred kind":  strings.Replace(ok, `"card"`, `"alipay"`, 1),
		"bad terminal":   strings.Replace(ok, `"T1"`, `"T/1"`, 1),
		"bad op":         strings.Replace(ok, `"pay"`, `"steal"`, 1),
		"bad tx":         strings.Replace(ok, string(tx), "x", 1),
		"trailing":       ok + "{}",
		"not json":       "{",
		"too big":        `{"v":1,"x":"` + strings.Repeat("a", MaxMessageSize) + `"}`,
		"string amount":  strings.Replace(ok, `"amount":100`, `"amount":"100"`, 1),
		"float amount":   strings.Replace(ok, `"amount":100`, `"amount":1.5`, 1),
		"empty cred txt": strings.Replace(ok, `"04A1"`, `""`, 1),
	} {
		err := Decode([]byte(body), &Request{})
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if r := AsReason(err); r != ErrBadRequest && r != ErrProtocolVersion {
			t.Errorf("%s: reason %v", name, r)
		}
	}
}

func TestSealSecret(t *testing.T) {
	pub, priv, err := NewSealKey(rand.New(rand.NewSource(3)))
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := NewTxID(vecNow, rand.New(rand.NewSource(1)))
	other, _ := NewTxID(vecNow, rand.New(rand.NewSource(2)))
	s, err := SealSecret(pub, tx, "123456", nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "123456") {
		t.Fatal("secret visible")
	}
	got, err := OpenSecret(pub, priv, tx, s)
	if err != nil || got != "123456" {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := OpenSecret(pub, priv, other, s); err == nil {
		t.Fatal("sealed secret replayed under another transaction")
	}
	raw, _ := base64.StdEncoding.DecodeString(s)
	raw[len(raw)-1] ^= 1
	if _, err := OpenSecret(pub, priv, tx, base64.StdEncoding.EncodeToString(raw)); err == nil {
		t.Fatal("tampered box opened")
	}
}

func TestReasons(t *testing.T) {
	codes := map[string]bool{}
	for _, r := range Reasons() {
		if r.Code == "" || r.ZH == "" || r.EN == "" || strings.ToUpper(r.Code) != r.Code {
			t.Errorf("reason %+v incomplete", r)
		}
		codes[r.Code] = true
	}
	// Messages the source document fixes word for word.
	if ErrPasswordFreeMissing.ZH != "您的电子钱包尚未开通免密支付" || !strings.Contains(ErrBankPhoneMismatch.ZH, "信息与银行预留信息不一致") {
		t.Error("fixed wording changed")
	}
	if AsReason(errors.New("db: boom")) != ErrInternal || AsReason(nil) != nil {
		t.Error("AsReason")
	}
	wrapped := errors.Join(errors.New("ctx"), ErrLimitDaily)
	if AsReason(wrapped) != ErrLimitDaily {
		t.Error("AsReason through a wrap")
	}
	_ = ed25519.PublicKeySize
}
