package wechat

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestSignVector(t *testing.T) {
	// The worked example of WeChat Pay's v2 signing guide.
	fields := map[string]string{
		"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000",
		"body": "test", "nonce_str": "ibuaiVcKdpRxkhJA",
	}
	const want = "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
	if got := Sign(fields, "192006250b4c09247ec02edce69f6a2d"); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	fields["sign"] = "ignored"
	fields["empty"] = ""
	if got := Sign(fields, "192006250b4c09247ec02edce69f6a2d"); got != want {
		t.Fatalf("sign and empty fields must not be signed: %s", got)
	}
}

func TestParseXML(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{`<xml><a>1</a><b><![CDATA[x<y]]></b></xml>`, map[string]string{"a": "1", "b": "x<y"}},
		{"<?xml version=\"1.0\"?>\n<xml>\n <a>1</a>\n <e></e>\n</xml>\n", map[string]string{"a": "1", "e": ""}},
		{`<xml><a>&lt;&amp;</a></xml>`, map[string]string{"a": "<&"}},
		{`<xml><a>1</a><a>2</a></xml>`, nil},
		{`<xml><a><b>1</b></a></xml>`, nil},
		{`<xml>text<a>1</a></xml>`, nil},
		{`<xml><a>1</a></xml><xml></xml>`, nil},
		{`<root><a>1</a></root>`, nil},
		{`<xml><a>1</a>`, nil},
		{`<!DOCTYPE x [<!ENTITY e "boom">]><xml><a>&e;</a></xml>`, nil},
		{``, nil},
	} {
		got, err := ParseXML(iotest.OneByteReader(strings.NewReader(tc.in)))
		if tc.want == nil {
			if err == nil {
				t.Errorf("ParseXML(%q) accepted: %v", tc.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("ParseXML(%q) = %v, %v", tc.in, got, err)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("ParseXML(%q)[%s] = %q, want %q", tc.in, k, got[k], v)
			}
		}
	}
	// Round trip, including a value that cannot go in CDATA.
	in := map[string]string{"body": "食堂]]>午餐", "x": "a&b"}
	out, err := ParseXML(bytes.NewReader(encodeXML(in)))
	if err != nil || out["body"] != in["body"] || out["x"] != in["x"] {
		t.Fatalf("round trip: %v %v", out, err)
	}
}

type fixedRand struct{ b byte }

func (r *fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		r.b++
		p[i] = r.b
	}
	return len(p), nil
}

func TestPaymentCodes(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	s := New(Config{AppID: "wx1", MchID: "m1", APIKey: "k", Now: func() time.Time { return now }, Rand: &fixedRand{}})
	if err := s.CreateUser(User{OpenID: "o1", Balance: 100}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		c, err := s.NewPaymentCode("o1")
		if err != nil {
			t.Fatal(err)
		}
		if !validPayCode(c) || seen[c] {
			t.Fatalf("code %q invalid or repeated", c)
		}
		seen[c] = true
	}
	if _, err := s.NewPaymentCode("nobody"); err == nil {
		t.Fatal("code for an unknown user")
	}
}

func TestHTTPControlAndSignRefusal(t *testing.T) {
	s := New(Config{AppID: "wx1", MchID: "m1", APIKey: "k"})
	url, err := s.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	postJSON := func(path, body string, out any) int {
		resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	if st := postJSON("/control/users", `{"openid":"o1","balance":500}`, nil); st != http.StatusCreated {
		t.Fatalf("create user: %d", st)
	}
	var pc struct {
		AuthCode string `json:"auth_code"`
	}
	postJSON("/control/users/o1/paycode", ``, &pc)
	if !validPayCode(pc.AuthCode) {
		t.Fatalf("paycode %q", pc.AuthCode)
	}
	var lc struct{ Code string }
	postJSON("/control/users/o1/logincode", ``, &lc)
	if lc.Code == "" {
		t.Fatal("no login code")
	}
	resp, err := http.Get(url + "/control/users/o1")
	if err != nil {
		t.Fatal(err)
	}
	var u struct{ Balance int64 }
	json.NewDecoder(resp.Body).Decode(&u)
	resp.Body.Close()
	if u.Balance != 500 {
		t.Fatalf("balance %d", u.Balance)
	}

	call := func(fields map[string]string) map[string]string {
		resp, err := http.Post(url+"/pay/micropay", "text/xml", bytes.NewReader(encodeXML(fields)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m, err := ParseXML(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	req := map[string]string{
		"appid": "wx1", "mch_id": "m1", "nonce_str": "n1", "sign_type": "HMAC-SHA256",
		"out_trade_no": "T1", "auth_code": pc.AuthCode, "total_fee": "100", "body": "午餐",
	}
	req["sign"] = Sign(req, "wrong key")
	if res := call(req); res["return_code"] != "FAIL" || res["return_msg"] != "签名错误" {
		t.Fatalf("bad sign: %v", res)
	}
	req["sign_type"] = "MD5"
	req["sign"] = Sign(req, "k")
	if res := call(req); res["return_code"] != "FAIL" {
		t.Fatalf("MD5 sign type: %v", res)
	}
	req["sign_type"] = "HMAC-SHA256"
	req["sign"] = Sign(req, "k")
	res := call(req)
	if res["result_code"] != "SUCCESS" || res["sign"] != Sign(res, "k") {
		t.Fatalf("good request: %v", res)
	}
	if bal, _ := s.Balance("o1"); bal != 400 {
		t.Fatalf("balance %d after paying 100", bal)
	}
	var o Order
	resp, err = http.Get(url + "/control/orders/T1")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&o)
	resp.Body.Close()
	if o.State != "SUCCESS" || o.TotalFee != 100 {
		t.Fatalf("order %+v", o)
	}
}

func FuzzParseXML(f *testing.F) {
	f.Add([]byte(`<xml><return_code><![CDATA[SUCCESS]]></return_code><sign>AB</sign></xml>`))
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?><xml><a>&amp;</a></xml>`))
	f.Add([]byte(`<xml><a><b/></a></xml>`))
	f.Add([]byte(`<!DOCTYPE xml><xml/>`))
	f.Add([]byte(`<xml><a>&#13;&#10;</a><b>]]&gt;</b></xml>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseXML(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever parses must survive our own encoding unchanged.
		back, err := ParseXML(bytes.NewReader(encodeXML(m)))
		if err != nil {
			t.Fatalf("re-parse of %v: %v", m, err)
		}
		for k, v := range m {
			if back[k] != v {
				t.Fatalf("round trip changed %s: %q → %q", k, v, back[k])
			}
		}
	})
}

func TestLoadUsers(t *testing.T) {
	users, err := LoadUsers("testdata/users.json")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{AppID: "wx1", MchID: "m1", APIKey: "k"})
	for _, u := range users {
		if err := s.CreateUser(u); err != nil {
			t.Fatal(err)
		}
	}
	if b, ok := s.Balance("oCampus_lisi"); !ok || b != 800 {
		t.Fatalf("balance %d %v", b, ok)
	}
	if _, err := LoadUsers("testdata/missing.json"); err == nil {
		t.Fatal("missing file accepted")
	}
}
