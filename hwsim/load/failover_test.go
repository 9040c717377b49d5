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

	"campuspay/server/ledger/postgres/pgtest"
)

// needCluster skips (fails in CI) without PostgreSQL, and skips without
// Mosquitto like the other Mosquitto tests.
func needCluster(t *testing.T) string {
	t.Helper()
	bin := binaries(t)
	pgtest.Require(t)
	if _, err := exec.LookPath("/usr/sbin/mosquitto"); err != nil {
		t.Skip("mosquitto not installed (make deps)")
	}
	return bin
}

// TestFailover is a lunch rush on three authorizers sharing one
// PostgreSQL primary with a synchronous streaming standby, behind one
// Mosquitto: mid-rush one authorizer is killed with SIGKILL and left down
// (a dead machine), later the primary is killed with SIGKILL and
// the standby promoted. The rush finishes; every payment a terminal saw
// approved is in the ledger exactly once; every payment the terminal gave
// up on is refunded by its reversal (retried, as terminald does, until
// answered REVERSED), so nothing is charged twice or without an approval;
// `ledger check` passes. The time without any approval after each fault
// is logged (t.Log), not asserted.
func TestFailover(t *testing.T) {
	bin := needCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out strings.Builder
	const payments = 1200
	rep, err := Run(ctx, Options{Bin: bin, Dir: t.TempDir(), Broker: Mosquitto, Store: StorePostgresStandby, Authorizers: 3,
		Students: 200, Terminals: 20, Authorizer: true, AuthTimeout: 5 * time.Second, Out: &out, Rand: rand.NewChaCha8([32]byte{3}),
		Load:   Load{Concurrency: 20, Payments: payments, Amount: 2_00, Reverse: true, DeclinePause: 500 * time.Millisecond, Drain: time.Minute},
		Faults: []Fault{{After: 300, Kind: DeadAuthorizer}, {After: 700, Kind: FailoverDatabase}}})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	a, tl := rep.Authorizer, rep.Tally
	if len(rep.Faults) != 2 {
		t.Fatalf("faults %+v", rep.Faults)
	}
	for _, f := range rep.Faults {
		t.Logf("%s: no payment approved for %v (action %v)", f.Kind, f.Gap.Round(time.Millisecond), f.Action.Round(time.Millisecond))
		if f.FirstAfter.IsZero() {
			t.Errorf("%s: no approval after it", f.Kind)
		}
	}
	// The rush finished: every request was answered or given up on, and
	// approvals went on after the last fault.
	if a.Sent != payments || a.Answered+a.Timeouts != payments {
		t.Fatalf("sent %d, answered %d, timeouts %d", a.Sent, a.Answered, a.Timeouts)
	}
	// The dead authorizer left the shared subscription: only what was in
	// flight to it timed out, not one request in three from then on (a
	// persistent session kept taking them: ~300 of the last 900).
	if max := 3 * rep.Options.Load.Concurrency; a.Timeouts > max {
		t.Fatalf("%d timeouts; a dead authorizer should cost at most its in-flight requests (bound %d)", a.Timeouts, max)
	}
	if last := rep.Faults[len(rep.Faults)-1]; a.Approved < 800 || !a.ApprovalTimes[len(a.ApprovalTimes)-1].After(last.At) {
		t.Fatalf("%d approved; approvals after the last fault: %v", a.Approved, !last.FirstAfter.IsZero())
	}
	if !tl.CheckOK {
		t.Fatalf("ledger check:\n%s", tl.Check)
	}
	if len(tl.Missing) != 0 {
		t.Fatalf("approved but not in the ledger: %v", tl.Missing)
	}
	if tl.Refunded != len(tl.LateCharges) {
		t.Fatalf("%d late charges, %d refunded", len(tl.LateCharges), tl.Refunded)
	}
	for tx, amount := range tl.Amounts {
		want := int64(0)
		if a.ApprovedTx[tx] {
			want = rep.Options.Load.Amount
		}
		if amount != want {
			t.Fatalf("%s: net charge %d, want %d (approved in time: %v)", tx, amount, want, a.ApprovedTx[tx])
		}
	}
	if tl.Payments != tl.Seen+len(tl.LateCharges) {
		t.Fatalf("tally %+v", tl)
	}
	raw, err := os.ReadFile(filepath.Join(rep.Options.Dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sum Summary
	if err := json.Unmarshal(raw, &sum); err != nil || len(sum.Faults) != 2 || sum.Authorizers != 3 || sum.Store != StorePostgresStandby ||
		sum.Faults[1].GapS != rep.Faults[1].Gap.Seconds() {
		t.Fatalf("report.json: %+v %v", sum, err)
	}
}
