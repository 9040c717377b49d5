package wallet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	banksim "campuspay/hwsim/bank"
	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

var ctx = context.Background()

func wantErr(t *testing.T, err error, want *protocol.Reason) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %s", err, want.Code)
	}
}

func pay(e *wallettest.Env, terminal string, kind protocol.CredKind, text string, amount int64) *protocol.Response {
	return e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: terminal,
		At: e.Clock.Now(), Amount: amount, Cred: &protocol.Credential{Kind: kind, Text: text}})
}

func wantResp(t *testing.T, r *protocol.Response, st protocol.Status, code *protocol.Reason) {
	t.Helper()
	c := ""
	if code != nil {
		c = code.Code
	}
	if r.Status != st || r.Code != c {
		t.Fatalf("response %s/%s (%s), want %s/%s", r.Status, r.Code, r.MessageEN, st, c)
	}
}

func TestValidators(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{wallettest.IDNumber("11010520000101001"), true},
		{"11010520000101123X", false}, // wrong check character
		{wallettest.IDNumber("11010519491231002"), true},
		{wallettest.IDNumber("11010520000101001")[:17], false},
		{wallettest.IDNumber("11010520000101001") + "1", false},
		{"1101052000010100A1", false},
	} {
		if got := wallet.ValidIDNumber(tc.s); got != tc.want {
			t.Errorf("ValidIDNumber(%q) = %v", tc.s, got)
		}
	}
	for _, tc := range []struct {
		s    string
		want bool
	}{{"13800000001", true}, {"19912345678", true}, {"12800000001", false}, {"1380000000", false}, {"138000000012", false}, {"23800000001", false}} {
		if got := wallet.ValidPhone(tc.s); got != tc.want {
			t.Errorf("ValidPhone(%q) = %v", tc.s, got)
		}
	}
	good := banksim.LuhnComplete("621700123400001")
	bad := good[:len(good)-1] + string('0'+(good[len(good)-1]-'0'+1)%10)
	for _, tc := range []struct {
		s    string
		want bool
	}{{good, true}, {bad, false}, {"4111111111111111", true}, {"41111111111", false}, {"411111111111111a", false}} {
		if got := wallet.ValidCardNumber(tc.s); got != tc.want {
			t.Errorf("ValidCardNumber(%q) = %v", tc.s, got)
		}
	}
}

func TestActivation(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{Inactive: true})
	_, err := e.Svc.TopUp(ctx, s.ID, "k", 100)
	wantErr(t, err, protocol.ErrWalletNotActive)
	for _, tc := range []struct {
		name string
		r    wallet.BindRequest
		want *protocol.Reason
	}{
		{"name", wallet.BindRequest{BankCode: "CCB", CardNumber: s.BankCard, Name: "别人"}, protocol.ErrHolderNotStudent},
		{"id", wallet.BindRequest{BankCode: "CCB", CardNumber: s.BankCard, IDNumber: wallettest.IDNumber("11010520000101999")}, protocol.ErrHolderNotStudent},
		{"phone", wallet.BindRequest{BankCode: "CCB", CardNumber: s.BankCard, Phone: "13900000000"}, protocol.ErrBankPhoneMismatch},
		{"bad id", wallet.BindRequest{BankCode: "CCB", CardNumber: s.BankCard, IDNumber: "110105200001011230"}, protocol.ErrIDNumberInvalid},
		{"bad phone", wallet.BindRequest{BankCode: "CCB", CardNumber: s.BankCard, Phone: "12000000000"}, protocol.ErrPhoneInvalid},
		{"luhn", wallet.BindRequest{BankCode: "CCB", CardNumber: s.BankCard[:15] + "x"}, protocol.ErrCardNumberInvalid},
		{"unsupported bank", wallet.BindRequest{BankCode: "CMB", CardNumber: s.BankCard}, protocol.ErrBankUnsupported},
		{"unknown card", wallet.BindRequest{BankCode: "CCB", CardNumber: banksim.LuhnComplete("621700999999999")}, protocol.ErrBankUnknownCard},
		{"ok", wallet.BindRequest{BankCode: "CCB", CardNumber: s.BankCard}, nil},
		{"again", wallet.BindRequest{BankCode: "CCB", CardNumber: s.BankCard}, protocol.ErrCardAlreadyBound},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, e.Svc.BindCard(ctx, s.ID, tc.r), tc.want) })
	}
	v, err := e.Svc.Wallet(ctx, s.ID)
	if err != nil || v.State != "active" || v.Balance != 0 {
		t.Fatalf("wallet %+v %v", v, err)
	}
}

func TestUnbindAtMostThreeTimes(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{})
	for i := 1; i <= 4; i++ {
		err := e.Svc.UnbindCard(ctx, s.ID)
		if i == 4 {
			wantErr(t, err, protocol.ErrUnbindLimit)
			break
		}
		wantErr(t, err, nil)
		wantErr(t, e.Svc.UnbindCard(ctx, s.ID), protocol.ErrNoBankCard)
		wantErr(t, e.Svc.BindCard(ctx, s.ID, wallet.BindRequest{BankCode: s.BankCode, CardNumber: s.BankCard}), nil)
	}
}

func TestCancelAndReopen(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00, PasswordFree: true})
	if got := e.BankBalance(s); got != 70_00 {
		t.Fatalf("bank after top-up %d", got)
	}
	// A pending hold refuses the cancellation.
	hold := e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))
	wantResp(t, hold, protocol.StatusHeld, nil)
	wantErr(t, e.Svc.Cancel(ctx, s.ID), protocol.ErrHoldsPending)
	wantResp(t, e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpVoid, Tx: hold.Tx, Terminal: wallettest.Shower}), protocol.StatusVoided, nil)

	wantErr(t, e.Svc.Cancel(ctx, s.ID), nil)
	if got := e.BankBalance(s); got != 100_00 {
		t.Fatalf("bank after cancel %d, want the balance withdrawn", got)
	}
	if e.Balance(s) != 0 {
		t.Fatalf("wallet after cancel %d", e.Balance(s))
	}
	e.Check()
	// After cancellation nothing pays.
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 100), protocol.StatusDeclined, protocol.ErrWalletCancelled)
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCard, s.CardUID, 100), protocol.StatusDeclined, protocol.ErrWalletCancelled)
	_, err := e.Svc.TopUp(ctx, s.ID, "after", 100)
	wantErr(t, err, protocol.ErrWalletCancelled)
	wantErr(t, e.Svc.Cancel(ctx, s.ID), protocol.ErrWalletCancelled)

	for i := 1; i <= 4; i++ {
		err := e.Svc.Reopen(ctx, s.ID)
		if i == 4 {
			wantErr(t, err, protocol.ErrReopenLimit)
			break
		}
		wantErr(t, err, nil)
		wantErr(t, e.Svc.Reopen(ctx, s.ID), protocol.ErrWalletActive)
		wantErr(t, e.Svc.Cancel(ctx, s.ID), nil)
	}
}

func TestPasswordFreeGatesCardPayments(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{TopUp: 0, BankBalance: 100_00, Category: wallet.VocationalCategory})
	if _, err := e.Svc.TopUp(ctx, s.ID, "t", 50_00); err != nil {
		t.Fatal(err)
	}
	v, _ := e.Svc.Wallet(ctx, s.ID)
	if !v.PasswordFreeWarning {
		t.Fatal("a vocational student without the contract is not warned")
	}
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCard, s.CardUID, 350), protocol.StatusDeclined, protocol.ErrPasswordFreeMissing)
	// Codes still work without the contract.
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 350), protocol.StatusApproved, nil)
	wantErr(t, e.Svc.SetPasswordFree(ctx, s.ID, true), nil)
	wantErr(t, e.Svc.SetPasswordFree(ctx, s.ID, true), protocol.ErrPasswordFreeSigned)
	r := pay(e, wallettest.CardBox, protocol.CredCard, s.CardUID, 350)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBalance || *r.Balance != 50_00-700 {
		t.Fatalf("card payment %+v", r)
	}
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCard, "FFFF0001", 350), protocol.StatusDeclined, protocol.ErrCardUnknown)
	e.Check()
}

func TestTopUpWithdrawIdempotent(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	for i := 0; i < 2; i++ {
		if _, err := e.Svc.TopUp(ctx, s.ID, "k1", 40_00); err != nil {
			t.Fatal(err)
		}
	}
	if e.Balance(s) != 40_00 || e.BankBalance(s) != 60_00 {
		t.Fatalf("after top-up twice with one key: wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	_, err := e.Svc.TopUp(ctx, s.ID, "k1", 41_00)
	wantErr(t, err, protocol.ErrTxConflict)
	_, err = e.Svc.TopUp(ctx, s.ID, "k2", 61_00)
	wantErr(t, err, protocol.ErrBankCardLowFunds) // issue 13 item 11: not the generic BANK_DECLINED
	for i := 0; i < 2; i++ {
		if _, err := e.Svc.Withdraw(ctx, s.ID, "w1", 15_00); err != nil {
			t.Fatal(err)
		}
	}
	if e.Balance(s) != 25_00 || e.BankBalance(s) != 75_00 {
		t.Fatalf("after withdraw twice: wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	_, err = e.Svc.Withdraw(ctx, s.ID, "w2", 25_01)
	wantErr(t, err, protocol.ErrBalanceLow)
	_, err = e.Svc.TopUp(ctx, s.ID, "k3", 0)
	wantErr(t, err, protocol.ErrAmountInvalid)
	_, err = e.Svc.TopUp(ctx, s.ID, "k3", protocol.MaxAmount+1)
	wantErr(t, err, protocol.ErrAmountInvalid)
	recs, err := e.Svc.Transactions(ctx, s.ID, 0, 10)
	if err != nil || len(recs) < 3 || recs[0].ID < recs[1].ID {
		t.Fatalf("details %v %v", recs, err)
	}
	e.Check()
}

func TestFundingBalanceFirstElseWholeFromCard(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 20_00, TopUp: 10_00})
	// Exactly the balance: from the balance.
	r := pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 10_00)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBalance || e.Balance(s) != 0 {
		t.Fatalf("%+v balance %d", r, e.Balance(s))
	}
	if _, err := e.Svc.TopUp(ctx, s.ID, "t2", 1_00); err != nil {
		t.Fatal(err)
	}
	// One cent more than the balance: the whole amount from the card.
	r = pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 1_01)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBankCard || e.Balance(s) != 1_00 || e.BankBalance(s) != 20_00-10_00-1_00-1_01 {
		t.Fatalf("%+v balance %d bank %d", r, e.Balance(s), e.BankBalance(s))
	}
	// Neither covers it.
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 50_00), protocol.StatusDeclined, protocol.ErrInsufficientFunds)
	recs, _ := e.Svc.Transactions(ctx, s.ID, 0, 50)
	if recs[0].Status != protocol.StatusDeclined || recs[1].Channel != protocol.ChannelBankCard || recs[1].Merchant != wallettest.Merchant {
		t.Fatalf("details %+v", recs[:2])
	}
	e.Check()
}

func holdReq(e *wallettest.Env, s *wallettest.Student, tx protocol.TxID, pw string) *protocol.Request {
	sealed, err := protocol.SealSecret(e.Keys.SealPub, tx, pw, nil)
	if err != nil {
		e.T.Fatal(err)
	}
	return &protocol.Request{V: 1, Op: protocol.OpHold, Tx: tx, Terminal: wallettest.Shower,
		Cred: &protocol.Credential{Kind: protocol.CredAccount, Text: s.No}, Secret: sealed}
}

func TestShowerMinimumBalance(t *testing.T) {
	for _, tc := range []struct {
		balance int64
		want    *protocol.Reason
		hold    int64
	}{{1499, protocol.ErrShowerBalanceLow, 0}, {1500, nil, 1500}, {1900, nil, 1900}, {5000, nil, 2000}} {
		t.Run(fmt.Sprint(tc.balance), func(t *testing.T) {
			e := wallettest.New(t)
			// The bank card does not count for showers.
			s := e.AddStudent(wallettest.Options{BankBalance: 1000_00 + tc.balance, TopUp: tc.balance})
			r := e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))
			if tc.want != nil {
				wantResp(t, r, protocol.StatusDeclined, tc.want)
				return
			}
			wantResp(t, r, protocol.StatusHeld, nil)
			if r.Hold != tc.hold {
				t.Fatalf("hold %d, want %d", r.Hold, tc.hold)
			}
			c := e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpCapture, Tx: r.Tx, Terminal: wallettest.Shower, Amount: 730, ML: 73000})
			wantResp(t, c, protocol.StatusApproved, nil)
			if c.Amount != 730 || e.Balance(s) != tc.balance-730 {
				t.Fatalf("capture %+v, balance %d", c, e.Balance(s))
			}
			// Capturing again with the same amount repeats; another amount conflicts.
			wantResp(t, e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpCapture, Tx: r.Tx, Terminal: wallettest.Shower, Amount: 730}), protocol.StatusApproved, nil)
			wantResp(t, e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpCapture, Tx: r.Tx, Terminal: wallettest.Shower, Amount: 731}), protocol.StatusDeclined, protocol.ErrTxConflict)
			if e.Balance(s) != tc.balance-730 {
				t.Fatal("money moved twice")
			}
		})
	}
}

func TestShowerRules(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	// Campus without showers.
	req := holdReq(e, s, e.TxID(), s.WaterPW)
	req.Terminal = wallettest.ShowerMain
	wantResp(t, e.Svc.HandleRequest(ctx, req), protocol.StatusDeclined, protocol.ErrShowerNotEnabled)
	// Unknown account looks like a wrong password.
	req = holdReq(e, s, e.TxID(), s.WaterPW)
	req.Cred.Text = "99999999"
	wantResp(t, e.Svc.HandleRequest(ctx, req), protocol.StatusDeclined, protocol.ErrWaterPasswordWrong)
	// Card + water password.
	req = holdReq(e, s, e.TxID(), s.WaterPW)
	req.Cred = &protocol.Credential{Kind: protocol.CredCard, Text: s.CardUID}
	r := e.Svc.HandleRequest(ctx, req)
	wantResp(t, r, protocol.StatusHeld, nil)
	wantResp(t, e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpVoid, Tx: r.Tx, Terminal: wallettest.Shower}), protocol.StatusVoided, nil)
	if e.Balance(s) != 50_00 {
		t.Fatalf("void left %d", e.Balance(s))
	}
	// Four wrong tries, then the fifth locks; the right one is refused until the cool-down ends.
	for i := 1; i <= 5; i++ {
		want := protocol.ErrWaterPasswordWrong
		if i == 5 {
			want = protocol.ErrWaterPasswordLocked
		}
		wantResp(t, e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), "000000")), protocol.StatusDeclined, want)
	}
	wantResp(t, e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW)), protocol.StatusDeclined, protocol.ErrWaterPasswordLocked)
	e.Clock.Advance(15*time.Minute - time.Second)
	wantResp(t, e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW)), protocol.StatusDeclined, protocol.ErrWaterPasswordLocked)
	e.Clock.Advance(time.Second)
	wantResp(t, e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW)), protocol.StatusHeld, nil)
	// A secret sealed for another transaction is refused.
	bad := holdReq(e, s, e.TxID(), s.WaterPW)
	other := holdReq(e, s, e.TxID(), s.WaterPW)
	bad.Secret = other.Secret
	wantResp(t, e.Svc.HandleRequest(ctx, bad), protocol.StatusDeclined, protocol.ErrWaterPasswordWrong)
}

func TestPaymentCodes(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	code := e.PayCode(s)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, code, 100), protocol.StatusApproved, nil)
	// A screenshot shown again, on another terminal, is refused.
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCode, code, 100), protocol.StatusDeclined, protocol.ErrCodeUsed)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.IdentityCode(s), 100), protocol.StatusDeclined, protocol.ErrIdentityCode)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, "281234567890123456", 100), protocol.StatusDeclined, protocol.ErrUnsupportedCode)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, "6212345678901234567", 100), protocol.StatusDeclined, protocol.ErrUnsupportedCode)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, "CW1:????", 100), protocol.StatusDeclined, protocol.ErrCodeMalformed)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, "hello", 100), protocol.StatusDeclined, protocol.ErrUnknownCode)
	// Freshness: valid up to 60 s + skew, expired after.
	old := e.PayCode(s)
	e.Clock.Advance(protocol.CodeValidity + protocol.MaxClockSkew)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, old, 100), protocol.StatusApproved, nil)
	old = e.PayCode(s)
	e.Clock.Advance(protocol.CodeValidity + protocol.MaxClockSkew + time.Second)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, old, 100), protocol.StatusDeclined, protocol.ErrCodeExpired)
	// Lost phone: its device is revoked at once, and terminals are told.
	var changed []string
	gotChange := false
	e.Svc.OnConfigChanged(func(ts []string) { changed, gotChange = ts, true })
	wantErr(t, e.Svc.RevokeDevice(ctx, s.ID, 999), protocol.ErrNotFound)
	code = e.PayCode(s)
	c, _ := protocol.ParseCode(code)
	wantErr(t, e.Svc.RevokeDevice(ctx, s.ID, c.Cert.DeviceID), nil)
	if !gotChange || changed != nil {
		t.Fatalf("config change %v %v", gotChange, changed)
	}
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, code, 100), protocol.StatusDeclined, protocol.ErrDeviceRevoked)
	cfg, err := e.Svc.TerminalConfig(ctx, wallettest.POS)
	if err != nil || len(cfg.RevokedDevices) != 1 || cfg.RevokedDevices[0] != c.Cert.DeviceID {
		t.Fatalf("config %+v %v", cfg, err)
	}
	// Lost card.
	wantErr(t, e.Svc.SetPasswordFree(ctx, s.ID, true), nil)
	wantErr(t, e.Svc.ReportCardLost(ctx, s.ID), nil)
	wantResp(t, pay(e, wallettest.CardBox, protocol.CredCard, s.CardUID, 100), protocol.StatusDeclined, protocol.ErrCardLost)
	cfg, _ = e.Svc.TerminalConfig(ctx, wallettest.CardBox)
	if len(cfg.LostCards) != 1 || cfg.LostCards[0] != s.CardUID || cfg.Revision < 2 {
		t.Fatalf("config %+v", cfg)
	}
	e.Check()
}

func TestLimits(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 1000_00, TopUp: 500_00})
	wantErr(t, e.Svc.SetLimits(ctx, s.ID, 0, 100), protocol.ErrAmountInvalid)
	wantErr(t, e.Svc.SetLimits(ctx, s.ID, 60_00, 100_00), nil)
	// Per transaction: exactly the limit passes, one cent more does not.
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 60_01), protocol.StatusDeclined, protocol.ErrLimitPerTx)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 60_00), protocol.StatusApproved, nil)
	wantErr(t, e.Svc.SetLimits(ctx, s.ID, 60_00, 110_00), nil)
	// Daily: 60 spent of 110; 50.01 more exceeds, 50.00 reaches the limit exactly.
	e.Clock.Set(time.Date(2026, 11, 30, 23, 59, 0, 0, wallet.Shanghai))
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 50_01), protocol.StatusDeclined, protocol.ErrLimitDaily)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 50_00), protocol.StatusApproved, nil)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 1), protocol.StatusDeclined, protocol.ErrLimitDaily)
	// Local midnight in Shanghai (16:00 UTC) starts a new day.
	e.Clock.Set(time.Date(2026, 11, 30, 16, 0, 0, 0, time.UTC))
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 60_00), protocol.StatusApproved, nil)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 50_00), protocol.StatusApproved, nil)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 1), protocol.StatusDeclined, protocol.ErrLimitDaily)
	e.Check()
}

func TestLimitsCountBankCardPayments(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 1000_00})
	wantErr(t, e.Svc.SetLimits(ctx, s.ID, 60_00, 100_00), nil)
	r := pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 60_00)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBankCard {
		t.Fatalf("channel %s", r.Channel)
	}
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 60_01), protocol.StatusDeclined, protocol.ErrLimitPerTx)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 40_01), protocol.StatusDeclined, protocol.ErrLimitDaily)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 40_00), protocol.StatusApproved, nil)
	e.Check()
}

func TestPaymentPasswordLock(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	cfg, _ := e.Svc.TerminalConfig(ctx, wallettest.POS)
	for i := 1; i <= 5; i++ {
		want := protocol.ErrPaymentPasswordWrong
		if i == 5 {
			want = protocol.ErrPaymentPasswordLocked
		}
		_, err := e.Svc.ScanPay(ctx, s.ID, fmt.Sprint("k", i), cfg.MerchantQR, 100, "000000")
		wantErr(t, err, want)
	}
	_, err := e.Svc.ScanPay(ctx, s.ID, "k6", cfg.MerchantQR, 100, s.PayPW)
	wantErr(t, err, protocol.ErrPaymentPasswordLocked)
	wantErr(t, e.Svc.SetPassword(ctx, s.ID, false, s.PayPW, "111111"), protocol.ErrPaymentPasswordLocked)
	e.Clock.Advance(15 * time.Minute)
	_, err = e.Svc.ScanPay(ctx, s.ID, "k7", cfg.MerchantQR, 100, s.PayPW)
	wantErr(t, err, nil)
	wantErr(t, e.Svc.SetPassword(ctx, s.ID, false, "", "12345"), protocol.ErrPasswordWeak)
	wantErr(t, e.Svc.SetPassword(ctx, s.ID, false, "999999", "123456"), protocol.ErrPaymentPasswordWrong)
	wantErr(t, e.Svc.SetPassword(ctx, s.ID, false, s.PayPW, "123456"), nil)
	e.Check()
}

func TestScanPayNotices(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	cfg, _ := e.Svc.TerminalConfig(ctx, wallettest.POS)
	noticed := make(chan string, 10)
	e.Svc.OnNotice(func(term string) { noticed <- term })
	r1, err := e.Svc.ScanPay(ctx, s.ID, "a", cfg.MerchantQR, 1_00, s.PayPW)
	wantErr(t, err, nil)
	again, err := e.Svc.ScanPay(ctx, s.ID, "a", cfg.MerchantQR, 1_00, s.PayPW)
	wantErr(t, err, nil)
	if again.ID != r1.ID || e.Balance(s) != 49_00 {
		t.Fatalf("repeat moved money: balance %d", e.Balance(s))
	}
	_, err = e.Svc.ScanPay(ctx, s.ID, "a", cfg.MerchantQR, 2_00, s.PayPW)
	wantErr(t, err, protocol.ErrTxConflict)
	_, err = e.Svc.ScanPay(ctx, s.ID, "b", cfg.MerchantQR, 2_00, s.PayPW)
	wantErr(t, err, nil)
	_, err = e.Svc.ScanPay(ctx, s.ID, "c", cfg.MerchantQR[:len(cfg.MerchantQR)-2]+"AA", 2_00, s.PayPW)
	wantErr(t, err, protocol.ErrMerchantQRInvalid)
	if got := <-noticed; got != wallettest.POS {
		t.Fatalf("notice for %s", got)
	}
	n, err := e.Svc.Notices(ctx, wallettest.POS, 0)
	if err != nil || len(n.Payments) != 2 || n.Payments[0].Seq != 1 || n.Payments[1].Seq != 2 || n.Cursor != 2 || n.Payments[1].Amount != 2_00 {
		t.Fatalf("notices %+v %v", n, err)
	}
	n, _ = e.Svc.Notices(ctx, wallettest.POS, 1)
	if len(n.Payments) != 1 || n.Payments[0].Seq != 2 {
		t.Fatalf("notices after 1: %+v", n)
	}
	n, _ = e.Svc.Notices(ctx, wallettest.CardBox, 0)
	if len(n.Payments) != 0 {
		t.Fatalf("other terminal sees %+v", n)
	}
	e.Check()
}

func TestTerminalsAndConfig(t *testing.T) {
	e := wallettest.New(t)
	if !e.Svc.AuthenticateTerminal(ctx, wallettest.POS, e.TerminalPasswords[wallettest.POS]) {
		t.Fatal("right broker password refused")
	}
	if e.Svc.AuthenticateTerminal(ctx, wallettest.POS, e.TerminalPasswords[wallettest.CardBox]) || e.Svc.AuthenticateTerminal(ctx, "nobody", "x") {
		t.Fatal("wrong broker password accepted")
	}
	if !e.Svc.AuthenticateTerminal(ctx, wallettest.POS, e.TerminalPasswords[wallettest.POS]) {
		t.Fatal("right broker password refused the second time")
	}
	// New credentials: the old password stops working at once.
	pw, err := e.Svc.AddTerminal(ctx, wallet.Terminal{ID: wallettest.POS, Merchant: wallettest.Merchant, Mode: protocol.ModePOS})
	if err != nil {
		t.Fatal(err)
	}
	if e.Svc.AuthenticateTerminal(ctx, wallettest.POS, e.TerminalPasswords[wallettest.POS]) || !e.Svc.AuthenticateTerminal(ctx, wallettest.POS, pw) {
		t.Fatal("re-issued credentials")
	}
	ts, err := e.Svc.Terminals(ctx)
	if err != nil || len(ts) != 4 {
		t.Fatalf("terminals %v %v", ts, err)
	}
	c, err := e.Svc.TerminalConfig(ctx, wallettest.Shower)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != protocol.ModeShower || c.Tariff == nil || c.Tariff.Hold != 2000 || c.MerchantName != "云谷食堂" || len(c.IssuerKeys) != 1 || c.SealKey == "" {
		t.Fatalf("config %+v", c)
	}
	m, err := protocol.VerifyMerchantQR(c.MerchantQR, e.Svc.IssuerKeys())
	if err != nil || m.Terminal != wallettest.Shower || m.Merchant != wallettest.Merchant {
		t.Fatalf("merchant QR %+v %v", m, err)
	}
	if _, err := protocol.Encode(c); err != nil {
		t.Fatal(err)
	}
	_, err = e.Svc.TerminalConfig(ctx, "nope")
	wantErr(t, err, protocol.ErrTerminalUnknown)
}

func TestShowerLimits(t *testing.T) {
	for _, tc := range []struct {
		perTx, daily int64
		want         *protocol.Reason
		hold         int64
	}{
		{1499, 100_00, protocol.ErrLimitPerTx, 0},
		{1500, 100_00, nil, 1500},
		{100_00, 1499, protocol.ErrLimitDaily, 0},
		{100_00, 1500, nil, 1500},
		{100_00, 1700, nil, 1700},
	} {
		t.Run(fmt.Sprint(tc.perTx, "/", tc.daily), func(t *testing.T) {
			e := wallettest.New(t)
			s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
			// Set in the store: SetLimits now refuses a daily limit below
			// the per-payment one, but accounts from before may hold one.
			u, err := e.Store.User(ctx, s.ID)
			if err != nil {
				t.Fatal(err)
			}
			u.LimitPerTx, u.LimitDaily = tc.perTx, tc.daily
			wantErr(t, e.Store.UpdateUser(ctx, u), nil)
			r := e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))
			if tc.want != nil {
				wantResp(t, r, protocol.StatusDeclined, tc.want)
				return
			}
			wantResp(t, r, protocol.StatusHeld, nil)
			if r.Hold != tc.hold {
				t.Fatalf("hold %d, want %d", r.Hold, tc.hold)
			}
		})
	}
}

// A device revoked in the store behind this Service's back (the admin CLI,
// another authorizer) is refused at its next payment: the payment reads
// the device with its student, from the store. The refusal is no one's
// record, not a line of the student's history.
func TestRevokedElsewhereRefusedAtOnce(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 100), protocol.StatusApproved, nil)
	code := e.PayCode(s)
	c, _ := protocol.ParseCode(code)
	if err := e.Store.RevokeDevice(ctx, c.Cert.DeviceID, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	p := &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.POS,
		At: e.Clock.Now(), Amount: 100, Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}}
	wantResp(t, e.Svc.HandleRequest(ctx, p), protocol.StatusDeclined, protocol.ErrDeviceRevoked)
	rec, err := e.Store.Record(ctx, "T:"+wallettest.POS+":"+string(p.Tx))
	if err != nil || rec == nil || rec.UserID != 0 || rec.Code != protocol.ErrDeviceRevoked.Code {
		t.Fatalf("the refusal's record: %+v %v", rec, err)
	}
	rs, err := e.Store.Records(ctx, s.ID, 0, 10)
	if err != nil || len(rs) != 2 { // the payment and the top-up
		t.Fatalf("the student's history: %+v %v", rs, err)
	}
	for _, r := range rs {
		if r.Status != protocol.StatusApproved {
			t.Fatalf("the student's history holds %s %s", r.Key, r.Code)
		}
	}
	e.Check()
}
