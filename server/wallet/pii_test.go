package wallet_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"campuspay/server/wallet/wallettest"
)

// Issue 13 item 6: after a student's card is bound and used, the wallet
// database files hold neither the full card number nor the resident ID
// or phone number in clear (the API showed them masked; the file did not).
func TestNoPersonalDataInClear(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	if _, err := e.Svc.Withdraw(ctx, s.ID, "w1", 5_00); err != nil {
		t.Fatal(err)
	}
	if u, err := e.Store.User(ctx, s.ID); err != nil || u.BankCard != s.BankCard || u.IDNumber != s.IDNumber || u.Phone != s.Phone {
		t.Fatalf("the store reads back %+v %v", u, err)
	}
	files, _ := filepath.Glob(filepath.Join(e.Dir, "wallet.db*"))
	if len(files) == 0 {
		t.Fatal("no wallet.db")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]string{"card number": s.BankCard, "ID number": s.IDNumber, "phone": s.Phone} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds the %s %s in clear", filepath.Base(f), name, v)
			}
		}
	}
}
