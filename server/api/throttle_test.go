package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"campuspay/server/api"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// metric reads a counter of the default registry (0 if absent); label
// selects a series by its one label value.
func metric(t *testing.T, name, label string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// loginAt posts a login from addr straight to the handler (a test server
// only has loopback peers) and returns the status, code and Retry-After.
func loginAt(t *testing.T, h http.Handler, addr, no, pw string) (int, string, string) {
	t.Helper()
	body := fmt.Sprintf(`{"student_no":%q,"password":%q}`, no, pw)
	req := httptest.NewRequest("POST", "/api/v1/session", strings.NewReader(body))
	req.RemoteAddr = addr
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	json.Unmarshal(rec.Body.Bytes(), &m)
	code, _ := m["code"].(string)
	return rec.Code, code, rec.Header().Get("Retry-After")
}

// Issue 13 item 4: one client address trying a common password on every
// student number is throttled per address, many addresses together
// globally; successful logins cost nothing; each refusal is counted in
// campuspay_login_throttled_total{scope} and each wrong password in
// campuspay_login_failures_total.
func TestLoginThrottle(t *testing.T) {
	e := wallettest.New(t)
	srv := api.New(e.Svc, e.Store, api.Options{Now: e.Clock.Now, LoginLimits: api.LoginLimits{
		PerAddress: rate.Every(time.Minute), AddressBurst: 3, Global: rate.Every(time.Minute), GlobalBurst: 6}})
	s := e.AddStudent(wallettest.Options{Inactive: true})
	fail0, addr0, glob0, acct0 := metric(t, "campuspay_login_failures_total", ""),
		metric(t, "campuspay_login_throttled_total", "address"), metric(t, "campuspay_login_throttled_total", "global"),
		metric(t, "campuspay_login_throttled_total", "account")

	// The student logs in again and again: no token is kept.
	for range 10 {
		if st, code, _ := loginAt(t, srv, "203.0.113.5:4000", s.No, s.Password); st != 200 {
			t.Fatalf("student login: %d %s", st, code)
		}
	}
	// A sprayer: one password, every number.
	const sprayer = "198.51.100.7:5000"
	for i := range 3 {
		if st, code, _ := loginAt(t, srv, sprayer, fmt.Sprintf("2099%04d", i), "123456"); st != 401 || code != "LOGIN_FAILED" {
			t.Fatalf("spray %d: %d %s", i, st, code)
		}
	}
	st, code, retry := loginAt(t, srv, sprayer, "20990003", "123456")
	if st != 429 || code != "LOGIN_THROTTLED" || retry != "60" {
		t.Fatalf("4th spray: %d %s Retry-After %q, want 429 LOGIN_THROTTLED 60", st, code, retry)
	}
	// The same machine's other IPv6 addresses are the same client.
	for i := range 3 {
		loginAt(t, srv, fmt.Sprintf("[2001:db8:1:2::%x]:6000", i+1), "20990100", "123456")
	}
	if st, code, _ := loginAt(t, srv, "[2001:db8:1:2::ff]:6000", "20990100", "123456"); st != 429 {
		t.Fatalf("4th try from the same /64: %d %s", st, code)
	}
	// Six failures so far in all: the global limit refuses a fresh address.
	if st, code, _ := loginAt(t, srv, "192.0.2.1:7000", "20990200", "123456"); st != 429 || code != "LOGIN_THROTTLED" {
		t.Fatalf("over the global limit: %d %s", st, code)
	}
	// Refilled a minute later.
	e.Clock.Advance(time.Minute)
	if st, code, _ := loginAt(t, srv, sprayer, "20990004", "123456"); st != 401 {
		t.Fatalf("a minute later: %d %s", st, code)
	}
	if d := metric(t, "campuspay_login_failures_total", "") - fail0; d != 7 {
		t.Errorf("failures counted %v, want 7", d)
	}
	if d := metric(t, "campuspay_login_throttled_total", "address") - addr0; d != 2 {
		t.Errorf("address throttles counted %v, want 2", d)
	}
	if d := metric(t, "campuspay_login_throttled_total", "global") - glob0; d != 1 {
		t.Errorf("global throttles counted %v, want 1", d)
	}

	// The account lock answers 423 with Retry-After and is counted as an
	// account throttle once the lock is set.
	e.Clock.Advance(time.Hour)
	locks0 := metric(t, "campuspay_login_locks_total", "")
	guesser := "198.51.100.9:1"
	for i := 1; i <= wallet.PasswordTries; i++ {
		want := 401
		if i == wallet.PasswordTries {
			want = 423
		}
		if st, code, _ := loginAt(t, srv, guesser, s.No, "wrong"); st != want {
			t.Fatalf("wrong password %d: %d %s", i, st, code)
		}
		if i == 3 {
			e.Clock.Advance(time.Hour) // stay under the rate limits
		}
	}
	if st, code, retry := loginAt(t, srv, guesser, s.No, s.Password); st != 423 || code != "LOGIN_LOCKED" || retry != "60" {
		t.Fatalf("locked: %d %s Retry-After %q", st, code, retry)
	}
	if d := metric(t, "campuspay_login_throttled_total", "account") - acct0; d != 1 {
		t.Errorf("account throttles counted %v, want 1", d)
	}
	if d := metric(t, "campuspay_login_locks_total", "") - locks0; d != 1 {
		t.Errorf("locks counted %v, want 1", d)
	}
	if st, _, _ := loginAt(t, srv, "203.0.113.5:4000", s.No, s.Password); st != 200 {
		t.Fatalf("the student from their phone while the guesser is locked: %d", st)
	}
}
