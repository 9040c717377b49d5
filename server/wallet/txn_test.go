package wallet_test

import (
	"sync"
	"testing"
	"time"

	wechatsim "campuspay/hwsim/wechat"
	"campuspay/protocol"
	"campuspay/server/wallet/wallettest"
)

func req(e *wallettest.Env, op protocol.Op, tx protocol.TxID, terminal string) *protocol.Request {
	return &protocol.Request{V: 1, Op: op, Tx: tx, Terminal: terminal, At: e.Clock.Now()}
}

func payReq(e *wallettest.Env, tx protocol.TxID, kind protocol.CredKind, text string, amount int64) *protocol.Request {
	r := req(e, protocol.OpPay, tx, wallettest.POS)
	r.Amount, r.Cred = amount, &protocol.Credential{Kind: kind, Text: text}
	return r
}

func TestIdempotentByTx(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	tx := e.TxID()
	p := payReq(e, tx, protocol.CredCode, e.PayCode(s), 12_50)
	first := e.Svc.HandleRequest(ctx, p)
	wantResp(t, first, protocol.StatusApproved, nil)
	again := e.Svc.HandleRequest(ctx, p)
	wantResp(t, again, protocol.StatusApproved, nil)
	if again.Amount != first.Amount || *again.Balance != *first.Balance || e.Balance(s) != 50_00-12_50 {
		t.Fatalf("repeat: %+v balance %d", again, e.Balance(s))
	}
	// Same Tx, different content.
	p2 := *p
	p2.Amount = 12_51
	wantResp(t, e.Svc.HandleRequest(ctx, &p2), protocol.StatusDeclined, protocol.ErrTxConflict)
	// Query.
	q := e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS))
	wantResp(t, q, protocol.StatusApproved, nil)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, e.TxID(), wallettest.POS)), protocol.StatusUnknown, nil)
	// The same Tx from another terminal is another transaction.
	p3 := *p
	p3.Terminal = wallettest.CardBox
	wantResp(t, e.Svc.HandleRequest(ctx, &p3), protocol.StatusDeclined, protocol.ErrCodeUsed)
	// Malformed requests.
	wantResp(t, e.Svc.HandleRequest(ctx, nil), protocol.StatusDeclined, protocol.ErrBadRequest)
	bad := *p
	bad.Amount = 0
	wantResp(t, e.Svc.HandleRequest(ctx, &bad), protocol.StatusDeclined, protocol.ErrBadRequest)
	bad = *p
	bad.Terminal = "nope"
	wantResp(t, e.Svc.HandleRequest(ctx, &bad), protocol.StatusDeclined, protocol.ErrTerminalUnknown)
	e.Check()
}

func TestReversal(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00})
	for _, tc := range []struct {
		name    string
		amount  int64
		channel string
	}{{"balance", 5_00, protocol.ChannelBalance}, {"bank card", 20_00, protocol.ChannelBankCard}} {
		t.Run(tc.name, func(t *testing.T) {
			wallet0, bank0 := e.Balance(s), e.BankBalance(s)
			tx := e.TxID()
			r := e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), tc.amount))
			wantResp(t, r, protocol.StatusApproved, nil)
			if r.Channel != tc.channel {
				t.Fatalf("channel %s", r.Channel)
			}
			for i := 0; i < 2; i++ { // reversing twice is idempotent
				rv := e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS))
				wantResp(t, rv, protocol.StatusReversed, nil)
				if rv.Amount != tc.amount {
					t.Fatalf("reversed amount %d", rv.Amount)
				}
			}
			if e.Balance(s) != wallet0 || e.BankBalance(s) != bank0 {
				t.Fatalf("after reversal wallet %d (was %d), bank %d (was %d)", e.Balance(s), wallet0, e.BankBalance(s), bank0)
			}
			wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS)), protocol.StatusReversed, nil)
			e.Check()
		})
	}
	t.Run("unseen", func(t *testing.T) {
		tx := e.TxID()
		wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
		before := e.Balance(s)
		wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 1_00)), protocol.StatusReversed, protocol.ErrTxReversed)
		wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
		if e.Balance(s) != before {
			t.Fatal("a payment after its reversal moved money")
		}
	})
	t.Run("declined", func(t *testing.T) {
		tx := e.TxID()
		wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.IdentityCode(s), 1_00)), protocol.StatusDeclined, protocol.ErrIdentityCode)
		wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
	})
	e.Check()
}

// A payment racing its own reversal ends consistently: either the payment
// was refused, or it was approved and refunded.
func TestPayRacesReversal(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	for i := 0; i < 10; i++ {
		tx := e.TxID()
		p := payReq(e, tx, protocol.CredCode, e.PayCode(s), 1_00)
		var wg sync.WaitGroup
		var pr, rr *protocol.Response
		wg.Add(2)
		go func() { defer wg.Done(); pr = e.Svc.HandleRequest(ctx, p) }()
		go func() { defer wg.Done(); rr = e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)) }()
		wg.Wait()
		wantResp(t, rr, protocol.StatusReversed, nil)
		if pr.Status != protocol.StatusApproved && pr.Status != protocol.StatusReversed {
			t.Fatalf("pay %+v", pr)
		}
		if e.Balance(s) != 50_00 {
			t.Fatalf("round %d: balance %d", i, e.Balance(s))
		}
	}
	e.Check()
}

// Concurrent payments from one wallet never overdraw it.
func TestConcurrentPaymentsOneWallet(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{TopUp: 10_00, BankBalance: 17_00})
	var wg sync.WaitGroup
	resps := make([]*protocol.Response, 16)
	codes := make([]string, len(resps))
	for i := range codes {
		codes[i] = e.PayCode(s)
	}
	if _, err := e.Svc.Withdraw(ctx, s.ID, "w", 1); err != nil {
		t.Fatal(err)
	}
	for i := range resps {
		wg.Add(1)
		go func() { defer wg.Done(); resps[i] = pay(e, wallettest.POS, protocol.CredCode, codes[i], 1_00) }()
	}
	wg.Wait()
	var fromBalance, fromCard int
	for _, r := range resps {
		if r.Status == protocol.StatusApproved && r.Channel == protocol.ChannelBalance {
			fromBalance++
		}
		if r.Status == protocol.StatusApproved && r.Channel == protocol.ChannelBankCard {
			fromCard++
		}
	}
	if fromBalance != 9 || e.Balance(s) != 99 || fromCard != 7 {
		t.Fatalf("balance %d after %d balance payments and %d card payments", e.Balance(s), fromBalance, fromCard)
	}
	e.Check()
}

func TestBankUnavailablePaymentIsPending(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	tx := e.TxID()
	e.Bank.FailNext(2, 503) // both attempts of the client
	r := e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 20_00))
	wantResp(t, r, protocol.StatusPending, protocol.ErrBankUnavailable)
	// The query repeats the debit under its key and resolves it.
	q := e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS))
	wantResp(t, q, protocol.StatusApproved, nil)
	if e.BankBalance(s) != 80_00 {
		t.Fatalf("bank %d", e.BankBalance(s))
	}
	// A pending payment reversed at the deadline gives the money back.
	tx = e.TxID()
	e.Bank.FailNext(2, 503)
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 30_00)), protocol.StatusPending, protocol.ErrBankUnavailable)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
	if e.BankBalance(s) != 80_00 {
		t.Fatalf("bank after reversing a pending payment %d", e.BankBalance(s))
	}
	e.Check()
}

func TestWeChat(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00})
	inactive := e.AddStudent(wallettest.Options{Inactive: true})
	login := func(st *wallettest.Student) string {
		c, err := e.WeChat.NewLoginCode(st.OpenID)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	wantErr(t, e.Svc.LinkWeChat(ctx, inactive.ID, login(inactive)), protocol.ErrWeChatNeedsWallet)
	code, _ := e.WeChat.NewPaymentCode(s.OpenID)
	wantResp(t, pay(e, wallettest.POS, protocol.CredWeChat, code, 5_00), protocol.StatusDeclined, protocol.ErrWeChatNotLinked)
	wantErr(t, e.Svc.LinkWeChat(ctx, s.ID, "bogus"), protocol.ErrWeChatCodeInvalid)
	wantErr(t, e.Svc.LinkWeChat(ctx, s.ID, login(s)), nil)

	code, _ = e.WeChat.NewPaymentCode(s.OpenID)
	r := pay(e, wallettest.POS, protocol.CredWeChat, code, 5_00)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelWeChat {
		t.Fatalf("channel %s", r.Channel)
	}
	if b, _ := e.WeChat.Balance(s.OpenID); b != 995_00 {
		t.Fatalf("wechat balance %d", b)
	}
	// A WeChat code scanned as a code credential is routed to WeChat too.
	code, _ = e.WeChat.NewPaymentCode(s.OpenID)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, code, 1_00), protocol.StatusApproved, nil)

	// USERPAYING: pending, the query follows it, the reversal undoes it.
	if err := e.WeChat.SetNeedsPassword(s.OpenID, true, 0); err != nil {
		t.Fatal(err)
	}
	tx := e.TxID()
	code, _ = e.WeChat.NewPaymentCode(s.OpenID)
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredWeChat, code, 3_00)), protocol.StatusPending, protocol.ErrUserPaying)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS)), protocol.StatusPending, protocol.ErrUserPaying)
	if err := e.WeChat.Confirm(string(tx)); err != nil {
		t.Fatal(err)
	}
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpQuery, tx, wallettest.POS)), protocol.StatusApproved, nil)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
	if b, _ := e.WeChat.Balance(s.OpenID); b != 994_00 {
		t.Fatalf("wechat balance after reversal %d", b)
	}
	tx = e.TxID()
	code, _ = e.WeChat.NewPaymentCode(s.OpenID)
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredWeChat, code, 3_00)), protocol.StatusPending, protocol.ErrUserPaying)
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
	if o, ok := e.WeChat.Order(string(tx)); !ok || o.State == "SUCCESS" {
		t.Fatalf("order after reversal %+v", o)
	}
	// After cancellation WeChat payments stop too: cancelling ends the link.
	if err := e.WeChat.SetNeedsPassword(s.OpenID, false, 0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Svc.Cancel(ctx, s.ID), nil)
	code, _ = e.WeChat.NewPaymentCode(s.OpenID)
	wantResp(t, pay(e, wallettest.POS, protocol.CredWeChat, code, 1_00), protocol.StatusDeclined, protocol.ErrWeChatNotLinked)
	_ = wechatsim.User{}
	e.Check()
}

func TestApplyJournal(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00})
	hold := e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))
	wantResp(t, hold, protocol.StatusHeld, nil)
	// The shower ended offline: the journal entry captures the hold.
	entry := &protocol.JournalEntry{V: 1, Terminal: wallettest.Shower, Seq: 7, Tx: hold.Tx, Kind: protocol.EntryShower,
		Status: protocol.StatusApproved, Amount: 6_40, ML: 64000, At: e.Clock.Now()}
	for i := 0; i < 2; i++ {
		ack := e.Svc.ApplyJournal(ctx, entry)
		if ack == nil || !ack.OK || ack.Seq != 7 {
			t.Fatalf("ack %+v", ack)
		}
	}
	if e.Balance(s) != 30_00-6_40 {
		t.Fatalf("balance %d", e.Balance(s))
	}
	// Captured online already: the entry is recorded, nothing more moves.
	hold2 := e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))
	wantResp(t, e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpCapture, Tx: hold2.Tx, Terminal: wallettest.Shower, Amount: 1_00}), protocol.StatusApproved, nil)
	if ack := e.Svc.ApplyJournal(ctx, &protocol.JournalEntry{V: 1, Terminal: wallettest.Shower, Seq: 8, Tx: hold2.Tx, Kind: protocol.EntryShower, Amount: 1_00}); ack == nil || !ack.OK {
		t.Fatalf("ack %+v", ack)
	}
	if e.Balance(s) != 30_00-7_40 {
		t.Fatalf("balance %d", e.Balance(s))
	}
	// Same seq, other content: refused.
	bad := *entry
	bad.Amount = 1
	if ack := e.Svc.ApplyJournal(ctx, &bad); ack == nil || ack.OK || ack.Code != protocol.ErrTxConflict.Code {
		t.Fatalf("conflicting entry ack %+v", ack)
	}
	// A reversal entry reverses the payment it names.
	tx := e.TxID()
	wantResp(t, e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 2_00)), protocol.StatusApproved, nil)
	if ack := e.Svc.ApplyJournal(ctx, &protocol.JournalEntry{V: 1, Terminal: wallettest.POS, Seq: 1, Tx: tx, Kind: protocol.EntryReversal}); ack == nil || !ack.OK {
		t.Fatalf("ack %+v", ack)
	}
	if e.Balance(s) != 30_00-7_40 {
		t.Fatalf("balance after journal reversal %d", e.Balance(s))
	}
	// A payment entry is recorded; an unknown hold is refused for good.
	if ack := e.Svc.ApplyJournal(ctx, &protocol.JournalEntry{V: 1, Terminal: wallettest.POS, Seq: 2, Tx: e.TxID(), Kind: protocol.EntryPayment, Status: protocol.StatusApproved, Amount: 1}); ack == nil || !ack.OK {
		t.Fatalf("ack %+v", ack)
	}
	if ack := e.Svc.ApplyJournal(ctx, &protocol.JournalEntry{V: 1, Terminal: wallettest.Shower, Seq: 9, Tx: e.TxID(), Kind: protocol.EntryShower, Amount: 1}); ack == nil || ack.OK || ack.Code != protocol.ErrHoldUnknown.Code {
		t.Fatalf("ack %+v", ack)
	}
	if ack := e.Svc.ApplyJournal(ctx, &protocol.JournalEntry{V: 1, Terminal: "ghost", Seq: 1, Tx: e.TxID(), Kind: protocol.EntryPayment}); ack == nil || ack.OK {
		t.Fatalf("ack %+v", ack)
	}
	e.Check()
}

// A payment by code is not looked up before it is tried (Service.firstTry):
// a retry is found when its try writes or calls out. Whatever has changed
// since the first try, a retry is answered as the first try was and moves
// no money.
func TestRetryFoundWithoutLookUp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		amount int64
		// before runs before the first try; between after it, changing
		// what would make the retry's own try go another way.
		before, between func(e *wallettest.Env, s *wallettest.Student)
	}{
		{name: "balance spent since: the card must not pay the retry", amount: 15_00,
			between: func(e *wallettest.Env, s *wallettest.Student) {
				// Another payment leaves 5.00 and the card pays its rest.
				r := e.Svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 5_00))
				wantResp(t, r, protocol.StatusApproved, nil)
			}},
		{name: "code expired since", amount: 12_00,
			between: func(e *wallettest.Env, s *wallettest.Student) { e.Clock.Advance(time.Hour) }},
		{name: "declined first, card usable since", amount: 30_00,
			before: func(e *wallettest.Env, s *wallettest.Student) {
				if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, true); err != nil {
					t.Fatal(err)
				}
			},
			between: func(e *wallettest.Env, s *wallettest.Student) {
				if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, false); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "transaction id reused for another amount", amount: 12_00},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := wallettest.New(t)
			s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
			if tc.before != nil {
				tc.before(e, s)
			}
			p := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), tc.amount)
			first := e.Svc.HandleRequest(ctx, p)
			if tc.between != nil {
				tc.between(e, s)
			}
			balance, bank := e.Balance(s), e.BankBalance(s)
			again := *p
			again.At = e.Clock.Now() // a terminal's retry is sent now
			if tc.between == nil {
				again.Amount++
				wantResp(t, e.Svc.HandleRequest(ctx, &again), protocol.StatusDeclined, protocol.ErrTxConflict)
			} else {
				r := e.Svc.HandleRequest(ctx, &again)
				if r.Status != first.Status || r.Code != first.Code || r.Amount != first.Amount || r.Channel != first.Channel ||
					(r.Balance == nil) != (first.Balance == nil) || (r.Balance != nil && *r.Balance != *first.Balance) {
					t.Fatalf("retry answered %+v, first try %+v", r, first)
				}
			}
			if e.Balance(s) != balance || e.BankBalance(s) != bank {
				t.Fatalf("the retry moved money: balance %d → %d, bank %d → %d", balance, e.Balance(s), bank, e.BankBalance(s))
			}
			e.Check()
		})
	}
}

// A reversal that arrives before its payment leaves a tombstone; the
// payment, not looked up first, finds it and moves nothing.
func TestPayAfterItsReversalNotLookedUp(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	tx := e.TxID()
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, tx, wallettest.POS)), protocol.StatusReversed, nil)
	r := e.Svc.HandleRequest(ctx, payReq(e, tx, protocol.CredCode, e.PayCode(s), 5_00))
	wantResp(t, r, protocol.StatusReversed, protocol.ErrTxReversed)
	if e.Balance(s) != 20_00 {
		t.Fatalf("balance %d after a reversed payment, want 20_00", e.Balance(s))
	}
	e.Check()
}

// A retry of a payment left pending (the bank card unreachable after a
// short balance) resumes it, under the student's lock, which the retry's
// own try held when it found the record.
func TestRetryResumesPendingNotLookedUp(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 20_00})
	bank := e.BankBalance(s)
	e.Bank.FailNext(1000, 0)
	p := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 30_00)
	wantResp(t, e.Svc.HandleRequest(ctx, p), protocol.StatusPending, protocol.ErrBankUnavailable)
	e.Bank.FailNext(0, 0)
	again := *p
	again.At = e.Clock.Now()
	r := e.Svc.HandleRequest(ctx, &again)
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBankCard || e.BankBalance(s) != bank-30_00 || e.Balance(s) != 20_00 {
		t.Fatalf("resumed: %+v, bank %d → %d, balance %d", r, bank, e.BankBalance(s), e.Balance(s))
	}
	wantResp(t, e.Svc.HandleRequest(ctx, &again), protocol.StatusApproved, nil)
	if e.BankBalance(s) != bank-30_00 {
		t.Fatalf("charged twice: bank %d → %d", bank, e.BankBalance(s))
	}
	e.Check()
}
