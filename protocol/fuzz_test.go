package protocol

import (
	"strings"
	"testing"
)

// Fuzz targets for every parser of outside bytes. Seeds come from the shared
// vector table (testdata/vectors.json) plus the committed corpus under
// testdata/fuzz. None may panic; accepted inputs must round-trip.

func addVectorSeeds(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.Text)
	}
}

func FuzzParseCode(f *testing.F) {
	addVectorSeeds(f)
	keys := testKeys()
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			return
		}
		_ = c.Verify(keys, vecNow, PurposePay)
		_ = c.ID()
		raw, _ := Base45Decode(s[len(CodePrefix):])
		if CodePrefix+Base45Encode(raw) != s {
			t.Fatalf("accepted a non-canonical code %q", s)
		}
	})
}

// FuzzParseCertificate reads certificate bytes of either version (the
// certificates inside the vectors' codes are the seeds): an accepted one
// must verify or fail cleanly, and re-issue to the same signed fields.
func FuzzParseCertificate(f *testing.F) {
	for _, v := range loadVectors(f) {
		if b, err := Base45Decode(strings.TrimPrefix(v.Text, CodePrefix)); err == nil && len(b) > codeHeaderLen {
			f.Add(b[codeHeaderLen:])
		}
	}
	keys := testKeys()
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCertificate(b)
		if err != nil {
			return
		}
		_ = c.Verify(keys, vecNow)
		if a := c.Allowance; a != nil && (a.ID == 0 || !ValidAmount(a.Amount) || c.Version() != 2) {
			t.Fatalf("accepted allowance %+v in version %d", a, c.Version())
		}
		if c.Allowance == nil && c.Version() != 1 {
			t.Fatalf("version %d without an allowance", c.Version())
		}
	})
}

func FuzzMerchantQR(f *testing.F) {
	addVectorSeeds(f)
	keys := testKeys()
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMerchantQR(s)
		if err != nil {
			return
		}
		if !ValidID(m.Merchant) || !ValidID(m.Terminal) || !ValidID(m.Campus) {
			t.Fatalf("accepted invalid ids %+v", m)
		}
		_ = m.Verify(keys)
	})
}

func FuzzClassify(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		k := Classify(s)
		if k.String() == "" {
			t.Fatal("kind without a name")
		}
		if (k == KindPayCode || k == KindIdentity) && func() bool { _, err := ParseCode(Trim(s)); return err != nil }() {
			t.Fatal("classified as a code but does not parse")
		}
	})
}

func FuzzBase45(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Base45Decode(s)
		if err != nil {
			return
		}
		if got, err := Base45Decode(Base45Encode(b)); err != nil || string(got) != string(b) {
			t.Fatal("re-encode does not round-trip")
		}
	})
}

func FuzzParseYuan(f *testing.F) {
	for _, s := range []string{"12.50", "0.01", "100000", ".5", "1e3", "-1", "1.234"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseYuan(s)
		if err != nil {
			return
		}
		if !ValidAmount(c) {
			t.Fatalf("accepted %q as %d", s, c)
		}
		if back, err := ParseYuan(FormatCents(c)); err != nil || back != c {
			t.Fatalf("%q → %d does not round-trip", s, c)
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	for _, c := range channels {
		f.Add(Topic(c, "T-1"))
	}
	f.Add("campuspay/v1/up/+/req")
	f.Fuzz(func(t *testing.T, s string) {
		term, c, err := ParseTopic(s)
		if err != nil {
			return
		}
		if Topic(c, term) != s {
			t.Fatalf("%q parsed to %s %s", s, term, c)
		}
	})
}

func FuzzParseTxID(f *testing.F) {
	f.Add("01ARZ3NDEKTSV4RRFFQ69G5FAV")
	f.Add("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := ParseTxID(s); err == nil && id.Time().IsZero() {
			t.Fatalf("valid id %q without a time", s)
		}
	})
}

// FuzzDecodeMessages feeds the same bytes to every message decoder: each
// MQTT payload a terminal or the authorizer receives goes through one.
func FuzzDecodeMessages(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-09-01T04:30:00Z","amount":100,"cred":{"kind":"card","text":"04A1"}}`,
		`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","status":"declined","code":"LIMIT_DAILY","server_time":"2026-09-01T04:30:00Z"}`,
		`{"v":1,"terminal":"T1","seq":3,"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","kind":"shower","status":"approved","amount":300,"ml":12000,"at":"2026-09-01T04:30:00Z"}`,
		`{"v":1,"terminal":"T1","seq":3,"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","ok":true}`,
		`{"v":1,"terminal":"T1","state":"offline","conn_seq":4}`,
		`{"v":1,"revision":2,"terminal":"T1","merchant":"M1","merchant_name":"一食堂","campus":"yungu","mode":"shower","tariff":{"cents_per_litre":5,"pulses_per_litre":450,"hold":1500,"idle_timeout_s":60},"issuer_keys":[{"id":1,"key":"AAAA"}],"seal_key":"","merchant_qr":"CM1:","server_time":"2026-09-01T04:30:00Z"}`,
		`{"v":1,"terminal":"T1","seq":4,"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","kind":"offline","status":"approved","amount":1250,"cred_kind":"code","cred":"CW1:0000","at":"2026-09-01T04:30:00Z"}`,
		`{"v":1,"revision":3,"terminal":"T1","merchant":"M1","merchant_name":"一食堂","campus":"yungu","mode":"pos","issuer_keys":[{"id":1,"key":"AAAA"}],"seal_key":"","merchant_qr":"CM1:","offline":{"max_per_hour":3,"revoked_allowances":[42]},"server_time":"2026-09-01T04:30:00Z"}`,
		`{"v":1,"terminal":"T1","payments":[{"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","seq":1,"amount":500,"user":"张*","at":"2026-09-01T04:30:00Z"}],"cursor":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip(t, b, &Request{})
		roundTrip(t, b, &Response{})
		roundTrip(t, b, &JournalEntry{})
		roundTrip(t, b, &JournalAck{})
		roundTrip(t, b, &StatusMsg{})
		roundTrip(t, b, &Config{})
		roundTrip(t, b, &Notice{})
	})
}

func roundTrip[M Message](t *testing.T, b []byte, m M) {
	if Decode(b, m) != nil {
		return
	}
	out, err := Encode(m)
	if err != nil {
		t.Fatalf("accepted %T does not encode: %v", m, err)
	}
	if err := Decode(out, m); err != nil {
		t.Fatalf("accepted %T does not round-trip: %v", m, err)
	}
}
