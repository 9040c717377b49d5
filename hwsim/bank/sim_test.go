package bank

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var fixedNow = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func newSim(t *testing.T) (*Sim, string) {
	t.Helper()
	accts, err := LoadAccounts("testdata/accounts.csv")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Clients:  map[string]string{"campus": "s3cret"},
		Accounts: accts,
		Now:      func() time.Time { return fixedNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

// post sends a request signed as the protocol document says.
func post(t *testing.T, url, path, secret string, ts time.Time, body string) (*http.Response, []byte) {
	t.Helper()
	tsText := strconv.FormatInt(ts.Unix(), 10)
	req, err := http.NewRequest("POST", url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Bank-Client", "campus")
	req.Header.Set("X-Bank-Timestamp", tsText)
	req.Header.Set("X-Bank-Signature", sign(secret, "POST\n"+path+"\ncampus\n"+tsText+"\n", []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestLoadAccounts(t *testing.T) {
	for _, path := range []string{"testdata/accounts.csv", "testdata/accounts.json"} {
		accts, err := LoadAccounts(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(accts) == 0 || !ValidCardNumber(accts[0].CardNumber) {
			t.Fatalf("%s: %+v", path, accts)
		}
		if _, err := New(Config{Accounts: accts}); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	bad := []string{
		"bank_code,card_number\n",
		"bank_code,card_number,name,id_number,phone,balance\nCCB,1,a,b,c,notanumber\n",
		"bank_code,card_number,name,id_number,phone,balance\nCCB,1,a\n",
	}
	for _, in := range bad {
		if _, err := ReadAccountsCSV(strings.NewReader(in)); err == nil {
			t.Errorf("ReadAccountsCSV(%q) accepted", in)
		}
	}
	if _, err := New(Config{Accounts: []Account{{BankCode: "CCB", CardNumber: "6217001234000011"}}}); err == nil {
		t.Error("New accepted a card number failing Luhn")
	}
	if _, err := New(Config{Accounts: []Account{{BankCode: "XYZ", CardNumber: "6217001234000010"}}}); err == nil {
		t.Error("New accepted an unserved bank")
	}
}

func TestValidCardNumber(t *testing.T) {
	for _, tc := range []struct {
		n  string
		ok bool
	}{
		{"6217001234000010", true},
		{"4111111111111111", true},
		{"6217001234000011", false},
		{"621700123400001a", false},
		{"79927398713", false}, // valid Luhn but too short for a bank card
		{"", false},
	} {
		if got := ValidCardNumber(tc.n); got != tc.ok {
			t.Errorf("ValidCardNumber(%q) = %v", tc.n, got)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		op, body string
		ok       bool
	}{
		{"debit", `{"key":"k1","bank_code":"CCB","card_number":"6217001234000010","amount":100}`, true},
		{"debit", `{"key":"k1","bank_code":"CCB","card_number":"6217001234000010","amount":0}`, false},
		{"debit", `{"key":"k1","bank_code":"CCB","card_number":"6217001234000010","amount":1.5}`, false},
		{"credit", `{"key":"","bank_code":"CCB","card_number":"6217001234000010","amount":1}`, false},
		{"credit", `{"key":"a b","bank_code":"CCB","card_number":"6217001234000010","amount":1}`, false},
		{"verify", `{"bank_code":"CCB","card_number":"1","name":"n","id_number":"i","phone":"p"}`, true},
		{"verify", `{"bank_code":"CCB","card_number":"1","name":"n"}`, false},
		{"verify", `{"bank_code":"CCB","card_number":"1","name":"n","id_number":"i","phone":"p"} {}`, false},
		{"verify", `[]`, false},
		{"other", `{"bank_code":"CCB","card_number":"1"}`, false},
	} {
		// Byte at a time, as a slow network delivers it.
		_, err := ParseRequest(tc.op, iotest.OneByteReader(strings.NewReader(tc.body)))
		if (err == nil) != tc.ok {
			t.Errorf("ParseRequest(%s, %s) err = %v", tc.op, tc.body, err)
		}
	}
}

func TestSignatureRequired(t *testing.T) {
	s, url := newSim(t)
	body := `{"key":"k1","bank_code":"CCB","card_number":"6217001234000010","amount":100}`
	for _, tc := range []struct {
		name   string
		secret string
		ts     time.Time
		want   int
	}{
		{"wrong secret", "guess", fixedNow, http.StatusUnauthorized},
		{"stale timestamp", "s3cret", fixedNow.Add(-10 * time.Minute), http.StatusUnauthorized},
		{"future timestamp", "s3cret", fixedNow.Add(10 * time.Minute), http.StatusUnauthorized},
		{"good", "s3cret", fixedNow.Add(-time.Minute), http.StatusOK},
	} {
		resp, b := post(t, url, "/v1/debit", tc.secret, tc.ts, body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: HTTP %d %s", tc.name, resp.StatusCode, b)
		}
	}
	if bal, _ := s.Balance("CCB", "6217001234000010"); bal != 100000-100 {
		t.Errorf("balance %d after one good debit", bal)
	}
	// A response is signed and bound to the request's signature.
	resp, b := post(t, url, "/v1/debit", "s3cret", fixedNow, body)
	reqSig := sign("s3cret", "POST\n/v1/debit\ncampus\n"+strconv.FormatInt(fixedNow.Unix(), 10)+"\n", []byte(body))
	if got, want := resp.Header.Get("X-Bank-Signature"), sign("s3cret", "RESPONSE\n200\n"+reqSig+"\n", b); got != want {
		t.Errorf("response signature %q, want %q", got, want)
	}
}

func TestControlAPI(t *testing.T) {
	s, url := newSim(t)
	card := LuhnComplete("621700999900001")
	add := `{"bank_code":"CCB","card_number":"` + card + `","name":"周九","id_number":"110105200007071239","phone":"13800000009","balance":4200}`
	resp, err := http.Post(url+"/control/accounts", "application/json", strings.NewReader(add))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("add account: HTTP %d", resp.StatusCode)
	}
	resp, err = http.Get(url + "/control/accounts/CCB/" + card)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Balance int64 }
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.Balance != 4200 {
		t.Fatalf("balance %d, want 4200", got.Balance)
	}
	resp, err = http.Post(url+"/control/faults", "application/json", strings.NewReader(`{"fail_next":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r1, _ := post(t, url, "/v1/verify", "s3cret", fixedNow, `{"bank_code":"CCB","card_number":"`+card+`","name":"周九","id_number":"110105200007071239","phone":"13800000009"}`)
	r2, _ := post(t, url, "/v1/verify", "s3cret", fixedNow, `{"bank_code":"CCB","card_number":"`+card+`","name":"周九","id_number":"110105200007071239","phone":"13800000009"}`)
	if r1.StatusCode != 503 || r2.StatusCode != 200 {
		t.Fatalf("fail_next=1: got %d then %d", r1.StatusCode, r2.StatusCode)
	}
	if st := s.Stats(); st.Requests != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	s, _ := New(Config{})
	if _, err := s.Start("0.0.0.0:0"); err == nil {
		t.Fatal("Start on 0.0.0.0 accepted")
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add("debit", []byte(`{"key":"k1","bank_code":"CCB","card_number":"6217001234000010","amount":100}`))
	f.Add("verify", []byte(`{"bank_code":"CCB","card_number":"6217001234000010","name":"张三","id_number":"11010520000101123X","phone":"13800000001"}`))
	f.Add("credit", []byte(`{"key":"\u0000","amount":-1}`))
	f.Add("debit", []byte(`{"amount":1e400}`))
	f.Add("otp_send", []byte(`{"bank_code":"CCB","card_number":"6217001234000010","purpose":"重置支付密码"}`))
	f.Add("otp_check", []byte(`{"bank_code":"CCB","card_number":"6217001234000010","otp_id":"OTP000000000001","code":"123456"}`))
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		req, err := ParseRequest(op, bytes.NewReader(body))
		if err != nil {
			return
		}
		if (op == "debit" || op == "credit") && (req.Amount <= 0 || req.Key == "") {
			t.Fatalf("accepted %+v", req)
		}
		if op == "otp_check" && (req.OTPID == "" || req.Code == "" || len(req.Code) > 16) {
			t.Fatalf("accepted %+v", req)
		}
	})
}
