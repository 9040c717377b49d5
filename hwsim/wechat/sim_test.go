package wechat

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"campuspay/server/wechat/wxpay"
)

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
		resp, err := http.Post(url+"/pay/micropay", "text/xml", bytes.NewReader(wxpay.EncodeCDATA(fields)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m, err := wxpay.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	req := map[string]string{
		"appid": "wx1", "mch_id": "m1", "nonce_str": "n1", "sign_type": "HMAC-SHA256",
		"out_trade_no": "T1", "auth_code": pc.AuthCode, "total_fee": "100", "body": "午餐",
	}
	req["sign"] = wxpay.Sign(req, "wrong key")
	if res := call(req); res["return_code"] != "FAIL" || res["return_msg"] != "签名错误" {
		t.Fatalf("bad sign: %v", res)
	}
	req["sign_type"] = "MD5"
	req["sign"] = wxpay.Sign(req, "k")
	if res := call(req); res["return_code"] != "FAIL" {
		t.Fatalf("MD5 sign type: %v", res)
	}
	req["sign_type"] = "HMAC-SHA256"
	req["sign"] = wxpay.Sign(req, "k")
	res := call(req)
	if res["result_code"] != "SUCCESS" || res["sign"] != wxpay.Sign(res, "k") {
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
