package wechat

import (
	"bytes"
	"context"
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
	"time"

	"campuspay/server/wechat/wxpay"
)

// maxResponse bounds how much of a response body is read.
const maxResponse = 64 << 10

// chinaTime is the zone of time_end; fixed, so no tzdata is needed.
var chinaTime = time.FixedZone("CST", 8*3600)

// Config configures HTTPClient.
type Config struct {
	PayURL   string // WeChat Pay gateway base URL, e.g. "http://127.0.0.1:7302"
	LoginURL string // mini-program API base URL; default PayURL
	AppID    string
	MchID    string
	APIKey   string // merchant API key (signs requests and responses)

	MiniAppID  string // mini-program appid; default AppID
	MiniSecret string // mini-program AppSecret, for Code2Session

	SpbillCreateIP string // the authorizer's IP, sent with micropay; default 127.0.0.1

	Timeout  time.Duration // per attempt; default 10 s (micropay may wait on the bank)
	Attempts int           // default 3
	Backoff  time.Duration // before the 2nd attempt, then doubled; default 200 ms

	HTTPClient *http.Client // default: a fresh client
	Rand       io.Reader    // nonces; default crypto/rand
}

// HTTPClient is the Client adapter for the protocol in the package doc.
type HTTPClient struct {
	cfg Config
}

var _ Client = (*HTTPClient)(nil)

// NewHTTPClient checks cfg and fills in defaults.
func NewHTTPClient(cfg Config) (*HTTPClient, error) {
	if cfg.PayURL == "" || cfg.AppID == "" || cfg.MchID == "" || cfg.APIKey == "" {
		return nil, errors.New("wechat: PayURL, AppID, MchID and APIKey are required")
	}
	cfg.PayURL = strings.TrimRight(cfg.PayURL, "/")
	if cfg.LoginURL == "" {
		cfg.LoginURL = cfg.PayURL
	}
	cfg.LoginURL = strings.TrimRight(cfg.LoginURL, "/")
	if cfg.MiniAppID == "" {
		cfg.MiniAppID = cfg.AppID
	}
	if cfg.SpbillCreateIP == "" {
		cfg.SpbillCreateIP = "127.0.0.1"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
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
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &HTTPClient{cfg: cfg}, nil
}

// AuthCodeToOpenID implements Client.
func (c *HTTPClient) AuthCodeToOpenID(ctx context.Context, authCode string) (string, error) {
	var openID string
	err := c.retry(ctx, func() error {
		resp, err := c.post(ctx, "/tools/authcodetoopenid", map[string]string{"auth_code": authCode})
		if err != nil {
			return err
		}
		if resp["result_code"] != "SUCCESS" {
			return resultError("authcodetoopenid", resp)
		}
		if openID = resp["openid"]; openID == "" {
			return fmt.Errorf("%w: SUCCESS without openid", ErrUnavailable)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("wechat: authcodetoopenid: %w", err)
	}
	return openID, nil
}

// Micropay implements Client.
func (c *HTTPClient) Micropay(ctx context.Context, req MicropayRequest) (MicropayResult, error) {
	if req.OutTradeNo == "" || req.AuthCode == "" || req.TotalFee <= 0 || req.Body == "" {
		return MicropayResult{}, fmt.Errorf("wechat: micropay %q: out_trade_no, auth_code, body and a positive total_fee are required: %w", req.OutTradeNo, ErrBadRequest)
	}
	fields := map[string]string{
		"out_trade_no":     req.OutTradeNo,
		"auth_code":        req.AuthCode,
		"total_fee":        strconv.FormatInt(req.TotalFee, 10),
		"fee_type":         "CNY",
		"body":             req.Body,
		"device_info":      req.DeviceInfo,
		"spbill_create_ip": c.cfg.SpbillCreateIP,
	}
	var res MicropayResult
	err := c.retry(ctx, func() error {
		resp, err := c.post(ctx, "/pay/micropay", fields)
		if err != nil {
			return err
		}
		res, err = micropayResult(req, resp)
		return err
	})
	if err != nil {
		return MicropayResult{}, fmt.Errorf("wechat: micropay %s: %w", req.OutTradeNo, err)
	}
	return res, nil
}

func micropayResult(req MicropayRequest, resp map[string]string) (MicropayResult, error) {
	if resp["result_code"] != "SUCCESS" {
		res := MicropayResult{TradeState: StateFail, ErrCode: resp["err_code"], ErrCodeDes: resp["err_code_des"]}
		if res.ErrCode == CodeUserPaying {
			res.TradeState = StateUserPaying
		}
		return res, nil
	}
	fee, err := strconv.ParseInt(resp["total_fee"], 10, 64)
	if err != nil || fee != req.TotalFee || resp["out_trade_no"] != req.OutTradeNo || resp["openid"] == "" {
		// Signed, yet not about our order: trust nothing.
		return MicropayResult{}, fmt.Errorf("%w: SUCCESS that does not match the request", ErrUnavailable)
	}
	return MicropayResult{
		TradeState:    StateSuccess,
		OpenID:        resp["openid"],
		TransactionID: resp["transaction_id"],
		TotalFee:      fee,
		TimeEnd:       parseTimeEnd(resp["time_end"]),
	}, nil
}

// OrderQuery implements Client.
func (c *HTTPClient) OrderQuery(ctx context.Context, outTradeNo string) (OrderResult, error) {
	var res OrderResult
	err := c.retry(ctx, func() error {
		resp, err := c.post(ctx, "/pay/orderquery", map[string]string{"out_trade_no": outTradeNo})
		if err != nil {
			return err
		}
		if resp["result_code"] != "SUCCESS" {
			return resultError("orderquery", resp)
		}
		if resp["out_trade_no"] != outTradeNo {
			return fmt.Errorf("%w: answer about order %q", ErrUnavailable, resp["out_trade_no"])
		}
		st := TradeState(resp["trade_state"])
		switch st {
		case StateSuccess, StateUserPaying, StateNotPay, StatePayError, StateRevoked, StateClosed, StateRefund:
		default:
			return fmt.Errorf("%w: unknown trade_state %q", ErrUnavailable, st)
		}
		res = OrderResult{
			TradeState:     st,
			TradeStateDesc: resp["trade_state_desc"],
			OpenID:         resp["openid"],
			TransactionID:  resp["transaction_id"],
			TimeEnd:        parseTimeEnd(resp["time_end"]),
		}
		if f := resp["total_fee"]; f != "" {
			if res.TotalFee, err = strconv.ParseInt(f, 10, 64); err != nil {
				return fmt.Errorf("%w: total_fee %q", ErrUnavailable, f)
			}
		}
		return nil
	})
	if err != nil {
		return OrderResult{}, fmt.Errorf("wechat: orderquery %s: %w", outTradeNo, err)
	}
	return res, nil
}

// Reverse implements Client. It also returns recall=true with an error
// wrapping ErrUnavailable when no answer came: the caller should call again.
func (c *HTTPClient) Reverse(ctx context.Context, outTradeNo string) (bool, error) {
	var recall bool
	err := c.retry(ctx, func() error {
		resp, err := c.post(ctx, "/secapi/pay/reverse", map[string]string{"out_trade_no": outTradeNo})
		if err != nil {
			return err
		}
		recall = resp["recall"] == "Y"
		if resp["result_code"] == "SUCCESS" || recall {
			return nil
		}
		return resultError("reverse", resp)
	})
	if errors.Is(err, ErrUnavailable) {
		return true, fmt.Errorf("wechat: reverse %s: %w", outTradeNo, err)
	}
	if err != nil {
		return false, fmt.Errorf("wechat: reverse %s: %w", outTradeNo, err)
	}
	return recall, nil
}

// Code2Session implements Client. Login codes are single use, so there is one
// attempt: a retry after a lost answer could only be told "already used".
func (c *HTTPClient) Code2Session(ctx context.Context, jsCode string) (openID string, err error) {
	start := time.Now()
	defer func() { observe("/sns/jscode2session", start, err) }()
	q := url.Values{
		"appid":      {c.cfg.MiniAppID},
		"secret":     {c.cfg.MiniSecret},
		"js_code":    {jsCode},
		"grant_type": {"authorization_code"},
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.LoginURL+"/sns/jscode2session?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("wechat: jscode2session: %w", err)
	}
	hr, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("wechat: jscode2session: %w: %w", ErrUnavailable, err)
	}
	defer hr.Body.Close()
	if hr.StatusCode != http.StatusOK {
		return "", fmt.Errorf("wechat: jscode2session: %w: HTTP %d", ErrUnavailable, hr.StatusCode)
	}
	s, err := decodeSession(io.LimitReader(hr.Body, maxResponse))
	if err != nil {
		return "", fmt.Errorf("wechat: jscode2session: %w", err)
	}
	return s.OpenID, nil
}

type session struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid"`
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
}

// decodeSession parses a jscode2session answer.
func decodeSession(r io.Reader) (session, error) {
	var s session
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return session{}, fmt.Errorf("%w: undecodable answer: %w", ErrUnavailable, err)
	}
	if s.ErrCode != 0 {
		return session{}, &ResultError{API: "jscode2session", Code: strconv.Itoa(s.ErrCode), Des: s.ErrMsg}
	}
	if s.OpenID == "" {
		return session{}, fmt.Errorf("%w: answer without openid", ErrUnavailable)
	}
	return s, nil
}

// retry runs attempt until it gives a definite answer, the attempts run out
// or ctx ends.
func (c *HTTPClient) retry(ctx context.Context, attempt func() error) error {
	wait := c.cfg.Backoff
	var err error
	for i := 0; i < c.cfg.Attempts; i++ {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w (%w)", err, ctx.Err())
			case <-t.C:
			}
			wait *= 2
		}
		if err = attempt(); err == nil || !errors.Is(err, ErrUnavailable) || ctx.Err() != nil {
			return err
		}
	}
	return fmt.Errorf("after %d attempts: %w", c.cfg.Attempts, err)
}

// post makes one signed call and returns the checked response fields.
func (c *HTTPClient) post(ctx context.Context, path string, fields map[string]string) (map[string]string, error) {
	start := time.Now()
	resp, err := c.postOnce(ctx, path, fields)
	observe(path, start, err)
	return resp, err
}

func (c *HTTPClient) postOnce(ctx context.Context, path string, fields map[string]string) (map[string]string, error) {
	body, err := c.send(ctx, path, fields, maxResponse)
	if err != nil {
		return nil, err
	}
	resp, err := wxpay.Decode(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return c.checkResponse(resp)
}

// send makes one signed call and returns the body of its 200 answer (at
// most limit bytes).
func (c *HTTPClient) send(ctx context.Context, path string, fields map[string]string, limit int64) ([]byte, error) {
	hreq, err := c.signedRequest(ctx, path, fields)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hr, err := c.cfg.HTTPClient.Do(hreq.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer hr.Body.Close()
	if hr.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP %d", ErrUnavailable, hr.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(hr.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrUnavailable, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: answer over %d bytes", ErrUnavailable, limit)
	}
	return body, nil
}

// signedRequest builds the signed POST of fields to path.
func (c *HTTPClient) signedRequest(ctx context.Context, path string, fields map[string]string) (*http.Request, error) {
	nonce := make([]byte, 16)
	if _, err := io.ReadFull(c.cfg.Rand, nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	req := map[string]string{
		"appid":     c.cfg.AppID,
		"mch_id":    c.cfg.MchID,
		"nonce_str": hex.EncodeToString(nonce),
		"sign_type": "HMAC-SHA256",
	}
	for k, v := range fields {
		req[k] = v
	}
	req["sign"] = wxpay.Sign(req, c.cfg.APIKey)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.PayURL+path, bytes.NewReader(wxpay.Encode(req)))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	hreq.Header.Set("Content-Type", "text/xml; charset=utf-8")
	return hreq, nil
}

// checkResponse applies the return_code, sign and identity checks.
func (c *HTTPClient) checkResponse(resp map[string]string) (map[string]string, error) {
	if resp["return_code"] != "SUCCESS" {
		return nil, fmt.Errorf("%w: %s", ErrRejected, resp["return_msg"])
	}
	if !wxpay.Verify(resp, c.cfg.APIKey) {
		return nil, fmt.Errorf("%w: response sign does not verify", ErrUnavailable)
	}
	if resp["appid"] != c.cfg.AppID || resp["mch_id"] != c.cfg.MchID {
		return nil, fmt.Errorf("%w: response for appid %q mch_id %q", ErrUnavailable, resp["appid"], resp["mch_id"])
	}
	return resp, nil
}

func resultError(api string, resp map[string]string) error {
	return &ResultError{API: api, Code: resp["err_code"], Des: resp["err_code_des"]}
}

// parseTimeEnd reads yyyyMMddHHmmss in China time; zero if absent or bad.
func parseTimeEnd(s string) time.Time {
	t, err := time.ParseInLocation("20060102150405", s, chinaTime)
	if err != nil {
		return time.Time{}
	}
	return t
}
