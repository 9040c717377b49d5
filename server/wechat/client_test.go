package wechat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	wechatsim "campuspay/hwsim/wechat"
	"campuspay/server/wechat"
)

// clock is an injected clock both sides read.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	sim   *wechatsim.Sim
	c     *wechat.HTTPClient
	clk   *clock
	url   string
	ctx   context.Context
	t     *testing.T
	trade int
}

func setup(t *testing.T, mod func(*wechat.Config)) *env {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	sim := wechatsim.New(wechatsim.Config{
		AppID: "wxcampus", MchID: "1900000109", APIKey: "0123456789abcdef0123456789abcdef",
		MiniSecret: "minisecret", Now: clk.Now,
	})
	url, err := sim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	cfg := wechat.Config{
		PayURL: url, AppID: "wxcampus", MchID: "1900000109", APIKey: "0123456789abcdef0123456789abcdef",
		MiniSecret: "minisecret", Timeout: 2 * time.Second, Backoff: time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := wechat.NewHTTPClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []wechatsim.User{
		{OpenID: "o-rich", Balance: 100000},
		{OpenID: "o-poor", Balance: 300},
		{OpenID: "o-pw", Balance: 100000, NeedsPassword: true},
	} {
		if err := sim.CreateUser(u); err != nil {
			t.Fatal(err)
		}
	}
	return &env{sim: sim, c: c, clk: clk, url: url, ctx: context.Background(), t: t}
}

func (e *env) code(openID string) string {
	e.t.Helper()
	c, err := e.sim.NewPaymentCode(openID)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) pay(openID string, fee int64) (wechat.MicropayRequest, wechat.MicropayResult) {
	e.t.Helper()
	e.trade++
	req := wechat.MicropayRequest{
		OutTradeNo: fmt.Sprintf("T%04d", e.trade), AuthCode: e.code(openID),
		TotalFee: fee, Body: "云谷食堂-午餐", DeviceInfo: "pos-01",
	}
	res, err := e.c.Micropay(e.ctx, req)
	if err != nil {
		e.t.Fatalf("micropay: %v", err)
	}
	return req, res
}

func (e *env) balance(openID string) int64 {
	b, _ := e.sim.Balance(openID)
	return b
}

func TestMicropaySuccess(t *testing.T) {
	e := setup(t, nil)
	code := e.code("o-rich")
	if id, err := e.c.AuthCodeToOpenID(e.ctx, code); err != nil || id != "o-rich" {
		t.Fatalf("AuthCodeToOpenID = %q, %v", id, err)
	}
	req := wechat.MicropayRequest{OutTradeNo: "T-ok", AuthCode: code, TotalFee: 1250, Body: "午餐", DeviceInfo: "pos-01"}
	res, err := e.c.Micropay(e.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.TradeState != wechat.StateSuccess || res.OpenID != "o-rich" || res.TotalFee != 1250 || res.TransactionID == "" ||
		!res.TimeEnd.Equal(e.clk.Now()) || res.Unknown() {
		t.Fatalf("result %+v", res)
	}
	if b := e.balance("o-rich"); b != 100000-1250 {
		t.Fatalf("balance %d", b)
	}
	q, err := e.c.OrderQuery(e.ctx, "T-ok")
	if err != nil || q.TradeState != wechat.StateSuccess || q.TransactionID != res.TransactionID || q.TotalFee != 1250 {
		t.Fatalf("query %+v, %v", q, err)
	}
	// A used code is no longer anyone's.
	if _, err := e.c.AuthCodeToOpenID(e.ctx, code); !errors.Is(err, wechat.ErrAuthCodeExpired) {
		t.Fatalf("used code: %v", err)
	}
}

func TestMicropayFailures(t *testing.T) {
	e := setup(t, nil)
	_, res := e.pay("o-poor", 301)
	if res.TradeState != wechat.StateFail || res.ErrCode != wechat.CodeNotEnough || res.Unknown() {
		t.Fatalf("NOTENOUGH: %+v", res)
	}
	if b := e.balance("o-poor"); b != 300 {
		t.Fatalf("balance %d", b)
	}

	if _, err := e.c.Micropay(e.ctx, wechat.MicropayRequest{OutTradeNo: "T-zero", AuthCode: e.code("o-rich"), Body: "b"}); !errors.Is(err, wechat.ErrBadRequest) {
		t.Fatalf("zero fee: %v", err)
	}

	expired := e.code("o-rich")
	e.clk.Advance(61 * time.Second)
	res, err := e.c.Micropay(e.ctx, wechat.MicropayRequest{OutTradeNo: "T-exp", AuthCode: expired, TotalFee: 1, Body: "b"})
	if err != nil || res.ErrCode != wechat.CodeAuthCodeExpire {
		t.Fatalf("expired: %+v, %v", res, err)
	}
	if _, err := e.c.AuthCodeToOpenID(e.ctx, expired); !errors.Is(err, wechat.ErrAuthCodeExpired) {
		t.Fatalf("AuthCodeToOpenID expired: %v", err)
	}
	for _, bad := range []string{"134567890123456789", "160000000000000000", "1234"} {
		res, err := e.c.Micropay(e.ctx, wechat.MicropayRequest{OutTradeNo: "T-bad", AuthCode: bad, TotalFee: 1, Body: "b"})
		if err != nil || res.ErrCode != wechat.CodeAuthCodeInvalid {
			t.Fatalf("code %s: %+v, %v", bad, res, err)
		}
		if _, err := e.c.AuthCodeToOpenID(e.ctx, bad); !errors.Is(err, wechat.ErrAuthCodeInvalid) {
			t.Fatalf("AuthCodeToOpenID %s: %v", bad, err)
		}
	}
}

func TestUserPayingThenConfirmed(t *testing.T) {
	e := setup(t, nil)
	req, res := e.pay("o-pw", 800)
	if res.TradeState != wechat.StateUserPaying || !res.Unknown() {
		t.Fatalf("result %+v", res)
	}
	if q, err := e.c.OrderQuery(e.ctx, req.OutTradeNo); err != nil || q.TradeState != wechat.StateUserPaying {
		t.Fatalf("query %+v, %v", q, err)
	}
	if err := e.sim.Confirm(req.OutTradeNo); err != nil {
		t.Fatal(err)
	}
	q, err := e.c.OrderQuery(e.ctx, req.OutTradeNo)
	if err != nil || q.TradeState != wechat.StateSuccess || q.OpenID != "o-pw" {
		t.Fatalf("after confirm %+v, %v", q, err)
	}
	if b := e.balance("o-pw"); b != 100000-800 {
		t.Fatalf("balance %d", b)
	}

	// Automatic confirmation on the 3rd query.
	if err := e.sim.SetNeedsPassword("o-pw", true, 3); err != nil {
		t.Fatal(err)
	}
	req, _ = e.pay("o-pw", 100)
	var states []wechat.TradeState
	for range 3 {
		q, err := e.c.OrderQuery(e.ctx, req.OutTradeNo)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, q.TradeState)
	}
	if states[0] != wechat.StateUserPaying || states[1] != wechat.StateUserPaying || states[2] != wechat.StateSuccess {
		t.Fatalf("states %v", states)
	}
}

func TestReverse(t *testing.T) {
	e := setup(t, nil)
	// Pending forever, reversed on timeout: nothing taken.
	req, _ := e.pay("o-pw", 900)
	recall, err := e.c.Reverse(e.ctx, req.OutTradeNo)
	if err != nil || recall {
		t.Fatalf("reverse: %v %v", recall, err)
	}
	if q, _ := e.c.OrderQuery(e.ctx, req.OutTradeNo); q.TradeState != wechat.StateRevoked {
		t.Fatalf("state %s", q.TradeState)
	}
	if err := e.sim.Confirm(req.OutTradeNo); err == nil {
		t.Fatal("confirmed a revoked order")
	}
	if b := e.balance("o-pw"); b != 100000 {
		t.Fatalf("balance %d", b)
	}

	// Paid, then reversed: refunded.
	req, res := e.pay("o-rich", 700)
	if res.TradeState != wechat.StateSuccess || e.balance("o-rich") != 100000-700 {
		t.Fatalf("pay %+v", res)
	}
	if recall, err := e.c.Reverse(e.ctx, req.OutTradeNo); err != nil || recall {
		t.Fatalf("reverse paid: %v %v", recall, err)
	}
	if b := e.balance("o-rich"); b != 100000 {
		t.Fatalf("balance %d after reverse", b)
	}
	if recall, err := e.c.Reverse(e.ctx, req.OutTradeNo); err != nil || recall || e.balance("o-rich") != 100000 {
		t.Fatalf("second reverse: %v %v, balance %d", recall, err, e.balance("o-rich"))
	}
	// A repeat of the reversed micropay does not charge again.
	if res, err := e.c.Micropay(e.ctx, req); err != nil || res.ErrCode != wechat.CodeOrderReversed {
		t.Fatalf("micropay after reverse: %+v %v", res, err)
	}

	// Reverse of an order never seen; the late micropay is refused.
	if recall, err := e.c.Reverse(e.ctx, "T-ghost"); !errors.Is(err, wechat.ErrOrderNotExist) || recall {
		t.Fatalf("reverse unknown: %v %v", recall, err)
	}
	late := wechat.MicropayRequest{OutTradeNo: "T-ghost", AuthCode: e.code("o-rich"), TotalFee: 5, Body: "b"}
	if res, err := e.c.Micropay(e.ctx, late); err != nil || res.ErrCode != wechat.CodeOrderReversed {
		t.Fatalf("late micropay: %+v %v", res, err)
	}
	if _, err := e.c.OrderQuery(e.ctx, "T-ghost"); !errors.Is(err, wechat.ErrOrderNotExist) {
		t.Fatalf("query unknown: %v", err)
	}

	// SYSTEMERROR with recall=Y: call again.
	req, _ = e.pay("o-rich", 100)
	e.sim.FailNext("reverse", 1)
	if recall, err := e.c.Reverse(e.ctx, req.OutTradeNo); err != nil || !recall {
		t.Fatalf("recall: %v %v", recall, err)
	}
	if recall, err := e.c.Reverse(e.ctx, req.OutTradeNo); err != nil || recall {
		t.Fatalf("after recall: %v %v", recall, err)
	}
}

func TestDuplicateOutTradeNo(t *testing.T) {
	e := setup(t, nil)
	req, first := e.pay("o-rich", 1000)
	again, err := e.c.Micropay(e.ctx, req)
	if err != nil || again != first {
		t.Fatalf("repeat: %+v %v, want %+v", again, err, first)
	}
	if b := e.balance("o-rich"); b != 100000-1000 {
		t.Fatalf("charged twice: balance %d", b)
	}
	other := req
	other.TotalFee = 2000
	res, err := e.c.Micropay(e.ctx, other)
	if err != nil || res.ErrCode != wechat.CodeOutTradeNoUsed {
		t.Fatalf("different params: %+v %v", res, err)
	}
	other = req
	other.AuthCode = e.code("o-rich")
	if res, _ := e.c.Micropay(e.ctx, other); res.ErrCode != wechat.CodeOutTradeNoUsed {
		t.Fatalf("different code: %+v", res)
	}
}

func TestRetriesAndSystemErrors(t *testing.T) {
	e := setup(t, nil)
	// Two 503s, then the call goes through, once.
	e.sim.UnavailableNext(2)
	req, res := e.pay("o-rich", 100)
	if res.TradeState != wechat.StateSuccess || e.balance("o-rich") != 100000-100 {
		t.Fatalf("after 503s: %+v, balance %d", res, e.balance("o-rich"))
	}
	// SYSTEMERROR on micropay is an unknown outcome, for the caller to query.
	e.sim.FailNext("micropay", 1)
	_, res = e.pay("o-rich", 100)
	if res.ErrCode != wechat.CodeSystemError || !res.Unknown() {
		t.Fatalf("SYSTEMERROR: %+v", res)
	}
	// SYSTEMERROR on a query is retried.
	e.sim.FailNext("orderquery", 2)
	if q, err := e.c.OrderQuery(e.ctx, req.OutTradeNo); err != nil || q.TradeState != wechat.StateSuccess {
		t.Fatalf("query after SYSTEMERRORs: %+v %v", q, err)
	}
	e.sim.UnavailableNext(3)
	if _, err := e.c.OrderQuery(e.ctx, req.OutTradeNo); !errors.Is(err, wechat.ErrUnavailable) {
		t.Fatalf("3×503: %v", err)
	}
}

func TestBadSignRefused(t *testing.T) {
	e := setup(t, func(c *wechat.Config) { c.APIKey = "not-the-key" })
	code := e.code("o-rich")
	_, err := e.c.Micropay(e.ctx, wechat.MicropayRequest{OutTradeNo: "T1", AuthCode: code, TotalFee: 1, Body: "b"})
	if !errors.Is(err, wechat.ErrRejected) || !strings.Contains(err.Error(), "签名错误") {
		t.Fatalf("err = %v", err)
	}
	if b := e.balance("o-rich"); b != 100000 {
		t.Fatalf("balance %d", b)
	}
	e2 := setup(t, func(c *wechat.Config) { c.MchID = "other" })
	if _, err := e2.c.OrderQuery(e2.ctx, "T1"); !errors.Is(err, wechat.ErrRejected) {
		t.Fatalf("wrong mch_id: %v", err)
	}
}

// A response altered on the way fails its sign and is not believed.
func TestForgedResponseRefused(t *testing.T) {
	e := setup(t, nil)
	target, _ := url.Parse(e.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		b, _ := io.ReadAll(r.Body)
		b = bytes.ReplaceAll(b, []byte("o-rich"), []byte("o-evil"))
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Del("Content-Length")
		return nil
	}
	ts := httptest.NewServer(proxy)
	defer ts.Close()
	c, err := wechat.NewHTTPClient(wechat.Config{PayURL: ts.URL, AppID: "wxcampus", MchID: "1900000109",
		APIKey: "0123456789abcdef0123456789abcdef", Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthCodeToOpenID(e.ctx, e.code("o-rich")); !errors.Is(err, wechat.ErrUnavailable) {
		t.Fatalf("forged answer accepted: %v", err)
	}
}

func TestCode2Session(t *testing.T) {
	e := setup(t, nil)
	code, err := e.sim.NewLoginCode("o-rich")
	if err != nil {
		t.Fatal(err)
	}
	if id, err := e.c.Code2Session(e.ctx, code); err != nil || id != "o-rich" {
		t.Fatalf("Code2Session = %q, %v", id, err)
	}
	if _, err := e.c.Code2Session(e.ctx, code); !errors.Is(err, wechat.ErrLoginCodeUsed) {
		t.Fatalf("reused: %v", err)
	}
	if _, err := e.c.Code2Session(e.ctx, "nonsense"); !errors.Is(err, wechat.ErrLoginCodeInvalid) {
		t.Fatalf("invalid: %v", err)
	}
	old, _ := e.sim.NewLoginCode("o-rich")
	e.clk.Advance(6 * time.Minute)
	if _, err := e.c.Code2Session(e.ctx, old); !errors.Is(err, wechat.ErrLoginCodeInvalid) {
		t.Fatalf("expired: %v", err)
	}
	e2 := setup(t, func(c *wechat.Config) { c.MiniSecret = "wrong" })
	code, _ = e2.sim.NewLoginCode("o-rich")
	if _, err := e2.c.Code2Session(e2.ctx, code); !errors.Is(err, wechat.ErrRejected) {
		t.Fatalf("wrong secret: %v", err)
	}
	e.sim.FailNext("jscode2session", 1)
	code, _ = e.sim.NewLoginCode("o-poor")
	if _, err := e.c.Code2Session(e.ctx, code); !errors.Is(err, wechat.ErrUnavailable) {
		t.Fatalf("busy: %v", err)
	}
	if id, err := e.c.Code2Session(e.ctx, code); err != nil || id != "o-poor" {
		t.Fatalf("after busy: %q %v", id, err)
	}
}

// Concurrent repeats of one micropay charge once.
func TestConcurrentMicropay(t *testing.T) {
	e := setup(t, nil)
	req := wechat.MicropayRequest{OutTradeNo: "T-race", AuthCode: e.code("o-rich"), TotalFee: 321, Body: "b"}
	var wg sync.WaitGroup
	results := make([]wechat.MicropayResult, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.c.Micropay(e.ctx, req)
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i] != results[0] || results[i].TradeState != wechat.StateSuccess {
			t.Fatalf("call %d: %+v %v", i, results[i], errs[i])
		}
	}
	if b := e.balance("o-rich"); b != 100000-321 {
		t.Fatalf("balance %d", b)
	}
}
