package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/console"
	"campuspay/server/operator"
	"campuspay/server/wallet/wallettest"
)

var ctx = context.Background()

// rig is a back end (wallettest: real SQLite, bank and WeChat simulators
// over HTTP, an injected clock) with the console on a loopback server.
type rig struct {
	t   *testing.T
	env *wallettest.Env
	c   *console.Console
	srv *httptest.Server
}

const password = "correct horse battery"

func newRig(t *testing.T, opt console.Options) *rig {
	t.Helper()
	env := wallettest.New(t)
	if opt.Now == nil {
		opt.Now = env.Clock.Now
	}
	c := console.New(env.Svc, env.Store, opt)
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &rig{t: t, env: env, c: c, srv: srv}
}

// addOperator adds an operator with the test password.
func (r *rig) addOperator(name string, role operator.Role, merchant string, totp bool) []byte {
	r.t.Helper()
	_, secret, err := r.c.Actions().AddOperator(ctx, console.CLIActor("test"), console.NewOperator{Name: name, Role: role, Merchant: merchant, Password: password, TOTP: totp})
	if err != nil {
		r.t.Fatal(err)
	}
	return secret
}

// client is one browser: a cookie jar and the CSRF token of its session.
type client struct {
	r    *rig
	http *http.Client
	csrf string
}

func (r *rig) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{r: r, http: &http.Client{Jar: jar}}
}

// login logs in as name (with the test password) and fails the test if refused.
func (r *rig) login(name string) *client {
	r.t.Helper()
	c := r.client()
	var s struct{ CSRF string }
	if st := c.do("POST", "/login", map[string]string{"name": name, "password": password}, &s); st != 200 {
		r.t.Fatalf("login %s: %d", name, st)
	}
	c.csrf = s.CSRF
	return c
}

// do sends a request (path under the API prefix) with the session's CSRF
// token and decodes the JSON answer into out (if not nil); it returns the status.
func (c *client) do(method, path string, body any, out any) int {
	c.r.t.Helper()
	st, b := c.raw(method, path, body, map[string]string{"X-CSRF-Token": c.csrf})
	if out != nil && len(b) > 0 && (b[0] == '{' || b[0] == '[') { // not a PNG
		if err := json.Unmarshal(b, out); err != nil {
			c.r.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return st
}

// raw sends a request with the given headers and returns the status and body.
func (c *client) raw(method, path string, body any, headers map[string]string) (int, []byte) {
	c.r.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
		if method != "GET" {
			rd, ct = strings.NewReader("{}"), "application/json"
		}
	case []byte:
		rd, ct = bytes.NewReader(b), "text/csv"
	default:
		j, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, c.r.srv.URL+console.APIPrefix+path, rd)
	if err != nil {
		c.r.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.r.t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// want checks a refusal's status and reason code.
func (c *client) want(status int, code, method, path string, body any) {
	c.r.t.Helper()
	var e struct{ Code string }
	if st := c.do(method, path, body, &e); st != status || e.Code != code {
		c.r.t.Errorf("%s %s: %d %s, want %d %s", method, path, st, e.Code, status, code)
	}
}

// audit returns the audit entries matching q, newest first.
func (r *rig) audit(q operator.AuditQuery) []operator.AuditEntry {
	r.t.Helper()
	es, err := r.env.Store.AuditLog(ctx, q)
	if err != nil {
		r.t.Fatal(err)
	}
	return es
}

// saveArtifact keeps a file the test made (a screenshot, a placard) under
// $ARTIFACTS_DIR/console if set, else in the test's temporary folder, and logs
// where: artifacts, never committed.
func saveArtifact(t *testing.T, name string, b []byte) {
	t.Helper()
	dir := os.Getenv("ARTIFACTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifact %s", p)
}

// offlineHistory gives s two offline payments made after the phone was
// revoked (flagged after_revoke) and a debt of ¥4.00: an allowance of
// ¥10.00 (the whole balance), the phone revoked, then two tills offline
// accept ¥10.00 and ¥4.00 while the bank card refuses.
func offlineHistory(t *testing.T, e *wallettest.Env, s *wallettest.Student) {
	t.Helper()
	c, err := protocol.ParseCertificate(s.Cert)
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Svc.RequestAllowance(ctx, s.ID, c.DeviceID, 10_00)
	if err != nil {
		t.Fatal(err)
	}
	s.Cert = g.Certificate
	if err := e.Svc.RevokeDevice(ctx, s.ID, c.DeviceID); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(time.Minute)
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		terminal string
		amount   int64
	}{{wallettest.POS, 10_00}, {wallettest.CardBox, 4_00}} {
		ack := e.Svc.ApplyJournal(ctx, &protocol.JournalEntry{V: 1, Terminal: p.terminal, Seq: 1, Tx: e.TxID(), Kind: protocol.EntryOffline,
			Status: protocol.StatusApproved, Amount: p.amount, CredKind: protocol.CredCode, Cred: e.PayCode(s), At: e.Clock.Now()})
		if ack == nil || !ack.OK {
			t.Fatalf("offline entry at %s: %+v", p.terminal, ack)
		}
	}
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, false); err != nil {
		t.Fatal(err)
	}
}
