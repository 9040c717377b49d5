package api_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	banksim "campuspay/hwsim/bank"
	"campuspay/server/wallet"
)

// Sensitive actions need the payment password, checked on the server with
// the payments' count of wrong tries and their lock (issue 15).
func TestSensitiveActionsNeedPaymentPassword(t *testing.T) {
	e, c, s := setup(t)
	c.want(200, "", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard}, nil)
	c.want(200, "", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": 10_00}, nil)
	c.want(200, "", "PUT", "/api/v1/wallet/payment-password", map[string]string{"password": "112233"}, nil)
	wrong := map[string]string{"password": "000000"}
	for _, tc := range []struct{ method, path string }{
		{"DELETE", "/api/v1/wallet/bank-card"},
		{"POST", "/api/v1/card/lost"},
		{"POST", "/api/v1/wallet/password-free"},
		{"POST", "/api/v1/wallet/cancel"},
	} {
		c.want(400, "BAD_REQUEST", tc.method, tc.path, nil, nil) // no password at all
		c.want(422, "PAYMENT_PASSWORD_WRONG", tc.method, tc.path, wrong, nil)
	}
	// Those were 4 wrong tries; the 5th locks, and the right one is then refused too.
	c.want(423, "PAYMENT_PASSWORD_LOCKED", "POST", "/api/v1/wallet/withdraw", map[string]any{"amount": 1_00, "password": "000000"}, nil)
	c.want(423, "PAYMENT_PASSWORD_LOCKED", "DELETE", "/api/v1/wallet/password-free", map[string]string{"password": "112233"}, nil)
	w := c.want(200, "", "GET", "/api/v1/wallet", nil, nil)
	if w["bank_card"] == "" || w["state"] != "active" || w["card_lost"] != false || w["password_free"] != false || e.Balance(s) != 10_00 {
		t.Fatalf("refused actions changed the wallet: %v, balance %d", w, e.Balance(s))
	}
	e.Clock.Advance(wallet.PasswordTries * time.Hour) // past the lock
	ok := map[string]string{"password": "112233"}
	c.want(200, "", "POST", "/api/v1/card/lost", ok, nil)
	if w := c.want(200, "", "GET", "/api/v1/wallet", nil, nil); w["card_lost"] != true {
		t.Fatalf("after card lost: %v", w)
	}
	// 解挂 from the app, confirmed the same way.
	c.want(422, "PAYMENT_PASSWORD_WRONG", "DELETE", "/api/v1/card/lost", wrong, nil)
	c.want(200, "", "DELETE", "/api/v1/card/lost", ok, nil)
	c.want(422, "CARD_NOT_LOST", "DELETE", "/api/v1/card/lost", ok, nil)
	if cfg, _ := e.Svc.TerminalConfig(t.Context(), "card-1"); len(cfg.LostCards) != 0 {
		t.Fatalf("lost cards after 解挂: %v", cfg.LostCards)
	}

	// Cancelling: first what it ends, then the confirmed cancellation.
	c.want(200, "", "POST", "/api/v1/wallet/password-free", ok, nil)
	lc, _ := e.WeChat.NewLoginCode(s.OpenID)
	c.want(200, "", "POST", "/api/v1/wechat/link", map[string]string{"code": lc}, nil)
	p := c.want(200, "", "GET", "/api/v1/wallet/cancel", nil, nil)
	if p["withdraw"] != float64(10_00) || p["password_free"] != true || p["wechat"] != true || p["reopens_left"] != float64(3) || p["bank_card"] == "" {
		t.Fatalf("cancel preview %v", p)
	}
	c.want(200, "", "POST", "/api/v1/wallet/cancel", ok, nil)
	w = c.want(200, "", "GET", "/api/v1/wallet", nil, nil)
	if w["state"] != "cancelled" || w["password_free"] != false || w["wechat_linked"] != false || e.Balance(s) != 0 {
		t.Fatalf("after cancel %v balance %d", w, e.Balance(s))
	}
	c.want(422, "WALLET_CANCELLED", "GET", "/api/v1/wallet/cancel", nil, nil)
	e.Check()
}

// A forgotten payment or water password is reset with a code the bank
// texts to the card's reserved phone: good once, for OTPTTL, OTPTries tries.
func TestPasswordResetThroughBankOTP(t *testing.T) {
	e, c, s := setup(t)
	c.want(422, "NO_BANK_CARD", "POST", "/api/v1/wallet/password-reset/code", map[string]string{"kind": "payment"}, nil)
	c.want(200, "", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard}, nil)
	c.want(200, "", "PUT", "/api/v1/wallet/payment-password", map[string]string{"password": "112233"}, nil)
	for range wallet.PasswordTries { // forgotten: locked out
		c.do("POST", "/api/v1/card/lost", map[string]string{"password": "000000"}, nil)
	}
	c.want(400, "BAD_REQUEST", "POST", "/api/v1/wallet/password-reset/code", map[string]string{"kind": "login"}, nil)
	send := func() string {
		t.Helper()
		m := c.want(200, "", "POST", "/api/v1/wallet/password-reset/code", map[string]string{"kind": "payment"}, nil)
		if m["phone"] != s.Phone[:3]+"****"+s.Phone[7:] {
			t.Fatalf("code sent to %v", m)
		}
		return m["otp_id"].(string)
	}
	id := send()
	c.want(429, "OTP_TOO_SOON", "POST", "/api/v1/wallet/password-reset/code", map[string]string{"kind": "payment"}, nil)
	code, ok := e.Bank.LastCode(s.Phone)
	if !ok {
		t.Fatal("no SMS in the bank's outbox")
	}
	wrongCode := "000000"
	if code == wrongCode {
		wrongCode = "111111"
	}
	reset := func(id, code, pw string) map[string]any {
		return map[string]any{"kind": "payment", "otp_id": id, "code": code, "password": pw}
	}
	c.want(400, "PASSWORD_INVALID", "POST", "/api/v1/wallet/password-reset", reset(id, code, "12345"), nil)
	m := c.want(422, "OTP_WRONG", "POST", "/api/v1/wallet/password-reset", reset(id, wrongCode, "445566"), nil)
	if m["field"] != "code" {
		t.Fatalf("wrong code names no field: %v", m)
	}
	c.want(200, "", "POST", "/api/v1/wallet/password-reset", reset(id, code, "445566"), nil)
	c.want(422, "OTP_USED", "POST", "/api/v1/wallet/password-reset", reset(id, code, "778899"), nil)
	// The lock is cleared with the new password; the old one is gone.
	c.want(422, "PAYMENT_PASSWORD_WRONG", "POST", "/api/v1/wallet/password-free", map[string]string{"password": "112233"}, nil)
	c.want(200, "", "POST", "/api/v1/wallet/password-free", map[string]string{"password": "445566"}, nil)

	// Expired: the right code after its lifetime.
	e.Clock.Advance(banksim.OTPInterval)
	id = send()
	code, _ = e.Bank.LastCode(s.Phone)
	e.Clock.Advance(banksim.OTPTTL)
	c.want(422, "OTP_EXPIRED", "POST", "/api/v1/wallet/password-reset", reset(id, code, "778899"), nil)

	// Locked: OTPTries wrong codes kill it, the right one included.
	id = send()
	code, _ = e.Bank.LastCode(s.Phone)
	for i := 1; i < banksim.OTPTries; i++ {
		c.want(422, "OTP_WRONG", "POST", "/api/v1/wallet/password-reset", reset(id, wrongCode, "778899"), nil)
	}
	c.want(422, "OTP_LOCKED", "POST", "/api/v1/wallet/password-reset", reset(id, wrongCode, "778899"), nil)
	c.want(422, "OTP_LOCKED", "POST", "/api/v1/wallet/password-reset", reset(id, code, "778899"), nil)

	// The water password the same way.
	e.Clock.Advance(banksim.OTPInterval)
	m = c.want(200, "", "POST", "/api/v1/wallet/password-reset/code", map[string]string{"kind": "water"}, nil)
	code, _ = e.Bank.LastCode(s.Phone)
	w := c.want(200, "", "POST", "/api/v1/wallet/password-reset", map[string]any{"kind": "water", "otp_id": m["otp_id"], "code": code, "password": "135713"}, nil)
	if w["water_password_set"] != true {
		t.Fatalf("water password after reset: %v", w)
	}
}

// Login password change, the device list with revoke from another phone,
// and log out everywhere.
func TestLoginPasswordDevicesSessions(t *testing.T) {
	e, c, s := setup(t)
	other := &client{t: t, base: c.base}
	other.token = c.want(200, "", "POST", "/api/v1/session", map[string]string{"student_no": s.No, "password": s.Password}, nil)["token"].(string)

	// No codes for a wallet that cannot pay.
	c.want(422, "WALLET_NOT_ACTIVE", "POST", "/api/v1/devices", map[string]string{"public_key": newKey(t)}, nil)
	c.want(200, "", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard}, nil)
	d1 := c.want(200, "", "POST", "/api/v1/devices", map[string]string{"public_key": newKey(t)}, nil)
	d2 := other.want(200, "", "POST", "/api/v1/devices", map[string]string{"public_key": newKey(t)}, nil)
	list := other.want(200, "", "GET", "/api/v1/devices", nil, nil)["devices"].([]any)
	if len(list) < 2 || list[0].(map[string]any)["device_id"] != d2["device_id"] {
		t.Fatalf("devices %v", list)
	}
	// The phone "other" revokes the lost phone c's device.
	other.want(200, "", "DELETE", fmt.Sprintf("/api/v1/devices/%.0f", d1["device_id"]), nil, nil)
	for _, d := range other.want(200, "", "GET", "/api/v1/devices", nil, nil)["devices"].([]any) {
		dm := d.(map[string]any)
		if dm["device_id"] == d1["device_id"] && dm["revoked"] != true {
			t.Fatalf("revoked device listed as %v", dm)
		}
	}

	for _, tc := range []struct {
		old, pw string
		status  int
		code    string
	}{
		{s.Password, "short1", 400, "LOGIN_PASSWORD_WEAK"},
		{s.Password, "lettersonly", 400, "LOGIN_PASSWORD_WEAK"},
		{"wrong-pw-1", "newpass2026", 422, "LOGIN_PASSWORD_WRONG"},
		{s.Password, "newpass2026", 200, ""},
	} {
		m := c.want(tc.status, tc.code, "PUT", "/api/v1/account/login-password", map[string]string{"old_password": tc.old, "password": tc.pw}, nil)
		if tc.status == 400 && m["field"] != "password" {
			t.Fatalf("weak password names no field: %v", m)
		}
	}
	// The change ends every other session, and the new password logs in.
	other.want(401, "UNAUTHORIZED", "GET", "/api/v1/wallet", nil, nil)
	c.want(200, "", "GET", "/api/v1/wallet", nil, nil)
	c.want(401, "LOGIN_FAILED", "POST", "/api/v1/session", map[string]string{"student_no": s.No, "password": s.Password}, nil)
	other.token = c.want(200, "", "POST", "/api/v1/session", map[string]string{"student_no": s.No, "password": "newpass2026"}, nil)["token"].(string)

	// Log out everywhere: this session and the other.
	c.want(200, "", "DELETE", "/api/v1/sessions", nil, nil)
	c.want(401, "UNAUTHORIZED", "GET", "/api/v1/wallet", nil, nil)
	other.want(401, "UNAUTHORIZED", "GET", "/api/v1/wallet", nil, nil)
	_ = e
}

// Limits: per payment ≤ daily, refused on the server; binding errors name
// the field that differs; WeChat unlink.
func TestLimitsBindingFieldsWeChatUnlink(t *testing.T) {
	e, c, s := setup(t)
	for _, tc := range []struct {
		body  map[string]string
		code  string
		field string
	}{
		{map[string]string{"bank_code": "CCB", "card_number": s.BankCard, "phone": "13900000000"}, "BANK_PHONE_MISMATCH", "phone"},
		{map[string]string{"bank_code": "CCB", "card_number": s.BankCard, "name": "别人"}, "HOLDER_NOT_STUDENT", "name"},
		{map[string]string{"bank_code": "CCB", "card_number": "1234"}, "CARD_NUMBER_INVALID", "card_number"},
		{map[string]string{"bank_code": "CMB", "card_number": s.BankCard}, "BANK_NOT_SUPPORTED", "bank_code"},
		{map[string]string{"bank_code": "CCB", "card_number": s.BankCard, "id_number": "110105200001011230"}, "ID_NUMBER_INVALID", "id_number"},
	} {
		_, m, raw := c.do("POST", "/api/v1/wallet/bank-card", tc.body, nil)
		if m["code"] != tc.code || m["field"] != tc.field {
			t.Errorf("bind %v: %s, want %s on %s", tc.body, raw, tc.code, tc.field)
		}
	}
	// The bank's own mismatch: the simulator holds another name for the card.
	if err := e.Bank.AddAccount(banksim.Account{BankCode: "CCB", CardNumber: s.BankCard, Name: "别人", IDNumber: s.IDNumber, Phone: s.Phone, Balance: 1}); err != nil {
		t.Fatal(err)
	}
	if _, m, raw := c.do("POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard}, nil); m["code"] != "BANK_NAME_MISMATCH" || m["field"] != "name" {
		t.Errorf("bank name mismatch: %s", raw)
	}
	if err := e.Bank.AddAccount(banksim.Account{BankCode: "CCB", CardNumber: s.BankCard, Name: s.Name, IDNumber: s.IDNumber, Phone: s.Phone, Balance: 100_00}); err != nil {
		t.Fatal(err)
	}
	c.want(200, "", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard}, nil)

	m := c.want(422, "LIMITS_ORDER", "PUT", "/api/v1/wallet/limits", map[string]int{"per_transaction": 50_01, "daily": 50_00}, nil)
	if m["field"] != "per_transaction" {
		t.Fatalf("limits order names no field: %v", m)
	}
	w := c.want(200, "", "PUT", "/api/v1/wallet/limits", map[string]int{"per_transaction": 50_00, "daily": 50_00}, nil)
	if w["limit_per_tx"] != float64(50_00) || w["limit_daily"] != float64(50_00) {
		t.Fatalf("limits %v", w)
	}

	c.want(422, "WECHAT_NOT_LINKED_YET", "DELETE", "/api/v1/wechat/link", nil, nil)
	lc, _ := e.WeChat.NewLoginCode(s.OpenID)
	c.want(200, "", "POST", "/api/v1/wechat/link", map[string]string{"code": lc}, nil)
	if w := c.want(200, "", "DELETE", "/api/v1/wechat/link", nil, nil); w["wechat_linked"] != false {
		t.Fatalf("after unlink %v", w)
	}
}

// newKey is a fresh device public key, base64 as the API takes it.
func newKey(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(pub)
}
