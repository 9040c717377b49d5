package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"campuspay/protocol"
	"campuspay/server/api"
	"campuspay/server/wallet/wallettest"
)

type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *client) do(method, path string, body any, hdr map[string]string) (int, map[string]any, []byte) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m, raw
}

func (c *client) want(status int, code string, method, path string, body any, hdr map[string]string) map[string]any {
	c.t.Helper()
	st, m, raw := c.do(method, path, body, hdr)
	if st != status || (code != "" && m["code"] != code) {
		c.t.Fatalf("%s %s: %d %s, want %d %s", method, path, st, raw, status, code)
	}
	if st >= 400 && (m["message_zh"] == "" || m["message_en"] == "" || m["message_zh"] == nil) {
		c.t.Fatalf("%s %s: error without messages: %s", method, path, raw)
	}
	return m
}

func setup(t *testing.T) (*wallettest.Env, *client, *wallettest.Student) {
	e := wallettest.New(t)
	srv := httptest.NewServer(api.New(e.Svc, e.Store, api.Options{Now: e.Clock.Now}))
	t.Cleanup(srv.Close)
	s := e.AddStudent(wallettest.Options{Inactive: true, BankBalance: 100_00})
	c := &client{t: t, base: srv.URL}
	c.want(401, "LOGIN_FAILED", "POST", "/api/v1/session", map[string]string{"student_no": s.No, "password": "wrong"}, nil)
	c.want(401, "LOGIN_FAILED", "POST", "/api/v1/session", map[string]string{"student_no": "nobody", "password": "x"}, nil)
	m := c.want(200, "", "POST", "/api/v1/session", map[string]string{"student_no": s.No, "password": s.Password}, nil)
	c.token = m["token"].(string)
	return e, c, s
}

func TestEndToEnd(t *testing.T) {
	e, c, s := setup(t)
	anon := &client{t: t, base: c.base}
	anon.want(401, "UNAUTHORIZED", "GET", "/api/v1/wallet", nil, nil)
	c.want(422, "WALLET_NOT_ACTIVE", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": 100}, nil)
	c.want(422, "HOLDER_NOT_STUDENT", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard, "name": "别人"}, nil)
	c.want(400, "CARD_NUMBER_INVALID", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": "1234"}, nil)
	w := c.want(200, "", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard}, nil)
	if w["state"] != "active" {
		t.Fatalf("wallet %v", w)
	}
	// Top-up with an Idempotency-Key: the repeat is replayed, no money moves.
	key := map[string]string{"Idempotency-Key": "topup-1"}
	m1 := c.want(200, "", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": 30_00}, key)
	_, _, raw1 := c.do("POST", "/api/v1/wallet/top-up", map[string]int{"amount": 30_00}, key)
	if e.Balance(s) != 30_00 || e.BankBalance(s) != 70_00 {
		t.Fatalf("after a repeated top-up: wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	var again map[string]any
	json.Unmarshal(raw1, &again)
	if fmt.Sprint(again) != fmt.Sprint(m1) {
		t.Fatalf("replay differs:\n%v\n%v", again, m1)
	}
	c.want(409, "TX_ID_CONFLICT", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": 31_00}, key)
	c.want(400, "AMOUNT_INVALID", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": -1}, nil)
	c.want(400, "BAD_REQUEST", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": 1}, map[string]string{"Idempotency-Key": "bad key!"})
	e.Check()

	c.want(400, "PASSWORD_INVALID", "PUT", "/api/v1/wallet/payment-password", map[string]string{"password": "12ab56"}, nil)
	c.want(422, "PAYMENT_PASSWORD_NOT_SET", "POST", "/api/v1/wallet/withdraw", map[string]any{"amount": 5_00, "password": "112233"}, nil)
	c.want(200, "", "PUT", "/api/v1/wallet/payment-password", map[string]string{"password": "112233"}, nil)
	wd := map[string]any{"amount": 5_00, "password": "112233"}
	c.want(200, "", "POST", "/api/v1/wallet/withdraw", wd, map[string]string{"Idempotency-Key": "wd-1"})
	c.want(200, "", "POST", "/api/v1/wallet/withdraw", wd, map[string]string{"Idempotency-Key": "wd-1"})
	if e.Balance(s) != 25_00 {
		t.Fatalf("after withdraw %d", e.Balance(s))
	}
	c.want(422, "BALANCE_INSUFFICIENT", "POST", "/api/v1/wallet/withdraw", map[string]any{"amount": 25_01, "password": "112233"}, nil)
	e.Check()

	c.want(200, "", "PUT", "/api/v1/wallet/limits", map[string]int{"per_transaction": 20_00, "daily": 50_00}, nil)
	c.want(422, "PAYMENT_PASSWORD_WRONG", "PUT", "/api/v1/wallet/payment-password", map[string]string{"password": "445566", "old_password": "000000"}, nil)
	c.want(200, "", "PUT", "/api/v1/wallet/water-password", map[string]string{"password": "778899"}, nil)
	pw := map[string]string{"password": "112233"}
	w = c.want(200, "", "POST", "/api/v1/wallet/password-free", pw, nil)
	if w["password_free"] != true || w["payment_password_set"] != true || w["limit_per_tx"] != float64(20_00) {
		t.Fatalf("wallet %v", w)
	}
	c.want(422, "PASSWORD_FREE_ALREADY_SIGNED", "POST", "/api/v1/wallet/password-free", pw, nil)

	// Devices: a certificate for the phone's key; codes work until it is revoked.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	d := c.want(200, "", "POST", "/api/v1/devices", map[string]string{"public_key": base64.StdEncoding.EncodeToString(pub)}, nil)
	cert, _ := base64.StdEncoding.DecodeString(d["certificate"].(string))
	code, err := protocol.MakeCode(cert, priv, protocol.PurposePay, e.Clock.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	r := e.Svc.HandleRequest(t.Context(), &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.POS, Amount: 3_00,
		Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}})
	if r.Status != protocol.StatusApproved {
		t.Fatalf("pay with the new device: %+v", r)
	}
	c.want(400, "DEVICE_KEY_INVALID", "POST", "/api/v1/devices", map[string]string{"public_key": "AAAA"}, nil)
	// Issue 13 item 8: the all-zero (small-order) key gets no certificate.
	c.want(400, "DEVICE_KEY_INVALID", "POST", "/api/v1/devices", map[string]string{"public_key": base64.StdEncoding.EncodeToString(make([]byte, 32))}, nil)
	c.want(404, "NOT_FOUND", "DELETE", "/api/v1/devices/99999", nil, nil)
	c.want(404, "NOT_FOUND", "DELETE", "/api/v1/devices/x", nil, nil)
	c.want(200, "", "DELETE", fmt.Sprintf("/api/v1/devices/%.0f", d["device_id"]), nil, nil)
	code, _ = protocol.MakeCode(cert, priv, protocol.PurposePay, e.Clock.Now(), 2)
	r = e.Svc.HandleRequest(t.Context(), &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.POS, Amount: 3_00,
		Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}})
	if r.Code != protocol.ErrDeviceRevoked.Code {
		t.Fatalf("pay with a revoked device: %+v", r)
	}

	// Scan-to-pay the POS terminal's static QR.
	cfg, _ := e.Svc.TerminalConfig(t.Context(), wallettest.POS)
	sp := map[string]any{"qr": cfg.MerchantQR, "amount": 4_50, "password": "112233"}
	m := c.want(200, "", "POST", "/api/v1/scan-pay", sp, map[string]string{"Idempotency-Key": "sp-1"})
	c.want(200, "", "POST", "/api/v1/scan-pay", sp, map[string]string{"Idempotency-Key": "sp-1"})
	tr := m["transaction"].(map[string]any)
	if tr["merchant_name"] != "云谷食堂" || tr["amount"] != float64(4_50) || tr["channel"] != "balance" || tr["status"] != "approved" {
		t.Fatalf("scan-pay %v", m)
	}
	n, _ := e.Svc.Notices(t.Context(), wallettest.POS, 0)
	if len(n.Payments) != 1 {
		t.Fatalf("notices %+v", n)
	}
	c.want(422, "LIMIT_PER_TRANSACTION", "POST", "/api/v1/scan-pay", map[string]any{"qr": cfg.MerchantQR, "amount": 20_01, "password": "112233"}, nil)
	c.want(422, "MERCHANT_QR_INVALID", "POST", "/api/v1/scan-pay", map[string]any{"qr": "CM1:XX", "amount": 1, "password": "112233"}, nil)
	if e.Balance(s) != 25_00-3_00-4_50 {
		t.Fatalf("balance %d", e.Balance(s))
	}
	e.Check()

	// WeChat link and card loss.
	lc, _ := e.WeChat.NewLoginCode(s.OpenID)
	if w := c.want(200, "", "POST", "/api/v1/wechat/link", map[string]string{"code": lc}, nil); w["wechat_linked"] != true {
		t.Fatalf("wallet %v", w)
	}
	c.want(200, "", "POST", "/api/v1/card/lost", pw, nil)
	cfg, _ = e.Svc.TerminalConfig(t.Context(), wallettest.CardBox)
	if len(cfg.LostCards) != 1 {
		t.Fatalf("lost cards %v", cfg.LostCards)
	}

	// Transactions, newest first, paged.
	tx := c.want(200, "", "GET", "/api/v1/transactions?limit=2", nil, nil)
	list := tx["transactions"].([]any)
	if len(list) != 2 || tx["next_before"] == nil {
		t.Fatalf("page 1 %v", tx)
	}
	first := list[0].(map[string]any)
	if first["kind"] != "scan_pay" {
		t.Fatalf("newest %v", first)
	}
	tx2 := c.want(200, "", "GET", fmt.Sprintf("/api/v1/transactions?limit=2&before=%.0f", tx["next_before"]), nil, nil)
	l2 := tx2["transactions"].([]any)
	if len(l2) == 0 || l2[0].(map[string]any)["id"].(float64) >= list[1].(map[string]any)["id"].(float64) {
		t.Fatalf("page 2 %v", tx2)
	}
	c.want(400, "BAD_REQUEST", "GET", "/api/v1/transactions?limit=1000", nil, nil)

	// Unbind, cancel (withdraws the rest), reopen.
	c.want(200, "", "DELETE", "/api/v1/wallet/password-free", pw, nil)
	c.want(200, "", "POST", "/api/v1/wallet/cancel", pw, map[string]string{"Idempotency-Key": "cancel-1"})
	if e.Balance(s) != 0 || e.BankBalance(s) != 100_00-3_00-4_50 {
		t.Fatalf("after cancel wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	c.want(422, "WALLET_CANCELLED", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": 1_00}, nil)
	c.want(200, "", "POST", "/api/v1/wallet/reopen", nil, nil)
	c.want(200, "", "DELETE", "/api/v1/wallet/bank-card", pw, nil)
	c.want(422, "NO_BANK_CARD", "DELETE", "/api/v1/wallet/bank-card", pw, nil)
	e.Check()
}

func TestBodies(t *testing.T) {
	_, c, _ := setup(t)
	c.want(400, "BAD_REQUEST", "PUT", "/api/v1/wallet/limits", `{"per_transaction":1,"daily":1,"extra":1}`, nil)
	c.want(400, "BAD_REQUEST", "PUT", "/api/v1/wallet/limits", `{"per_transaction":1,"daily":1} {}`, nil)
	c.want(400, "BAD_REQUEST", "PUT", "/api/v1/wallet/limits", `[1]`, nil)
	c.want(400, "BAD_REQUEST", "PUT", "/api/v1/wallet/limits", `{"per_transaction":"1"}`, nil)
	big := `{"code":"` + strings.Repeat("a", api.MaxBody) + `"}`
	c.want(400, "BAD_REQUEST", "POST", "/api/v1/wechat/link", big, nil)
	c.want(404, "NOT_FOUND", "GET", "/api/v1/nope", nil, nil)
}

// TestOpenAPI checks that every route is documented and every documented
// route exists. openapi.yaml is written as JSON, which YAML 1.2 includes.
func TestOpenAPI(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	routes := api.Routes()
	sort.Strings(documented)
	sort.Strings(routes)
	if strings.Join(documented, "\n") != strings.Join(routes, "\n") {
		t.Fatalf("documented:\n%s\n\nserved:\n%s", strings.Join(documented, "\n"), strings.Join(routes, "\n"))
	}
	// Every $ref resolves.
	var all map[string]any
	json.Unmarshal(raw, &all)
	comps := all["components"].(map[string]any)
	for _, ref := range findRefs(all) {
		parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
		sect, ok := comps[parts[0]].(map[string]any)
		if !ok || sect[parts[1]] == nil {
			t.Errorf("unresolved $ref %s", ref)
		}
	}
}

func findRefs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, findRefs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, findRefs(x)...)
		}
	}
	return out
}

func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"amount":100}`, `{"qr":"CM1:AB","amount":1,"password":"123456"}`, `{}`, `{"amount":1}{"amount":2}`,
		`{"amount":1e400}`, `{"bank_code":"CCB","card_number":"6217","extra":true}`, `null`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var a struct {
			Amount   int64  `json:"amount"`
			QR       string `json:"qr"`
			Password string `json:"password"`
		}
		err := api.DecodeBody(bytes.NewReader(b), &a)
		var one struct {
			Amount   int64  `json:"amount"`
			QR       string `json:"qr"`
			Password string `json:"password"`
		}
		err1 := api.DecodeBody(iotest.OneByteReader(bytes.NewReader(b)), &one)
		if (err == nil) != (err1 == nil) || (err == nil && a != one) {
			t.Fatalf("one byte at a time differs: %v %+v / %v %+v", err, a, err1, one)
		}
		if err != nil && protocol.AsReason(err) != protocol.ErrBadRequest {
			t.Fatalf("error %v is not BAD_REQUEST", err)
		}
		if err == nil && !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
	})
}

func TestLoginLock(t *testing.T) {
	e, c, s := setup(t)
	anon := &client{t: t, base: c.base}
	bad := map[string]string{"student_no": s.No, "password": "wrong"}
	for i := 1; i <= 4; i++ {
		anon.want(401, "LOGIN_FAILED", "POST", "/api/v1/session", bad, nil)
	}
	anon.want(423, "LOGIN_LOCKED", "POST", "/api/v1/session", bad, nil)
	good := map[string]string{"student_no": s.No, "password": s.Password}
	anon.want(423, "LOGIN_LOCKED", "POST", "/api/v1/session", good, nil)
	e.Clock.Advance(15 * time.Minute)
	anon.want(200, "", "POST", "/api/v1/session", good, nil)
	// The session expires after its TTL.
	e.Clock.Advance(24 * time.Hour)
	c.want(401, "UNAUTHORIZED", "GET", "/api/v1/wallet", nil, nil)
}

// TestLogout: DELETE /session ends that session on the server; another
// session of the same student (a second phone) keeps working.
func TestLogout(t *testing.T) {
	_, c, s := setup(t)
	m := c.want(200, "", "POST", "/api/v1/session", map[string]string{"student_no": s.No, "password": s.Password}, nil)
	other := &client{t: t, base: c.base, token: m["token"].(string)}
	if got := c.want(200, "", "DELETE", "/api/v1/session", nil, nil); got["logged_out"] != true {
		t.Fatalf("logout answered %v", got)
	}
	c.want(401, "UNAUTHORIZED", "GET", "/api/v1/wallet", nil, nil)
	c.want(401, "UNAUTHORIZED", "DELETE", "/api/v1/session", nil, nil)
	other.want(200, "", "GET", "/api/v1/wallet", nil, nil)
}

// Issue 13 item 7: member names are matched exactly and only once, so
// {"AMOUNT":1} withdraws nothing and {"amount":100,"amount":1} charges
// nothing: both are refused before any money moves.
func TestStrictJSONNames(t *testing.T) {
	e, c, s := setup(t)
	c.want(200, "", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard}, nil)
	c.want(200, "", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": 10_00}, nil)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/v1/wallet/withdraw", `{"AMOUNT":1}`},
		{"POST", "/api/v1/wallet/withdraw", `{"Amount":1}`},
		{"POST", "/api/v1/wallet/top-up", `{"amount":100,"amount":1}`},
		{"POST", "/api/v1/wallet/top-up", `{"amount":100,"\u0061mount":1}`},
		{"PUT", "/api/v1/wallet/limits", `{"per_transaction":100,"daily":100,"Daily":1}`},
		{"POST", "/api/v1/session", `{"student_no":"` + s.No + `","PASSWORD":"` + s.Password + `"}`},
	} {
		c.want(400, "BAD_REQUEST", tc.method, tc.path, tc.body, nil)
	}
	if e.Balance(s) != 10_00 || e.BankBalance(s) != 90_00 {
		t.Fatalf("wallet %d bank %d after refused bodies", e.Balance(s), e.BankBalance(s))
	}
	c.want(200, "", "PUT", "/api/v1/wallet/payment-password", map[string]string{"password": "112233"}, nil)
	c.want(200, "", "POST", "/api/v1/wallet/withdraw", `{"amount":1,"password":"112233"}`, nil)
	e.Check()
}

// The app's bank list comes from the authorizer's configuration, in its
// order, with names; no login is needed for it.
func TestBanksFromConfig(t *testing.T) {
	e, c, _ := setup(t)
	anon := &client{t: t, base: c.base}
	m := anon.want(200, "", "GET", "/api/v1/banks", nil, nil)
	list, _ := m["banks"].([]any)
	if len(list) != len(e.Config.SupportedBanks) {
		t.Fatalf("banks %v, want the configured %v", m, e.Config.SupportedBanks)
	}
	for i, b := range list {
		bank := b.(map[string]any)
		if bank["code"] != e.Config.SupportedBanks[i] || bank["name_zh"] == "" || bank["name_en"] == "" {
			t.Fatalf("bank %d: %v, want %s with names", i, bank, e.Config.SupportedBanks[i])
		}
	}
	if first := list[0].(map[string]any); first["code"] == "CCB" && first["name_zh"] != "中国建设银行" {
		t.Fatalf("CCB named %v", first)
	}
}

// Sessions live in the wallet store, not in the API process: a token
// still works after the API server is replaced (an authorizer restarted,
// or another one behind the same load balancer), and a log-out on one
// ends it on the other. The store keeps only the token's hash.
func TestSessionsSurviveRestart(t *testing.T) {
	e, c, s := setup(t)
	c.want(200, "", "GET", "/api/v1/wallet", nil, nil)
	other := httptest.NewServer(api.New(e.Svc, e.Store, api.Options{Now: e.Clock.Now}))
	t.Cleanup(other.Close)
	c2 := &client{t: t, base: other.URL, token: c.token}
	if w := c2.want(200, "", "GET", "/api/v1/wallet", nil, nil); w["student_no"] != s.No {
		t.Fatalf("wallet on the second server: %v", w)
	}
	if _, ok, err := e.Store.Session(context.Background(), c.token, e.Clock.Now()); ok || err != nil {
		t.Fatalf("the store knows the token itself (%v %v), want only its hash", ok, err)
	}
	c2.want(200, "", "DELETE", "/api/v1/session", nil, nil)
	c.want(401, "UNAUTHORIZED", "GET", "/api/v1/wallet", nil, nil)
	// A fresh login expires after the token's lifetime on every server.
	m := c.want(200, "", "POST", "/api/v1/session", map[string]string{"student_no": s.No, "password": s.Password}, nil)
	c.token, c2.token = m["token"].(string), m["token"].(string)
	e.Clock.Advance(24 * time.Hour)
	c2.want(401, "UNAUTHORIZED", "GET", "/api/v1/wallet", nil, nil)
}
