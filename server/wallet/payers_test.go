package wallet_test

import (
	"path/filepath"
	"testing"

	"campuspay/protocol"
	walletsqlite "campuspay/server/wallet/sqlite"
	"campuspay/server/wallet/wallettest"
)

// A payment by code is decided on the student read for their last one
// (the authorizer's cache of payers); a change made since by another
// writer of the database (the admin CLI, another authorizer: here a second
// store on the same file) is seen by the payment's write, and the payment
// is decided again on a fresh read. Each step's payment is answered as it
// would be without the cache, and moves money only when approved.
func TestPayerChangedElsewhere(t *testing.T) {
	e := wallettest.New(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	other, err := walletsqlite.Open(filepath.Join(e.Dir, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	devices, err := e.Store.Devices(ctx, s.ID)
	if err != nil || len(devices) != 1 {
		t.Fatalf("devices %+v %v", devices, err)
	}
	balance := e.Balance(s)
	pay := func(amount int64, st protocol.Status, code *protocol.Reason) {
		t.Helper()
		r := e.Svc.HandleRequest(ctx, payReq(e, e.TxID(), protocol.CredCode, e.PayCode(s), amount))
		wantResp(t, r, st, code)
		if st == protocol.StatusApproved {
			balance -= amount
		}
		if got := e.Balance(s); got != balance {
			t.Fatalf("balance %d, want %d", got, balance)
		}
	}
	pay(1_00, protocol.StatusApproved, nil) // read, and kept
	pay(1_00, protocol.StatusApproved, nil) // from the cache

	if err := other.SetFrozen(ctx, s.ID, true); err != nil {
		t.Fatal(err)
	}
	pay(1_00, protocol.StatusDeclined, protocol.ErrWalletFrozen)
	if err := other.SetFrozen(ctx, s.ID, false); err != nil {
		t.Fatal(err)
	}
	pay(1_00, protocol.StatusApproved, nil) // the cached refusal is not the answer

	u, err := other.User(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.LimitPerTx = 2_00
	if err := other.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	pay(3_00, protocol.StatusDeclined, protocol.ErrLimitPerTx)
	pay(2_00, protocol.StatusApproved, nil)

	if err := other.RevokeDevice(ctx, devices[0].ID, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	pay(1_00, protocol.StatusDeclined, protocol.ErrDeviceRevoked)
	e.Check()
}
