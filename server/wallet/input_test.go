package wallet_test

import (
	"crypto/ed25519"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// Issue 13 item 12a: a card number typed or pasted with grouping spaces,
// dashes or full-width characters binds; anything else is still refused.
func TestBindCardNumberWithSpaces(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"6217000000000000", "6217000000000000"},
		{"6217 0000 0000 0000", "6217000000000000"},
		{" 6217-0000-0000-0000 ", "6217000000000000"},
		{"6217\u30000000\u00a00000\t0000", "6217000000000000"},
		{"６２１７ ００００", "62170000"},
		{"6217 000x", "6217000x"},
	} {
		if got := wallet.NormalizeCardNumber(tc.in); got != tc.want {
			t.Errorf("NormalizeCardNumber(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{Inactive: true, BankBalance: 10_00})
	wantErr(t, e.Svc.BindCard(ctx, s.ID, wallet.BindRequest{BankCode: s.BankCode, CardNumber: s.BankCard[:4] + " x " + s.BankCard[4:]}),
		protocol.ErrCardNumberInvalid)
	spaced := ""
	for i, c := range s.BankCard {
		if i > 0 && i%4 == 0 {
			spaced += " "
		}
		spaced += string(c)
	}
	wantErr(t, e.Svc.BindCard(ctx, s.ID, wallet.BindRequest{BankCode: s.BankCode, CardNumber: spaced}), nil)
	if _, err := e.Svc.TopUp(ctx, s.ID, "k1", 5_00); err != nil {
		t.Fatalf("top-up from the card bound with spaces: %v", err)
	}
	e.Check()
}

// Issue 13 item 11: a top-up the bank card cannot cover says so
// (BANK_CARD_INSUFFICIENT, 银行卡余额不足), not the generic BANK_DECLINED;
// the repeat with the same key answers the same.
func TestTopUpCardLacksFunds(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 10_00})
	_, err := e.Svc.TopUp(ctx, s.ID, "k1", 10_01)
	wantErr(t, err, protocol.ErrBankCardLowFunds)
	if r := protocol.AsReason(err); r.ZH != "银行卡余额不足" {
		t.Fatalf("message %q", r.ZH)
	}
	_, err = e.Svc.TopUp(ctx, s.ID, "k1", 10_01)
	wantErr(t, err, protocol.ErrBankCardLowFunds)
	if e.Balance(s) != 0 || e.BankBalance(s) != 10_00 {
		t.Fatalf("wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	e.Check()
}

// Issue 13 item 8: a weak device key gets no certificate.
func TestRegisterWeakDeviceKey(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{Inactive: true})
	identity := make([]byte, ed25519.PublicKeySize)
	identity[0] = 1
	for _, k := range [][]byte{make([]byte, ed25519.PublicKeySize), identity, make([]byte, 31)} {
		_, err := e.Svc.RegisterDevice(ctx, s.ID, k)
		wantErr(t, err, protocol.ErrDeviceKeyInvalid)
	}
}
