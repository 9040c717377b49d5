package wallet_test

import (
	"context"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	"campuspay/server/wallet"
	walletsqlite "campuspay/server/wallet/sqlite"
	"campuspay/server/wallet/wallettest"
)

// A pay request is refused, moving nothing and recording nothing, when it
// reaches the authorizer after its terminal stopped waiting (its time plus
// the auth timeout the authorizer gives terminals) or when it is dated
// further ahead than the tolerated clock skew. Queries and reversals are
// never refused for their age: they are how a terminal recovers.
func TestPayDeadline(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	timeout := time.Duration(e.Config.AuthTimeoutMS) * time.Millisecond
	margin := e.Svc.DeadlineMargin()
	if margin != timeout/10 {
		t.Fatalf("margin %v, want a tenth of %v", margin, timeout)
	}
	for _, tc := range []struct {
		name   string
		at     time.Duration // request time relative to the server's clock
		status protocol.Status
		code   *protocol.Reason
	}{
		{"at the deadline", -timeout, protocol.StatusDeclined, protocol.ErrDeadline},
		{"long past", -time.Hour, protocol.StatusDeclined, protocol.ErrDeadline},
		{"far future", protocol.MaxClockSkew + time.Second, protocol.StatusDeclined, protocol.ErrRequestTime},
		{"a century ahead", 100 * 365 * 24 * time.Hour, protocol.StatusDeclined, protocol.ErrRequestTime},
		{"inside the margin", -timeout + margin, protocol.StatusDeclined, protocol.ErrDeadline},
		{"just in time", -timeout + margin + time.Millisecond, protocol.StatusApproved, nil},
		{"ahead within skew", protocol.MaxClockSkew, protocol.StatusApproved, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Balance(s)
			code := e.PayCode(s)
			p := payReq(e, e.TxID(), protocol.CredCode, code, 1_00)
			p.At = e.Clock.Now().Add(tc.at)
			wantResp(t, e.Svc.HandleRequest(ctx, p), tc.status, tc.code)
			if tc.status == protocol.StatusApproved {
				if got := e.Balance(s); got != before-1_00 {
					t.Fatalf("balance %d, want %d", got, before-1_00)
				}
				return
			}
			if got := e.Balance(s); got != before {
				t.Fatalf("refused request moved money: balance %d, want %d", got, before)
			}
			if rec, err := e.Store.Record(ctx, "T:"+p.Terminal+":"+string(p.Tx)); err != nil || rec != nil {
				t.Fatalf("refused request left a record %+v (%v)", rec, err)
			}
			// Nothing was used up: the same code pays on time.
			again := payReq(e, e.TxID(), protocol.CredCode, code, 1_00)
			wantResp(t, e.Svc.HandleRequest(ctx, again), protocol.StatusApproved, nil)
			// Late queries and reversals are still answered.
			q := req(e, protocol.OpQuery, p.Tx, wallettest.POS)
			q.At = p.At
			if r := e.Svc.HandleRequest(ctx, q); r.Status != protocol.StatusUnknown {
				t.Fatalf("query of a refused tx: %+v", r)
			}
			rv := req(e, protocol.OpReverse, p.Tx, wallettest.POS)
			rv.At = p.At
			wantResp(t, e.Svc.HandleRequest(ctx, rv), protocol.StatusReversed, nil)
		})
	}
	e.Check()
}

// slowStore makes reading a user take longer than the terminal's auth
// timeout, as a saturated disk would.
type slowStore struct {
	wallet.Store
	clock *wallettest.Clock
	by    time.Duration
}

func (s *slowStore) User(ctx context.Context, id uint32) (*wallet.User, error) {
	u, err := s.Store.User(ctx, id)
	s.clock.Advance(s.by)
	return u, err
}

// Payer is a code payment's read of its user.
func (s *slowStore) Payer(ctx context.Context, id, device uint32) (*wallet.User, bool, error) {
	u, ok, err := s.Store.Payer(ctx, id, device)
	s.clock.Advance(s.by)
	return u, ok, err
}

// The deadline is checked again just before money moves: a request that
// passed the first check but was slowed past its deadline by the store
// (or by waiting for its student's lock) is declined and charges nothing.
func TestPayDeadlineRecheckedBeforeMoney(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	d := e.Deps
	d.Store = &slowStore{Store: e.Store, clock: e.Clock, by: time.Duration(e.Config.AuthTimeoutMS) * time.Millisecond}
	svc, err := wallet.New(e.Config, e.Keys, d)
	if err != nil {
		t.Fatal(err)
	}
	before := e.Balance(s)
	p := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 5_00)
	wantResp(t, svc.HandleRequest(ctx, p), protocol.StatusDeclined, protocol.ErrDeadline)
	if got := e.Balance(s); got != before {
		t.Fatalf("balance %d, want %d", got, before)
	}
	// The terminal reverses what it gave up on; the reversal moves nothing.
	wantResp(t, svc.HandleRequest(ctx, req(e, protocol.OpReverse, p.Tx, wallettest.POS)), protocol.StatusReversed, nil)
	if got := e.Balance(s); got != before {
		t.Fatalf("after reversal: balance %d, want %d", got, before)
	}
	e.Check()
}

// slowPayments is the store of a balance payment that reaches the writer
// late: the clock passes the terminal's timeout while PutPayment runs.
type slowPayments struct {
	*walletsqlite.Store
	clock *wallettest.Clock
	by    time.Duration
}

func (s *slowPayments) PutPayment(ctx context.Context, r *wallet.Record, c *wallet.CodeUse, lim *wallet.DailyLimit, payer *wallet.PayerCheck, t ledger.Transfer, answer func(int64)) (string, error) {
	owner, err := s.Store.PutPayment(ctx, r, c, lim, payer, t, answer)
	s.clock.Advance(s.by)
	return owner, err
}

// A balance found short by the payment's own write falls back to the
// bound card only while money may still move: once the writer's queue
// has taken the request past its deadline, it is declined and neither the
// wallet nor the card is charged; its code still pays.
func TestPayShortBalanceDeadline(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00, PasswordFree: true})
	d := e.Deps
	d.Store = &slowPayments{Store: e.Store, clock: e.Clock, by: time.Duration(e.Config.AuthTimeoutMS) * time.Millisecond}
	svc, err := wallet.New(e.Config, e.Keys, d)
	if err != nil {
		t.Fatal(err)
	}
	code, card := e.PayCode(s), e.BankBalance(s)
	wantResp(t, svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, code, 20_00)), protocol.StatusDeclined, protocol.ErrDeadline)
	if e.Balance(s) != 10_00 || e.BankBalance(s) != card {
		t.Fatalf("wallet %d, card %d (was %d) after a payment declined at its deadline", e.Balance(s), e.BankBalance(s), card)
	}
	// In time, the same shortfall is paid by the card.
	r := e.Svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, code, 20_00))
	wantResp(t, r, protocol.StatusApproved, nil)
	if r.Channel != protocol.ChannelBankCard || e.Balance(s) != 10_00 || e.BankBalance(s) != card-20_00 {
		t.Fatalf("%+v: wallet %d, card %d", r, e.Balance(s), e.BankBalance(s))
	}
	e.Check()
}
