package load

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"campuspay/hwsim/scenario"
	"campuspay/protocol"
)

// The load tests run the real binaries, built once per test run.
var build = &scenario.Build{Cmds: []string{"./server/cmd/authorizer", "./hwsim/cmd/hwsim"}}

func binaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("load: runs real processes (skipped with -short)")
	}
	return build.Dir(t)
}

func TestMain(m *testing.M) {
	code := m.Run()
	build.Remove()
	os.Exit(code)
}

// tiny is a small pass: the figures are not checked, the invariants are.
func tiny(t *testing.T, broker string, l Load, echo bool) *Report {
	// Generous: a loaded test machine must not turn into late charges.
	return tinyWith(t, broker, l, echo, 30*time.Second)
}

func tinyWith(t *testing.T, broker string, l Load, echo bool, authTimeout time.Duration) *Report {
	t.Helper()
	var out strings.Builder
	rep, err := Run(context.Background(), Options{Bin: binaries(t), Dir: t.TempDir(), Broker: broker, Students: 10, Terminals: 2,
		Load: l, Echo: echo, Authorizer: true, AuthTimeout: authTimeout, Out: &out, Rand: rand.NewChaCha8([32]byte{1})})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// checkLedger: every payment the ledger holds was seen approved in time,
// and every approval seen is in the ledger; the invariants hold.
func checkLedger(t *testing.T, rep *Report) {
	t.Helper()
	tl := rep.Tally
	if tl == nil || !tl.CheckOK {
		t.Fatalf("ledger check: %+v", tl)
	}
	if tl.Payments != tl.Seen || len(tl.LateCharges) != 0 || len(tl.Missing) != 0 || tl.Refunds != 0 {
		t.Fatalf("ledger %d payment transfers, %d approvals seen, late charges %v, missing %v, refunds %d",
			tl.Payments, tl.Seen, tl.LateCharges, tl.Missing, tl.Refunds)
	}
	for tx, amount := range tl.Amounts {
		if amount != rep.Options.Load.Amount {
			t.Fatalf("%s charged %d, want %d", tx, amount, rep.Options.Load.Amount)
		}
	}
}

func TestClosedLoopEmbedded(t *testing.T) {
	rep := tiny(t, Embedded, Load{Concurrency: 4, Payments: 200, Amount: 1_23}, true)
	if e := rep.Echo; e.Sent != 200 || e.Answered != 200 || e.Timeouts != 0 {
		t.Fatalf("echo: sent %d, answered %d, timeouts %d", e.Sent, e.Answered, e.Timeouts)
	}
	if a := rep.Authorizer; a.Sent != 200 || a.Approved != 200 || a.Timeouts != 0 || a.AuthTimeout != 30*time.Second {
		t.Fatalf("authorizer: sent %d, approved %d, timeouts %d, deadline %v", a.Sent, a.Approved, a.Timeouts, a.AuthTimeout)
	}
	checkLedger(t, rep)
	if rep.Tally.Payments != 200 {
		t.Fatalf("%d payment transfers, want 200", rep.Tally.Payments)
	}
	raw, err := os.ReadFile(filepath.Join(rep.Options.Dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(raw, &s); err != nil || len(s.Phases) != 2 || s.Ledger == nil || s.Ledger.Payments != 200 ||
		s.Phases[1].Approved != 200 || s.Concurrency != 4 {
		t.Fatalf("report.json: %+v %v", s, err)
	}
}

func TestClosedLoopMosquitto(t *testing.T) {
	if _, err := exec.LookPath("/usr/sbin/mosquitto"); err != nil {
		t.Skip("mosquitto not installed (make deps)")
	}
	rep := tiny(t, Mosquitto, Load{Concurrency: 4, Payments: 200}, true)
	if rep.Echo.Answered != 200 || rep.Authorizer.Approved != 200 {
		t.Fatalf("echo answered %d, authorizer approved %d", rep.Echo.Answered, rep.Authorizer.Approved)
	}
	checkLedger(t, rep)
}

func TestOpenLoopEmbedded(t *testing.T) {
	rep := tiny(t, Embedded, Load{Rate: 200, Payments: 100}, false)
	a := rep.Authorizer
	if a.Sent != 100 || a.Answered+a.Timeouts != 100 || a.Due != 100 {
		t.Fatalf("sent %d of %d due, answered %d, timeouts %d", a.Sent, a.Due, a.Answered, a.Timeouts)
	}
	checkLedger(t, rep)
}

// With a deadline no answer can meet, every payment is reversed at its
// deadline as terminald would: whatever the authorizer charged late is
// refunded, and nothing seen approved is lost.
func TestReverseAtDeadline(t *testing.T) {
	rep := tinyWith(t, Embedded, Load{Concurrency: 4, Payments: 40, Reverse: true, Drain: time.Minute}, false, time.Millisecond)
	a, tl := rep.Authorizer, rep.Tally
	if a.Sent != 40 || a.Reversals != a.Timeouts || a.Answered+a.Timeouts != 40 {
		t.Fatalf("sent %d, answered %d, timeouts %d, reversals %d", a.Sent, a.Answered, a.Timeouts, a.Reversals)
	}
	n := 0
	for _, c := range a.ReversalAnswers {
		n += c
	}
	if n != a.Reversals || a.ReversalAnswers[protocol.StatusReversed] != n {
		t.Fatalf("reversal answers %v for %d reversals", a.ReversalAnswers, a.Reversals)
	}
	if !tl.CheckOK || len(tl.Missing) != 0 || tl.Refunded != len(tl.LateCharges) || tl.Payments != tl.Seen+len(tl.LateCharges) {
		t.Fatalf("tally: %+v", tl)
	}
	for tx, amount := range tl.Amounts {
		want := int64(0)
		if a.ApprovedTx[tx] {
			want = rep.Options.Load.Amount
		}
		if amount != want {
			t.Fatalf("%s: net charge %d, want %d", tx, amount, want)
		}
	}
}

func TestParseStat(t *testing.T) {
	// comm with spaces and a parenthesis; utime 150, stime 50 ticks.
	line := "4242 (we ird) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 3 0 100 1000 10"
	got, err := parseStat(line)
	if err != nil || got != 2*time.Second {
		t.Fatalf("parseStat: %v %v", got, err)
	}
	if _, err := parseStat("garbage"); err == nil {
		t.Fatal("garbage parsed")
	}
	if self, err := procCPU(0); err != nil || self < 0 {
		t.Fatalf("own CPU: %v %v", self, err)
	}
}

func TestTxOfKey(t *testing.T) {
	tx, _ := protocol.NewTxID(time.Unix(1_800_000_000, 0), rand.NewChaCha8([32]byte{}))
	if got, err := txOfKey("pay:T:L-T00001:" + string(tx)); err != nil || got != tx {
		t.Fatalf("txOfKey: %v %v", got, err)
	}
	if _, err := txOfKey("topup:U:1:topup:provision"); err == nil {
		t.Fatal("a key without a transaction accepted")
	}
}

func TestResultPercentiles(t *testing.T) {
	r := &Result{Elapsed: 2 * time.Second, Answered: 10}
	for i := 1; i <= 1000; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	if r.Percentile(0.5) != 501*time.Millisecond || r.Percentile(0.99) != 991*time.Millisecond ||
		r.Percentile(1) != 1000*time.Millisecond || r.Throughput() != 5 {
		t.Fatalf("p50 %v p99 %v max %v throughput %v", r.Percentile(0.5), r.Percentile(0.99), r.Percentile(1), r.Throughput())
	}
}

// An open loop that sent under 98 % of what its schedule called for says
// so: its own delay may be in the answers it read late.
func TestGeneratorBehind(t *testing.T) {
	for _, c := range []struct {
		due, sent int
		behind    bool
	}{
		{0, 500, false}, // closed loop
		{1000, 1000, false},
		{1000, 980, false},
		{1000, 979, true},
		{1000, 0, true},
	} {
		r := &Result{Name: "authorizer", Due: c.due, Sent: c.sent}
		var out strings.Builder
		PrintResult(&out, r)
		if r.Behind() != c.behind || strings.Contains(out.String(), "fell behind") != c.behind {
			t.Errorf("due %d, sent %d: behind %v, printed:\n%s", c.due, c.sent, r.Behind(), out.String())
		}
	}
}

// The warm-up's measurement is kept apart from the phase's and shown
// beside it: the counters start again from zero, the approvals seen stay
// for the reconciliation.
func TestWarmupKeptApart(t *testing.T) {
	seen := map[protocol.TxID]bool{"tx-1": true}
	g := &generator{timeout: 5 * time.Second, res: &Result{Name: "authorizer", Sent: 3, Answered: 3, ApprovedTx: seen,
		Latencies: []time.Duration{90 * time.Millisecond, 10 * time.Millisecond, 400 * time.Millisecond}}}
	warm := g.reset()
	if g.res.Sent != 0 || len(g.res.Latencies) != 0 || !g.res.ApprovedTx["tx-1"] {
		t.Fatalf("after the warm-up: sent %d, %d latencies, approvals seen %v", g.res.Sent, len(g.res.Latencies), g.res.ApprovedTx)
	}
	if warm.Sent != 3 || warm.Percentile(0) != 10*time.Millisecond || warm.Percentile(1) != 400*time.Millisecond {
		t.Fatalf("warm-up: sent %d, latencies %v", warm.Sent, warm.Latencies)
	}
	r := &Result{Name: "authorizer", Warmup: warm}
	var out strings.Builder
	PrintResult(&out, r)
	if want := "warm-up before it (not in the figures above): sent 3, answered in time 3, latency p50 90.00ms  p99 400.00ms  max 400.00ms"; !strings.Contains(out.String(), want) {
		t.Errorf("printed:\n%s\nwant a line with %q", out.String(), want)
	}
	s := Summarize(&Report{Options: Options{}, Authorizer: r})
	if w := s.Phases[0].Warmup; w == nil || w.Sent != 3 || w.P50MS != 90 || w.MaxMS != 400 {
		t.Errorf("summary's warm-up: %+v", w)
	}
}

func TestParseProcStat(t *testing.T) {
	s := "cpu  100 5 50 1000 20 3 2 0 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\ncpu1 50 3 25 500 10 2 1 0 0 0\nintr 1\n"
	busy, cpus, err := parseProcStat(s)
	if err != nil || cpus != 2 || busy != 1600*time.Millisecond { // 100+5+50+3+2 ticks
		t.Fatalf("busy %v, cpus %d, %v", busy, cpus, err)
	}
}

func TestLongestGap(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		times       []time.Time
		from, until int // ms; until 0 = no bound
		gap         time.Duration
	}{
		{"gap spanning the fault", at(0, 100, 200, 1700, 1800), 250, 0, 1500 * time.Millisecond},
		{"a bigger gap before the fault is not counted", at(0, 3000, 3100, 3600), 3050, 0, 500 * time.Millisecond},
		{"a gap starting after the next fault belongs to it", at(0, 100, 200, 900, 1100, 5200), 150, 1000, 700 * time.Millisecond},
		{"no approval after the fault", at(0, 100), 500, 0, 0},
	} {
		var until time.Time
		if tc.until > 0 {
			until = t0.Add(time.Duration(tc.until) * time.Millisecond)
		}
		if gap, _, _ := longestGap(tc.times, t0.Add(time.Duration(tc.from)*time.Millisecond), until); gap != tc.gap {
			t.Errorf("%s: gap %v, want %v", tc.name, gap, tc.gap)
		}
	}
}

func TestParseStatFields(t *testing.T) {
	// utime 150, stime 50, cutime 300, cstime 100 ticks.
	line := "4242 (postgres) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 50 300 100 20 0 3 0 100 1000 10"
	for _, tc := range []struct {
		from, to int
		want     time.Duration
	}{{11, 13, 2 * time.Second}, {11, 15, 6 * time.Second}} {
		if got, err := parseStatFields(line, tc.from, tc.to); err != nil || got != tc.want {
			t.Errorf("fields %d:%d: %v %v, want %v", tc.from, tc.to, got, err, tc.want)
		}
	}
	if _, err := parseStatFields("1 (x) S 1 2", 11, 15); err == nil {
		t.Error("short stat accepted")
	}
	if self, err := treeCPU(os.Getpid()); err != nil || self <= 0 {
		t.Errorf("own tree CPU: %v %v", self, err)
	}
}
