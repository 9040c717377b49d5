package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"campuspay/server/wallet/wallettest"
)

// cliIn runs one command with standard input.
func cliIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runIn(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// TestOperatorCommands creates operators from the CLI and logs one in to
// the console that serve mounts on /console/.
func TestOperatorCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	base := []string{"--data", dir, "--config", cfg}
	admin := adminCLI(t, base)
	admin("merchant", "add", "--id", "M1", "--name", "食堂", "--campus", "yungu")
	tests := []struct {
		args  []string
		stdin string
		code  int
		out   string
	}{
		{[]string{"operator", "add", "--name", "zhang.desk", "--role", "helpdesk"}, "desk password 1\n", 0, "operator zhang.desk (helpdesk) saved"},
		{[]string{"operator", "add", "--name", "boss", "--role", "admin", "--totp"}, "admin password 1\n", 0, "TOTP secret: "},
		{[]string{"operator", "add", "--name", "canteen", "--role", "merchant", "--merchant", "M1"}, "merchant password\n", 0, "saved"},
		{[]string{"operator", "add", "--name", "zhang.desk", "--role", "finance"}, "another password\n", 1, ""},              // name taken
		{[]string{"operator", "add", "--name", "m2", "--role", "merchant"}, "merchant password\n", 1, ""},                    // no merchant
		{[]string{"operator", "add", "--name", "m3", "--role", "merchant", "--merchant", "NOPE"}, "merchant pw 12\n", 1, ""}, // unknown merchant
		{[]string{"operator", "add", "--name", "short", "--role", "finance"}, "short\n", 1, ""},                              // weak password
		{[]string{"operator", "add", "--name", "x", "--role", "root"}, "whatever password\n", 2, ""},                         // no such role
	}
	for _, tc := range tests {
		code, out, errs := cliIn(t, tc.stdin, append(append([]string{}, base...), tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("%v: exit %d %q %q, want %d %q", tc.args, code, out, errs, tc.code, tc.out)
		}
	}
	out := admin("operator", "list")
	for _, want := range []string{"zhang.desk  helpdesk", "boss        admin", "canteen     merchant  M1"} {
		if !strings.Contains(out, want) {
			t.Errorf("operator list lacks %q:\n%s", want, out)
		}
	}

	m, err := Open(Options{Data: dir, ConfigPath: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	srv := httptest.NewServer(m.Mux)
	defer srv.Close()
	res, err := http.Post(srv.URL+"/console/api/v1/login", "application/json", strings.NewReader(`{"name":"zhang.desk","password":"desk password 1"}`))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Operator struct{ Role string }
		CSRF     string
	}
	json.NewDecoder(res.Body).Decode(&s)
	res.Body.Close()
	if res.StatusCode != 200 || s.Operator.Role != "helpdesk" || s.CSRF == "" || !strings.Contains(res.Header.Get("Set-Cookie"), "HttpOnly") {
		t.Fatalf("console login: %d %+v %q", res.StatusCode, s, res.Header.Get("Set-Cookie"))
	}
	if res, err := http.Get(srv.URL + "/console/"); err != nil || res.StatusCode != 200 {
		t.Fatalf("console page: %v %v", res, err)
	}
	// Disabling ends what the operator may do.
	admin("operator", "disable", "--reason", "left the card centre", "zhang.desk")
	res, _ = http.Post(srv.URL+"/console/api/v1/login", "application/json", strings.NewReader(`{"name":"zhang.desk","password":"desk password 1"}`))
	if res.StatusCode != 401 {
		t.Fatalf("disabled operator logged in: %d", res.StatusCode)
	}
}

// TestStudentCommands runs the desk's actions from the CLI: each needs a
// reason, a repeat changes nothing, and each is in the audit log as cli:USER.
func TestStudentCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "", "")
	base := []string{"--data", dir, "--config", cfg}
	admin := adminCLI(t, base)
	addPOS(t, admin)
	roster := filepath.Join(dir, "roster.csv")
	os.WriteFile(roster, []byte("学号,姓名,身份证号,手机号,类别,校区,卡号,初始密码\n20260001,张三,"+wallettest.IDNumber("11010520000101001")+",13800000001,本科生,yungu,CA0001,pw1\n"), 0o600)
	admin("roster", "import", roster)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"student", "search", "张"}, 0, "20260001"},
		{[]string{"student", "search", "13800000001"}, 0, "138****0001"},
		{[]string{"student", "freeze", "20260001"}, 1, ""}, // no reason
		{[]string{"student", "freeze", "--reason", "本人申请", "20260001"}, 0, "done"},
		{[]string{"student", "freeze", "--reason", "本人申请", "20260001"}, 0, "nothing to change"},
		{[]string{"student", "show", "20260001"}, 0, "frozen true"},
		{[]string{"student", "unfreeze", "--reason", "核实", "20260001"}, 0, "done"},
		{[]string{"card", "lost", "--reason", "丢卡", "20260001"}, 0, "done"},
		{[]string{"card", "found", "--reason", "找回", "20260001"}, 0, "done"},
		{[]string{"card", "replace", "--reason", "补卡", "--uid", "04BEEF01", "20260001"}, 0, "done"},
		{[]string{"student", "show", "20260001"}, 0, "card CA0001 current=false lost=true"},
		{[]string{"student", "reset-password", "--reason", "忘记", "--which", "login", "20260001"}, 0, "temporary login password: "},
		{[]string{"student", "reset-password", "--reason", "忘记", "--which", "pin", "20260001"}, 1, ""},
		{[]string{"student", "freeze", "--reason", "x", "20999999"}, 1, ""},
		{[]string{"terminal", "placard", "--out", filepath.Join(dir, "p.png"), "pos-1"}, 0, "A5, 300 dpi"},
		{[]string{"terminal", "revoke", "--reason", "stolen", "pos-1"}, 0, "done"},
		{[]string{"terminal", "rotate", "--reason", "recovered", "pos-1"}, 0, "broker password: "},
		{[]string{"audit", "list", "--action", "wallet."}, 0, "wallet.unfreeze"},
	} {
		code, out, errs := runCLI(t, append(append([]string{}, base...), tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.out) {
			t.Errorf("%v: exit %d %q %q, want %d %q", tc.args, code, out, errs, tc.code, tc.out)
		}
	}
	out := admin("audit", "list")
	for _, a := range []string{"wallet.freeze", "card.lost", "card.found", "card.replace", "password.reset.login", "terminal.revoke", "terminal.rotate", "cli:"} {
		if !strings.Contains(out, a) {
			t.Errorf("audit list lacks %s:\n%s", a, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "p.png")); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("placard file: %v", err)
	}
}
