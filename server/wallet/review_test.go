package wallet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	banksim "campuspay/hwsim/bank"
	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// Tests of the fixes from the payments review of the wallet.

// cancelBehindTheBack marks a wallet cancelled directly in the store, as a
// wallet cancelled before Cancel waited for transactions in progress
// would be: the state the re-checks of resume and Recover guard against.
func cancelBehindTheBack(t *testing.T, e *wallettest.Env, s *wallettest.Student) {
	t.Helper()
	u, err := e.Store.User(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.State = wallet.StateCancelled
	if err := e.Store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
}

func lastRecord(t *testing.T, e *wallettest.Env, s *wallettest.Student, kind string) wallet.Record {
	t.Helper()
	recs, err := e.Svc.Transactions(ctx, s.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Kind == kind {
			return r
		}
	}
	t.Fatalf("no %s record", kind)
	return wallet.Record{}
}

// Finding 1: a cancellation waits for transactions in progress.
func TestCancelRefusedWhileTransactionInProgress(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00})
	tx := e.TxID()
	e.Bank.FailNext(2, 503)
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 50_00)), protocol.StatusPending, protocol.ErrBankUnavailable)
	wantErr(t, e.Svc.Cancel(ctx, s.ID), protocol.ErrTxInProgress)
	if v, _ := e.Svc.Wallet(ctx, s.ID); v.State != "active" {
		t.Fatalf("state %s after a refused cancellation", v.State)
	}
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS)), protocol.StatusApproved, nil)
	wantErr(t, e.Svc.Cancel(ctx, s.ID), nil)
	if e.Balance(s) != 0 || e.BankBalance(s) != 100_00-50_00 {
		t.Fatalf("wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	e.Check()
}

// Finding 1: a payment in doubt of a wallet cancelled meanwhile is given
// back and declined, not completed.
func TestResumeRefusesCancelledWallet(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	tx := e.TxID()
	e.Bank.FailNext(2, 503)
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 30_00)), protocol.StatusPending, protocol.ErrBankUnavailable)
	cancelBehindTheBack(t, e, s)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS)), protocol.StatusDeclined, protocol.ErrWalletCancelled)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS)), protocol.StatusDeclined, protocol.ErrWalletCancelled)
	if e.BankBalance(s) != 100_00 || e.Balance(s) != 0 {
		t.Fatalf("bank %d wallet %d: the payment of a cancelled wallet moved money", e.BankBalance(s), e.Balance(s))
	}
	e.Check()
}

// Finding 1: Recover declines a scan-pay and undoes a top-up whose wallet
// was cancelled meanwhile instead of completing them.
func TestRecoverRefusesCancelledWallet(t *testing.T) {
	e := wallettest.New(t)
	svc, cl, _ := crashy(t, e)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	var qr string
	ts, err := e.Store.Terminals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range ts {
		if tm.ID == wallettest.POS {
			qr = tm.MerchantQR
		}
	}
	e.Bank.FailNext(2, 503)
	if _, err := svc.ScanPay(ctx, s.ID, "sp", qr, 20_00, s.PayPW); !strings.Contains(fmt.Sprint(err), protocol.ErrBankUnavailable.Code) {
		t.Fatalf("scan-pay err %v", err)
	}
	cl.prefix = "topup:"
	if _, err := svc.TopUp(ctx, s.ID, "tu", 30_00); err == nil {
		t.Fatal("top-up did not crash")
	}
	if e.BankBalance(s) != 70_00 {
		t.Fatalf("bank %d: the top-up's debit should have happened before the crash", e.BankBalance(s))
	}
	cancelBehindTheBack(t, e, s)
	e.Clock.Advance(wallet.RecoverAfter + time.Second)
	if n, err := svc.Recover(ctx, wallet.RecoverAfter); n != 2 || err != nil {
		t.Fatalf("recovered %d: %v", n, err)
	}
	if e.BankBalance(s) != 100_00 || e.Balance(s) != 0 {
		t.Fatalf("bank %d wallet %d after recovering into a cancelled wallet", e.BankBalance(s), e.Balance(s))
	}
	for _, kind := range []string{wallet.KindScanPay, wallet.KindTopUp} {
		if r := lastRecord(t, e, s, kind); r.Status != protocol.StatusDeclined || r.Code != protocol.ErrWalletCancelled.Code {
			t.Fatalf("%s record %s/%s", kind, r.Status, r.Code)
		}
	}
	e.Check()
}

// Finding 1: money that lands in a cancelled wallet (a payment reversed
// after the cancellation) can be withdrawn to the bound card.
func TestWithdrawFromCancelledWallet(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00})
	tx := e.TxID()
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 10_00)), protocol.StatusApproved, nil)
	wantErr(t, e.Svc.Cancel(ctx, s.ID), nil)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
	if e.Balance(s) != 10_00 {
		t.Fatalf("wallet %d after the reversal", e.Balance(s))
	}
	if _, err := e.Svc.Withdraw(ctx, s.ID, "rest", 10_00); err != nil {
		t.Fatal(err)
	}
	if e.Balance(s) != 0 || e.BankBalance(s) != 100_00 {
		t.Fatalf("wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	// Still nothing else works on a cancelled wallet.
	_, err := e.Svc.TopUp(ctx, s.ID, "again", 1_00)
	wantErr(t, err, protocol.ErrWalletCancelled)
	e.Check()
}

// Finding 2: the app's Idempotency-Key cannot reach a cancellation's
// withdrawal.
func TestCancelWithdrawalOwnNamespace(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00})
	if _, err := e.Svc.Withdraw(ctx, s.ID, fmt.Sprintf("cancel-%d-0", s.ID), 10_00); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Svc.Cancel(ctx, s.ID), nil)
	if e.Balance(s) != 0 || e.BankBalance(s) != 100_00 {
		t.Fatalf("wallet %d bank %d: the cancellation did not withdraw the rest", e.Balance(s), e.BankBalance(s))
	}
	e.Check()
}

// Finding 2: a declined cancellation withdrawal is not replayed forever.
func TestCancelRetriesAfterDeclinedWithdrawal(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00})
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, true); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Svc.Cancel(ctx, s.ID), protocol.ErrBankDeclined)
	if e.Balance(s) != 30_00 {
		t.Fatalf("wallet %d after a declined cancellation", e.Balance(s))
	}
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, false); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Svc.Cancel(ctx, s.ID), nil)
	if e.Balance(s) != 0 || e.BankBalance(s) != 100_00 {
		t.Fatalf("wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	// Re-opened and cancelled again: a new cycle, a new withdrawal.
	wantErr(t, e.Svc.Reopen(ctx, s.ID), nil)
	if _, err := e.Svc.TopUp(ctx, s.ID, "t2", 5_00); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Svc.Cancel(ctx, s.ID), nil)
	if e.Balance(s) != 0 || e.BankBalance(s) != 100_00 {
		t.Fatalf("wallet %d bank %d after the second cancellation", e.Balance(s), e.BankBalance(s))
	}
	e.Check()
}

// Finding 3: the daily limit counts active shower holds and payments
// still pending.
func TestDailyLimitCountsHoldsAndPending(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 500_00, TopUp: 50_00})
	wantErr(t, e.Svc.SetLimits(ctx, s.ID, 100_00, 100_00), nil)
	hold := e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))
	wantResp(t, hold, protocol.StatusHeld, nil)
	if hold.Hold != 20_00 {
		t.Fatalf("hold %d", hold.Hold)
	}
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 95_00), protocol.StatusDeclined, protocol.ErrLimitDaily)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(s), 80_00), protocol.StatusApproved, nil) // exactly at the limit

	p := e.AddStudent(wallettest.Options{BankBalance: 500_00})
	wantErr(t, e.Svc.SetLimits(ctx, p.ID, 100_00, 100_00), nil)
	e.Bank.FailNext(2, 503)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(p), 60_00), protocol.StatusPending, protocol.ErrBankUnavailable)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, e.PayCode(p), 50_00), protocol.StatusDeclined, protocol.ErrLimitDaily)
	e.Check()
}

// Finding 4: the card holder must be the student on the roster.
func TestBindCardHolderMustBeStudent(t *testing.T) {
	e := wallettest.New(t)
	var id string
	for n := 0; ; n++ {
		if id = wallettest.IDNumber(fmt.Sprintf("11010519900101%03d", n)); strings.HasSuffix(id, "X") {
			break
		}
	}
	if _, err := e.Svc.ImportStudent(ctx, wallet.RosterEntry{StudentNo: "20269001", Name: "张三", IDNumber: id,
		Phone: "13800009001", Campus: wallettest.Campus, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	u, err := e.Store.UserByStudentNo(ctx, "20269001")
	if err != nil {
		t.Fatal(err)
	}
	// Another person's card, with that person's details: the bank agrees.
	other := banksim.Account{BankCode: "CCB", CardNumber: banksim.LuhnComplete("621700888800001"), Name: "李四",
		IDNumber: wallettest.IDNumber("11010519900101777"), Phone: "13800009002"}
	// The student's own card; the bank knows a newer phone than the roster.
	own := banksim.Account{BankCode: "CCB", CardNumber: banksim.LuhnComplete("621700888800002"), Name: "张三",
		IDNumber: id, Phone: "13900009001"}
	for _, a := range []banksim.Account{other, own} {
		if err := e.Bank.AddAccount(a); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		r    wallet.BindRequest
		want *protocol.Reason
	}{
		{"other's card", wallet.BindRequest{BankCode: "CCB", CardNumber: other.CardNumber, Name: other.Name, IDNumber: other.IDNumber, Phone: other.Phone}, protocol.ErrHolderNotStudent},
		{"other name", wallet.BindRequest{BankCode: "CCB", CardNumber: own.CardNumber, Name: "李四", Phone: own.Phone}, protocol.ErrHolderNotStudent},
		{"other id", wallet.BindRequest{BankCode: "CCB", CardNumber: own.CardNumber, IDNumber: other.IDNumber, Phone: own.Phone}, protocol.ErrHolderNotStudent},
		{"roster phone", wallet.BindRequest{BankCode: "CCB", CardNumber: own.CardNumber}, protocol.ErrBankPhoneMismatch},
		{"own, lower-case x, bank's phone", wallet.BindRequest{BankCode: "CCB", CardNumber: own.CardNumber, Name: "张三", IDNumber: strings.ToLower(id), Phone: own.Phone}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, e.Svc.BindCard(ctx, u.ID, tc.r), tc.want) })
	}
	if v, _ := e.Svc.Wallet(ctx, u.ID); v.State != "active" || !strings.HasSuffix(own.CardNumber, v.BankCard[len(v.BankCard)-4:]) {
		t.Fatalf("wallet %+v", v)
	}
}

// Finding 5: voiding a declined shower hold keeps the decline and its
// reason.
func TestDeclinedHoldKeepsReason(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00})
	hold := e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))
	wantResp(t, hold, protocol.StatusDeclined, protocol.ErrShowerBalanceLow)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpVoid, hold.Tx, wallettest.Shower)), protocol.StatusDeclined, protocol.ErrShowerBalanceLow)
	// The box journals the shower that never ran.
	ack := e.Svc.ApplyJournal(ctx, &protocol.JournalEntry{V: 1, Terminal: wallettest.Shower, Seq: 1, Tx: hold.Tx, Kind: protocol.EntryShower, At: e.Clock.Now()})
	if ack == nil || !ack.OK {
		t.Fatalf("ack %+v", ack)
	}
	if r := lastRecord(t, e, s, wallet.KindShower); r.Status != protocol.StatusDeclined || r.Code != protocol.ErrShowerBalanceLow.Code {
		t.Fatalf("shower record %s/%s, want declined/%s", r.Status, r.Code, protocol.ErrShowerBalanceLow.Code)
	}
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, hold.Tx, wallettest.Shower)), protocol.StatusDeclined, protocol.ErrShowerBalanceLow)
	e.Check()
}

// Finding 6: bounding the failed-login memory never drops an active lockout.
func TestLoginLockoutSurvivesEviction(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{Inactive: true})
	e.Svc.SetMaxLoginFails(3)
	for i := 0; i < wallet.PasswordTries; i++ {
		e.Svc.Login(ctx, s.No, "wrong")
	}
	_, err := e.Svc.Login(ctx, s.No, s.Password)
	wantErr(t, err, protocol.ErrLoginLocked)
	for i := 0; i < 10; i++ { // a guesser spreading over many numbers
		_, err := e.Svc.Login(ctx, fmt.Sprintf("3000%04d", i), "wrong")
		wantErr(t, err, protocol.ErrLoginFailed)
	}
	_, err = e.Svc.Login(ctx, s.No, s.Password)
	wantErr(t, err, protocol.ErrLoginLocked)
	e.Clock.Advance(e.Config.PasswordLock)
	if _, err := e.Svc.Login(ctx, s.No, s.Password); err != nil {
		t.Fatalf("after the cool-down: %v", err)
	}
}

// staleStore changes a user behind the back of whoever read it by WeChat
// openid: a concurrent update the reader's copy does not see.
type staleStore struct {
	wallet.Store
	change func(u *wallet.User)
}

func (s *staleStore) UserByOpenID(ctx context.Context, openID string) (*wallet.User, error) {
	u, err := s.Store.UserByOpenID(ctx, openID)
	if err == nil && s.change != nil {
		fresh := *u
		s.change(&fresh)
		if err := s.Store.UpdateUser(ctx, &fresh); err != nil {
			return nil, err
		}
	}
	return u, err
}

// Finding 7: linking a WeChat identity clears it from its previous student
// and touches nothing else of that student.
func TestLinkWeChatClearsOnlyTheOpenID(t *testing.T) {
	e := wallettest.New(t)
	a := e.AddStudent(wallettest.Options{})
	b := e.AddStudent(wallettest.Options{})
	code, err := e.WeChat.NewLoginCode(b.OpenID)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Svc.LinkWeChat(ctx, b.ID, code), nil)
	st := &staleStore{Store: e.Store, change: func(u *wallet.User) { u.LimitDaily = 123_00 }}
	d := e.Deps
	d.Store = st
	svc, err := wallet.New(e.Config, e.Keys, d)
	if err != nil {
		t.Fatal(err)
	}
	// One WeChat account, now used by a.
	if code, err = e.WeChat.NewLoginCode(b.OpenID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, svc.LinkWeChat(ctx, a.ID, code), nil)
	ub, err := e.Store.User(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ub.WeChatOpenID != "" || ub.LimitDaily != 123_00 {
		t.Fatalf("b after a linked its WeChat: openid %q, daily limit %d (a concurrent change was overwritten)", ub.WeChatOpenID, ub.LimitDaily)
	}
	if ua, _ := e.Store.User(ctx, a.ID); ua.WeChatOpenID != b.OpenID {
		t.Fatalf("a's openid %q", ua.WeChatOpenID)
	}
}
