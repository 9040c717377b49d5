// Package phone simulates a student's phone running the campus wallet app:
// it speaks the authorizer's app API (server/api/openapi.yaml) over HTTP and
// makes real payment and identity codes with protocol.MakeCode from a device
// key it registers, exactly as the app does.
//
// Every refusal comes back as the *protocol.Reason the server named (the
// same pointer as protocol.ErrXxx for known codes), so scenarios assert exact
// reasons with errors.Is or ==. Time and randomness are injected.
package phone

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"campuspay/protocol"
)

// ErrNoDevice is returned by PayCode and IdentityCode before RegisterDevice.
var ErrNoDevice = errors.New("phone: no device certificate; register the device first")

// ErrNoCode is returned by Screenshot before any code was shown.
var ErrNoCode = errors.New("phone: no code shown yet")

// Options configure a Phone. Zero fields take defaults.
type Options struct {
	Now  func() time.Time // the phone's own clock; default time.Now
	Rand io.Reader        // device key and idempotency keys; default crypto/rand
	HTTP *http.Client     // default http.DefaultClient
	// Retries is how often a request whose answer never arrived (a transport
	// error) is repeated; money-moving requests repeat with the same
	// Idempotency-Key, so a repeat never moves money twice. Default 2;
	// negative for none.
	Retries int
}

// Phone is one student's phone. Its methods are safe for concurrent use.
type Phone struct {
	base      string
	studentNo string
	password  string
	opt       Options

	mu       sync.Mutex
	token    string
	userID   uint32
	key      ed25519.PrivateKey
	cert     []byte
	deviceID uint32
	expires  time.Time
	offset   time.Duration // server clock − phone clock, from registration
	seq      uint16
	last     string // the code on screen
	payPwd   string // the payment password the student last set: confirms sensitive actions
}

// New returns a phone for the API at baseURL (e.g. http://127.0.0.1:8080),
// logged out, with defaults.
func New(baseURL, studentNo, password string) *Phone {
	return NewWith(baseURL, studentNo, password, Options{})
}

// NewWith returns a phone with options.
func NewWith(baseURL, studentNo, password string, o Options) *Phone {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.HTTP == nil {
		o.HTTP = http.DefaultClient
	}
	if o.Retries == 0 {
		o.Retries = 2
	}
	return &Phone{base: strings.TrimRight(baseURL, "/"), studentNo: studentNo, password: password, opt: o}
}

// StudentNo is the account the phone logs in to.
func (p *Phone) StudentNo() string { return p.studentNo }

// UserID is the wallet's numeric id (after Login).
func (p *Phone) UserID() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.userID
}

// Wallet is the wallet as the app shows it (GET /api/v1/wallet).
type Wallet struct {
	UserID              uint32 `json:"user_id"`
	StudentNo           string `json:"student_no"`
	Name                string `json:"name"`
	Category            string `json:"category"`
	Campus              string `json:"campus"`
	State               string `json:"state"` // inactive | active | cancelled
	Balance             int64  `json:"balance"`
	Held                int64  `json:"held"`
	Available           int64  `json:"available"`
	BankCode            string `json:"bank_code,omitempty"`
	BankCard            string `json:"bank_card,omitempty"` // masked
	PasswordFree        bool   `json:"password_free"`
	PasswordFreeWarning bool   `json:"password_free_warning"`
	PaymentPasswordSet  bool   `json:"payment_password_set"`
	WaterPasswordSet    bool   `json:"water_password_set"`
	LimitPerTx          int64  `json:"limit_per_tx"`
	LimitDaily          int64  `json:"limit_daily"`
	WeChatLinked        bool   `json:"wechat_linked"`
	Reopens             int    `json:"reopens"`
	Unbinds             int    `json:"unbinds"`
	CardUID             string `json:"card_uid,omitempty"`
	CardLost            bool   `json:"card_lost"`
}

// Transaction is one line of the transaction details.
type Transaction struct {
	ID           int64     `json:"id"`
	Time         time.Time `json:"time"`
	Kind         string    `json:"kind"` // payment | shower | scan_pay | top_up | withdraw
	Merchant     string    `json:"merchant,omitempty"`
	MerchantName string    `json:"merchant_name,omitempty"`
	Terminal     string    `json:"terminal,omitempty"`
	Tx           string    `json:"tx,omitempty"`
	Amount       int64     `json:"amount"`
	Channel      string    `json:"channel,omitempty"` // balance | bank_card | wechat
	Status       string    `json:"status"`
	Code         string    `json:"code,omitempty"`
	Offline      bool      `json:"offline,omitempty"` // accepted by a terminal offline, settled later
}

// Receipt is the answer to a money movement: the transaction and the wallet
// after it.
type Receipt struct {
	Transaction Transaction `json:"transaction"`
	Wallet      *Wallet     `json:"wallet"`
}

// BankCard is what the student types to bind a card. Name, IDNumber and
// Phone default to the school roster's when empty.
type BankCard struct {
	BankCode   string `json:"bank_code"`
	CardNumber string `json:"card_number"`
	Name       string `json:"name,omitempty"`
	IDNumber   string `json:"id_number,omitempty"`
	Phone      string `json:"phone,omitempty"`
}

// Device is the phone's registration.
type Device struct {
	ID          uint32
	Certificate []byte
	Expires     time.Time
	ClockOffset time.Duration // server clock − phone clock
}

type call struct {
	method, path string
	body         any
	auth         bool
	idemKey      string // money-moving POSTs
}

// do runs a call: it retries lost answers, logs in again once if the
// session expired, and turns refusals into reasons.
func (p *Phone) do(ctx context.Context, c call, out any) error {
	var raw []byte
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return fmt.Errorf("phone: %s %s: %w", c.method, c.path, err)
		}
		raw = b
	}
	// Only requests that are safe to repeat are retried: reads, puts of a
	// value, the login, and money movements under their Idempotency-Key.
	retryable := c.method == "GET" || c.method == "PUT" || c.idemKey != "" || c.path == "/api/v1/session"
	relogged := false
	for attempt := 0; ; attempt++ {
		status, body, err := p.roundTrip(ctx, c, raw)
		if err != nil {
			if retryable && attempt < p.opt.Retries && ctx.Err() == nil {
				continue
			}
			return fmt.Errorf("phone: %s %s: %w", c.method, c.path, err)
		}
		if status/100 == 2 {
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("phone: %s %s: decode answer: %w", c.method, c.path, err)
			}
			return nil
		}
		r := reason(status, body)
		if r == protocol.ErrUnauthorized && c.auth && !relogged {
			relogged = true
			if err := p.Login(ctx); err != nil {
				return err
			}
			attempt--
			continue
		}
		return r
	}
}

func (p *Phone) roundTrip(ctx context.Context, c call, raw []byte) (int, []byte, error) {
	var body io.Reader
	if raw != nil {
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, p.base+c.path, body)
	if err != nil {
		return 0, nil, err
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.auth {
		p.mu.Lock()
		tok := p.token
		p.mu.Unlock()
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	if c.idemKey != "" {
		req.Header.Set("Idempotency-Key", c.idemKey)
	}
	resp, err := p.opt.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// reason decodes an error body into the protocol's reason value, so that
// errors.Is(err, protocol.ErrXxx) holds. A code this build does not know
// still comes back as a Reason carrying the server's messages.
func reason(status int, body []byte) error {
	var r protocol.Reason
	if err := json.Unmarshal(body, &r); err != nil || r.Code == "" {
		return fmt.Errorf("phone: HTTP %d without a reason: %.200q", status, body)
	}
	if known := protocol.ReasonByCode(r.Code); known != nil {
		return known
	}
	return &r
}

// Login opens a session with the student number and password.
func (p *Phone) Login(ctx context.Context) error {
	var s struct {
		Token     string    `json:"token"`
		UserID    uint32    `json:"user_id"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	err := p.do(ctx, call{method: "POST", path: "/api/v1/session",
		body: map[string]string{"student_no": p.studentNo, "password": p.password}}, &s)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.token, p.userID = s.Token, s.UserID
	p.mu.Unlock()
	return nil
}

func (p *Phone) wallet(ctx context.Context, method, path string, body any) (*Wallet, error) {
	var w Wallet
	if err := p.do(ctx, call{method: method, path: path, body: body, auth: true}, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// Wallet reads the wallet.
func (p *Phone) Wallet(ctx context.Context) (*Wallet, error) {
	return p.wallet(ctx, "GET", "/api/v1/wallet", nil)
}

// BindCard binds a bank card; the first binding activates the wallet.
func (p *Phone) BindCard(ctx context.Context, c BankCard) (*Wallet, error) {
	return p.wallet(ctx, "POST", "/api/v1/wallet/bank-card", c)
}

// confirm is the body of a sensitive action: the payment password the
// student set last (SetPaymentPassword, ResetPassword or UsePaymentPassword).
func (p *Phone) confirm() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return map[string]string{"password": p.payPwd}
}

// UsePaymentPassword makes the phone confirm sensitive actions with pw
// (as a student typing it) instead of the one it set.
func (p *Phone) UsePaymentPassword(pw string) {
	p.mu.Lock()
	p.payPwd = pw
	p.mu.Unlock()
}

// Unbind unbinds the bank card (at most 3 times, ever), confirmed by the
// payment password.
func (p *Phone) Unbind(ctx context.Context) (*Wallet, error) {
	return p.wallet(ctx, "DELETE", "/api/v1/wallet/bank-card", p.confirm())
}

// Cancel cancels the wallet; the balance goes back to the bound card.
func (p *Phone) Cancel(ctx context.Context) (*Wallet, error) {
	key, err := p.NewKey()
	if err != nil {
		return nil, err
	}
	var w Wallet
	if err := p.do(ctx, call{method: "POST", path: "/api/v1/wallet/cancel", body: p.confirm(), auth: true, idemKey: key}, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// Reopen re-opens a cancelled wallet (at most 3 times).
func (p *Phone) Reopen(ctx context.Context) (*Wallet, error) {
	return p.wallet(ctx, "POST", "/api/v1/wallet/reopen", nil)
}

// SignPasswordFree signs the password-free contract card taps need.
func (p *Phone) SignPasswordFree(ctx context.Context) (*Wallet, error) {
	return p.wallet(ctx, "POST", "/api/v1/wallet/password-free", p.confirm())
}

// Unsign ends the password-free contract.
func (p *Phone) Unsign(ctx context.Context) (*Wallet, error) {
	return p.wallet(ctx, "DELETE", "/api/v1/wallet/password-free", p.confirm())
}

// SetLimits sets the per-transaction and daily limits in cents.
func (p *Phone) SetLimits(ctx context.Context, perTx, daily int64) (*Wallet, error) {
	return p.wallet(ctx, "PUT", "/api/v1/wallet/limits", map[string]int64{"per_transaction": perTx, "daily": daily})
}

type passwordBody struct {
	OldPassword string `json:"old_password,omitempty"`
	Password    string `json:"password"`
}

// SetPaymentPassword sets the 6-digit payment password (old is "" the first
// time).
func (p *Phone) SetPaymentPassword(ctx context.Context, old, pw string) (*Wallet, error) {
	w, err := p.wallet(ctx, "PUT", "/api/v1/wallet/payment-password", passwordBody{old, pw})
	if err == nil {
		p.UsePaymentPassword(pw)
	}
	return w, err
}

// SetWaterPassword sets the 6-digit water password for the shower keypad.
func (p *Phone) SetWaterPassword(ctx context.Context, old, pw string) (*Wallet, error) {
	return p.wallet(ctx, "PUT", "/api/v1/wallet/water-password", passwordBody{old, pw})
}

// ReportCardLost reports the campus card lost; taps with it are refused.
func (p *Phone) ReportCardLost(ctx context.Context) (*Wallet, error) {
	return p.wallet(ctx, "POST", "/api/v1/card/lost", p.confirm())
}

// ReportCardFound undoes the card-lost report (解挂).
func (p *Phone) ReportCardFound(ctx context.Context) (*Wallet, error) {
	return p.wallet(ctx, "DELETE", "/api/v1/card/lost", p.confirm())
}

// ResetCode is where the bank texted a password-reset code.
type ResetCode struct {
	OTPID   string    `json:"otp_id"`
	Phone   string    `json:"phone"`
	Expires time.Time `json:"expires"`
}

// SendResetCode asks for a code to reset the forgotten "payment" or
// "water" password; the bank texts it to the card's reserved phone.
func (p *Phone) SendResetCode(ctx context.Context, kind string) (*ResetCode, error) {
	var r ResetCode
	if err := p.do(ctx, call{method: "POST", path: "/api/v1/wallet/password-reset/code", body: map[string]string{"kind": kind}, auth: true}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ResetPassword sets a new "payment" or "water" password with the texted code.
func (p *Phone) ResetPassword(ctx context.Context, kind, otpID, code, pw string) (*Wallet, error) {
	w, err := p.wallet(ctx, "POST", "/api/v1/wallet/password-reset", map[string]string{"kind": kind, "otp_id": otpID, "code": code, "password": pw})
	if err == nil && kind == "payment" {
		p.UsePaymentPassword(pw)
	}
	return w, err
}

// UnlinkWeChat ends the WeChat authentication.
func (p *Phone) UnlinkWeChat(ctx context.Context) (*Wallet, error) {
	return p.wallet(ctx, "DELETE", "/api/v1/wechat/link", nil)
}

// LinkWeChat completes the campus mini-program authentication with a
// wx.login code (the WeChat simulator issues them).
func (p *Phone) LinkWeChat(ctx context.Context, loginCode string) (*Wallet, error) {
	return p.wallet(ctx, "POST", "/api/v1/wechat/link", map[string]string{"code": loginCode})
}

// NewKey makes a fresh Idempotency-Key from the phone's randomness.
func (p *Phone) NewKey() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(p.opt.Rand, b[:]); err != nil {
		return "", fmt.Errorf("phone: idempotency key: %w", err)
	}
	return "app-" + hex.EncodeToString(b[:]), nil
}

func (p *Phone) money(ctx context.Context, path, key string, body any) (*Receipt, error) {
	if key == "" {
		var err error
		if key, err = p.NewKey(); err != nil {
			return nil, err
		}
	}
	var r Receipt
	if err := p.do(ctx, call{method: "POST", path: path, body: body, auth: true, idemKey: key}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// TopUp moves cents from the bound card into the wallet, under a fresh
// Idempotency-Key.
func (p *Phone) TopUp(ctx context.Context, cents int64) (*Receipt, error) {
	return p.TopUpKey(ctx, "", cents)
}

// TopUpKey is TopUp under a given Idempotency-Key (a repeat with the same key
// and amount is answered from the server's record and moves nothing).
func (p *Phone) TopUpKey(ctx context.Context, key string, cents int64) (*Receipt, error) {
	return p.money(ctx, "/api/v1/wallet/top-up", key, map[string]int64{"amount": cents})
}

// Withdraw moves cents from the wallet to the bound card.
func (p *Phone) Withdraw(ctx context.Context, cents int64) (*Receipt, error) {
	return p.WithdrawKey(ctx, "", cents)
}

// WithdrawKey is Withdraw under a given Idempotency-Key.
func (p *Phone) WithdrawKey(ctx context.Context, key string, cents int64) (*Receipt, error) {
	return p.money(ctx, "/api/v1/wallet/withdraw", key, map[string]any{"amount": cents, "password": p.confirm()["password"]})
}

// ScanPay pays a terminal's static merchant QR (扫一扫): the app accepts only
// the campus's own merchant codes, then the student enters the amount and
// the payment password.
func (p *Phone) ScanPay(ctx context.Context, merchantQR string, cents int64, paymentPassword string) (*Receipt, error) {
	return p.ScanPayKey(ctx, "", merchantQR, cents, paymentPassword)
}

// ScanPayKey is ScanPay under a given Idempotency-Key.
func (p *Phone) ScanPayKey(ctx context.Context, key, merchantQR string, cents int64, paymentPassword string) (*Receipt, error) {
	qr := protocol.Trim(merchantQR)
	if _, err := protocol.ParseMerchantQR(qr); err != nil {
		return nil, protocol.ErrMerchantQRInvalid
	}
	return p.money(ctx, "/api/v1/scan-pay", key, map[string]any{"qr": qr, "amount": cents, "password": paymentPassword})
}

// Transactions returns the newest transactions (up to 100).
func (p *Phone) Transactions(ctx context.Context) ([]Transaction, error) {
	txs, _, err := p.TransactionsPage(ctx, 0, 100)
	return txs, err
}

// TransactionsPage returns up to limit transactions with id below before
// (0: the newest), and the before value of the next page (0: no more).
func (p *Phone) TransactionsPage(ctx context.Context, before int64, limit int) ([]Transaction, int64, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/api/v1/transactions"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out struct {
		Transactions []Transaction `json:"transactions"`
		NextBefore   int64         `json:"next_before"`
	}
	if err := p.do(ctx, call{method: "GET", path: path, auth: true}, &out); err != nil {
		return nil, 0, err
	}
	return out.Transactions, out.NextBefore, nil
}
