package scenario

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The acceptance suite runs the real binaries, built once per test run.
var build = &Build{Cmds: []string{"./server/cmd/authorizer", "./terminal/cmd/terminald"}}

func binaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("acceptance: runs real processes (skipped with -short)")
	}
	return build.Dir(t)
}

func TestMain(m *testing.M) {
	code := m.Run()
	build.Remove()
	os.Exit(code)
}

// logs prints the tail of every process log of a failed campus.
func logs(t *testing.T, dir string) {
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".log") {
			b, _ := os.ReadFile(p)
			keep := 4000
			if strings.Contains(string(b), "SIGQUIT") {
				keep = 200000 // a goroutine dump of a box that stopped answering
			}
			if len(b) > keep {
				b = b[len(b)-keep:]
			}
			t.Logf("--- %s ---\n%s", p, b)
		}
		return nil
	})
}

// TestCampusDay is `make demo`'s scripted day as an acceptance test.
func TestCampusDay(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := Day(ctx, Options{Bin: bin, Dir: dir, Out: &out, RequireBrowser: true})
	if c != nil {
		defer c.Close()
	}
	if err == nil {
		err = c.Summary(ctx)
	}
	t.Log("\n" + out.String())
	if err != nil {
		logs(t, dir)
		t.Fatal(err)
	}
}

// TestLunchRush: 200 students at 10 POS boxes; the authorizer and its
// embedded broker are killed with SIGKILL in the middle.
func TestLunchRush(t *testing.T) {
	rush(t, Options{}, RushOptions{Students: 200, Terminals: 10, Seed: 1, KillAfter: 80})
}

// TestLunchRushMosquitto: the same on a real Mosquitto configured by
// `authorizer broker mosquitto` (per-terminal passwords and ACL), killed
// with SIGKILL and restarted in the middle.
func TestLunchRushMosquitto(t *testing.T) {
	rush(t, Options{Broker: "mosquitto"}, RushOptions{Students: 100, Terminals: 5, Seed: 2, KillAfter: 40})
}

// TestBrokerFailover: two Mosquitto brokers (both written by `authorizer
// broker mosquitto`), the authorizer subscribed on both, six POS boxes
// listing both, half of them with each first. Mid-rush the broker of the
// first half is killed with SIGKILL for good: its boxes move to the other
// broker, every payment a display approved is charged exactly once and
// nothing else is (balances), every journal drains, and `ledger check`
// passes. How long each box took is measured and logged, not asserted.
func TestBrokerFailover(t *testing.T) {
	res := rush(t, Options{Broker: "mosquitto", Brokers: 2}, RushOptions{Students: 60, Terminals: 6, Seed: 3, KillAfter: 20, Failover: true})
	if len(res.Moves) != 3 {
		t.Fatalf("%d boxes timed after the kill, want the 3 on the killed broker: %+v", len(res.Moves), res.Moves)
	}
	for _, m := range res.Moves {
		if !m.OK {
			t.Errorf("box %s did not come online on the other broker", m.Box)
		}
		t.Logf("failover: %s online on %s %v after the kill", m.Box, m.Broker, m.After.Round(time.Millisecond))
	}
}

// rush runs a lunch rush and requires every payment charged exactly once
// and the ledger sound.
func rush(t *testing.T, opt Options, ro RushOptions) *RushResult {
	bin := binaries(t)
	dir := t.TempDir()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	opt.Bin, opt.Dir, opt.Out = bin, dir, &out
	c, res, err := Rush(ctx, opt, ro)
	if c != nil {
		defer c.Close()
	}
	if err == nil {
		err = c.Summary(ctx)
	}
	t.Log("\n" + out.String())
	if err != nil {
		logs(t, dir)
		t.Fatal(err)
	}
	// Every student has the money: every one must end approved, once.
	if res.Approved != ro.Students || len(res.Unexpected) > 0 {
		logs(t, dir)
		t.Fatalf("rush: %+v", res)
	}
	return res
}
