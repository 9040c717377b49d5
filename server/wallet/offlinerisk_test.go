package wallet_test

import (
	"testing"
	"time"

	"campuspay/protocol"
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
