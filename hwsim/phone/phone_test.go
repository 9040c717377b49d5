package phone_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"campuspay/hwsim/phone"
	"campuspay/protocol"
	"campuspay/server/api"
	"campuspay/server/wallet/wallettest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// seeded is deterministic randomness for keys.
func seeded(n uint64) io.Reader { return rand.NewChaCha8([32]byte{byte(n)}) }

// backend runs the real app API over the real wallet service, SQLite
// stores and the hwsim bank and WeChat simulators, on a loopback port.
func backend(t *testing.T) (*wallettest.Env, string) {
	e := wallettest.New(t)
	srv := httptest.NewServer(api.New(e.Svc, e.Store, api.Options{Now: e.Clock.Now}))
	t.Cleanup(srv.Close)
	return e, srv.URL
}

func want(t *testing.T, what string, err, reason error) {
	t.Helper()
	if reason == nil {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	if err != reason { // the very protocol value, not a copy
		t.Fatalf("%s: %v, want %v", what, err, reason)
	}
}

func pay(e *wallettest.Env, code string, amount int64) *protocol.Response {
	return e.Svc.HandleRequest(context.Background(), &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(),
		Terminal: wallettest.POS, At: e.Clock.Now(), Amount: amount,
		Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}})
}

func TestStudentLifeAgainstRealAPI(t *testing.T) {
	e, base := backend(t)
	s := e.AddStudent(wallettest.Options{Inactive: true, BankBalance: 100_00})
	c := ctx(t)

	bad := phone.New(base, s.No, "wrong")
	want(t, "bad login", bad.Login(c), protocol.ErrLoginFailed)

	// The phone's clock is 30 s slow; registration learns the offset.
	ph := phone.NewWith(base, s.No, s.Password, phone.Options{
		Now:  func() time.Time { return e.Clock.Now().Add(-30 * time.Second) },
		Rand: seeded(1),
	})
	// No explicit Login: the first call logs in on UNAUTHORIZED.
	w, err := ph.Wallet(c)
	want(t, "wallet", err, nil)
	if w.State != "inactive" || w.StudentNo != s.No || ph.UserID() != s.ID {
		t.Fatalf("wallet %+v, user %d", w, ph.UserID())
	}
	_, err = ph.TopUp(c, 10_00)
	want(t, "top-up while inactive", err, protocol.ErrWalletNotActive)
	_, err = ph.BindCard(c, phone.BankCard{BankCode: "CCB", CardNumber: s.BankCard, Name: "别人"})
	want(t, "bind with another name", err, protocol.ErrHolderNotStudent)
	w, err = ph.BindCard(c, phone.BankCard{BankCode: "CCB", CardNumber: s.BankCard})
	want(t, "bind", err, nil)
	if w.State != "active" {
		t.Fatalf("after bind: %+v", w)
	}

	// Top-up twice under one key moves the money once.
	r, err := ph.TopUpKey(c, "topup-1", 30_00)
	want(t, "top-up", err, nil)
	if _, err := ph.TopUpKey(c, "topup-1", 30_00); err != nil {
		t.Fatal(err)
	}
	if r.Transaction.Kind != "top_up" || r.Wallet.Balance != 30_00 || e.Balance(s) != 30_00 || e.BankBalance(s) != 70_00 {
		t.Fatalf("top-up %+v; wallet %d bank %d", r, e.Balance(s), e.BankBalance(s))
	}
	_, err = ph.TopUpKey(c, "topup-1", 31_00)
	want(t, "same key, other amount", err, protocol.ErrTxConflict)
	_, err = ph.Withdraw(c, 5_00)
	want(t, "withdraw without a payment password", err, protocol.ErrPaymentPasswordUnset)

	_, err = ph.SetPaymentPassword(c, "", "12ab56")
	want(t, "weak password", err, protocol.ErrPasswordWeak)
	_, err = ph.SetPaymentPassword(c, "", "112233")
	want(t, "payment password", err, nil)
	_, err = ph.Withdraw(c, 5_00) // confirmed with the password just set
	want(t, "withdraw", err, nil)
	_, err = ph.Withdraw(c, 100_00)
	want(t, "withdraw too much", err, protocol.ErrBalanceLow)
	_, err = ph.SetWaterPassword(c, "", "778899")
	want(t, "water password", err, nil)
	w, err = ph.SetLimits(c, 20_00, 50_00)
	want(t, "limits", err, nil)
	if w.LimitPerTx != 20_00 || w.LimitDaily != 50_00 || !w.PaymentPasswordSet || !w.WaterPasswordSet {
		t.Fatalf("wallet %+v", w)
	}
	w, err = ph.SignPasswordFree(c)
	want(t, "sign", err, nil)
	_, err = ph.SignPasswordFree(c)
	want(t, "sign twice", err, protocol.ErrPasswordFreeSigned)
	w, err = ph.Unsign(c)
	want(t, "unsign", err, nil)
	if w.PasswordFree {
		t.Fatal("still password-free")
	}

	// Codes: real codes the authorizer accepts once.
	_, err = ph.PayCode(e.Clock.Now())
	want(t, "code before registration", err, phone.ErrNoDevice)
	dev, err := ph.RegisterDevice(c)
	want(t, "register", err, nil)
	if dev.ID == 0 || dev.ClockOffset != 30*time.Second {
		t.Fatalf("device %+v", dev)
	}
	code, err := ph.Code() // on the phone's slow clock, corrected
	want(t, "code", err, nil)
	pc, err := protocol.VerifyCode(code, e.Svc.IssuerKeys(), e.Clock.Now(), protocol.PurposePay)
	want(t, "verify code", err, nil)
	if pc.Cert.UserID != s.ID || pc.Cert.DeviceID != dev.ID || !pc.Time.Equal(e.Clock.Now().Truncate(time.Second)) {
		t.Fatalf("code %+v at %v", pc, e.Clock.Now())
	}
	if resp := pay(e, code, 12_50); resp.Status != protocol.StatusApproved || resp.Channel != protocol.ChannelBalance {
		t.Fatalf("pay: %+v", resp)
	}
	shot, err := ph.Screenshot()
	want(t, "screenshot", err, nil)
	if shot != code {
		t.Fatal("screenshot is not the code shown")
	}
	if resp := pay(e, shot, 1_00); resp.Code != protocol.ErrCodeUsed.Code {
		t.Fatalf("screenshot replay: %+v", resp)
	}
	code2, _ := ph.PayCode(e.Clock.Now().Add(-30 * time.Second))
	if code2 == code {
		t.Fatal("two codes in the same second are equal")
	}
	id, err := ph.IdentityCode(e.Clock.Now().Add(-30 * time.Second))
	want(t, "identity code", err, nil)
	_, err = protocol.VerifyCode(id, e.Svc.IssuerKeys(), e.Clock.Now(), protocol.PurposePay)
	want(t, "identity code paying", err, protocol.ErrIdentityCode)

	// Scan-to-pay on a terminal's static QR.
	cfg, err := e.Svc.TerminalConfig(c, wallettest.POS)
	want(t, "terminal config", err, nil)
	_, err = ph.ScanPay(c, "https://example.invalid/pay", 3_00, "112233")
	want(t, "foreign QR", err, protocol.ErrMerchantQRInvalid)
	_, err = ph.ScanPay(c, cfg.MerchantQR, 3_00, "000000")
	want(t, "scan-pay wrong password", err, protocol.ErrPaymentPasswordWrong)
	r, err = ph.ScanPay(c, cfg.MerchantQR+"\r\n", 3_00, "112233")
	want(t, "scan-pay", err, nil)
	if r.Transaction.Kind != "scan_pay" || r.Transaction.Terminal != wallettest.POS || r.Transaction.Amount != 3_00 {
		t.Fatalf("scan-pay %+v", r.Transaction)
	}

	// WeChat mini-program authentication.
	lc, err := e.WeChat.NewLoginCode(s.OpenID)
	want(t, "wechat login code", err, nil)
	w, err = ph.LinkWeChat(c, lc)
	want(t, "link wechat", err, nil)
	if !w.WeChatLinked {
		t.Fatal("not linked")
	}

	txs, err := ph.Transactions(c)
	want(t, "transactions", err, nil)
	kinds := map[string]int{}
	for _, tx := range txs {
		if tx.Status == "approved" {
			kinds[tx.Kind]++
		}
	}
	if kinds["top_up"] != 1 || kinds["withdraw"] != 1 || kinds["payment"] != 1 || kinds["scan_pay"] != 1 {
		t.Fatalf("transactions %+v", txs)
	}
	page, next, err := ph.TransactionsPage(c, 0, 2)
	want(t, "page", err, nil)
	if len(page) != 2 || next == 0 {
		t.Fatalf("page of 2: %d, next %d", len(page), next)
	}

	// The lost phone's codes are refused after removal.
	want(t, "remove device", ph.RemoveDevice(c), nil)
	old, _ := ph.Code()
	if resp := pay(e, old, 1_00); resp.Code != protocol.ErrDeviceRevoked.Code {
		t.Fatalf("revoked device pays: %+v", resp)
	}

	w, err = ph.Cancel(c)
	want(t, "cancel", err, nil)
	if w.State != "cancelled" || w.Balance != 0 {
		t.Fatalf("after cancel %+v", w)
	}
	w, err = ph.Reopen(c)
	want(t, "reopen", err, nil)
	_, err = ph.Unbind(c)
	want(t, "unbind", err, nil)
	_, err = ph.Unbind(c)
	want(t, "unbind again", err, protocol.ErrNoBankCard)
	e.Check()
}

// dropOnce forwards the first money request and loses its answer, as a
// mobile network does; the phone repeats it under the same key.
type dropOnce struct {
	dropped atomic.Bool
	next    http.RoundTripper
}

func (d *dropOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(r)
	if err == nil && r.Header.Get("Idempotency-Key") != "" && d.dropped.CompareAndSwap(false, true) {
		resp.Body.Close()
		return nil, errors.New("connection reset by peer")
	}
	return resp, err
}

func TestLostAnswerRetriedUnderSameKey(t *testing.T) {
	e, base := backend(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	before := e.Balance(s)
	d := &dropOnce{next: http.DefaultTransport}
	ph := phone.NewWith(base, s.No, s.Password, phone.Options{Now: e.Clock.Now, Rand: seeded(2),
		HTTP: &http.Client{Transport: d}})
	r, err := ph.TopUp(ctx(t), 10_00)
	if err != nil {
		t.Fatal(err)
	}
	if !d.dropped.Load() || e.Balance(s) != before+10_00 || r.Wallet.Balance != before+10_00 {
		t.Fatalf("dropped %v, balance %d → %d", d.dropped.Load(), before, e.Balance(s))
	}
	// With retries off the lost answer is an error, not a reason.
	d2 := &dropOnce{next: http.DefaultTransport}
	ph2 := phone.NewWith(base, s.No, s.Password, phone.Options{Now: e.Clock.Now, Rand: seeded(3),
		HTTP: &http.Client{Transport: d2}, Retries: -1})
	_, err = ph2.TopUp(ctx(t), 1_00)
	if err == nil || protocol.AsReason(err) != protocol.ErrInternal {
		t.Fatalf("lost answer without retry: %v", err)
	}
	e.Check()
}

func TestErrorBodies(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/session", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"token":"t","user_id":7}`))
	})
	mux.HandleFunc("GET /api/v1/wallet", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		w.Write([]byte(`{"code":"SOMETHING_NEW","message_zh":"新","message_en":"new"}`))
	})
	mux.HandleFunc("POST /api/v1/wallet/reopen", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte(`<html>bad gateway</html>`))
	})
	var unauth atomic.Int32
	mux.HandleFunc("PUT /api/v1/wallet/limits", func(w http.ResponseWriter, r *http.Request) {
		unauth.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"code":"UNAUTHORIZED","message_zh":"请先登录","message_en":"Please log in"}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ph := phone.New(srv.URL, "S1", "pw")
	_, err := ph.Wallet(ctx(t))
	var r *protocol.Reason
	if !errors.As(err, &r) || r.Code != "SOMETHING_NEW" || r.EN != "new" {
		t.Errorf("unknown reason: %v", err)
	}
	_, err = ph.Reopen(ctx(t))
	if err == nil || errors.As(err, &r) {
		t.Errorf("non-JSON error: %v", err)
	}
	// A session the server forgot: one new login, then the refusal stands.
	_, err = ph.SetLimits(ctx(t), 1, 2)
	if err != protocol.ErrUnauthorized || unauth.Load() != 2 {
		t.Errorf("limits: %v after %d tries", err, unauth.Load())
	}
	if _, err := ph.Screenshot(); err != phone.ErrNoCode {
		t.Errorf("screenshot before any code: %v", err)
	}
	if err := ph.RemoveDevice(ctx(t)); err != phone.ErrNoDevice {
		t.Errorf("remove without device: %v", err)
	}
}
