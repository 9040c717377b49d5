package wallet_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

var errCrash = errors.New("injected crash")

// crashLedger fails the next Post whose key has the given prefix, before
// it reaches the store: the process "died" just before the ledger write.
type crashLedger struct {
	ledger.Store
	mu     sync.Mutex
	prefix string
}

func (l *crashLedger) Post(ctx context.Context, t ledger.Transfer) (ledger.Result, error) {
	l.mu.Lock()
	hit := l.prefix != "" && strings.HasPrefix(t.Key, l.prefix)
	if hit {
		l.prefix = ""
	}
	l.mu.Unlock()
	if hit {
		return ledger.Result{}, errCrash
	}
	return l.Store.Post(ctx, t)
}

// crashStore fails the next PutRecord that records the given status: the
// process "died" after the money moved, before the result was recorded.
type crashStore struct {
	wallet.Store
	mu     sync.Mutex
	status protocol.Status
}

func (s *crashStore) PutRecord(ctx context.Context, r *wallet.Record) error {
	s.mu.Lock()
	hit := s.status != "" && r.Status == s.status
	if hit {
		s.status = ""
	}
	s.mu.Unlock()
	if hit {
		return errCrash
	}
	return s.Store.PutRecord(ctx, r)
}

func crashy(t *testing.T, e *wallettest.Env) (*wallet.Service, *crashLedger, *crashStore) {
	cl := &crashLedger{Store: e.Ledger}
	cs := &crashStore{Store: e.Store}
	d := e.Deps
	d.Ledger, d.Store = cl, cs
	svc, err := wallet.New(e.Config, e.Keys, d)
	if err != nil {
		t.Fatal(err)
	}
	return svc, cl, cs
}

func TestCrashBetweenBankDebitAndLedger(t *testing.T) {
	e := wallettest.New(t)
	svc, cl, _ := crashy(t, e)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	p := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 30_00)
	cl.prefix = "paycard:"
	r := svc.HandleRequest(ctx, p)
	wantResp(t, r, protocol.StatusDeclined, protocol.ErrInternal)
	if e.BankBalance(s) != 70_00 {
		t.Fatalf("bank %d: the debit should have happened before the crash", e.BankBalance(s))
	}
	// The terminal retries the same transaction: the debit is not repeated.
	r = svc.HandleRequest(ctx, p)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBankCard || e.BankBalance(s) != 70_00 {
		t.Fatalf("%+v bank %d", r, e.BankBalance(s))
	}
	e.Check()
}

func TestCrashAfterLedgerBeforeRecord(t *testing.T) {
	e := wallettest.New(t)
	svc, _, cs := crashy(t, e)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 40_00})
	p := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 30_00)
	cs.status = protocol.StatusApproved
	wantResp(t, svc.HandleRequest(ctx, p), protocol.StatusDeclined, protocol.ErrInternal)
	if e.Balance(s) != 10_00 {
		t.Fatalf("balance %d", e.Balance(s))
	}
	// The retry finds the intent (channel balance) and does not switch to
	// the bank card although the balance no longer covers the amount.
	r := svc.HandleRequest(ctx, p)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBalance || e.Balance(s) != 10_00 || e.BankBalance(s) != 60_00 {
		t.Fatalf("%+v balance %d bank %d", r, e.Balance(s), e.BankBalance(s))
	}
	// A reversal of the in-doubt payment refunds it exactly once.
	p2 := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 5_00)
	cs.status = protocol.StatusApproved
	wantResp(t, svc.HandleRequest(ctx, p2), protocol.StatusDeclined, protocol.ErrInternal)
	wantResp(t, svc.HandleRequest(ctx, req(e, protocol.OpReverse, p2.Tx, wallettest.POS)), protocol.StatusReversed, nil)
	if e.Balance(s) != 10_00 {
		t.Fatalf("balance after reversing %d", e.Balance(s))
	}
	e.Check()
}

func TestCrashDuringTopUpAndWithdraw(t *testing.T) {
	e := wallettest.New(t)
	svc, cl, _ := crashy(t, e)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	cl.prefix = "topup:"
	if _, err := svc.TopUp(ctx, s.ID, "k", 50_00); !errors.Is(err, errCrash) {
		t.Fatalf("err %v", err)
	}
	if _, err := svc.TopUp(ctx, s.ID, "k", 50_00); err != nil {
		t.Fatal(err)
	}
	if e.Balance(s) != 50_00 || e.BankBalance(s) != 50_00 {
		t.Fatalf("wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	// The bank gives no answer to the credit: the retry completes it once.
	e.Bank.FailNext(2, 503)
	_, err := svc.Withdraw(ctx, s.ID, "w", 20_00)
	wantErr(t, err, protocol.ErrBankUnavailable)
	if _, err := svc.Withdraw(ctx, s.ID, "w", 20_00); err != nil {
		t.Fatal(err)
	}
	if e.Balance(s) != 30_00 || e.BankBalance(s) != 70_00 {
		t.Fatalf("wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	// A definite refusal of the credit (frozen card) puts the money back.
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, true); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Withdraw(ctx, s.ID, "w2", 10_00)
	wantErr(t, err, protocol.ErrBankDeclined)
	if e.Balance(s) != 30_00 {
		t.Fatalf("wallet after a refused withdrawal %d", e.Balance(s))
	}
	e.Check()
}

func TestRecoverSettlesUnfinished(t *testing.T) {
	e := wallettest.New(t)
	svc, cl, _ := crashy(t, e)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00})
	// A top-up whose client never came back after a crash.
	cl.prefix = "topup:"
	if _, err := svc.TopUp(ctx, s.ID, "lost", 20_00); !errors.Is(err, errCrash) {
		t.Fatalf("err %v", err)
	}
	// A withdrawal whose bank credit got no answer.
	e.Bank.FailNext(2, 503)
	if _, err := svc.Withdraw(ctx, s.ID, "w", 5_00); !errors.Is(err, protocol.ErrBankUnavailable) {
		t.Fatalf("err %v", err)
	}
	// A card payment left pending by a bank outage, its terminal gone.
	tx := e.TxID()
	e.Bank.FailNext(2, 503)
	wantResp(t, svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 50_00)), protocol.StatusPending, protocol.ErrBankUnavailable)
	if n, err := svc.Recover(ctx, wallet.RecoverAfter); n != 0 || err != nil {
		t.Fatalf("recovered %d %v before the delay", n, err)
	}
	e.Clock.Advance(wallet.RecoverAfter + time.Second)
	n, err := svc.Recover(ctx, wallet.RecoverAfter)
	if err != nil || n != 3 {
		t.Fatalf("recovered %d: %v", n, err)
	}
	if e.Balance(s) != 10_00+20_00-5_00 || e.BankBalance(s) != 100_00-10_00-20_00+5_00 {
		t.Fatalf("wallet %d bank %d", e.Balance(s), e.BankBalance(s))
	}
	wantResp(t, svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS)), protocol.StatusReversed, nil)
	if n, err := svc.Recover(ctx, wallet.RecoverAfter); n != 0 || err != nil {
		t.Fatalf("second recover %d %v", n, err)
	}
	e.Check()
}

func TestRecoverFinishesReversal(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	tx := e.TxID()
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 40_00)), protocol.StatusApproved, nil)
	e.Bank.FailNext(2, 503)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusDeclined, protocol.ErrBankUnavailable)
	// Asked for, so answered as reversed; the money is still owed.
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS)), protocol.StatusReversed, nil)
	if e.BankBalance(s) != 60_00 {
		t.Fatalf("bank %d", e.BankBalance(s))
	}
	e.Clock.Advance(wallet.RecoverAfter + time.Second)
	if n, err := e.Svc.Recover(ctx, wallet.RecoverAfter); n != 1 || err != nil {
		t.Fatalf("recover %d %v", n, err)
	}
	if e.BankBalance(s) != 100_00 {
		t.Fatalf("bank after recover %d", e.BankBalance(s))
	}
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
	if e.BankBalance(s) != 100_00 {
		t.Fatalf("bank after a repeated reversal %d", e.BankBalance(s))
	}
	e.Check()
}

// TestAnswerFirst: HandleRequestFirst answers a balance payment once its
// transfer is posted and leaves the record's final write to finish, which
// holds the transaction until it is done. A crash before finish (the
// answer already published) leaves the record processing with its
// transfer posted: Recover completes it as approved and charges nothing
// twice, where an unposted one in doubt is still reversed.
// (Three writes: the ledger in its own file, as a first-release data
// folder keeps it; TestPayOneCommit is the one-file layout.)
func TestAnswerFirst(t *testing.T) {
	e := wallettest.NewTwoFiles(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	p := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 12_00)
	r, finish := e.Svc.HandleRequestFirst(ctx, p)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBalance || r.Balance == nil || *r.Balance != 38_00 || e.Balance(s) != 38_00 {
		t.Fatalf("%+v balance %d", r, e.Balance(s))
	}
	key := "T:" + wallettest.POS + ":" + string(p.Tx)
	if rec, err := e.Store.Record(ctx, key); err != nil || rec.Status != wallet.StatusProcessing {
		t.Fatalf("before finish: %+v %v, want the intent still processing", rec, err)
	}
	// A query of the same transaction started before finish is answered
	// approved (it waits for the transaction's lock, or resumes the intent
	// from the posted transfer) and charges nothing more.
	queried := make(chan *protocol.Response)
	go func() { queried <- e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, p.Tx, wallettest.POS)) }()
	finish()
	q := <-queried
	wantResp(t, q, protocol.StatusApproved, nil)
	if rec, err := e.Store.Record(ctx, key); err != nil || rec.Status != protocol.StatusApproved {
		t.Fatalf("after finish: %+v %v", rec, err)
	}
	// A crash after the answer, before finish: a new process over the same
	// files finds the intent and the posted transfer.
	p2 := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 8_00)
	r2, _ := e.Svc.HandleRequestFirst(ctx, p2) // finish never runs
	wantResp(t, r2, protocol.StatusApproved, nil)
	svc, err := wallet.New(e.Config, e.Keys, e.Deps)
	if err != nil {
		t.Fatal(err)
	}
	// And a payment in doubt whose transfer was never posted.
	cl := &crashLedger{Store: e.Ledger, prefix: "pay:"}
	d := e.Deps
	d.Ledger = cl
	dying, err := wallet.New(e.Config, e.Keys, d)
	if err != nil {
		t.Fatal(err)
	}
	p3 := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 5_00)
	wantResp(t, dying.HandleRequest(ctx, p3), protocol.StatusDeclined, protocol.ErrInternal)
	e.Clock.Advance(wallet.RecoverAfter + time.Second)
	if n, err := svc.Recover(ctx, wallet.RecoverAfter); n != 2 || err != nil {
		t.Fatalf("recovered %d: %v", n, err)
	}
	wantResp(t, svc.HandleRequest(ctx, req(e, protocol.OpQuery, p2.Tx, wallettest.POS)), protocol.StatusApproved, nil)
	wantResp(t, svc.HandleRequest(ctx, req(e, protocol.OpQuery, p3.Tx, wallettest.POS)), protocol.StatusReversed, nil)
	if e.Balance(s) != 50_00-12_00-8_00 {
		t.Fatalf("balance %d, want each approval charged once and the one in doubt not at all", e.Balance(s))
	}
	e.Check()
}

// A payment answered first whose reversal refunded it but crashed before
// recording it has both transfers posted and is still processing: Recover
// finishes it as the reversal it was, not as an approval.
func TestRecoverAnsweredThenRefunded(t *testing.T) {
	e := wallettest.NewTwoFiles(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	p := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 12_00)
	r, _ := e.Svc.HandleRequestFirst(ctx, p) // the process dies before finish
	wantResp(t, r, protocol.StatusApproved, nil)
	after, _, cs := crashy(t, e) // the next process
	cs.status = protocol.StatusReversed
	wantResp(t, after.HandleRequest(ctx, req(e, protocol.OpReverse, p.Tx, wallettest.POS)), protocol.StatusDeclined, protocol.ErrInternal)
	if e.Balance(s) != 50_00 {
		t.Fatalf("balance %d: the refund should be posted", e.Balance(s))
	}
	e.Clock.Advance(wallet.RecoverAfter + time.Second)
	if n, err := after.Recover(ctx, wallet.RecoverAfter); n != 1 || err != nil {
		t.Fatalf("recovered %d: %v", n, err)
	}
	wantResp(t, after.HandleRequest(ctx, req(e, protocol.OpQuery, p.Tx, wallettest.POS)), protocol.StatusReversed, nil)
	if e.Balance(s) != 50_00 {
		t.Fatalf("balance %d after recovery, want the refund once", e.Balance(s))
	}
	e.Check()
}

// With the ledger inside wallet.db (wallet.PaymentStore), a balance
// payment's code mark, daily-limit check, transfer and final record are
// one transaction: the record is final before the answer goes out (there
// is no intent for a crash to leave behind), and a refusal inside that
// transaction writes none of it.
func TestPayOneCommit(t *testing.T) {
	e := wallettest.New(t)
	if !e.Store.PaysInto(e.Ledger) {
		t.Fatal("the test back end should keep the ledger inside wallet.db")
	}
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	code := e.PayCode(s)
	p := payReq(e, e.TxID(), protocol.CredCode, code, 12_00)
	r, finish := e.Svc.HandleRequestFirst(ctx, p)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBalance || r.Balance == nil || *r.Balance != 38_00 || e.Balance(s) != 38_00 {
		t.Fatalf("%+v balance %d", r, e.Balance(s))
	}
	key := "T:" + wallettest.POS + ":" + string(p.Tx)
	rec, err := e.Store.Record(ctx, key)
	if err != nil || rec.Status != protocol.StatusApproved || rec.Channel != protocol.ChannelBalance || rec.Amount != 12_00 {
		t.Fatalf("before finish: %+v %v, want the record final", rec, err)
	}
	finish()
	// Replayed from the record, charged once.
	wantResp(t, e.Svc.HandleRequest(ctx, p), protocol.StatusApproved, nil)
	if e.Balance(s) != 38_00 {
		t.Fatalf("balance %d after a retry", e.Balance(s))
	}
	// The same code on another transaction: refused, nothing charged.
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, code, 1_00)), protocol.StatusDeclined, protocol.ErrCodeUsed)
	// Over the daily limit: refused inside the transaction; the code is
	// not spent and nothing is charged.
	if err := e.Svc.SetLimits(ctx, s.ID, 20_00, 20_00); err != nil {
		t.Fatal(err)
	}
	code2 := e.PayCode(s)
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, code2, 9_00)), protocol.StatusDeclined, protocol.ErrLimitDaily)
	if e.Balance(s) != 38_00 {
		t.Fatalf("balance %d after a refusal", e.Balance(s))
	}
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, code2, 8_00)), protocol.StatusApproved, nil)
	// A request whose time for money to move ends a nanosecond after it
	// is checked: the writer reaches it too late and refuses it — nothing
	// charged, and its code still pays.
	if err := e.Svc.SetLimits(ctx, s.ID, 50_00, 100_00); err != nil {
		t.Fatal(err)
	}
	code3 := e.PayCode(s)
	late := payReq(e, e.TxID(), protocol.CredCode, code3, 1_00)
	late.At = e.Clock.Now().Add(-(time.Duration(e.Config.AuthTimeoutMS)*time.Millisecond - e.Svc.DeadlineMargin()) + time.Nanosecond)
	wantResp(t, e.Svc.HandleRequest(ctx, late), protocol.StatusDeclined, protocol.ErrDeadline)
	if e.Balance(s) != 30_00 {
		t.Fatalf("balance %d after a payment refused at its deadline", e.Balance(s))
	}
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, code3, 1_00)), protocol.StatusApproved, nil)
	// A balance short of the amount: the transfer's own check refuses it
	// inside the transaction (no balance is read before it), and the bound
	// card pays the whole amount (three writes).
	if err := e.Svc.SetLimits(ctx, s.ID, 50_00, 100_00); err != nil {
		t.Fatal(err)
	}
	rc := e.Svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 45_00))
	wantResp(t, rc, protocol.StatusApproved, nil)
	if rc.Channel != protocol.ChannelBankCard || e.Balance(s) != 29_00 {
		t.Fatalf("%+v balance %d", rc, e.Balance(s))
	}
	e.Check()
}
