package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"campuspay/hwsim/bank"
	"campuspay/protocol"
	"campuspay/server/ledger"
	"campuspay/server/ledger/postgres/pgtest"
	"campuspay/server/wallet"
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
	dir := t.TempDir()
	clock := &wallettest.Clock{}
	clock.Set(time.Now())
	bs, burl, _, wurl := wallettest.Sims(t, clock)
	cfg := writePostgresConfig(t, pg, dir, burl, wurl)
	base := []string{"--data", dir, "--config", cfg}
	admin := adminCLI(t, base)
	qr := addPOS(t, admin)
	idn := wallettest.IDNumber("11010520000101001")
	card := bank.LuhnComplete("621700123400001")
	if err := bs.AddAccount(bank.Account{BankCode: "CCB", CardNumber: card, Name: "张三", IDNumber: idn, Phone: "13800000001", Balance: 100_00}); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "roster.csv")
	os.WriteFile(f, []byte("no,name,id,phone,cat,campus,card,pw\n20260001,张三,"+idn+",13800000001,中专生,yungu,CA0001,secret1\n"), 0o600)
	admin("roster", "import", f)

	s := startServe(t, base)
	call := s.call
	must := func(method, path, token string, body any) map[string]any {
		t.Helper()
		return s.must(t, method, path, token, body)
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

// twoAuthorizers opens two authorizers (two data folders with the same
// keys) on one fresh PostgreSQL database, on clock, after running the
// admin commands setup in the first folder. reopen opens an authorizer on
// folder i again (a restart).
func twoAuthorizers(t *testing.T, clock *wallettest.Clock, burl, wurl string, setup ...[]string) (m1, m2 *Main, reopen func(i int) *Main) {
	t.Helper()
	pg := pgtest.New(t, pgtest.Options{})
	dirs := []string{t.TempDir(), t.TempDir()}
	cfg := writePostgresConfig(t, pg, dirs[0], burl, wurl)
	base := []string{"--data", dirs[0], "--config", cfg}
	for _, args := range setup {
		if code, _, errs := runCLI(t, append(append([]string{}, base...), args...)...); code != 0 {
			t.Fatalf("%v: %s", args, errs)
		}
	}
	reopen = func(i int) *Main {
		t.Helper()
		m, err := Open(Options{Data: dirs[i], ConfigPath: cfg, Now: clock.Now, NoWeChat: true, LogOutput: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	m1 = reopen(0)
	// The second authorizer gets the first one's keys.
	for _, k := range []string{issuerKeyFile, sealKeyFile, "wallet-fields.key"} {
		b, err := os.ReadFile(filepath.Join(dirs[0], k))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirs[1], k), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return m1, reopen(1), reopen
}

// writePostgresConfig writes a test config (writeConfig) whose database is
// a fresh database of pg.
func writePostgresConfig(t *testing.T, pg *pgtest.Cluster, dir, burl, wurl string) string {
	t.Helper()
	cfgPG, err := pgx.ParseConfig(pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, burl, wurl)
	raw, _ := os.ReadFile(cfg)
	var fc map[string]any
	json.Unmarshal(raw, &fc)
	fc["database"] = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, cfgPG.Database)
	raw, _ = json.Marshal(fc)
	if err := os.WriteFile(cfg, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Two authorizers (two data folders with the same keys) on one PostgreSQL
// database, as behind a shared subscription: a payment code shown at both
// at once — a screenshot — is charged exactly once campus-wide, and each
// authorizer sees what the other wrote.
func TestTwoAuthorizersOnePostgres(t *testing.T) {
	ctx := context.Background()
	clock := &wallettest.Clock{}
	clock.Set(time.Now())
	bs, burl, _, wurl := wallettest.Sims(t, clock)
	m1, m2, _ := twoAuthorizers(t, clock, burl, wurl,
		[]string{"merchant", "add", "--id", "M1", "--name", "食堂", "--campus", "yungu"},
		[]string{"terminal", "add", "--id", "pos-1", "--merchant", "M1", "--mode", "pos"},
		[]string{"terminal", "add", "--id", "pos-2", "--merchant", "M1", "--mode", "pos"})

	idn := wallettest.IDNumber("11010520000101001")
	card := bank.LuhnComplete("621700123400001")
	if err := bs.AddAccount(bank.Account{BankCode: "CCB", CardNumber: card, Name: "张三", IDNumber: idn, Phone: "13800000001", Balance: 100_00}); err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Svc.ImportStudent(ctx, wallet.RosterEntry{StudentNo: "20260001", Name: "张三", IDNumber: idn, Phone: "13800000001",
		Campus: "yungu", CardUID: "CA0001", Password: "secret1"}); err != nil {
		t.Fatal(err)
	}
	u, err := m2.Store.UserByStudentNo(ctx, "20260001") // imported by the other authorizer
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Svc.BindCard(ctx, u.ID, wallet.BindRequest{BankCode: "CCB", CardNumber: card}); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Svc.TopUp(ctx, u.ID, "init", 30_00); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dc, err := m1.Svc.RegisterDevice(ctx, u.ID, pub)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint16
	payAt := func(m *Main, terminal, code string, amount int64) *protocol.Response {
		tx, err := protocol.NewTxID(clock.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return m.Svc.HandleRequest(ctx, &protocol.Request{V: protocol.Version, Op: protocol.OpPay, Tx: tx, Terminal: terminal,
			At: clock.Now(), Amount: amount, Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}})
	}
	newCode := func() string {
		seq++
		c, err := protocol.MakeCode(dc.Certificate, priv, protocol.PurposePay, clock.Now(), seq)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// One code at both authorizers at once, a few times over.
	for round := range 5 {
		code := newCode()
		resps := make([]*protocol.Response, 2)
		var wg sync.WaitGroup
		for i, m := range []*Main{m1, m2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resps[i] = payAt(m, fmt.Sprint("pos-", i+1), code, 1_00)
			}()
		}
		wg.Wait()
		approved, used := 0, 0
		for _, r := range resps {
			switch {
			case r.Status == protocol.StatusApproved:
				approved++
			case r.Code == protocol.ErrCodeUsed.Code:
				used++
			}
		}
		if approved != 1 || used != 1 {
			t.Fatalf("round %d: %+v / %+v: want one approved, one CODE_ALREADY_USED", round, *resps[0], *resps[1])
		}
	}
	// Each authorizer pays on its own too.
	for i, m := range []*Main{m1, m2} {
		if r := payAt(m, fmt.Sprint("pos-", i+1), newCode(), 2_00); r.Status != protocol.StatusApproved {
			t.Fatalf("authorizer %d: %+v", i+1, *r)
		}
	}
	b, err := m2.Ledger.Balance(ctx, ledger.AccountID(fmt.Sprintf("wallet:%d", u.ID)))
	if err != nil || b.Posted != 30_00-5*1_00-2*2_00 {
		t.Fatalf("wallet balance %+v %v", b, err)
	}
	rep, err := m1.Ledger.Check(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("ledger check: %+v %v", rep, err)
	}
}
