package wallet_test

import (
	"slices"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// TestFrozenWalletPaysNothing freezes a wallet and tries every way money
// leaves or enters it: each is refused WALLET_FROZEN and moves nothing;
// unfrozen, each works again.
func TestFrozenWalletPaysNothing(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 500_00, TopUp: 100_00, PasswordFree: true})
	cfg, _ := e.Svc.TerminalConfig(ctx, wallettest.POS)
	try := func(n int) map[string]error {
		k := func(p string) string { return p + string(rune('0'+n)) }
		_, scanErr := e.Svc.ScanPay(ctx, s.ID, k("scan"), cfg.MerchantQR, 1_00, s.PayPW)
		_, topErr := e.Svc.TopUp(ctx, s.ID, k("top"), 1_00)
		_, wdErr := e.Svc.Withdraw(ctx, s.ID, k("wd"), 1_00)
		asErr := func(r *protocol.Response) error {
			if r.Status == protocol.StatusDeclined {
				return protocol.ReasonByCode(r.Code)
			}
			return nil
		}
		return map[string]error{
			"code pay":     asErr(pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 1_00)),
			"card tap":     asErr(pay(e, wallettest.CardBox, protocol.CredCard, s.CardUID, 3_50)),
			"wechat code":  asErr(e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.POS, At: e.Clock.Now(), Amount: 1_00, Cred: &protocol.Credential{Kind: protocol.CredCode, Text: e.PayCode(s)}})),
			"shower hold":  asErr(e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))),
			"scan-to-pay":  scanErr,
			"top-up":       topErr,
			"withdraw":     wdErr,
			"cancellation": e.Svc.Cancel(ctx, s.ID),
		}
	}
	changed, err := e.Svc.SetFrozen(ctx, s.ID, true)
	if err != nil || !changed {
		t.Fatalf("freeze: %v %v", changed, err)
	}
	if changed, _ := e.Svc.SetFrozen(ctx, s.ID, true); changed {
		t.Fatal("second freeze changed something")
	}
	if v, _ := e.Svc.Wallet(ctx, s.ID); !v.Frozen {
		t.Fatal("the wallet view does not say frozen")
	}
	balance, bank := e.Balance(s), e.BankBalance(s)
	for what, err := range try(1) {
		if err != protocol.ErrWalletFrozen {
			t.Errorf("%s while frozen: %v, want WALLET_FROZEN", what, err)
		}
	}
	if e.Balance(s) != balance || e.BankBalance(s) != bank {
		t.Fatalf("money moved while frozen: wallet %d→%d, bank %d→%d", balance, e.Balance(s), bank, e.BankBalance(s))
	}
	if changed, err := e.Svc.SetFrozen(ctx, s.ID, false); err != nil || !changed {
		t.Fatalf("unfreeze: %v %v", changed, err)
	}
	got := try(2)
	delete(got, "cancellation") // refused for the hold just placed: not the freeze's business
	for what, err := range got {
		if err != nil {
			t.Errorf("%s after unfreezing: %v", what, err)
		}
	}
	e.Check()
}

func TestCardLostUndoReplace(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00, PasswordFree: true})
	other := e.AddStudent(wallettest.Options{})
	lostList := func() []string {
		c, err := e.Svc.TerminalConfig(ctx, wallettest.CardBox)
		if err != nil {
			t.Fatal(err)
		}
		return c.LostCards
	}
	for i, want := range []bool{true, false} {
		changed, err := e.Svc.ReportLost(ctx, s.ID)
		if err != nil || changed != want {
			t.Fatalf("report %d: %v %v", i, changed, err)
		}
	}
	if !slices.Contains(lostList(), s.CardUID) {
		t.Fatal("lost card not in the terminals' config")
	}
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCard, s.CardUID, 3_50), protocol.StatusDeclined, protocol.ErrCardLost)
	for i, want := range []bool{true, false} {
		changed, err := e.Svc.UndoCardLost(ctx, s.ID)
		if err != nil || changed != want {
			t.Fatalf("undo %d: %v %v", i, changed, err)
		}
	}
	if slices.Contains(lostList(), s.CardUID) {
		t.Fatal("card still on the lost list after 解挂")
	}
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCard, s.CardUID, 3_50), protocol.StatusApproved, nil)

	// Replacement: invalid and taken UIDs refused, then the old card is
	// refused everywhere and the new one pays.
	for _, tc := range []struct {
		uid  string
		want *protocol.Reason
	}{{"XYZ", protocol.ErrCardUIDInvalid}, {"", protocol.ErrCardUIDInvalid}, {other.CardUID, protocol.ErrRosterCardTaken}} {
		_, _, err := e.Svc.ReplaceCard(ctx, s.ID, tc.uid)
		wantErr(t, err, tc.want)
	}
	old, changed, err := e.Svc.ReplaceCard(ctx, s.ID, "04aabbccdd")
	if err != nil || !changed || old != s.CardUID {
		t.Fatalf("replace: %q %v %v", old, changed, err)
	}
	if _, changed, err := e.Svc.ReplaceCard(ctx, s.ID, "04AABBCCDD"); err != nil || changed {
		t.Fatalf("replace again: %v %v", changed, err)
	}
	if !slices.Contains(lostList(), old) {
		t.Fatal("old card not on the terminals' lost list")
	}
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCard, old, 3_50), protocol.StatusDeclined, protocol.ErrCardLost)
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCard, "04AABBCCDD", 3_50), protocol.StatusApproved, nil)
	// The old card, lost, cannot be given to anybody.
	_, _, err = e.Svc.ReplaceCard(ctx, other.ID, old)
	wantErr(t, err, protocol.ErrCardLost)
	e.Check()
}

func TestResetPasswords(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	// Locked out of the app by wrong passwords first.
	for range wallet.PasswordTries {
		e.Svc.Login(ctx, s.No, "wrong")
	}
	temp, changed, err := e.Svc.ResetPasswordAtDesk(ctx, s.ID, wallet.PasswordLogin)
	if err != nil || !changed || len(temp) != wallet.TempPasswordDigits {
		t.Fatalf("reset login: %q %v %v", temp, changed, err)
	}
	if _, err := e.Svc.Login(ctx, s.No, s.Password); err == nil {
		t.Fatal("old login password still works")
	}
	if _, err := e.Svc.Login(ctx, s.No, temp); err != nil {
		t.Fatalf("temporary password: %v", err)
	}
	for _, which := range []string{wallet.PasswordPayment, wallet.PasswordWater} {
		for i, want := range []bool{true, false} {
			_, changed, err := e.Svc.ResetPasswordAtDesk(ctx, s.ID, which)
			if err != nil || changed != want {
				t.Fatalf("reset %s %d: %v %v", which, i, changed, err)
			}
		}
	}
	v, _ := e.Svc.Wallet(ctx, s.ID)
	if v.PaymentPasswordSet || v.WaterPasswordSet {
		t.Fatalf("passwords still set: %+v", v)
	}
	// The student sets new ones without the old.
	wantErr(t, e.Svc.SetPassword(ctx, s.ID, false, "", "112233"), nil)
	wantErr(t, e.Svc.SetPassword(ctx, s.ID, true, "", "445566"), nil)
	_, _, err = e.Svc.ResetPasswordAtDesk(ctx, s.ID, "pin")
	wantErr(t, err, protocol.ErrBadRequest)
}

func TestRevokeAndRotateTerminal(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	pw := e.TerminalPasswords[wallettest.POS]
	if !e.Svc.AuthenticateTerminal(ctx, wallettest.POS, pw) {
		t.Fatal("password does not authenticate")
	}
	for i, want := range []bool{true, false} {
		if changed, err := e.Svc.RevokeTerminal(ctx, wallettest.POS); err != nil || changed != want {
			t.Fatalf("revoke %d: %v %v", i, changed, err)
		}
	}
	if e.Svc.AuthenticateTerminal(ctx, wallettest.POS, pw) {
		t.Fatal("revoked terminal authenticates")
	}
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 1_00), protocol.StatusDeclined, protocol.ErrTerminalRevoked)
	if a := e.Svc.ApplyJournal(ctx, &protocol.JournalEntry{V: 1, Terminal: wallettest.POS, Seq: 1, Tx: e.TxID(), Kind: protocol.EntryReversal,
		At: e.Clock.Now()}); a != nil {
		t.Fatalf("journal of a revoked terminal acknowledged: %+v", a)
	}
	npw, err := e.Svc.RotateTerminal(ctx, wallettest.POS)
	if err != nil || npw == pw {
		t.Fatalf("rotate: %v", err)
	}
	if e.Svc.AuthenticateTerminal(ctx, wallettest.POS, pw) || !e.Svc.AuthenticateTerminal(ctx, wallettest.POS, npw) {
		t.Fatal("rotation: old password works or new one does not")
	}
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 1_00), protocol.StatusApproved, nil)
	if _, err := e.Svc.RevokeTerminal(ctx, "nope"); err != protocol.ErrTerminalUnknown {
		t.Fatalf("unknown terminal: %v", err)
	}
	e.Check()
}
