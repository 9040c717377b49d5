package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"campuspay/hwsim/twin/cardtwin"
	"campuspay/hwsim/twin/valvetwin"
	"campuspay/protocol"
	"campuspay/terminal/journal"
	"campuspay/terminal/modes"
)

// The crash tests run the real daemon as a child process (this test
// binary re-executed: see TestMain) on real serial drivers over
// pseudo-terminals, a real Modbus valve twin, a real MQTT broker and the
// fake authorizer; they SIGKILL it at a journal state (CrashAtEnv),
// restart it and check that nothing was lost or charged twice.

const childEnv = "TERMINALD_TEST_CHILD_CONFIG"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(Command([]string{"--config", cfg}, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// serialPort is a pseudo-terminal: the child's driver opens Path, the test
// writes to the master side.
type serialPort struct {
	master, slave *os.File
}

func newSerialPort(t *testing.T) *serialPort {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return &serialPort{master: m, slave: s}
}

func (p *serialPort) Path() string { return p.slave.Name() }
func (p *serialPort) write(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// child is one run of the daemon process.
type child struct {
	t       *testing.T
	cmd     *exec.Cmd
	screens chan string // console screens, one block each
	stderr  *bytes.Buffer
	done    chan struct{}
	mu      sync.Mutex
}

func startChild(t *testing.T, cfgPath, crashAt string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+cfgPath)
	if crashAt != "" {
		cmd.Env = append(cmd.Env, CrashAtEnv+"="+crashAt)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, screens: make(chan string, 1000), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{w: c.stderr, mu: &c.mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		// The console display draws each screen between two rules.
		sc := bufio.NewScanner(out)
		var block []string
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "───") {
				if len(block) > 0 {
					c.screens <- strings.Join(block, "\n")
				}
				block = nil
				continue
			}
			block = append(block, line)
		}
		close(c.screens)
	}()
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			c.mu.Lock()
			t.Logf("child stderr:\n%s", c.stderr.String())
			c.mu.Unlock()
		}
	})
	return c
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitScreen waits for a screen containing every string in want.
func (c *child) waitScreen(want ...string) string {
	c.t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case s, ok := <-c.screens:
			if !ok {
				c.t.Fatalf("daemon exited before showing %q", want)
			}
			all := true
			for _, w := range want {
				all = all && strings.Contains(s, w)
			}
			if all {
				return s
			}
		case <-deadline.C:
			c.t.Fatalf("timed out waiting for a screen with %q", want)
		}
	}
}

// waitKilled waits for the crash hook's SIGKILL.
func (c *child) waitKilled() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.t.Fatal("daemon did not crash at the hook")
	}
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		c.t.Fatalf("daemon ended with %v, want SIGKILL", c.cmd.ProcessState)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (c *child) stop() {
	c.t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.t.Fatal("daemon did not stop on SIGTERM")
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Fatalf("daemon exit code %d", code)
	}
}

const (
	online      = "● 在线 Online"
	posIdle     = "欢迎使用校园一卡通"
	posAwait    = "Show your payment code or tap your card"
	showerIdle  = "请输入账号，按功能键输入密码；或刷卡"
	showerRun   = "Shower running"
	cardAwait   = "Tap your card"
	paid        = "支付成功"
	noConfigYet = "Waiting for the terminal's configuration"
)

type rig struct {
	t       *testing.T
	authz   *fakeAuthz
	cfgPath string
	dataDir string
	keys    *serialPort
	scan    *serialPort
	valve   *valvetwin.Twin
	card    *cardtwin.PN532
}

func newRig(t *testing.T, mode protocol.Mode) *rig {
	addr := startBroker(t)
	r := &rig{t: t, authz: newAuthz(t, addr, mode), dataDir: filepath.Join(t.TempDir(), "data")}
	r.keys = newSerialPort(t)
	cfg := Config{Terminal: "T1", Mode: mode, DataDir: r.dataDir, Broker: BrokerConfig{URL: "tcp://" + addr},
		LogLevel: "debug", Devices: DevicesConfig{
			Display: &DeviceConfig{Driver: "console"},
			Keypad:  &DeviceConfig{Driver: "serial", Path: r.keys.Path()},
		}}
	switch mode {
	case protocol.ModePOS:
		r.scan = newSerialPort(t)
		cfg.Devices.Scanner = &DeviceConfig{Driver: "serialscan", Path: r.scan.Path()}
	case protocol.ModeShower:
		tw, err := valvetwin.Start(valvetwin.Options{Link: filepath.Join(t.TempDir(), "valve")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tw.Close() })
		r.valve = tw
		cfg.Devices.Valve = &DeviceConfig{Driver: "modbus", Path: tw.Path(), Slave: 1}
	case protocol.ModeCard:
		tw, err := cardtwin.OpenPN532(cardtwin.Config{Link: filepath.Join(t.TempDir(), "card")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tw.Close() })
		r.card = tw
		cfg.Devices.Card = &DeviceConfig{Driver: "pn532", Path: tw.Path()}
	}
	b, _ := json.Marshal(cfg)
	r.cfgPath = filepath.Join(t.TempDir(), "terminald.json")
	if err := os.WriteFile(r.cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// noSecrets checks that no file in the data directory holds any of the
// secrets (passwords, code texts) typed or scanned during the test.
func (r *rig) noSecrets(secrets ...string) {
	r.t.Helper()
	files, _ := filepath.Glob(filepath.Join(r.dataDir, "*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				r.t.Fatalf("%s holds a secret (%.12s…)", filepath.Base(f), s)
			}
		}
	}
}

// journalAfter opens the journal of a stopped daemon.
func (r *rig) journalAfter() *journal.Journal {
	j, err := journal.Open(filepath.Join(r.dataDir, "journal.db"), journal.Options{Terminal: "T1"})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { j.Close() })
	if un, err := j.Unfinished(context.Background()); err != nil || len(un) != 0 {
		r.t.Fatalf("unfinished after recovery: %+v %v", un, err)
	}
	return j
}

func configured(s string) bool { return !strings.Contains(s, noConfigYet) }

func TestCrashPOS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs daemon processes")
	}
	tests := []struct {
		at      journal.State
		code    string // "wechat" for a USERPAYING payment
		silent  bool   // the authorizer processes the pay but its answer is lost
		saw     bool   // the authorizer received the pay
		charged int64
		final   journal.State
	}{
		{at: journal.StateCreated, final: journal.StateAbandoned},
		{at: journal.StateSent, final: journal.StateReversed},
		{at: journal.StateApproved, saw: true, charged: 1, final: journal.StateApproved},
		{at: journal.StateInDoubt, silent: true, saw: true, final: journal.StateReversed},
		{at: journal.StateReversing, silent: true, saw: true, final: journal.StateReversed},
		{at: journal.StatePending, code: "wechat", saw: true, final: journal.StateReversed},
	}
	for _, tc := range tests {
		t.Run(tc.at.String(), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, protocol.ModePOS)
			r.authz.silentPay = tc.silent
			if tc.code == "wechat" {
				r.authz.pendingPay = 100
			}
			c := startChild(t, r.cfgPath, tc.at.String())
			c.waitScreen(online, posIdle)
			r.keys.write(t, "12.5\r")
			for s := c.waitScreen(online, posAwait); !configured(s); s = c.waitScreen(online, posAwait) {
			}
			code := r.authz.payCode()
			if tc.code == "wechat" {
				code = "134567890123456789"
			}
			r.scan.write(t, code+"\r\n")
			c.waitKilled()
			if tc.silent {
				r.authz.silentPay = false // the authorizer is back to normal after the restart
			}

			c = startChild(t, r.cfgPath, "")
			c.waitScreen(online, posIdle) // idle only once in-doubt payments are reversed
			if tc.final != journal.StateAbandoned {
				r.authz.waitFor("the journal entry", 20*time.Second, func() bool {
					for _, x := range r.authz.txs {
						if len(x.entries) > 0 {
							return true
						}
					}
					return false
				})
			}
			c.stop()
			r.noSecrets(code[:min(40, len(code))], code[max(0, len(code)-40):])

			j := r.journalAfter()
			id, rec := r.authz.only()
			if !tc.saw && rec != nil && contains(rec.ops, protocol.OpPay) {
				t.Fatalf("the authorizer saw a pay it should not have: %v", rec.ops)
			}
			if tc.saw && (rec == nil || !contains(rec.ops, protocol.OpPay)) {
				t.Fatalf("the authorizer did not see the pay")
			}
			var charged int64
			if rec != nil {
				charged = rec.charged()
			}
			if charged != tc.charged {
				t.Fatalf("charged %d times, want %d (%s)", charged, tc.charged, r.authz.dump())
			}
			if tc.final == journal.StateReversed && !rec.reversed {
				t.Fatalf("not reversed: %v", rec.ops)
			}
			if id != "" {
				tx, err := j.Get(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if tx.State != tc.final {
					t.Fatalf("journal state %v, want %v", tx.State, tc.final)
				}
			} else if tc.final != journal.StateAbandoned {
				t.Fatal("no transaction reached the authorizer")
			}
		})
	}
}

func TestCrashShower(t *testing.T) {
	if testing.Short() {
		t.Skip("runs daemon processes")
	}
	tests := []struct {
		at       journal.State
		meter    bool  // water flowed before the crash
		stop     bool  // the student pressed Stop before the crash
		held     bool  // the hold reached the authorizer
		captured int64 // -1: never held
	}{
		{at: journal.StateHoldRequested, captured: -1},
		{at: journal.StateHeld, held: true, captured: 0},
		{at: journal.StateValveOpen, held: true, captured: 0},
		{at: journal.StateMetering, meter: true, held: true, captured: 60},
		{at: journal.StateClosing, meter: true, stop: true, held: true, captured: 60},
		{at: journal.StateCaptured, meter: true, stop: true, held: true, captured: 60},
	}
	for _, tc := range tests {
		t.Run(tc.at.String(), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, protocol.ModeShower)
			r.valve.SetPulses(1000)
			c := startChild(t, r.cfgPath, tc.at.String())
			c.waitScreen(online, showerIdle)
			r.keys.write(t, "2023001F123456\r")
			if tc.meter {
				c.waitScreen(showerRun)
				r.valve.SetPulses(1900) // 900 pulses = 2 L = 0.60 yuan
				if tc.stop {
					c.waitScreen(showerRun, "2.0 L")
					r.keys.write(t, "S")
				}
			}
			c.waitKilled()
			if tc.at == journal.StateMetering && !r.valve.ValveOpen() {
				t.Fatal("the crash should have left the water running")
			}

			c = startChild(t, r.cfgPath, "")
			c.waitScreen(online, showerIdle)
			if r.valve.ValveOpen() {
				t.Fatal("valve open after recovery")
			}
			if tc.held {
				r.authz.waitFor("the shower's entry", 20*time.Second, func() bool {
					for _, x := range r.authz.txs {
						if len(x.entries) > 0 && x.captured >= 0 {
							return true
						}
					}
					return false
				})
			} else {
				r.authz.waitFor("the hold's reversal", 20*time.Second, func() bool {
					for _, x := range r.authz.txs {
						if x.reversed {
							return true
						}
					}
					return false
				})
			}
			c.stop()
			if r.valve.ValveOpen() {
				t.Fatal("valve open after shutdown")
			}
			r.noSecrets("F123456", "123456")
			j := r.journalAfter()
			id, rec := r.authz.only()
			if rec == nil {
				t.Fatal("the authorizer heard nothing")
			}
			if (rec.held > 0) != tc.held {
				t.Fatalf("held %d, want held=%v", rec.held, tc.held)
			}
			if rec.captured != tc.captured || len(rec.captures) > 1 {
				t.Fatalf("captured %d %v, want %d once (%s)", rec.captured, rec.captures, tc.captured, r.authz.dump())
			}
			tx, err := j.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			want := journal.StateCaptured
			if !tc.held {
				want = journal.StateReversed
			}
			if tx.State != want || (tc.held && tx.Amount != tc.captured) {
				t.Fatalf("journal %v amount %d, want %v %d", tx.State, tx.Amount, want, tc.captured)
			}
		})
	}
}

// Issue 13 (1): terminald killed (SIGKILL) right after a card payment
// is approved, with the card still on the reader, and restarted: the
// card is not charged again. Taken off and tapped again, it pays once
// more.
func TestCrashCardLeftOnReader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs daemon processes")
	}
	const uid = "04A1B2C3D4E5F6"
	r := newRig(t, protocol.ModeCard)
	c := startChild(t, r.cfgPath, journal.StateApproved.String())
	for s := c.waitScreen(online, cardAwait); !configured(s); s = c.waitScreen(online, cardAwait) {
	}
	r.card.Present(uid)
	c.waitKilled()

	// The reader answers only once the restarted daemon is online, so
	// that the card it finds is taken while payments are possible (a tap
	// handled while offline pays nothing anyway).
	r.card.Mute(true)
	c = startChild(t, r.cfgPath, "")
	c.waitScreen(online, cardAwait)
	r.card.Mute(false)
	c.waitScreen(online, cardAwait, modes.ErrCardStillThere.EN)
	r.authz.waitFor("the first payment's entry", 20*time.Second, func() bool {
		for _, x := range r.authz.txs {
			if len(x.entries) == 1 {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.card.WaitPolls(ctx, r.card.Polls()+10); err != nil {
		t.Fatal(err)
	}
	r.card.Remove()
	if err := r.card.WaitPolls(ctx, r.card.Polls()+5); err != nil {
		t.Fatal(err)
	}
	r.card.Present(uid)
	c.waitScreen(online, paid)
	r.authz.waitFor("the second payment's entry", 20*time.Second, func() bool {
		n := 0
		for _, x := range r.authz.txs {
			n += len(x.entries)
		}
		return n >= 2
	})
	c.stop()
	r.noSecrets(uid)
	r.journalAfter()
	r.authz.mu.Lock()
	defer r.authz.mu.Unlock()
	var charged int64
	for _, x := range r.authz.txs {
		charged += x.charged()
	}
	if len(r.authz.txs) != 2 || charged != 2 {
		t.Fatalf("%d transactions, %d charged; want 2 presentations charged once each:\n%s", len(r.authz.txs), charged, func() string {
			r.authz.mu.Unlock()
			defer r.authz.mu.Lock()
			return r.authz.dump()
		}())
	}
}

func contains(ops []protocol.Op, op protocol.Op) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

// TestOfflineStaticQRAndNotices: the broker goes away → the display shows
// the static merchant QR with the keyed amount; the student pays by
// scan-to-pay meanwhile; the broker comes back → the payment is recorded
// once and shown to the cashier; a second restart does not repeat it.
func TestOfflineStaticQRAndNotices(t *testing.T) {
	if testing.Short() {
		t.Skip("runs daemon processes")
	}
	stopBroker, addr := startBrokerAt(t, "127.0.0.1:0")
	r := &rig{t: t, dataDir: filepath.Join(t.TempDir(), "data")}
	r.authz = newAuthz(t, addr, protocol.ModePOS)
	r.keys, r.scan = newSerialPort(t), newSerialPort(t)
	cfg := Config{Terminal: "T1", Mode: protocol.ModePOS, DataDir: r.dataDir, Broker: BrokerConfig{URL: "tcp://" + addr},
		Devices: DevicesConfig{Display: &DeviceConfig{Driver: "console"},
			Keypad:  &DeviceConfig{Driver: "serial", Path: r.keys.Path()},
			Scanner: &DeviceConfig{Driver: "serialscan", Path: r.scan.Path()}}}
	b, _ := json.Marshal(cfg)
	r.cfgPath = filepath.Join(t.TempDir(), "terminald.json")
	os.WriteFile(r.cfgPath, b, 0o600)

	c := startChild(t, r.cfgPath, "")
	c.waitScreen(online, posIdle)
	r.keys.write(t, "8\r")
	for s := c.waitScreen(online, posAwait); !configured(s); s = c.waitScreen(online, posAwait) {
	}
	stopBroker() // outage
	c.waitScreen("○ 离线 Offline", "网络中断，请扫码支付", "¥8.00")

	r.authz.mu.Lock()
	r.authz.staticQR = []protocol.StaticQRPayment{{Tx: "01JDZ3ZQ0000000000000000A1", Seq: 1, Amount: 800, User: "张*", At: time.Now()}}
	r.authz.mu.Unlock()
	startBrokerAt(t, addr) // back (retained config lost: the terminal has it cached)
	c.waitScreen(online, "离线期间的扫码支付", "¥8.00  张*")
	r.keys.write(t, "\r")
	c.waitScreen(online, posAwait)
	r.authz.waitFor("the notice entry", 20*time.Second, func() bool {
		x := r.authz.txs["01JDZ3ZQ0000000000000000A1"]
		return x != nil && len(x.entries) == 1 && x.entries[0].Kind == protocol.EntryNotice
	})
	c.stop()

	c = startChild(t, r.cfgPath, "")
	c.waitScreen(online, posIdle) // no notices screen again: recorded once, cursor durable
	c.stop()
	j := r.journalAfter()
	if cur, _ := j.NoticeCursor(context.Background()); cur != 1 {
		t.Fatalf("cursor %d", cur)
	}
	if e, _ := j.Entries(context.Background()); len(e) != 1 || e[0].Amount != 800 {
		t.Fatalf("entries %+v", e)
	}
}
