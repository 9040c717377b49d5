package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/hwsim/rig"
	"campuspay/hwsim/rig/ctl"
	"campuspay/protocol"
	"campuspay/server/api"
	"campuspay/server/wallet/wallettest"
	"campuspay/terminal/device/cardreader"
	"campuspay/terminal/device/keypad"
)

func testCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// runOut runs the command to completion and returns exit code and outputs.
func runOut(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(testCtx(t), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTopLevel(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // substring of stdout+stderr
	}{
		{[]string{"--version"}, 0, "hwsim dev"},
		{[]string{"--help"}, 0, "Commands:"},
		{nil, 2, "Usage: hwsim"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"demo", "--help"}, 0, "Runs a whole simulated campus"},
		{[]string{"demo", "--bin", "/nonexistent", "--dir", "/nonexistent/campus"}, 1, "authorizer not built"},
		{[]string{"bank", "--help"}, 0, "-client"},
		{[]string{"bank"}, 2, "--client"},
		{[]string{"wechat", "--help"}, 0, "-apikey"},
		{[]string{"camera", "--help"}, 0, "-text"},
		{[]string{"rig", "--help"}, 0, "-terminal"},
		{[]string{"rig"}, 2, "--terminal is required"},
		{[]string{"rig", "--terminal", "T01", "--valve-slave", "300"}, 2, "1..247"},
		{[]string{"ctl", "--help"}, 0, "tap T UID"},
		{[]string{"ctl"}, 2, "Commands:"},
		{[]string{"phone", "--help"}, 0, "scanpay"},
		{[]string{"phone", "--api", "http://x", "--student", "S", "fly"}, 2, "unknown command"},
		{[]string{"phone", "--api", "http://x", "--student", "S", "topup"}, 2, "want 1 argument"},
	} {
		code, out, errs := runOut(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.out) {
			t.Errorf("hwsim %q: exit %d, output %q; want %d and %q", tc.args, code, out+errs, tc.code, tc.out)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`12.50\n`: "12.50\n", `\e`: "\x1b", `1\b2`: "1\b2", `a\\b`: `a\b`, `\x1b\x53`: "\x1bS", `plain`: "plain",
	} {
		if got, err := unescape(in); err != nil || got != want {
			t.Errorf("unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`\`, `\q`, `\x1`, `\xzz`} {
		if _, err := unescape(bad); err == nil {
			t.Errorf("unescape(%q) accepted", bad)
		}
	}
}

// The ctl commands in-process against a control server driving a real rig,
// read back through the terminal's real drivers.
func TestCtlCommands(t *testing.T) {
	r, err := rig.New(rig.Config{Terminal: "T01", Dir: filepath.Join(t.TempDir(), "T01"), Card: rig.CardASCII,
		Keypad: rig.KeypadSerial, Valve: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := ctl.NewServer()
	s.Add(r)
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := strings.TrimPrefix(url, "http://")

	rd, err := cardreader.OpenASCII(r.Devices().Card, cardreader.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Halt()
	kp, err := keypad.OpenSerial(r.Devices().Keypad, keypad.SerialConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Halt()

	if code, out, errs := runOut(t, "ctl", "--addr", addr, "tap", "T01", "04A1B2C3"); code != 0 || out != "ok\n" {
		t.Fatalf("tap: %d %q %q", code, out, errs)
	}
	tap, err := rd.Read(testCtx(t))
	if err != nil || tap.UID != "04A1B2C3" {
		t.Fatalf("driver read %+v, %v", tap, err)
	}
	if code, _, errs := runOut(t, "ctl", "--addr", url, "key", "T01", `7\n`); code != 0 {
		t.Fatalf("key: %d %q", code, errs)
	}
	for _, want := range []rune{'7', '\n'} {
		k, err := kp.Key(testCtx(t))
		if err != nil || rune(k) != want {
			t.Fatalf("key %q, %v; want %q", rune(k), err, want)
		}
	}
	if code, _, errs := runOut(t, "ctl", "--addr", addr, "flow", "T01", "6"); code != 0 {
		t.Fatalf("flow: %d %q", code, errs)
	}
	code, out, errs := runOut(t, "ctl", "--addr", addr, "valve", "T01")
	var v rig.ValveState
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.FlowLPM != 6 {
		t.Fatalf("valve: %d %q %q", code, out, errs)
	}
	code, out, _ = runOut(t, "ctl", "--addr", addr, "status")
	if code != 0 || !strings.Contains(out, "T01") || !strings.Contains(out, "card:asciiuid") {
		t.Fatalf("status: %d %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"tap", "T99", "04"}, 1, "UNKNOWN_TERMINAL"},
		{[]string{"show", "T01", "CW1:X"}, 1, "NO_DEVICE"},
		{[]string{"show", "--via", "camera", "T01", "CW1:X"}, 1, "NO_DEVICE"},
		{[]string{"net", "T01", "cut"}, 1, "NO_DEVICE"},
		{[]string{"net", "--mode", "snip", "T01", "cut"}, 2, "--mode"},
		{[]string{"net", "T01", "sever"}, 2, "cut or restore"},
		{[]string{"flow", "T01", "lots"}, 2, "litres/minute"},
		{[]string{"key", "T01", `\q`}, 2, "unknown escape"},
		{[]string{"tap", "T01"}, 2, "usage"},
		{[]string{"screenshot", "T01", filepath.Join(t.TempDir(), "none.png")}, 1, "no such file"},
		{[]string{"launch"}, 2, "unknown command"},
	} {
		code, out, errs := runOut(t, append([]string{"ctl", "--addr", addr}, tc.args...)...)
		if code != tc.code || !strings.Contains(out+errs, tc.msg) {
			t.Errorf("ctl %q: %d %q, want %d and %q", tc.args, code, out+errs, tc.code, tc.msg)
		}
	}
}

// serve runs a serving subcommand until the test ends and returns the
// first line it prints.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- run(ctx, args, pw, &errb)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("hwsim %q exited %d: %s", args, code, errb.String())
		}
	})
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("hwsim %q: %v (%s)", args, err, errb.String())
	}
	go io.Copy(io.Discard, pr)
	return strings.TrimSpace(line)
}

func TestBankAndWeChatServe(t *testing.T) {
	line := serve(t, "bank", "--client", "authorizer=s3cret", "--accounts", "../../bank/testdata/accounts.csv")
	url := strings.TrimPrefix(line, "bank: serving on ")
	resp, err := http.Get(url + "/control/accounts/CCB/6217001234000010")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"balance":100000`) {
		t.Fatalf("bank account: %d %s", resp.StatusCode, b)
	}

	line = serve(t, "wechat", "--appid", "wxapp", "--mchid", "1900000001", "--apikey", "k",
		"--users", "../../wechat/testdata/users.json")
	url = strings.TrimPrefix(line, "wechat: serving on ")
	resp, err = http.Get(url + "/control/users/oCampus_zhangsan")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"balance":50000`) {
		t.Fatalf("wechat user: %d %s", resp.StatusCode, b)
	}
}

// `hwsim rig` makes the box, serves the control API, and removes its
// symlinks when told to stop.
func TestRigServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "T07")
	var ready rigReady
	t.Run("up", func(t *testing.T) {
		line := serve(t, "rig", "--terminal", "T07", "--dir", dir, "--card", "rdm6300", "--keypad", "serial",
			"--devices-out", filepath.Join(t.TempDir(), "ready.json"))
		if err := json.Unmarshal([]byte(line), &ready); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if ready.Daemon.Card == nil || ready.Daemon.Card.Path != filepath.Join(dir, "card") || ready.Daemon.Card.Driver != "rdm6300" {
			t.Fatalf("ready %+v", ready)
		}
		rd, err := cardreader.OpenRDM6300(ready.Devices.Card, cardreader.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Halt()
		if err := ctl.NewClient(ready.Control).Tap(testCtx(t), "T07", "62E3086CED"); err != nil {
			t.Fatal(err)
		}
		if tap, err := rd.Read(testCtx(t)); err != nil || tap.UID != "62E3086CED" {
			t.Fatalf("read %+v, %v", tap, err)
		}
	})
	if _, err := os.Lstat(filepath.Join(dir, "card")); !os.IsNotExist(err) {
		t.Errorf("card symlink left after stop: %v", err)
	}
}

// `hwsim phone code` prints a code the authorizer's issuer key verifies.
func TestPhoneCode(t *testing.T) {
	e := wallettest.New(t)
	srv := httptest.NewServer(api.New(e.Svc, e.Store, api.Options{Now: e.Clock.Now}))
	defer srv.Close()
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})

	code, out, errs := runOut(t, "phone", "--api", srv.URL, "--student", s.No, "--password", s.Password, "code")
	if code != 0 {
		t.Fatalf("code: %d %q", code, errs)
	}
	pc, err := protocol.ParseCode(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.Cert.Verify(e.Svc.IssuerKeys(), e.Clock.Now()); err != nil || pc.Cert.UserID != s.ID || pc.Purpose != protocol.PurposePay {
		t.Fatalf("code %+v: %v", pc, err)
	}
	code, out, errs = runOut(t, "phone", "--api", srv.URL, "--student", s.No, "--password", s.Password, "wallet")
	if code != 0 || !strings.Contains(out, `"state": "active"`) {
		t.Fatalf("wallet: %d %q %q", code, out, errs)
	}
	code, _, errs = runOut(t, "phone", "--api", srv.URL, "--student", s.No, "--password", "nope", "wallet")
	if code != 1 || !strings.Contains(errs, "LOGIN_FAILED") || !strings.Contains(errs, "学号或密码错误") {
		t.Fatalf("bad login: %d %q", code, errs)
	}
	code, out, errs = runOut(t, "phone", "--api", srv.URL, "--student", s.No, "--password", s.Password, "topup", "1.50")
	if code != 0 || !strings.Contains(out, `"kind": "top_up"`) {
		t.Fatalf("topup: %d %q %q", code, out, errs)
	}
	code, out, errs = runOut(t, "phone", "--api", srv.URL, "--student", s.No, "--password", s.Password, "transactions")
	if code != 0 || !strings.Contains(out, "1.50") {
		t.Fatalf("transactions: %d %q %q", code, out, errs)
	}
}

// unescape reads what a user typed: it never panics, and plain text (no
// backslash) is returned unchanged.
func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`12.50\n`, `\e`, `\x1b`, `\x1`, `\`, `a\\b`, "\xff\\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := unescape(s)
		if !strings.Contains(s, `\`) && (err != nil || got != s) {
			t.Fatalf("unescape(%q) = %q, %v", s, got, err)
		}
		if err == nil && len(got) > len(s) {
			t.Fatalf("unescape(%q) grew to %q", s, got)
		}
	})
}
