package wallet_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	banksim "campuspay/hwsim/bank"
	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

func TestProvisionStudent(t *testing.T) {
	e := wallettest.New(t)
	hash, err := e.Svc.HashPassword("load-pass")
	if err != nil {
		t.Fatal(err)
	}
	idn := wallettest.IDNumber("33010620040101777")
	card := banksim.LuhnComplete("621700777700001")
	if err := e.Bank.AddAccount(banksim.Account{BankCode: "CCB", CardNumber: card, Name: "负载一", IDNumber: idn, Phone: "13800007777", Balance: 1000_00}); err != nil {
		t.Fatal(err)
	}
	st := wallet.LoadStudent{
		Roster: wallet.RosterEntry{StudentNo: "L0000001", Name: "负载一", IDNumber: idn, Phone: "13800007777", Campus: wallettest.CampusNoBath},
		Card:   wallet.BindRequest{BankCode: "CCB", CardNumber: card},
		TopUp:  300_00, LimitPerTx: 100_00, LimitDaily: 100_000_00,
	}
	var ids [2]uint32
	for i := range 2 { // again: a new device, no more money
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		st.DeviceKey = pub
		got, err := e.Svc.ProvisionStudent(ctx, st, hash)
		if err != nil {
			t.Fatal(err)
		}
		c, err := protocol.ParseCertificate(got.Device.Certificate)
		if err != nil || c.UserID != got.UserID || !c.DeviceKey.Equal(pub) || c.Verify(e.Svc.IssuerKeys(), e.Clock.Now()) != nil {
			t.Fatalf("certificate %+v: %v", c, err)
		}
		ids[i] = got.UserID
	}
	if ids[0] != ids[1] {
		t.Fatalf("user ids %v", ids)
	}
	w, err := e.Svc.Wallet(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if w.State != "active" || w.Balance != 300_00 || w.LimitPerTx != 100_00 || w.LimitDaily != 100_000_00 {
		t.Fatalf("wallet %+v", w)
	}
	if b, _ := e.Bank.Balance("CCB", card); b != 700_00 {
		t.Fatalf("bank balance %d, want 70000", b)
	}
	if u, err := e.Svc.Login(ctx, "L0000001", "load-pass"); err != nil || u.ID != ids[0] {
		t.Fatalf("login with the shared password: %v", err)
	}
	// The roster's and the bank's rules hold as for anyone.
	bad := st
	bad.Roster.StudentNo, bad.Roster.IDNumber = "L0000002", "330106200401017770"
	if _, err := e.Svc.ProvisionStudent(ctx, bad, hash); protocol.AsReason(err) != protocol.ErrIDNumberInvalid {
		t.Fatalf("bad ID number: %v", err)
	}
	stranger := st
	stranger.Roster.StudentNo, stranger.Roster.Name = "L0000003", "别人"
	if _, err := e.Svc.ProvisionStudent(ctx, stranger, hash); err == nil {
		t.Fatal("a card the bank does not know for this holder was bound")
	}
	e.Check()
}
