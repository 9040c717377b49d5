package bank

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the protocol.
const (
	HeaderClient    = "X-Bank-Client"
	HeaderTimestamp = "X-Bank-Timestamp"
	HeaderSignature = "X-Bank-Signature"
)

// maxResponse bounds how much of a response body is read.
const maxResponse = 64 << 10

// HTTPConfig configures HTTPClient.
type HTTPConfig struct {
	BaseURL  string // e.g. "http://127.0.0.1:7301"
	ClientID string
	Secret   string // shared HMAC secret

	Timeout  time.Duration // per attempt; default 5 s
	Attempts int           // total attempts per call; default 3
	Backoff  time.Duration // wait before the 2nd attempt, doubled after; default 200 ms

	HTTPClient *http.Client     // default: a fresh client
	Now        func() time.Time // default time.Now
}

// HTTPClient is the Client adapter for the bank gateway's HTTP protocol.
type HTTPClient struct {
	cfg  HTTPConfig
	base string
}

var _ Client = (*HTTPClient)(nil)

// NewHTTPClient checks cfg and fills in defaults.
func NewHTTPClient(cfg HTTPConfig) (*HTTPClient, error) {
	if cfg.BaseURL == "" || cfg.ClientID == "" || cfg.Secret == "" {
		return nil, errors.New("bank: BaseURL, ClientID and Secret are required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &HTTPClient{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/")}, nil
}

type verifyRequest struct {
	BankCode   string `json:"bank_code"`
	CardNumber string `json:"card_number"`
	Name       string `json:"name"`
	IDNumber   string `json:"id_number"`
	Phone      string `json:"phone"`
}

type moveRequest struct {
	Key         string `json:"key"`
	OriginalKey string `json:"original_key,omitempty"` // refund: the debit refunded
	BankCode    string `json:"bank_code"`
	CardNumber  string `json:"card_number"`
	Amount      int64  `json:"amount"`
}

// Verify implements Client.
func (c *HTTPClient) Verify(ctx context.Context, h Holder) error {
	_, err := c.call(ctx, "/v1/verify", verifyRequest{
		BankCode: h.BankCode, CardNumber: h.CardNumber, Name: h.Name, IDNumber: h.IDNumber, Phone: h.Phone,
	})
	if err != nil {
		return fmt.Errorf("bank: verify %s card %s: %w", h.BankCode, maskCard(h.CardNumber), err)
	}
	return nil
}

type otpSendRequest struct {
	BankCode   string `json:"bank_code"`
	CardNumber string `json:"card_number"`
	Purpose    string `json:"purpose"`
}

type otpCheckRequest struct {
	BankCode   string `json:"bank_code"`
	CardNumber string `json:"card_number"`
	OTPID      string `json:"otp_id"`
	Code       string `json:"code"`
}

// SendOTP implements Client. It is not retried after the request may have
// arrived: a repeat would text a second code (and be refused as too soon).
func (c *HTTPClient) SendOTP(ctx context.Context, bankCode, cardNumber, purpose string) (OTP, error) {
	resp, err := c.callOnce(ctx, "/v1/otp/send", otpSendRequest{BankCode: bankCode, CardNumber: cardNumber, Purpose: purpose})
	if err != nil {
		return OTP{}, fmt.Errorf("bank: send one-time code for %s card %s: %w", bankCode, maskCard(cardNumber), err)
	}
	if resp.OTP == nil || resp.OTP.ID == "" {
		return OTP{}, fmt.Errorf("bank: send one-time code: answer without a code id: %w", ErrUnavailable)
	}
	return *resp.OTP, nil
}

// CheckOTP implements Client. Not retried either: a lost answer to a right
// code leaves it used, and the student asks for a new one.
func (c *HTTPClient) CheckOTP(ctx context.Context, bankCode, cardNumber, id, code string) error {
	if _, err := c.callOnce(ctx, "/v1/otp/check", otpCheckRequest{BankCode: bankCode, CardNumber: cardNumber, OTPID: id, Code: code}); err != nil {
		return fmt.Errorf("bank: check one-time code %s: %w", id, err)
	}
	return nil
}

// callOnce sends body to path once: for calls that are not safe to repeat.
func (c *HTTPClient) callOnce(ctx context.Context, path string, body any) (*response, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	start := time.Now()
	resp, err := c.once(ctx, path, raw)
	observe(path, start, err)
	return resp, err
}

// Debit implements Client.
func (c *HTTPClient) Debit(ctx context.Context, key, bankCode, cardNumber string, amount int64) (Receipt, error) {
	return c.move(ctx, "debit", key, bankCode, cardNumber, amount)
}

// Credit implements Client.
func (c *HTTPClient) Credit(ctx context.Context, key, bankCode, cardNumber string, amount int64) (Receipt, error) {
	return c.move(ctx, "credit", key, bankCode, cardNumber, amount)
}

func (c *HTTPClient) move(ctx context.Context, op, key, bankCode, cardNumber string, amount int64) (Receipt, error) {
	return c.moveReq(ctx, op, moveRequest{Key: key, BankCode: bankCode, CardNumber: cardNumber, Amount: amount})
}

func (c *HTTPClient) moveReq(ctx context.Context, op string, m moveRequest) (Receipt, error) {
	key, bankCode, cardNumber, amount := m.Key, m.BankCode, m.CardNumber, m.Amount
	if err := checkMove(key, amount); err != nil {
		return Receipt{}, fmt.Errorf("bank: %s %s: %w", op, key, err)
	}
	resp, err := c.call(ctx, "/v1/"+op, m)
	if err != nil {
		return Receipt{}, fmt.Errorf("bank: %s %s of %d from %s card %s: %w", op, key, amount, bankCode, maskCard(cardNumber), err)
	}
	r := resp.Receipt
	if r == nil || r.Key != key || r.Op != op || r.Amount != amount || r.Ref == "" {
		// A signed answer that does not describe our request: the bank is
		// confused, so the movement's outcome is unknown.
		return Receipt{}, fmt.Errorf("bank: %s %s: receipt does not match the request: %w", op, key, ErrUnavailable)
	}
	return *r, nil
}

// checkMove refuses what the gateway would refuse, without a round trip.
func checkMove(key string, amount int64) error {
	if amount <= 0 {
		return fmt.Errorf("amount %d not positive: %w", amount, ErrBadRequest)
	}
	if !ValidKey(key) {
		return fmt.Errorf("key %q not 1–64 printable ASCII characters: %w", key, ErrBadRequest)
	}
	return nil
}

// ValidKey reports whether k can be an idempotency key at the bank: 1–64
// printable ASCII characters.
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// call sends body to path, retrying while the answer is not definite.
func (c *HTTPClient) call(ctx context.Context, path string, body any) (*response, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	wait := c.cfg.Backoff
	var lastErr error
	for attempt := 0; attempt < c.cfg.Attempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("after %d attempts (%v): %w: %w", attempt, lastErr, ErrUnavailable, ctx.Err())
			case <-t.C:
			}
			wait *= 2
		}
		start := time.Now()
		resp, err := c.once(ctx, path, raw)
		observe(path, start, err)
		if err == nil || !errors.Is(err, ErrUnavailable) {
			return resp, err
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, fmt.Errorf("after %d attempts: %w", attempt+1, lastErr)
		}
	}
	return nil, fmt.Errorf("after %d attempts: %w", c.cfg.Attempts, lastErr)
}

// once makes one attempt. Every error that leaves the outcome unknown wraps
// ErrUnavailable.
func (c *HTTPClient) once(ctx context.Context, path string, body []byte) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	ts := strconv.FormatInt(c.cfg.Now().Unix(), 10)
	sig := signRequest(c.cfg.Secret, path, c.cfg.ClientID, ts, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderClient, c.cfg.ClientID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, sig)

	hr, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer hr.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(hr.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read response: %w", ErrUnavailable, err)
	}
	if hr.StatusCode >= 500 {
		return nil, fmt.Errorf("%w: HTTP %d", ErrUnavailable, hr.StatusCode)
	}
	if len(respBody) > maxResponse {
		return nil, fmt.Errorf("%w: response over %d bytes", ErrUnavailable, maxResponse)
	}
	if hr.StatusCode == http.StatusUnauthorized {
		// Unsigned by design: the gateway refused to trust us, so it has no
		// shared secret to sign with. Not retried: only configuration helps.
		return nil, fmt.Errorf("%w: HTTP 401: %s", ErrUnauthorized, bytes.TrimSpace(respBody))
	}
	want := signResponse(c.cfg.Secret, hr.StatusCode, sig, respBody)
	if !hmac.Equal([]byte(hr.Header.Get(HeaderSignature)), []byte(want)) {
		return nil, fmt.Errorf("%w: HTTP %d with a bad response signature", ErrUnavailable, hr.StatusCode)
	}
	resp, err := decodeResponse(hr.StatusCode, bytes.NewReader(respBody))
	if err != nil {
		return nil, err
	}
	resp.raw = respBody
	return resp, nil
}

// response is a decoded gateway answer.
type response struct {
	Result  string   `json:"result"`
	Receipt *Receipt `json:"receipt,omitempty"`
	OTP     *OTP     `json:"otp,omitempty"`
	Code    string   `json:"code,omitempty"`
	Message string   `json:"message,omitempty"`
	Field   string   `json:"field,omitempty"`

	raw []byte // the whole signed body (statements are parsed from it)
}

// decodeResponse parses a (signature-checked) answer with the given HTTP
// status. A definite refusal is returned as the matching error value; a body
// that cannot be understood wraps ErrUnavailable, since the outcome is unknown.
func decodeResponse(status int, r io.Reader) (*response, error) {
	var resp response
	dec := json.NewDecoder(r)
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("%w: HTTP %d: undecodable body: %w", ErrUnavailable, status, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: HTTP %d: data after the JSON body", ErrUnavailable, status)
	}
	if status == http.StatusOK {
		if resp.Result != "OK" {
			return nil, fmt.Errorf("%w: HTTP 200 with result %q", ErrUnavailable, resp.Result)
		}
		return &resp, nil
	}
	if resp.Code == CodeMismatch {
		switch resp.Field {
		case FieldName, FieldIDNumber, FieldPhone:
			return nil, &MismatchError{Field: resp.Field}
		}
		return nil, fmt.Errorf("%w: MISMATCH with unknown field %q", ErrUnavailable, resp.Field)
	}
	if e, ok := codeErrors[resp.Code]; ok {
		return nil, fmt.Errorf("%w (HTTP %d: %s)", e, status, resp.Message)
	}
	return nil, fmt.Errorf("%w: HTTP %d with unknown code %q", ErrUnavailable, status, resp.Code)
}

// signRequest computes the X-Bank-Signature of a request.
func signRequest(secret, path, client, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, "POST\n"+path+"\n"+client+"\n"+timestamp+"\n")
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// signResponse computes the X-Bank-Signature of a response to a request that
// carried reqSig.
func signResponse(secret string, status int, reqSig string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, "RESPONSE\n"+strconv.Itoa(status)+"\n"+reqSig+"\n")
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// maskCard keeps card numbers out of logs: first 4 and last 4 digits only.
func maskCard(n string) string {
	if len(n) <= 8 {
		return "****"
	}
	return n[:4] + strings.Repeat("*", len(n)-8) + n[len(n)-4:]
}
