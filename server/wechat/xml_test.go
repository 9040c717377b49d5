package wechat

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSignVector(t *testing.T) {
	// The worked example of WeChat Pay's v2 signing guide.
	fields := map[string]string{
		"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000",
		"body": "test", "nonce_str": "ibuaiVcKdpRxkhJA", "sign": "x", "empty": "",
	}
	const want = "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
	if got := sign(fields, "192006250b4c09247ec02edce69f6a2d"); got != want {
		t.Fatalf("sign = %s, want %s", got, want)
	}
}

func TestDecodeXML(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`<xml><return_code><![CDATA[SUCCESS]]></return_code><a>x&amp;y</a></xml>`, true},
		{"<?xml version=\"1.0\"?>\n<xml>\n<a>1</a>\n</xml>\n", true},
		{`<xml><a>1</a><a>1</a></xml>`, false},
		{`<xml><a><b/></a></xml>`, false},
		{`<xml>hi</xml>`, false},
		{`<xml/><xml/>`, false},
		{`<other/>`, false},
		{`<xml><a>1</a>`, false},
		{`<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><a>&e;</a></xml>`, false},
		{``, false},
	} {
		m, err := decodeXML(iotest.OneByteReader(strings.NewReader(tc.in)))
		if (err == nil) != tc.ok {
			t.Errorf("decodeXML(%q) = %v, %v", tc.in, m, err)
		}
	}
	m, _ := decodeXML(strings.NewReader(`<xml><a>x&amp;y</a><b><![CDATA[<c>]]></b></xml>`))
	if m["a"] != "x&y" || m["b"] != "<c>" {
		t.Errorf("values %v", m)
	}
}

func TestDecodeSession(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{`{"openid":"o1","session_key":"k"}`, nil},
		{`{"errcode":40029,"errmsg":"invalid code"}`, ErrLoginCodeInvalid},
		{`{"errcode":40163,"errmsg":"code been used"}`, ErrLoginCodeUsed},
		{`{"errcode":-1}`, ErrUnavailable},
		{`{"errcode":40125}`, ErrRejected},
		{`{}`, ErrUnavailable},
		{`not json`, ErrUnavailable},
	} {
		_, err := decodeSession(iotest.OneByteReader(strings.NewReader(tc.in)))
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("decodeSession(%s) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func FuzzDecodeXML(f *testing.F) {
	f.Add([]byte(`<xml><return_code><![CDATA[SUCCESS]]></return_code><sign>AB</sign></xml>`))
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?><xml><a>&#13;&amp;</a></xml>`))
	f.Add([]byte(`<xml><a><b/></a></xml>`))
	f.Add([]byte(`<!DOCTYPE xml><xml/>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := decodeXML(bytes.NewReader(in))
		if err != nil {
			return
		}
		back, err := decodeXML(bytes.NewReader(encodeXML(m)))
		if err != nil {
			t.Fatalf("re-decode of %v: %v", m, err)
		}
		for k, v := range m {
			if back[k] != v {
				t.Fatalf("round trip changed %s: %q → %q", k, v, back[k])
			}
		}
	})
}

func FuzzDecodeSession(f *testing.F) {
	f.Add([]byte(`{"openid":"o1","session_key":"k"}`))
	f.Add([]byte(`{"errcode":40029}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := decodeSession(bytes.NewReader(in))
		if err == nil && s.OpenID == "" {
			t.Fatal("accepted an answer without openid")
		}
	})
}
