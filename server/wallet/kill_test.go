package wallet_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/wallet"
	walletsqlite "campuspay/server/wallet/sqlite"
	"campuspay/server/wallet/wallettest"
)

const envKillPlan = "WALLET_KILL_CHILD_PLAN" // set only in the child process

// killPlan is what the child of TestPayKillNine needs: the stores, the
// keys, the clock and the payments to make.
type killPlan struct {
	Dir      string
	BankURL  string
	Keys     wallet.Keys
	Now      time.Time
	Requests []*protocol.Request
	TwoFiles bool // the ledger in ledger.db (first release), not inside wallet.db
}

// TestPayKillNine kills the money path with SIGKILL in the middle of its
// batches under load: a child process pays fresh codes of 40 students from
// 64 concurrent callers (so every commit carries many payments) and reports
// each approval once HandleRequestFirst returned it, before the record's
// final write, as the authorizer publishes it; the parent kills it
// at a random point, then acts as the terminals would — it asks again for
// every approval it saw (the same answer must come back), reverses every
// payment it never saw answered, and lets the start-up recovery run. Then:
// every approval seen is in the ledger exactly once, nothing else is
// charged, the ledger's invariants hold, and the students' money adds up.
// It runs on both layouts of a data folder: the ledger inside wallet.db
// (each batch of payments one transaction) and ledger.db beside it.
func TestPayKillNine(t *testing.T) {
	if os.Getenv(envKillPlan) != "" {
		t.Skip("in the child")
	}
	t.Run("one-file", func(t *testing.T) { testPayKillNine(t, false) })
	t.Run("two-files", func(t *testing.T) { testPayKillNine(t, true) })
}

func testPayKillNine(t *testing.T, twoFiles bool) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 11))
	e := wallettest.New(t)
	if twoFiles {
		e = wallettest.NewTwoFiles(t)
	}
	const topUp = 500_00
	var students []*wallettest.Student
	for i := 0; i < 40; i++ {
		s := e.AddStudent(wallettest.Options{BankBalance: 2 * topUp, TopUp: topUp})
		if err := e.Svc.SetLimits(ctx, s.ID, protocol.MaxAmount, protocol.MaxAmount); err != nil {
			t.Fatal(err)
		}
		students = append(students, s)
	}
	plan := killPlan{Dir: e.Dir, BankURL: e.BankURL, Keys: e.Keys, Now: e.Clock.Now(), TwoFiles: twoFiles}
	for i := 0; i < 4000; i++ {
		s := students[i%len(students)]
		plan.Requests = append(plan.Requests, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: e.TxID(), Terminal: wallettest.POS,
			At: e.Clock.Now(), Amount: int64(1 + i%7), Cred: &protocol.Credential{Kind: protocol.CredCode, Text: e.PayCode(s)}})
	}
	planPath := filepath.Join(t.TempDir(), "plan.json")
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(planPath, b, 0o600); err != nil {
		t.Fatal(err)
	}

	acked := runPayChild(t, planPath, 100+rng.IntN(1500))
	t.Logf("%d approvals seen before SIGKILL", len(acked))

	// The terminals after the crash, against a fresh service on the same files.
	svc, err := wallet.New(e.Config, e.Keys, e.Deps)
	if err != nil {
		t.Fatal(err)
	}
	var seen int64
	for _, r := range plan.Requests {
		key := "pay:T:" + r.Terminal + ":" + string(r.Tx)
		if amount, ok := acked[r.Tx]; ok {
			seen += amount
			q := &protocol.Request{V: 1, Op: protocol.OpQuery, Tx: r.Tx, Terminal: r.Terminal}
			if got := svc.HandleRequest(ctx, q); got.Status != protocol.StatusApproved || got.Amount != amount {
				t.Fatalf("approved %s: query after the crash says %+v", r.Tx, got)
			}
			if _, _, found, err := e.Ledger.Lookup(ctx, key); err != nil || !found {
				t.Fatalf("approved %s not in the ledger (%v)", r.Tx, err)
			}
			continue
		}
		// Never answered: the terminal reverses it.
		rv := &protocol.Request{V: 1, Op: protocol.OpReverse, Tx: r.Tx, Terminal: r.Terminal}
		if got := svc.HandleRequest(ctx, rv); got.Status != protocol.StatusReversed {
			t.Fatalf("reversing unanswered %s: %+v", r.Tx, got)
		}
	}
	if _, err := svc.Recover(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var left int64
	for _, s := range students {
		left += e.Balance(s)
	}
	if want := int64(len(students))*topUp - seen; left != want {
		t.Fatalf("students hold %d cents, want %d (top-ups %d, approvals seen %d)", left, want, int64(len(students))*topUp, seen)
	}
	m, err := e.Ledger.Balance(ctx, ledger.AccountID("merchant:"+wallettest.Merchant))
	if err != nil {
		t.Fatal(err)
	}
	if m.Posted != seen {
		t.Fatalf("merchant received %d cents, approvals seen %d", m.Posted, seen)
	}
	e.Check()
}

// runPayChild runs the child on plan and kills it after killAfter
// approvals; it returns every approval the child reported (tx → amount).
func runPayChild(t *testing.T, plan string, killAfter int) map[protocol.TxID]int64 {
	cmd := exec.Command(os.Args[0], "-test.run=^TestPayKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envKillPlan+"="+plan)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() }) // a stuck child must not hang the test
	defer timer.Stop()
	acked := map[protocol.TxID]int64{}
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ACK" {
			continue
		}
		var amount int64
		fmt.Sscan(f[2], &amount)
		acked[protocol.TxID(f[1])] = amount
		if len(acked) == killAfter && !killed {
			cmd.Process.Kill() // SIGKILL; what is already in the pipe still counts
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d approvals, before it was killed", len(acked))
	}
	return acked
}

// TestPayKillChild is the child process of TestPayKillNine.
func TestPayKillChild(t *testing.T) {
	path := os.Getenv(envKillPlan)
	if path == "" {
		t.Skip("helper process for TestPayKillNine")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var plan killPlan
	if err := json.Unmarshal(b, &plan); err != nil {
		t.Fatal(err)
	}
	st, err := walletsqlite.Open(filepath.Join(plan.Dir, "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	var led ledger.Store
	if plan.TwoFiles {
		led, err = ledgersqlite.Open(filepath.Join(plan.Dir, "ledger.db"), ledgersqlite.Options{})
	} else {
		led, err = st.OpenLedger(ledgersqlite.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	clock := &wallettest.Clock{}
	clock.Set(plan.Now)
	bc, _ := wallettest.Clients(t, clock, plan.BankURL, "http://127.0.0.1:1")
	svc, err := wallet.New(wallettest.DefaultConfig(), plan.Keys, wallet.Deps{Store: st, Ledger: led, Bank: bc, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(plan.Requests)) {
					return
				}
				r := plan.Requests[i]
				// As the authorizer does: the answer goes out before the
				// record's final write (finish), so a kill may fall between.
				resp, finish := svc.HandleRequestFirst(context.Background(), r)
				if resp.Status == protocol.StatusApproved {
					mu.Lock()
					fmt.Fprintf(os.Stdout, "ACK %s %d\n", r.Tx, resp.Amount) // one write(2) each
					mu.Unlock()
				} else {
					t.Errorf("payment %s: %+v", r.Tx, resp)
				}
				finish()
			}
		})
	}
	wg.Wait()
}
