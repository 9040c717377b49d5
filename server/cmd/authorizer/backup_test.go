package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"campuspay/hwsim/bank"
	"campuspay/server/wallet/wallettest"
)

// `authorizer backup` during a rush: payments flow from several students
// while the backup runs; the backup restores into a fresh folder, the
// restored ledger checks, and every payment acknowledged before the backup
// started is in it.
func TestBackupDuringRushRestores(t *testing.T) {
	dir := t.TempDir()
	clock := &wallettest.Clock{}
	clock.Set(time.Now())
	bs, burl, _, wurl := wallettest.Sims(t, clock)
	cfg := writeConfig(t, dir, burl, wurl)
	base := []string{"--data", dir, "--config", cfg}
	admin := adminCLI(t, base)
	qr := addPOS(t, admin)
	const students = 4
	var roster strings.Builder
	roster.WriteString("no,name,id,phone,cat,campus,card,pw\n")
	for i := 1; i <= students; i++ {
		idn := wallettest.IDNumber(fmt.Sprintf("1101052000010%04d", i))
		fmt.Fprintf(&roster, "2026%04d,学生%d,%s,1380000%04d,本科生,yungu,CA%04d,secret1\n", i, i, idn, i, i)
		card := bank.LuhnComplete(fmt.Sprintf("62170012340%04d", i))
		if err := bs.AddAccount(bank.Account{BankCode: "CCB", CardNumber: card, Name: fmt.Sprintf("学生%d", i), IDNumber: idn,
			Phone: fmt.Sprintf("1380000%04d", i), Balance: 10_000_00}); err != nil {
			t.Fatal(err)
		}
	}
	f := filepath.Join(dir, "roster.csv")
	os.WriteFile(f, []byte(roster.String()), 0o600)
	admin("roster", "import", f)

	// The real binary, for the backup process.
	exe := filepath.Join(t.TempDir(), "authorizer")
	if out, err := exec.Command("go", "build", "-o", exe, "campuspay/server/cmd/authorizer").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	s := startServe(t, base)
	call := s.call
	must := func(method, path, token string, body any) map[string]any {
		t.Helper()
		return s.must(t, method, path, token, body)
	}
	tokens := make([]string, students)
	for i := range tokens {
		tok := must("POST", "/api/v1/session", "", map[string]string{"student_no": fmt.Sprintf("2026%04d", i+1), "password": "secret1"})["token"].(string)
		must("POST", "/api/v1/wallet/bank-card", tok, map[string]string{"bank_code": "CCB", "card_number": bank.LuhnComplete(fmt.Sprintf("62170012340%04d", i+1))})
		must("POST", "/api/v1/wallet/top-up", tok, map[string]int{"amount": 500_00})
		must("PUT", "/api/v1/wallet/payment-password", tok, map[string]string{"password": "246810"})
		tokens[i] = tok
	}

	// The rush: each student pays again and again, by scan-to-pay from the
	// balance, and tops up now and then (bank-funded).
	var mu sync.Mutex
	acked := map[int64]bool{}
	progress := make(chan struct{}, 1024)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var code int
				var m map[string]any
				if n%5 == 4 {
					code, m = call("POST", "/api/v1/wallet/top-up", tok, map[string]int{"amount": 1_00})
				} else {
					code, m = call("POST", "/api/v1/scan-pay", tok, map[string]any{"qr": qr, "amount": 1 + i, "password": "246810"})
				}
				if code != 200 {
					t.Errorf("student %d payment %d: %d %v", i, n, code, m)
					return
				}
				id := int64(m["transaction"].(map[string]any)["id"].(float64))
				mu.Lock()
				acked[id] = true
				mu.Unlock()
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitFor := func(n int) {
		t.Helper()
		for count() < n {
			select {
			case <-progress:
			case <-time.After(30 * time.Second):
				t.Fatalf("the rush stalled at %d payments", count())
			}
		}
	}
	waitFor(40)
	mu.Lock()
	before := make([]int64, 0, len(acked))
	for id := range acked {
		before = append(before, id)
	}
	mu.Unlock()
	// The backup is another process, as an operator's cron job would be.
	bdir := filepath.Join(t.TempDir(), "backup")
	outb, err := exec.Command(exe, append(append([]string{}, base...), "backup", bdir)...).CombinedOutput()
	if err != nil {
		t.Fatalf("backup: %v: %s", err, outb)
	}
	out := string(outb)
	after := count()
	waitFor(after + 20) // payments went on during and after the backup
	close(stop)
	wg.Wait()
	if s.stop() != 0 {
		t.Fatal("serve failed")
	}
	if !strings.Contains(out, "backup written") {
		t.Errorf("backup output %q", out)
	}

	fresh := filepath.Join(t.TempDir(), "restored")
	if code, _, errs := runCLI(t, "--data", fresh, "--config", cfg, "restore", bdir); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errs)
	}
	// Restoring over live data is refused.
	if code, _, errs := runCLI(t, "--data", fresh, "--config", cfg, "restore", bdir); code != 1 || !strings.Contains(errs, "already holds") {
		t.Errorf("restore over data: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(fresh, "ledger.db")); !os.IsNotExist(err) {
		t.Errorf("restored a ledger.db the data folder did not have (the ledger is inside wallet.db): %v", err)
	}
	for _, name := range []string{"wallet.db", issuerKeyFile, sealKeyFile} {
		st, err := os.Stat(filepath.Join(fresh, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("restored %s: %v %v", name, st, err)
		}
	}
	rbase := []string{"--data", fresh, "--config", cfg}
	if code, out, _ := runCLI(t, append(rbase, "ledger", "check")...); code != 0 || !strings.Contains(out, "ledger OK") {
		t.Fatalf("ledger check of the restored data: %d %s", code, out)
	}
	_, out, _ = runCLI(t, append(rbase, "tx", "list", "--limit", "100000")...)
	present := map[int64]bool{}
	for _, l := range strings.Split(out, "\n")[1:] {
		if fs := strings.Fields(l); len(fs) > 0 {
			if id, err := strconv.ParseInt(fs[0], 10, 64); err == nil {
				present[id] = true
			}
		}
	}
	for _, id := range before {
		if !present[id] {
			t.Errorf("payment %d, acknowledged before the backup, is missing from it", id)
		}
	}
	t.Logf("%d payments acknowledged before the backup, %d in it, %d in all", len(before), len(present), count())
	// The keys came along: the restored authorizer is the same issuer.
	k1, _ := loadKeys(dir)
	k2, err := loadKeys(fresh)
	if err != nil || !k1.Issuer.Equal(k2.Issuer) {
		t.Error("issuer key not restored")
	}
}

// adminCLI runs authorizer commands with base (--data, --config) in
// front, failing the test on a non-zero exit; it returns stdout.
func adminCLI(t *testing.T, base []string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		code, out, errs := runCLI(t, append(append([]string{}, base...), args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		return out
	}
}

// addPOS registers merchant M1 (云谷) with POS terminal pos-1 and returns
// the terminal's static merchant QR.
func addPOS(t *testing.T, admin func(args ...string) string) string {
	t.Helper()
	admin("merchant", "add", "--id", "M1", "--name", "食堂", "--campus", "yungu")
	admin("terminal", "add", "--id", "pos-1", "--merchant", "M1", "--mode", "pos")
	var qr string // the last line of pos-1 carries its QR
	for _, l := range strings.Split(admin("terminal", "list", "--qr"), "\n") {
		if p, ok := strings.CutPrefix(l, "pos-1 "); ok {
			qr = p
		}
	}
	if qr == "" {
		t.Fatal("pos-1 has no merchant QR in terminal list --qr")
	}
	return qr
}
