package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"campuspay/hwsim/bank"
	"campuspay/server/ledger/postgres/pgtest"
	"campuspay/server/wallet/wallettest"
)

// `authorizer serve` with "database": "postgres://…": the admin commands
// and serve keep everything in PostgreSQL (no SQLite file in the data
// folder); a student pays end to end; with the database stopped mid-way
// a payment is answered with the retryable INTERNAL reason ("系统繁忙")
// and /readyz is 503 while serve stays up; once the database is back,
// serve recovers by itself, and the ledger checks.
func TestServeOnPostgres(t *testing.T) {
	pg := pgtest.New(t, pgtest.Options{})
	cfgPG, err := pgx.ParseConfig(pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	dbURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, cfgPG.Database)

	dir := t.TempDir()
	clock := &wallettest.Clock{}
	clock.Set(time.Now())
	bs, burl, _, wurl := wallettest.Sims(t, clock)
	cfg := writeConfig(t, dir, burl, wurl)
	raw, _ := os.ReadFile(cfg)
	var fc map[string]any
	json.Unmarshal(raw, &fc)
	fc["database"] = dbURL
	raw, _ = json.Marshal(fc)
	os.WriteFile(cfg, raw, 0o600)
	base := []string{"--data", dir, "--config", cfg}
	admin := func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, append(append([]string{}, base...), args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
	admin("merchant", "add", "--id", "M1", "--name", "食堂", "--campus", "yungu")
	admin("terminal", "add", "--id", "pos-1", "--merchant", "M1", "--mode", "pos")
	var qr string
	for _, l := range strings.Split(admin("terminal", "list", "--qr"), "\n") {
		if p, ok := strings.CutPrefix(l, "pos-1 "); ok {
			qr = p
		}
	}
	idn := wallettest.IDNumber("11010520000101001")
	card := bank.LuhnComplete("621700123400001")
	if err := bs.AddAccount(bank.Account{BankCode: "CCB", CardNumber: card, Name: "张三", IDNumber: idn, Phone: "13800000001", Balance: 100_00}); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "roster.csv")
	os.WriteFile(f, []byte("no,name,id,phone,cat,campus,card,pw\n20260001,张三,"+idn+",13800000001,中专生,yungu,CA0001,secret1\n"), 0o600)
	admin("roster", "import", f)

	s := startServe(t, base)
	call := func(method, path, token string, body any) (int, map[string]any) {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, s.url+path, bytes.NewReader(raw))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	must := func(method, path, token string, body any) map[string]any {
		t.Helper()
		code, m := call(method, path, token, body)
		if code != 200 {
			t.Fatalf("%s %s: %d %v", method, path, code, m)
		}
		return m
	}
	ready := waitReady(t, http.DefaultClient, s.url)
	if ready["ready"] != true {
		t.Fatalf("readyz %v", ready)
	}
	tok := must("POST", "/api/v1/session", "", map[string]string{"student_no": "20260001", "password": "secret1"})["token"].(string)
	must("POST", "/api/v1/wallet/bank-card", tok, map[string]string{"bank_code": "CCB", "card_number": card})
	must("POST", "/api/v1/wallet/top-up", tok, map[string]int{"amount": 50_00})
	must("PUT", "/api/v1/wallet/payment-password", tok, map[string]string{"password": "246810"})
	pay := func(amount int) (int, map[string]any) {
		return call("POST", "/api/v1/scan-pay", tok, map[string]any{"qr": qr, "amount": amount, "password": "246810"})
	}
	if code, m := pay(12_50); code != 200 {
		t.Fatalf("scan-pay: %d %v", code, m)
	}

	// The database goes away mid-way.
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	code, m := pay(1_00)
	if code != http.StatusInternalServerError || m["code"] != "INTERNAL" || !strings.Contains(fmt.Sprint(m), "系统繁忙") {
		t.Fatalf("scan-pay with the database down: %d %v", code, m)
	}
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "postgres") {
		t.Fatalf("/readyz with the database down: %d %s", resp.StatusCode, b)
	}
	if resp, err := http.Get(s.url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz with the database down: %v %v", resp, err)
	}

	// It comes back: serve recovers by itself.
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, http.DefaultClient, s.url)
	// A connection that died with the old server may fail one more call
	// (a terminal retries); a few tries must get through.
	ok := false
	for try := 1; try <= 3 && !ok; try++ {
		code, m = pay(2_00)
		if ok = code == 200; !ok {
			t.Logf("try %d after the outage: %d %v", try, code, m)
		}
	}
	if !ok {
		t.Fatalf("scan-pay after the database came back: %d %v", code, m)
	}
	bal := must("GET", "/api/v1/wallet", tok, nil)
	if bal["balance"] != float64(50_00-12_50-2_00) {
		t.Fatalf("balance after payments: %v", bal)
	}
	if s.stop() != 0 {
		t.Fatalf("serve failed: %s", s.errb.String())
	}

	if out := admin("ledger", "check"); !strings.Contains(out, "ledger OK") {
		t.Fatalf("ledger check: %s", out)
	}
	if out := admin("tx", "list"); !strings.Contains(out, "scan_pay") || !strings.Contains(out, "12.50") {
		t.Fatalf("tx list: %s", out)
	}
	// backup and restore copy SQLite files: refused, saying what to use.
	if code, _, errs := runCLI(t, append(append([]string{}, base...), "backup", filepath.Join(t.TempDir(), "b"))...); code != 1 || !strings.Contains(errs, "pg_dump") {
		t.Errorf("backup with PostgreSQL: exit %d: %s", code, errs)
	}
	for _, name := range []string{"wallet.db", "ledger.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s in the data folder with a PostgreSQL database: %v", name, err)
		}
	}
}

// A database setting that is neither empty nor a postgres:// URL is
// refused with the rest of the config.
func TestDatabaseSettingValidated(t *testing.T) {
	c := DefaultConfig()
	c.Database = "mysql://x"
	err := c.Validate("authorizer.json", Secrets{})
	if err == nil || !strings.Contains(err.Error(), "database:") {
		t.Fatalf("validate: %v", err)
	}
	c.Database = "postgres://u:p@h1:5432,h2:5432/campus?target_session_attrs=read-write"
	if err := c.Validate("authorizer.json", Secrets{}); err != nil {
		t.Fatalf("multi-host URL refused: %v", err)
	}
	if got := withConnectTimeout(c.Database); !strings.Contains(got, "connect_timeout=3") || !strings.Contains(got, "h1:5432,h2:5432") {
		t.Fatalf("with connect timeout: %s", got)
	}
}
