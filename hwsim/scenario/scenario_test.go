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
	rush(t, "", RushOptions{Students: 200, Terminals: 10, Seed: 1, KillAfter: 80})
}

// TestLunchRushMosquitto: the same on a real Mosquitto configured by
// `authorizer broker mosquitto` (per-terminal passwords and ACL), killed
// with SIGKILL and restarted in the middle.
func TestLunchRushMosquitto(t *testing.T) {
	rush(t, "mosquitto", RushOptions{Students: 100, Terminals: 5, Seed: 2, KillAfter: 40})
}

// rush runs a lunch rush and requires every payment charged exactly once
// and the ledger sound.
func rush(t *testing.T, broker string, ro RushOptions) {
	bin := binaries(t)
	dir := t.TempDir()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c, res, err := Rush(ctx, Options{Bin: bin, Dir: dir, Out: &out, Broker: broker}, ro)
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
}
