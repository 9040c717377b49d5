package wallet_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// TestRandomTraffic runs seeded random payments, retries, reversals,
// top-ups and showers from several goroutines, then checks that every
// wallet and bank balance equals what the transaction details say, and the
// ledger's invariants.
func TestRandomTraffic(t *testing.T) {
	e := wallettest.New(t)
	const bankStart = 3000_00
	var students []*wallettest.Student
	for i := 0; i < 4; i++ {
		s := e.AddStudent(wallettest.Options{BankBalance: bankStart, TopUp: 100_00, PasswordFree: true})
		if err := e.Svc.SetLimits(ctx, s.ID, protocol.MaxAmount, protocol.MaxAmount); err != nil {
			t.Fatal(err)
		}
		students = append(students, s)
	}
	var codeMu sync.Mutex // codes of one student are made one at a time (sequence numbers)
	payCode := func(s *wallettest.Student) string { codeMu.Lock(); defer codeMu.Unlock(); return e.PayCode(s) }
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			var sent []*protocol.Request
			var first []*protocol.Response
			for i := 0; i < 40; i++ {
				s := students[rng.IntN(len(students))]
				switch op := rng.IntN(10); {
				case op < 4 || len(sent) == 0:
					p := payReq(e, e.TxID(), protocol.CredCode, payCode(s), int64(1+rng.IntN(60_00)))
					if rng.IntN(2) == 0 {
						p.Terminal, p.Cred = wallettest.CardBox, &protocol.Credential{Kind: protocol.CredCard, Text: s.CardUID}
					}
					sent, first = append(sent, p), append(first, e.Svc.HandleRequest(ctx, p))
				case op < 6: // a retry answers as the first time (unless reversed since)
					k := rng.IntN(len(sent))
					r := e.Svc.HandleRequest(ctx, sent[k])
					if r.Status != first[k].Status && r.Status != protocol.StatusReversed {
						t.Errorf("retry of %s: %s, first %s", sent[k].Tx, r.Status, first[k].Status)
					}
				case op < 8:
					k := rng.IntN(len(sent))
					if r := e.Svc.HandleRequest(ctx, req(e, protocol.OpReverse, sent[k].Tx, sent[k].Terminal)); r.Status != protocol.StatusReversed {
						t.Errorf("reverse: %+v", r)
					}
				case op < 9:
					if _, err := e.Svc.TopUp(ctx, s.ID, fmt.Sprintf("w%d-%d", w, i), int64(1+rng.IntN(50_00))); err != nil {
						t.Errorf("top-up: %v", err)
					}
				default:
					h := e.Svc.HandleRequest(ctx, holdReq(e, s, e.TxID(), s.WaterPW))
					if h.Status != protocol.StatusHeld {
						continue // e.g. balance below ¥15
					}
					amt := int64(rng.IntN(int(h.Hold) + 1))
					c := &protocol.Request{V: 1, Op: protocol.OpCapture, Tx: h.Tx, Terminal: wallettest.Shower, Amount: amt}
					if r := e.Svc.HandleRequest(ctx, c); r.Status != protocol.StatusApproved && r.Status != protocol.StatusVoided {
						t.Errorf("capture: %+v", r)
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, s := range students {
		recs, err := e.Svc.Transactions(ctx, s.ID, 0, 100)
		var all []wallet.Record
		for err == nil && len(recs) > 0 {
			all = append(all, recs...)
			recs, err = e.Svc.Transactions(ctx, s.ID, recs[len(recs)-1].ID, 100)
		}
		if err != nil {
			t.Fatal(err)
		}
		var wantWallet, wantBank int64 = 0, bankStart
		for _, r := range all {
			if r.Status != protocol.StatusApproved {
				continue
			}
			switch {
			case r.Kind == wallet.KindTopUp:
				wantWallet += r.Amount
				wantBank -= r.Amount
			case r.Channel == protocol.ChannelBalance:
				wantWallet -= r.Amount
			case r.Channel == protocol.ChannelBankCard:
				wantBank -= r.Amount
			}
		}
		if got := e.Balance(s); got != wantWallet {
			t.Errorf("student %s: wallet %d, details say %d", s.No, got, wantWallet)
		}
		if got := e.BankBalance(s); got != wantBank {
			t.Errorf("student %s: bank %d, details say %d", s.No, got, wantBank)
		}
	}
	e.Check()
}
