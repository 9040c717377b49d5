package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"campuspay/server/ledger"
	"campuspay/server/ledger/ledgertest"
)

const (
	envCrashPath = "LEDGER_CRASH_CHILD_PATH" // set only in the child process
	envCrashIter = "LEDGER_CRASH_CHILD_ITER"
)

// TestCrashSafety runs a child process that moves money as fast as it can
// and reports each acknowledged operation on stdout only after the store
// returned success; the parent kills it with SIGKILL at a random point,
// reopens the file, and checks that the ledger is consistent and that
// every acknowledged operation is there. The same file goes through every
// round, so each round also recovers the previous one's WAL.
func TestCrashSafety(t *testing.T) {
	if os.Getenv(envCrashPath) != "" {
		t.Skip("in the child")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	path := filepath.Join(t.TempDir(), "crash.db")
	const rounds = 6
	for round := range rounds {
		acks := runAndKill(t, path, round, 20+rng.IntN(300))
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		ledgertest.RequireOK(t, s)
		ctx := context.Background()
		for _, a := range acks {
			f := strings.Fields(a)
			switch f[0] {
			case "P":
				if _, _, found, err := s.Lookup(ctx, f[1]); err != nil || !found {
					t.Fatalf("round %d: acknowledged transfer %s lost (err %v)", round, f[1], err)
				}
			case "H":
				if _, err := s.GetHold(ctx, f[1]); err != nil {
					t.Fatalf("round %d: acknowledged hold %s lost: %v", round, f[1], err)
				}
			case "C":
				h, err := s.GetHold(ctx, f[1])
				if err != nil || h.State != ledger.HoldCaptured || strconv.FormatInt(h.Captured, 10) != f[2] {
					t.Fatalf("round %d: acknowledged capture %s of %s lost: %+v %v", round, f[1], f[2], h, err)
				}
			default:
				t.Fatalf("child said %q", a)
			}
		}
		r, _ := s.Check(ctx)
		t.Logf("round %d: %d operations acknowledged before SIGKILL; ledger has %d transfers, %d holds",
			round, len(acks), r.Transfers, r.Holds)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runAndKill starts the child on path, kills it after it acknowledged
// killAfter operations, and returns every acknowledgement it wrote.
func runAndKill(t *testing.T, path string, round, killAfter int) []string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashPath+"="+path, envCrashIter+"="+strconv.Itoa(round))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() }) // a stuck child must not hang the test
	defer timer.Stop()
	var acks []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "ACK ")
		if !ok {
			continue
		}
		acks = append(acks, line)
		if len(acks) == killAfter && !killed {
			cmd.Process.Kill() // SIGKILL; what is already in the pipe still counts
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("round %d: child ended after %d acknowledgements, before it was killed", round, len(acks))
	}
	return acks
}

// TestCrashChild is the child process of TestCrashSafety.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envCrashPath)
	if path == "" {
		t.Skip("helper process for TestCrashSafety")
	}
	round := os.Getenv(envCrashIter)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, "ACK "+format+"\n", args...) // one write(2) each
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	deadline := time.Now().Add(25 * time.Second)
	for g := range 8 {
		wg.Go(func() {
			w := ledger.AccountID("wallet:" + strconv.Itoa(g))
			key := func(kind string, n int) string { return fmt.Sprintf("%s-r%s-g%d-%d", kind, round, g, n) }
			if _, err := s.Post(ctx, pay(key("fund", 0), "bank:CCB", w, 1_000_000)); err != nil {
				t.Error(err)
				return
			}
			ack("P %s", key("fund", 0))
			for n := 1; time.Now().Before(deadline); n++ {
				if n%10 == 0 {
					hk := key("hold", n)
					if _, err := s.PlaceHold(ctx, ledger.Hold{Key: hk, Account: w, Amount: 500, Expires: t0.Add(time.Hour)}); err != nil {
						t.Error(err)
						return
					}
					ack("H %s", hk)
					amount := int64(n % 500)
					if _, _, err := s.CaptureHold(ctx, hk, amount, "merchant:shower", "", t0); err != nil {
						t.Error(err)
						return
					}
					if amount > 0 {
						ack("C %s %d", hk, amount)
					}
					continue
				}
				k := key("pay", n)
				if _, err := s.Post(ctx, pay(k, w, "merchant:M", int64(1+n%100))); err != nil {
					t.Error(err)
					return
				}
				ack("P %s", k)
			}
		})
	}
	wg.Wait()
}
