package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"campuspay/protocol"
	"campuspay/server/authz"
	"campuspay/server/broker/brokertest"
	"campuspay/server/metrics"
)

// lockedBuffer is a bytes.Buffer safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// served is a real `authorizer serve` running in this process.
type served struct {
	url  string
	errb *lockedBuffer
	stop func() int // stops it and returns its exit code
}

// call sends body as JSON to the served API with the bearer token (if
// any) and returns the status and the decoded JSON answer; 0 if nothing
// came back (safe off the test goroutine: it never fails the test).
func (s *served) call(method, path, token string, body any) (int, map[string]any) {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(raw))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// must is call that fails the test unless the answer is 200.
func (s *served) must(t *testing.T, method, path, token string, body any) map[string]any {
	t.Helper()
	code, m := s.call(method, path, token, body)
	if code != 200 {
		t.Fatalf("%s %s: %d %v", method, path, code, m)
	}
	return m
}

// startServe runs `authorizer ARGS… serve --http 127.0.0.1:0 EXTRA…` and
// waits until it serves HTTP.
func startServe(t *testing.T, args []string, extra ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	var out lockedBuffer
	errb := &lockedBuffer{}
	go func() {
		c := &cli{ctx: ctx, out: &out, errw: errb, common: common{data: "data"}, ready: func(a net.Addr) { addrc <- a }}
		done <- c.main(append(append(append([]string{}, args...), "serve", "--http", "127.0.0.1:0"), extra...))
	}()
	s := &served{errb: errb}
	select {
	case a := <-addrc:
		s.url = "http://" + a.String()
	case code := <-done:
		cancel()
		t.Fatalf("serve exited %d: %s", code, errb.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	var once sync.Once
	code := 0
	s.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop")
				code = -1
			}
		})
		return code
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// waitReady polls /readyz until it answers 200 (every check passes).
func waitReady(t *testing.T, client *http.Client, url string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if resp.StatusCode == 200 {
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("/readyz: %v: %s", err, b)
				}
				return m
			}
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond) // polling a real server, not a timing assertion
	}
	t.Fatalf("/readyz never 200: %s", last)
	return nil
}

func editConfig(t *testing.T, path string, f func(m map[string]any)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	raw, _ = json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issue 13 item 15: every problem of the config is listed at start, none is
// silently changed, and a missing bank secret names what needs it.
func TestConfigListsEveryProblem(t *testing.T) {
	t.Setenv("CAMPUSPAY_BANK_SECRET", "")
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "http://127.0.0.1:1", "")
	editConfig(t, cfg, func(m map[string]any) {
		m["tariff"].(map[string]any)["hold"] = 1499
		m["default_limit_per_tx"] = 0
		m["default_limit_daily"] = -5
		m["supported_banks"] = []string{}
		m["hold_ttl"] = "0s"
		m["max_batch"] = 5000
		m["offline"] = map[string]any{"max_allowance": -1}
		delete(m["bank"].(map[string]any), "secret")
	})
	code, _, errs := runCLI(t, "--data", dir, "--config", cfg, "serve", "--http", "127.0.0.1:0")
	if code != 1 {
		t.Fatalf("serve with a bad config: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"8 problem(s)",
		"max_batch: 5000, want 1 to 4096",
		"offline.max_allowance: -1 cents",
		"tariff.hold is ¥14.99: every shower holds at least ¥15.00",
		"default_limit_per_tx is 0",
		"default_limit_daily is -5",
		"supported_banks is empty: every card binding would be refused",
		"hold_ttl is 0s",
		"CAMPUSPAY_BANK_SECRET; card binding (wallet activation), top-up, withdrawal",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("the error lacks %q:\n%s", want, errs)
		}
	}
	// Admin commands need no secret, but the rest still counts.
	if code, _, errs := runCLI(t, "--data", dir, "--config", cfg, "merchant", "list"); code != 1 || !strings.Contains(errs, "7 problem(s)") {
		t.Errorf("merchant list: exit %d: %s", code, errs)
	}
}

// Issue 13 item 5: the databases and their -wal and -shm are owner-only,
// also when an older release left them world-readable.
func TestDataFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	if err := os.WriteFile(filepath.Join(dir, "wallet.db"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Open(Options{Data: dir, ConfigPath: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := os.Stat(filepath.Join(dir, "ledger.db")); !os.IsNotExist(err) {
		t.Errorf("ledger.db made in a new data folder (the ledger belongs inside wallet.db): %v", err)
	}
	for _, db := range []string{"wallet.db"} {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			st, err := os.Stat(filepath.Join(dir, db+suffix))
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", db+suffix, st.Mode().Perm())
			}
		}
	}
}

// Issue 13 item 9: with only tls_listen, the embedded broker opens no plain
// listener — two authorizers on one host both start — and the authorizer
// still reaches its own broker (over its service socket).
func TestTLSOnlyBrokerOpensNoPlainListener(t *testing.T) {
	pki := brokertest.NewPKI(t)
	var urls []string
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, "", "")
		editConfig(t, cfg, func(m map[string]any) {
			m["mqtt"] = map[string]any{"tls_listen": "127.0.0.1:0", "tls_cert": pki.CertFile, "tls_key": pki.KeyFile}
		})
		s := startServe(t, []string{"--data", dir, "--config", cfg})
		waitReady(t, http.DefaultClient, s.url)
		urls = append(urls, s.url)
		if strings.Contains(s.errb.String(), `"addr":"127.0.0.1:1883"`) {
			t.Errorf("instance %d opened the default plain listener: %s", i, s.errb.String())
		}
	}
	if len(urls) != 2 {
		t.Fatal("not both instances started")
	}
}

// The operations endpoints: liveness, readiness, Prometheus metrics, the
// JSON log with its level and the access log without secrets.
func TestOpsEndpoints(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	base := []string{"--data", dir, "--config", cfg}
	s := startServe(t, base)
	ready := waitReady(t, http.DefaultClient, s.url)
	if ready["ready"] != true || len(ready["checks"].([]any)) != 3 {
		t.Fatalf("/readyz %v", ready)
	}
	// A login with a secret in the body and a token in the header.
	req, _ := http.NewRequest("POST", s.url+"/api/v1/session?cursor=q-secret", strings.NewReader(`{"student_no":"2024999","password":"pw-in-body"}`))
	req.Header.Set("Authorization", "Bearer tok-in-header")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// On SQLite, two Ps beside the CPUs (unless the environment says
	// GOMAXPROCS).
	if os.Getenv("GOMAXPROCS") == "" {
		want := fmt.Sprintf("go_sched_gomaxprocs_threads %d\n", sqliteProcs(defaultProcs))
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The collector's settings, unless the environment says GOGC or
	// GOMEMLIMIT.
	if os.Getenv("GOGC") == "" {
		if want := fmt.Sprintf("go_gc_gogc_percent %d\n", serveGCPercent); !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if want := fmt.Sprintf("go_gc_gomemlimit_bytes %g\n", float64(serveMemoryLimit)); !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "campuspay_connected_terminals",
		"campuspay_payments_total", "campuspay_queue_depth", "campuspay_batch_size", "campuspay_open_holds", "campuspay_broker_acl_denied_total",
		"campuspay_ledger_commits_total", "campuspay_walbuf_writes_made_total", "campuspay_broker_clients 0", // no terminal; the authorizer joins in-process
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	log := s.errb.String()
	var access map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("a log line is not JSON: %q", sc.Text())
		}
		if rec["msg"] == "http request" && rec["path"] == "/api/v1/session" {
			access = rec
		}
	}
	if access == nil || access["method"] != "POST" || access["level"] != "INFO" || access["status"] == nil {
		t.Fatalf("no access log line for the login: %s", log)
	}
	for _, secret := range []string{"pw-in-body", "tok-in-header", "q-secret"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}

	// --log-level warn: no info lines.
	s = startServe(t, base, "--log-level", "warn")
	waitReady(t, http.DefaultClient, s.url)
	s.stop()
	if strings.Contains(s.errb.String(), `"level":"INFO"`) {
		t.Errorf("info lines at level warn: %s", s.errb.String())
	}
	// pprof only on loopback.
	if code, _, errs := runCLI(t, append(base, "serve", "--http", "127.0.0.1:0", "--pprof", "0.0.0.0:0")...); code != 1 || !strings.Contains(errs, "only a loopback address") {
		t.Errorf("pprof on all interfaces: exit %d: %s", code, errs)
	}
	s = startServe(t, base, "--pprof", "127.0.0.1:0")
	waitReady(t, http.DefaultClient, s.url)
	addr := ""
	for _, l := range strings.Split(s.errb.String(), "\n") {
		if strings.Contains(l, `"msg":"pprof listening"`) {
			var rec map[string]any
			json.Unmarshal([]byte(l), &rec)
			addr, _ = rec["addr"].(string)
		}
	}
	if addr == "" {
		t.Fatalf("no pprof listener logged: %s", s.errb.String())
	}
	resp, err = http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("pprof: %d", resp.StatusCode)
	}
}

// /readyz turns 503 when a database cannot take a write.
func TestReadyzReportsALockedDatabase(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	s := startServe(t, []string{"--data", dir, "--config", cfg})
	waitReady(t, http.DefaultClient, s.url)
	// Another process holding the write lock of wallet.db (the ledger is
	// inside it), as a wedged writer would.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "wallet.db")+"?_busy_timeout=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	conn.ExecContext(context.Background(), "ROLLBACK")
	conn.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "wallet.db") {
		t.Fatalf("/readyz with the database locked: %d %s", resp.StatusCode, b)
	}
}

// sd_notify: READY=1 once serving, WATCHDOG=1 while the databases take
// writes, STOPPING=1 on the way out.
func TestSystemdNotify(t *testing.T) {
	conn := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "300000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	s := startServe(t, []string{"--data", dir, "--config", cfg})
	got := map[string]bool{}
	read := func(want string) {
		t.Helper()
		buf := make([]byte, 512)
		for !got[want] {
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s (got %v): %v", want, got, err)
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				got[l] = true
			}
		}
	}
	read("READY=1")
	read("WATCHDOG=1")
	s.stop()
	read("STOPPING=1")
}

// The connected-terminals gauge follows the retained statuses.
func TestConnectedTerminalsGauge(t *testing.T) {
	s := &statusWriter{path: filepath.Join(t.TempDir(), statusFile), all: map[string]authz.TerminalStatus{}}
	s.update(authz.TerminalStatus{Terminal: "T1", State: protocol.StateOnline})
	s.update(authz.TerminalStatus{Terminal: "T2", State: protocol.StateOnline})
	s.update(authz.TerminalStatus{Terminal: "T1", State: protocol.StateOffline})
	var m dto.Metric
	metrics.ConnectedTerminals.Write(&m)
	if got := m.GetGauge().GetValue(); got != 1 {
		t.Fatalf("connected terminals %v, want 1", got)
	}
}

// ops_listen moves /metrics and /readyz off the API listener.
func TestOpsListen(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsAddr := ln.Addr().String()
	ln.Close()
	editConfig(t, cfg, func(m map[string]any) { m["ops_listen"] = opsAddr })
	s := startServe(t, []string{"--data", dir, "--config", cfg})
	waitReady(t, http.DefaultClient, "http://"+opsAddr)
	for url, want := range map[string]int{s.url + "/metrics": 404, "http://" + opsAddr + "/metrics": 200, s.url + "/healthz": 200} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", url, resp.StatusCode, want)
		}
	}
}

// The example dashboard is valid JSON and every panel queries something.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../../configs/grafana-authorizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) < 10 {
		t.Fatalf("%d panels", len(d.Panels))
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// The example config is valid, and names the secrets it needs when served.
func TestExampleConfigValidates(t *testing.T) {
	t.Setenv("CAMPUSPAY_BANK_SECRET", "")
	t.Setenv("CAMPUSPAY_WECHAT_API_KEY", "")
	const path = "../../../configs/authorizer.json"
	c, err := LoadConfig(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(path, Secrets{}); err != nil {
		t.Fatal(err)
	}
	err = c.Validate(path, Secrets{Bank: true, WeChat: true})
	if err == nil || !strings.Contains(err.Error(), "2 problem(s)") || !strings.Contains(err.Error(), "CAMPUSPAY_WECHAT_API_KEY; WeChat payment codes") {
		t.Fatalf("served without secrets: %v", err)
	}
}

// listenNotify listens where $NOTIFY_SOCKET says, as systemd does, until
// the test ends.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", sock)
	return conn
}

// While a migration runs (before READY=1), systemd is asked for more start
// time, again until the stores are open.
func TestExtendStartDuringMigrations(t *testing.T) {
	conn := listenNotify(t)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() { extendStart(done, slog.New(slog.NewTextHandler(io.Discard, nil))); close(stopped) }()
	buf := make([]byte, 512)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := conn.Read(buf)
	if want := "EXTEND_TIMEOUT_USEC=30000000"; err != nil || string(buf[:n]) != want {
		t.Fatalf("got %q, %v; want %s", buf[:n], err, want)
	}
	close(done)
	<-stopped
}
