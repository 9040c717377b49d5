package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/hwsim/bank"
	"campuspay/server/broker/brokertest"
	"campuspay/server/wallet/wallettest"
)

// writeConfig writes a config for tests (low bcrypt cost; simulators when given).
func writeConfig(t *testing.T, dir, bankURL, wxURL string) string {
	c := DefaultConfig()
	c.BcryptCost = 4
	c.Bank.BaseURL, c.Bank.ClientID, c.Bank.Secret = bankURL, wallettest.BankClient, wallettest.BankSecret
	c.WeChat.PayURL, c.WeChat.AppID, c.WeChat.MchID, c.WeChat.APIKey, c.WeChat.MiniSecret = wxURL, wallettest.WeChatApp, wallettest.WeChatMch, wallettest.WeChatKey, wallettest.WeChatMini
	c.MQTT.Listen = "127.0.0.1:0" // the embedded broker on a free port
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "authorizer.json")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpAndVersion(t *testing.T) {
	dir := t.TempDir()
	cmds := [][]string{{}, {"serve"}, {"roster", "import"}, {"merchant", "add"}, {"merchant", "list"}, {"terminal", "add"},
		{"terminal", "list"}, {"ledger", "check"}, {"tx", "list"}, {"backup"}, {"restore"},
		{"refund", "sale"}, {"settle", "day"}, {"settle", "reconcile"}}
	for _, c := range cmds {
		args := append([]string{"--data", dir}, c...)
		if code, _, errs := runCLI(t, append(args, "--help")...); code != 0 || !strings.Contains(errs, "usage: authorizer") {
			t.Errorf("%v --help: %d %q", c, code, errs)
		}
		if code, out, _ := runCLI(t, append(args, "--version")...); code != 0 || out != "authorizer dev\n" {
			t.Errorf("%v --version: %d %q", c, code, out)
		}
	}
	if code, _, _ := runCLI(t, "--data", dir, "frobnicate"); code != 2 {
		t.Errorf("unknown command: %d", code)
	}
	if code, _, _ := runCLI(t, "--data", dir); code != 2 {
		t.Errorf("no command: %d", code)
	}
}

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	base := []string{"--data", dir, "--config", cfg}
	cli := func(args ...string) (int, string, string) {
		return runCLI(t, append(append([]string{}, base...), args...)...)
	}

	if code, _, errs := cli("merchant", "add", "--id", "M1", "--name", "云谷食堂", "--campus", "yungu"); code != 0 {
		t.Fatal(errs)
	}
	if code, _, _ := cli("merchant", "add", "--id", "M2", "--name", "x", "--campus", "mars"); code != 1 {
		t.Fatal("unknown campus accepted")
	}
	_, out, _ := cli("merchant", "list")
	if !strings.Contains(out, "M1") || !strings.Contains(out, "云谷食堂") {
		t.Fatalf("merchant list %q", out)
	}
	code, out, errs := cli("terminal", "add", "--id", "pos-9", "--merchant", "M1", "--mode", "pos")
	if code != 0 {
		t.Fatal(errs)
	}
	var pw string
	for _, l := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(l, "broker password: "); ok {
			pw = p
		}
	}
	if code, _, _ := cli("terminal", "add", "--id", "pos-8", "--merchant", "M1", "--mode", "disco"); code != 1 {
		t.Fatal("bad mode accepted")
	}
	_, out, _ = cli("terminal", "list", "--qr")
	if !strings.Contains(out, "pos-9") || !strings.Contains(out, "CM1:") {
		t.Fatalf("terminal list %q", out)
	}
	m, err := Open(Options{Data: dir, ConfigPath: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ok := m.Svc.AuthenticateTerminal(context.Background(), "pos-9", pw)
	m.Close()
	if !ok || pw == "" {
		t.Fatal("printed broker password does not authenticate")
	}

	id := wallettest.IDNumber
	csvText := "学号,姓名,身份证号,手机号,类别,校区,卡号,初始密码\n" +
		"20260001,张三," + id("11010520000101001") + ",13800000001,中专生,yungu,CA0001,pw1\n" +
		"20260002,李四,110105200001010020,13800000002,本科生,yungu,CA0002,pw2\n" + // bad check digit
		"20260003,王五," + id("11010520000101003") + ",12800000003,本科生,yungu,CA0003,pw3\n" + // bad phone
		"20260004,赵六," + id("11010520000101004") + ",13800000004,本科生\n" + // short line
		"20260005,钱七," + id("11010520000101005") + ",13800000005,本科生,mars,CA0005,pw5\n" + // unknown campus
		"20260006,孙八," + id("11010520000101006") + ",13800000006,本科生,main,,pw6\n"
	f := filepath.Join(dir, "roster.csv")
	os.WriteFile(f, []byte(csvText), 0o600)
	code, out, errs = cli("roster", "import", "--every", "2", f)
	if code != 1 {
		t.Fatalf("import with bad lines: exit %d", code)
	}
	for _, want := range []string{"line 3: 20260002: 身份证号码格式不正确 / The ID card number is not valid",
		"line 4: 20260003: 手机号码格式不正确 / The mobile number is not valid",
		"line 5: 20260004: 列数不正确，应为8列 / Wrong number of columns; want 8 (5 columns)",
		"line 6: 20260005: 校区不存在 / No such campus (campus \"mars\")"} {
		if !strings.Contains(errs, want) {
			t.Errorf("import errors %q lack %q", errs, want)
		}
	}
	if !strings.Contains(out, "2 of 5 lines:") || !strings.Contains(out, "done: 6 lines: 2 new, 0 updated, 0 unchanged, 4 errors") {
		t.Fatalf("import output %q", out)
	}
	_, out, _ = cli("roster", "import", f)
	if !strings.Contains(out, "done: 6 lines: 0 new, 0 updated, 2 unchanged, 4 errors") {
		t.Fatalf("re-import output %q", out)
	}
	if code, out, _ := cli("ledger", "check"); code != 0 || !strings.Contains(out, "ledger OK") {
		t.Fatalf("ledger check %d %q", code, out)
	}
	if code, _, _ := cli("tx", "list", "--user", "20260001"); code != 0 {
		t.Fatal("tx list")
	}
}

// TestServe starts the real daemon on real files, against the bank and
// WeChat simulators, and drives it over HTTP.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	clock := &wallettest.Clock{}
	clock.Set(time.Now())
	bs, burl, _, wurl := wallettest.Sims(t, clock)
	cfg := writeConfig(t, dir, burl, wurl)
	// Serve HTTPS, as for phones on the campus network.
	pki := brokertest.NewPKI(t)
	raw, _ := os.ReadFile(cfg)
	var fc map[string]any
	json.Unmarshal(raw, &fc)
	fc["tls_cert"], fc["tls_key"] = pki.CertFile, pki.KeyFile
	raw, _ = json.Marshal(fc)
	os.WriteFile(cfg, raw, 0o600)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientTLS(false)}}
	base := []string{"--data", dir, "--config", cfg}
	if code, _, errs := runCLI(t, append(base, "merchant", "add", "--id", "M1", "--name", "食堂", "--campus", "yungu")...); code != 0 {
		t.Fatal(errs)
	}
	idn := wallettest.IDNumber("11010520000101001")
	f := filepath.Join(dir, "roster.csv")
	os.WriteFile(f, []byte("no,name,id,phone,cat,campus,card,pw\n20260001,张三,"+idn+",13800000001,中专生,yungu,CA0001,secret1\n"), 0o600)
	if code, _, errs := runCLI(t, append(base, "roster", "import", f)...); code != 0 {
		t.Fatal(errs)
	}
	card := bank.LuhnComplete("621700123400001")
	if err := bs.AddAccount(bank.Account{BankCode: "CCB", CardNumber: card, Name: "张三", IDNumber: idn, Phone: "13800000001", Balance: 100_00}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() {
		c := &cli{ctx: ctx, out: &out, errw: &errb, common: common{data: "data"}, ready: func(a net.Addr) { addrc <- a }}
		done <- c.main(append(base, "serve", "--http", "127.0.0.1:0"))
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, errb.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	url := "https://" + addr.String()
	post := func(path, token string, body any) map[string]any {
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", url+path, bytes.NewReader(raw))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return m
	}
	// The web wallet and the health check are served beside the API.
	for _, path := range []string{"/", "/healthz"} {
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	tok := post("/api/v1/session", "", map[string]string{"student_no": "20260001", "password": "secret1"})["token"].(string)
	post("/api/v1/wallet/bank-card", tok, map[string]string{"bank_code": "CCB", "card_number": card})
	m := post("/api/v1/wallet/top-up", tok, map[string]int{"amount": 25_00})
	if w := m["wallet"].(map[string]any); w["balance"] != float64(25_00) {
		t.Fatalf("top-up %v", m)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	code, o, _ := runCLI(t, append(base, "ledger", "check")...)
	if code != 0 {
		t.Fatalf("ledger check after serve: %s", o)
	}
	_, o, _ = runCLI(t, append(base, "tx", "list")...)
	if !strings.Contains(o, "top_up") || !strings.Contains(o, "25.00") {
		t.Fatalf("tx list %q", o)
	}
	// Keys persist across runs and are private.
	for _, k := range []string{issuerKeyFile, sealKeyFile} {
		st, err := os.Stat(filepath.Join(dir, k))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", k, st.Mode(), err)
		}
	}
	k1, _ := loadKeys(dir)
	k2, _ := loadKeys(dir)
	if !k1.Issuer.Equal(k2.Issuer) || *k1.SealPub != *k2.SealPub {
		t.Fatal("keys changed between runs")
	}
	_ = fmt.Sprint()
}
