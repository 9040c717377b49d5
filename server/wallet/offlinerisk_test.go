package wallet_test

import (
	"slices"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// Settled offline payments count towards the daily limit of the day of
// their till time (Shanghai), as if they had been online: a later online
// payment that day is refused LIMIT_DAILY. Settlement itself never
// refuses (the goods were handed over), even past the limit; a payment
// accepted offline late in the evening and settled the next morning counts
// for the evening's day.
func TestOfflineCountsTowardsDailyLimit(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 200_00, TopUp: 100_00})
	if err := e.Svc.SetLimits(ctx, s.ID, 50_00, 50_00); err != nil {
		t.Fatal(err)
	}
	allow(t, e, s, 30_00)
	a := &offlineTill{e: e, terminal: wallettest.POS}
	b := &offlineTill{e: e, terminal: pos2}
	wantResp(t, pay(e, pos2, protocol.CredCode, e.PayCode(s), 25_00), protocol.StatusApproved, nil) // 10:00 online
	e.Clock.Advance(time.Minute)
	ea := a.accept(e.PayCode(s), 20_00) // 10:01 offline
	e.Clock.Advance(30 * time.Minute)
	applyOK(t, e.Svc, ea) // 10:31 settled: the day's total is 45.00
	wantResp(t, pay(e, pos2, protocol.CredCode, e.PayCode(s), 5_01), protocol.StatusDeclined, protocol.ErrLimitDaily)
	wantResp(t, pay(e, pos2, protocol.CredCode, e.PayCode(s), 5_00), protocol.StatusApproved, nil) // exactly at the limit
	// 23:50: the till is offline again and accepts past the limit.
	e.Clock.Set(wallettest.T0.Add(13*time.Hour + 50*time.Minute))
	eb := b.accept(e.PayCode(s), 10_00)
	e.Clock.Set(wallettest.T0.Add(22 * time.Hour)) // 08:00 the next day
	applyOK(t, e.Svc, eb)                          // settled all the same
	wantBalance(t, e, s, 40_00, 0)
	if recs := offlineRecords(t, e, s); len(recs) != 2 || recs[0].Status != protocol.StatusApproved || recs[1].Status != protocol.StatusApproved {
		t.Fatalf("offline records %+v", recs)
	}
	// The next day's total does not include the evening's offline payment.
	wantResp(t, pay(e, pos2, protocol.CredCode, e.PayCode(s), 50_00), protocol.StatusApproved, nil)
	e.Check()
}

// debtOf is the student's offline debt as the app shows it.
func debtOf(t *testing.T, e *wallettest.Env, s *wallettest.Student) int64 {
	t.Helper()
	v, err := e.Svc.OfflineStatus(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	return v.Debt
}

// repayLines are the student's debt repayment lines, oldest first.
func repayLines(t *testing.T, e *wallettest.Env, s *wallettest.Student) []int64 {
	t.Helper()
	recs, err := e.Svc.Transactions(ctx, s.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for i := len(recs) - 1; i >= 0; i-- {
		if r := recs[i]; r.Kind == wallet.KindDebtRepay {
			if r.Status != protocol.StatusApproved || r.Channel != protocol.ChannelBalance {
				t.Fatalf("repayment line %+v", r)
			}
			out = append(out, r.Amount)
		}
	}
	return out
}

// inDebt leaves s owing debt: an allowance of 10.00 spent offline at one
// till and 10.00 + debt at another, with the bound card refusing (frozen
// at the bank, unfrozen again after settlement).
func inDebt(t *testing.T, e *wallettest.Env, s *wallettest.Student, debt int64) {
	t.Helper()
	allow(t, e, s, 10_00)
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, true); err != nil {
		t.Fatal(err)
	}
	a := &offlineTill{e: e, terminal: wallettest.POS}
	b := &offlineTill{e: e, terminal: pos2}
	applyOK(t, e.Svc, a.accept(e.PayCode(s), 10_00))
	applyOK(t, e.Svc, b.accept(e.PayCode(s), debt))
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, false); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, e, s, 0, 0)
	if got := debtOf(t, e, s); got != debt {
		t.Fatalf("debt %d, want %d", got, debt)
	}
}

// A debt is repaid from the next top-ups, as much as each covers: 5.00
// owed, a top-up of 3.00 leaves 2.00 owed and nothing in the wallet; the
// same top-up request again changes nothing (the bank is debited once, the
// debt repaid once); a top-up of 10.00 clears it and leaves 8.00. Each
// repayment is a line of the details and of the month's statement, and
// the back office's figure drops with the app's.
func TestDebtRepaidFromTopUp(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00})
	inDebt(t, e, s, 5_00)
	bank := e.BankBalance(s)
	for _, step := range []struct {
		key           string
		amount        int64
		debt, balance int64
		lines         []int64
	}{
		{"t1", 3_00, 2_00, 0, []int64{3_00}},
		{"t1", 3_00, 2_00, 0, []int64{3_00}}, // the same request again
		{"t2", 10_00, 0, 8_00, []int64{3_00, 2_00}},
		{"t3", 1_00, 0, 9_00, []int64{3_00, 2_00}}, // nothing owed: nothing repaid
	} {
		rec, err := e.Svc.TopUp(ctx, s.ID, step.key, step.amount)
		if err != nil || rec.Status != protocol.StatusApproved || rec.Kind != wallet.KindTopUp {
			t.Fatalf("top-up %s: %+v %v", step.key, rec, err)
		}
		wantBalance(t, e, s, step.balance, 0)
		if got := debtOf(t, e, s); got != step.debt {
			t.Fatalf("after %s: debt %d, want %d", step.key, got, step.debt)
		}
		if got := repayLines(t, e, s); !slices.Equal(got, step.lines) {
			t.Fatalf("after %s: repayment lines %v, want %v", step.key, got, step.lines)
		}
	}
	if got := e.BankBalance(s); got != bank-14_00 {
		t.Fatalf("bank %d, want %d: each top-up debited once", got, bank-14_00)
	}
	from, to := wallet.Month(e.Clock.Now())
	st, err := e.Svc.Statement(ctx, s.ID, from, to)
	if err != nil {
		t.Fatal(err)
	}
	var after []int64 // the balance after each repayment line
	for _, l := range st.Lines {
		if l.Kind == wallet.KindDebtRepay {
			after = append(after, l.BalanceAfter)
		}
	}
	if !slices.Equal(after, []int64{0, 8_00}) || st.Closing != 9_00 {
		t.Fatalf("statement: balance after the repayments %v, closing %d", after, st.Closing)
	}
	// Asked for by the student with nothing owed: nothing moves.
	if v, err := e.Svc.RepayDebt(ctx, s.ID, "app-1"); err != nil || v.Debt != 0 {
		t.Fatalf("repay with no debt: %+v %v", v, err)
	}
	wantBalance(t, e, s, 9_00, 0)
	e.Check()
}

// A crash between the top-up and its repayment, and between the
// repayment's transfer and its line: the top-up stays processing and
// Recover finishes it, repaying once.
func TestDebtRepaymentAfterCrash(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00})
	inDebt(t, e, s, 5_00)
	svc, cl, cs := crashy(t, e)
	cl.prefix = "repay:" // dies before the repayment's transfer
	if _, err := svc.TopUp(ctx, s.ID, "c1", 3_00); err == nil {
		t.Fatal("top-up answered despite the crash")
	}
	wantBalance(t, e, s, 3_00, 0)       // the top-up is posted, the repayment not yet
	cs.status = protocol.StatusApproved // dies after the repayment's transfer, before its line
	e.Clock.Advance(time.Second)
	if n, err := svc.Recover(ctx, 0); err == nil || n != 0 {
		t.Fatalf("recover through the crash: %d %v", n, err)
	}
	wantBalance(t, e, s, 0, 0)
	if got := repayLines(t, e, s); len(got) != 0 {
		t.Fatalf("repayment lines %v before the line was written", got)
	}
	e.Clock.Advance(time.Second)
	if n, err := svc.Recover(ctx, 0); err != nil || n != 1 {
		t.Fatalf("recover: %d %v", n, err)
	}
	rec, err := e.Svc.TopUp(ctx, s.ID, "c1", 3_00) // the client's retry
	if err != nil || rec.Status != protocol.StatusApproved {
		t.Fatalf("retry %+v %v", rec, err)
	}
	wantBalance(t, e, s, 0, 0)
	if got := debtOf(t, e, s); got != 2_00 {
		t.Fatalf("debt %d", got)
	}
	if got := repayLines(t, e, s); !slices.Equal(got, []int64{3_00}) {
		t.Fatalf("repayment lines %v", got)
	}
	e.Check()
}

// flagsByTerminal maps each offline record's terminal to its flags.
func flagsByTerminal(t *testing.T, e *wallettest.Env, s *wallettest.Student) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, r := range offlineRecords(t, e, s) {
		if r.Status != protocol.StatusApproved {
			t.Fatalf("offline record not settled: %+v", r)
		}
		out[r.Terminal] = wallet.OfflineFlags(&r)
	}
	return out
}

// Every revoke path keeps the time of the revocation: the app's, the back
// office's; revoking again keeps the first time.
func TestDeviceRevocationTime(t *testing.T) {
	e := offlineEnv(t)
	for _, tc := range []struct {
		name   string
		revoke func(s *wallettest.Student, device uint32) error
	}{
		{"app", func(s *wallettest.Student, d uint32) error { return e.Svc.RevokeDevice(ctx, s.ID, d) }},
		{"back office", func(s *wallettest.Student, d uint32) error {
			_, err := e.Svc.RevokeUserDevice(ctx, s.ID, d)
			return err
		}},
	} {
		s := e.AddStudent(wallettest.Options{BankBalance: 10_00})
		d := deviceOf(t, s)
		at := e.Clock.Now()
		if err := tc.revoke(s, d); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		e.Clock.Advance(time.Minute)
		if err := tc.revoke(s, d); err != nil {
			t.Fatalf("%s again: %v", tc.name, err)
		}
		got, err := e.Store.Device(ctx, d)
		if err != nil || !got.Revoked || !got.RevokedAt.Equal(at) {
			t.Fatalf("%s: device %+v %v, want revoked at %v", tc.name, got, err, at)
		}
	}
}

// A phone revoked while the tills are offline: a code made before the
// revocation settles plainly; one made after it (a till without the new
// list accepted it) is settled by the normal rule and flagged
// after_revoke; the help desk refunds it, to the balance.
func TestOfflineAfterRevokeFlagged(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	allow(t, e, s, 30_00)
	a := &offlineTill{e: e, terminal: wallettest.POS}
	b := &offlineTill{e: e, terminal: pos2}
	before := a.accept(e.PayCode(s), 8_00)
	e.Clock.Advance(time.Minute)
	if err := e.Svc.RevokeDevice(ctx, s.ID, deviceOf(t, s)); err != nil { // the phone is reported lost
		t.Fatal(err)
	}
	e.Clock.Advance(time.Minute)
	after := b.accept(e.PayCode(s), 9_00) // a thief, at a till still offline
	e.Clock.Advance(time.Hour)
	applyOK(t, e.Svc, before)
	applyOK(t, e.Svc, after)
	wantBalance(t, e, s, 33_00, 13_00) // both from the allowance's hold
	got := flagsByTerminal(t, e, s)
	if len(got) != 2 || len(got[wallettest.POS]) != 0 || !slices.Equal(got[pos2], []string{wallet.FlagAfterRevoke}) {
		t.Fatalf("flags %v", got)
	}
	sale := offlineSaleAt(t, e, s, pos2)
	rf, err := e.Svc.Refund(ctx, wallet.RefundRequest{Sale: sale, Key: "desk-1", Amount: 9_00, Reason: "phone stolen"})
	if err != nil || rf.Status != protocol.StatusApproved || rf.Channel != protocol.ChannelBalance {
		t.Fatalf("refund %+v %v", rf, err)
	}
	if _, err := e.Svc.Refund(ctx, wallet.RefundRequest{Sale: sale, Key: "desk-2", Amount: 1, Reason: "again"}); err != protocol.ErrRefundExceedsSale {
		t.Fatalf("refund beyond the sale: %v", err)
	}
	wantBalance(t, e, s, 42_00, 13_00)
	e.Check()
}

// A code used online and its screenshot shown within its validity at a
// till that is offline: settled hours later (the online single-use mark
// long expired), charged by the normal rule and flagged code_replayed
// (CODE_ALREADY_USED on the record). Another code used only offline is
// not flagged.
func TestOfflineReplayOfOnlineCodeFlagged(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	allow(t, e, s, 30_00)
	code := e.PayCode(s)
	wantResp(t, pay(e, wallettest.POS, protocol.CredCode, code, 6_00), protocol.StatusApproved, nil)
	e.Clock.Advance(50 * time.Second)
	off := &offlineTill{e: e, terminal: pos2}
	replayed := off.accept(code, 7_00)
	e.Clock.Advance(time.Minute)
	plain := off.accept(e.PayCode(s), 2_00)
	e.Clock.Advance(2 * time.Hour)
	applyOK(t, e.Svc, replayed)
	applyOK(t, e.Svc, plain)
	wantBalance(t, e, s, 35_00, 21_00) // 6.00 online from the balance, 9.00 from the hold
	recs := offlineRecords(t, e, s)
	if len(recs) != 2 {
		t.Fatalf("%d offline records", len(recs))
	}
	for _, r := range recs {
		flags := wallet.OfflineFlags(&r)
		switch r.Amount {
		case 7_00:
			if !slices.Equal(flags, []string{wallet.FlagCodeReplayed}) || r.Code != protocol.ErrCodeUsed.Code || r.Status != protocol.StatusApproved {
				t.Fatalf("replayed record %+v flags %v", r, flags)
			}
		case 2_00:
			if len(flags) != 0 || r.Code != "" || r.Status != protocol.StatusApproved {
				t.Fatalf("plain record %+v flags %v", r, flags)
			}
		}
	}
	e.Check()
}

// Cancelling (注销) pays an offline debt from the balance first and keeps
// the wallet open while any is left (OFFLINE_DEBT): nobody walks away from
// a debt with the balance in hand.
func TestCancelRepaysDebtFirst(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 13_00})
	p := payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), 3_00)
	wantResp(t, e.Svc.HandleRequest(ctx, p), protocol.StatusApproved, nil)
	inDebt(t, e, s, 5_00)
	// Money back in the wallet without a top-up: the sale is reversed.
	wantResp(t, e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, p.Tx, wallettest.POS)), protocol.StatusReversed, nil)
	wantBalance(t, e, s, 3_00, 0)
	wantErr(t, e.Svc.Cancel(ctx, s.ID), protocol.ErrOfflineDebt)
	wantBalance(t, e, s, 0, 0)
	if got := debtOf(t, e, s); got != 2_00 {
		t.Fatalf("debt %d after the refused cancellation, want 2.00 (3.00 repaid from the balance)", got)
	}
	wantErr(t, e.Svc.Cancel(ctx, s.ID), protocol.ErrOfflineDebt) // nothing to repay from: still refused
	if _, err := e.Svc.TopUp(ctx, s.ID, "t", 10_00); err != nil {
		t.Fatal(err)
	}
	bank := e.BankBalance(s)
	if err := e.Svc.Cancel(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.BankBalance(s); got != bank+8_00 || debtOf(t, e, s) != 0 {
		t.Fatalf("bank %d (want %d), debt %d after cancelling", got, bank+8_00, debtOf(t, e, s))
	}
	if got := repayLines(t, e, s); !slices.Equal(got, []int64{3_00, 2_00}) {
		t.Fatalf("repayment lines %v", got)
	}
	e.Check()
}

// A help-desk refund of an offline sale goes to the balance, and any
// offline debt is repaid from it first: a refund never lets a student
// withdraw money while owing.
func TestOfflineRefundRepaysDebt(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00})
	inDebt(t, e, s, 5_00)
	sale := offlineSaleAt(t, e, s, pos2)
	rf, err := e.Svc.Refund(ctx, wallet.RefundRequest{Sale: sale, Key: "desk-1", Amount: 3_00, Reason: "cold food"})
	if err != nil || rf.Status != protocol.StatusApproved {
		t.Fatalf("refund %+v %v", rf, err)
	}
	wantBalance(t, e, s, 0, 0)
	if got := debtOf(t, e, s); got != 2_00 {
		t.Fatalf("debt %d after a refund of 3.00, want 2.00", got)
	}
	if got := repayLines(t, e, s); !slices.Equal(got, []int64{3_00}) {
		t.Fatalf("repayment lines %v", got)
	}
	e.Check()
}

// offlineSaleAt is the key of the student's (last) offline sale at terminal.
func offlineSaleAt(t *testing.T, e *wallettest.Env, s *wallettest.Student, terminal string) string {
	t.Helper()
	var sale string
	for _, r := range offlineRecords(t, e, s) {
		if r.Terminal == terminal {
			sale = r.Key
		}
	}
	return sale
}
