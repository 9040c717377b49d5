package wxpay

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSignVector(t *testing.T) {
	// The worked example of WeChat Pay's v2 signing guide.
	fields := map[string]string{
		"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000",
		"body": "test", "nonce_str": "ibuaiVcKdpRxkhJA",
	}
	const key = "192006250b4c09247ec02edce69f6a2d"
	const want = "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
	if got := Sign(fields, key); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	fields["sign"] = "ignored"
	fields["empty"] = ""
	if got := Sign(fields, key); got != want {
		t.Fatalf("sign and empty fields must not be signed: %s", got)
	}
	if Verify(fields, key) {
		t.Fatal("a wrong sign verified")
	}
	fields["sign"] = want
	if !Verify(fields, key) || Verify(fields, "other key") {
		t.Fatal("Verify disagrees with Sign")
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string // nil: refused
	}{
		{`<xml><return_code><![CDATA[SUCCESS]]></return_code><a>x&amp;y</a></xml>`, map[string]string{"return_code": "SUCCESS", "a": "x&y"}},
		{`<xml><a>1</a><b><![CDATA[x<y]]></b></xml>`, map[string]string{"a": "1", "b": "x<y"}},
		{"<?xml version=\"1.0\"?>\n<xml>\n <a>1</a>\n <e></e>\n</xml>\n", map[string]string{"a": "1", "e": ""}},
		{`<xml><a>&lt;&amp;</a></xml>`, map[string]string{"a": "<&"}},
		{`<xml><a>1</a><a>1</a></xml>`, nil},
		{`<xml><a><b/></a></xml>`, nil},
		{`<xml><a><b>1</b></a></xml>`, nil},
		{`<xml>hi</xml>`, nil},
		{`<xml>text<a>1</a></xml>`, nil},
		{`<xml/><xml/>`, nil},
		{`<xml><a>1</a></xml><xml></xml>`, nil},
		{`<other/>`, nil},
		{`<xml><a>1</a>`, nil},
		{`<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>`, nil},
		{`<!DOCTYPE x [<!ENTITY e "boom">]><xml><a>&e;</a></xml>`, nil},
		{"<xml><a>1</a>" + manyFields(MaxFields) + "</xml>", nil},
		{``, nil},
	} {
		// Fed one byte at a time, as a slow peer would.
		got, err := Decode(iotest.OneByteReader(strings.NewReader(tc.in)))
		if tc.want == nil {
			if err == nil {
				t.Errorf("Decode(%q) accepted: %v", tc.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("Decode(%q) = %v, %v", tc.in, got, err)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("Decode(%q)[%s] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
	if m, err := Decode(strings.NewReader("<xml>" + manyFields(MaxFields) + "</xml>")); err != nil || len(m) != MaxFields {
		t.Errorf("%d fields: %d, %v", MaxFields, len(m), err)
	}
}

func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("<f" + strings.Repeat("x", i) + ">1</f" + strings.Repeat("x", i) + ">")
	}
	return b.String()
}

func TestEncodeRoundTrip(t *testing.T) {
	// Including values that cannot go in CDATA.
	in := map[string]string{"body": "食堂]]>午餐", "x": "a&b", "cr": "a\r\nb", "y": "<c>"}
	for name, enc := range map[string]func(map[string]string) []byte{"Encode": Encode, "EncodeCDATA": EncodeCDATA} {
		out, err := Decode(bytes.NewReader(enc(in)))
		if err != nil || len(out) != len(in) {
			t.Fatalf("%s round trip: %v %v", name, out, err)
		}
		for k, v := range in {
			if out[k] != v {
				t.Errorf("%s round trip changed %s: %q → %q", name, k, v, out[k])
			}
		}
	}
	if got, want := string(EncodeCDATA(map[string]string{"b": "2", "a": "1"})), "<xml><a><![CDATA[1]]></a><b><![CDATA[2]]></b></xml>"; got != want {
		t.Errorf("EncodeCDATA = %s, want %s", got, want)
	}
	if got, want := string(Encode(map[string]string{"b": "2", "a": "<"})), "<xml><a>&lt;</a><b>2</b></xml>"; got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`<xml><return_code><![CDATA[SUCCESS]]></return_code><sign>AB</sign></xml>`))
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?><xml><a>&#13;&amp;</a></xml>`))
	f.Add([]byte(`<xml><a><b/></a></xml>`))
	f.Add([]byte(`<!DOCTYPE xml><xml/>`))
	f.Add([]byte(`<xml><a>&#13;&#10;</a><b>]]&gt;</b></xml>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever decodes must survive both encodings unchanged.
		for _, enc := range []func(map[string]string) []byte{Encode, EncodeCDATA} {
			back, err := Decode(bytes.NewReader(enc(m)))
			if err != nil {
				t.Fatalf("re-decode of %v: %v", m, err)
			}
			for k, v := range m {
				if back[k] != v {
					t.Fatalf("round trip changed %s: %q → %q", k, v, back[k])
				}
			}
		}
	})
}
