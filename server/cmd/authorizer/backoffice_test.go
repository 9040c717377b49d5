package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
