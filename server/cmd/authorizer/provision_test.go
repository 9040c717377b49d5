package main

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/hwsim/bank"
	"campuspay/protocol"
	"campuspay/server/wallet/wallettest"
)

func TestProvisionAndTransfers(t *testing.T) {
	dir := t.TempDir()
	clock := &wallettest.Clock{}
	clock.Set(time.Now()) // the authorizer's bank client signs with the real clock
	bs, burl, _, _ := wallettest.Sims(t, clock)
	cfg := writeConfig(t, dir, burl, "")
	base := []string{"--data", dir, "--config", cfg}

	var plan ProvisionPlan
	plan.Password = "load-pass"
	plan.Merchant.ID, plan.Merchant.Name, plan.Merchant.Campus = "M-LOAD", "负载食堂", "main"
	plan.TopUp, plan.LimitPerTx, plan.LimitDaily = 500_00, 1000_00, 100_000_00
	for i := range 3 {
		plan.Terminals = append(plan.Terminals, fmt.Sprintf("L-T%03d", i+1))
	}
	for i := range 40 {
		p := ProvisionPerson{StudentNo: fmt.Sprintf("L%07d", i+1), Name: fmt.Sprintf("负载%d", i+1),
			IDNumber: wallettest.IDNumber(fmt.Sprintf("33010620040101%03d", i)), Phone: fmt.Sprintf("138%08d", i+1),
			Campus: "main", BankCode: "CCB", BankCard: bank.LuhnComplete(fmt.Sprintf("6217009%08d", i+1))}
		if err := bs.AddAccount(bank.Account{BankCode: p.BankCode, CardNumber: p.BankCard, Name: p.Name, IDNumber: p.IDNumber,
			Phone: p.Phone, Balance: 1000_00}); err != nil {
			t.Fatal(err)
		}
		plan.Students = append(plan.Students, p)
	}
	raw, _ := json.Marshal(plan)
	planPath, outPath := filepath.Join(dir, "plan.json"), filepath.Join(dir, "result.json")
	os.WriteFile(planPath, raw, 0o600)

	for run := range 2 { // a second run moves no more money
		if code, out, errs := runCLI(t, append(base, "provision", "--plan", planPath, "--out", outPath, "--workers", "8")...); code != 0 {
			t.Fatalf("provision run %d: %d %s %s", run, code, out, errs)
		}
	}
	raw, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	var res ProvisionResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Students) != 40 || len(res.Terminals) != 3 || res.AuthTimeoutMS != DefaultConfig().AuthTimeoutMS {
		t.Fatalf("result: %d students, %d terminals, timeout %d", len(res.Students), len(res.Terminals), res.AuthTimeoutMS)
	}
	for _, s := range res.Students {
		c, err := protocol.ParseCertificate(s.Certificate)
		if err != nil || c.UserID != s.UserID || c.DeviceID != s.DeviceID ||
			!c.DeviceKey.Equal(ed25519.PrivateKey(s.DeviceKey).Public()) {
			t.Fatalf("%s: certificate %+v %v", s.StudentNo, c, err)
		}
	}
	entries, err := readMosquittoEntries(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range res.Terminals {
		if tm.Password == "" || entries[tm.ID] == "" {
			t.Fatalf("terminal %s: no password or Mosquitto entry", tm.ID)
		}
	}
	if got, _ := bs.Balance("CCB", plan.Students[0].BankCard); got != 500_00 {
		t.Fatalf("bank balance after two provisions: %d, want 50000", got)
	}
	code, out, errs := runCLI(t, append(base, "ledger", "transfers", "--account", "bank:CCB", "--json")...)
	if code != 0 {
		t.Fatal(errs)
	}
	var n int
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l TransferLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Kind != "topup" || l.Amount != -500_00 {
			t.Fatalf("transfer line %q: %+v %v", sc.Text(), l, err)
		}
		n++
	}
	if n != 40 {
		t.Fatalf("%d top-up transfers, want 40", n)
	}
	if code, out, _ := runCLI(t, append(base, "ledger", "check")...); code != 0 {
		t.Fatal(out)
	}
}
