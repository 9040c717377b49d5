package wallet_test

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	"campuspay/server/wallet/wallettest"
)

// BenchmarkCardPayment measures an approved card payment from the balance
// through HandleRequest on real SQLite files, and reports its cost as a
// ratio to a bare ledger Post of the same money measured in the same run
// (the wallet adds its idempotency record, intent and rule checks).
func BenchmarkCardPayment(b *testing.B) {
	e := wallettest.New(b)
	s := e.AddStudent(wallettest.Options{BankBalance: 2000_00, TopUp: 1000_00, PasswordFree: true})
	if err := e.Svc.SetLimits(ctx, s.ID, protocol.MaxAmount, protocol.MaxAmount); err != nil {
		b.Fatal(err)
	}
	acct := ledger.AccountID(fmt.Sprintf("wallet:%d", s.ID))
	const n = 300
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := e.Ledger.Post(ctx, ledger.Transfer{Key: fmt.Sprint("base-", i), Kind: "payment", At: e.Clock.Now(),
			Postings: []ledger.Posting{{Account: acct, Amount: -1}, {Account: "merchant:M001", Amount: 1}}}); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Since(start) / n
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.CardBox,
			Amount: 1, Cred: &protocol.Credential{Kind: protocol.CredCard, Text: s.CardUID}})
		if r.Status != protocol.StatusApproved {
			b.Fatalf("%+v", r)
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(base), "x_ledger_post")
}

// BenchmarkCardPaymentParallel runs card payments of 8 students from
// parallel goroutines; the ratio is against the serial baseline Post.
func BenchmarkCardPaymentParallel(b *testing.B) {
	e := wallettest.New(b)
	var cards []string
	for i := 0; i < 8; i++ {
		s := e.AddStudent(wallettest.Options{BankBalance: 2000_00, TopUp: 1000_00, PasswordFree: true})
		if err := e.Svc.SetLimits(ctx, s.ID, protocol.MaxAmount, protocol.MaxAmount); err != nil {
			b.Fatal(err)
		}
		cards = append(cards, s.CardUID)
	}
	const n = 300
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := e.Ledger.Post(ctx, ledger.Transfer{Key: fmt.Sprint("base-", i), Kind: "payment", At: e.Clock.Now(),
			Postings: []ledger.Posting{{Account: "merchant:M001", Amount: -1}, {Account: "merchant:M002", Amount: 1}}}); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Since(start) / n
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		card := cards[next.Add(1)%int64(len(cards))]
		for pb.Next() {
			r := e.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.CardBox,
				Amount: 1, Cred: &protocol.Credential{Kind: protocol.CredCard, Text: card}})
			if r.Status != protocol.StatusApproved {
				b.Errorf("%+v", r)
				return
			}
		}
	})
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(base), "x_ledger_post")
}

// BenchmarkCodePaymentsConcurrent is the money path at a lunch rush: fresh
// signed payment codes of 200 students paid from their balances by 64
// concurrent callers (as the authorizer's workers call it), on real SQLite
// files. Codes are made before the timer starts (that is the phones'
// work). The ratio is against a serial bare ledger Post in the same run.
func BenchmarkCodePaymentsConcurrent(b *testing.B) {
	e := wallettest.New(b)
	var students []*wallettest.Student
	for i := 0; i < 200; i++ {
		s := e.AddStudent(wallettest.Options{BankBalance: 2000_00, TopUp: 1000_00})
		if err := e.Svc.SetLimits(ctx, s.ID, protocol.MaxAmount, protocol.MaxAmount); err != nil {
			b.Fatal(err)
		}
		students = append(students, s)
	}
	const n = 300
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := e.Ledger.Post(ctx, ledger.Transfer{Key: fmt.Sprint("base-", i), Kind: "payment", At: e.Clock.Now(),
			Postings: []ledger.Posting{{Account: "merchant:M001", Amount: -1}, {Account: "merchant:M002", Amount: 1}}}); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Since(start) / n
	reqs := make([]*protocol.Request, b.N)
	for i := range reqs {
		reqs[i] = &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.POS, At: e.Clock.Now(),
			Amount: 1, Cred: &protocol.Credential{Kind: protocol.CredCode, Text: e.PayCode(students[i%len(students)])}}
	}
	var next atomic.Int64
	b.SetParallelism(32)
	cpu0 := processCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := e.Svc.HandleRequest(ctx, reqs[next.Add(1)-1])
			if r.Status != protocol.StatusApproved {
				b.Errorf("%+v", r)
				return
			}
		}
	})
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(base), "x_ledger_post")
	// CPU, not wall time, is what a busy 2-core box runs out of.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-us/op")
}

// processCPU is the CPU time (user + system) this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
