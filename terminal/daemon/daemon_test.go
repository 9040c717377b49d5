package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/terminal"
	"campuspay/terminal/device"
	"campuspay/terminal/device/devicetest"
	"campuspay/terminal/modes"
)

// chanLink is an in-memory terminal.Link that approves every payment.
type chanLink struct {
	states  chan terminal.LinkState
	configs chan *protocol.Config
	notices chan *protocol.Notice
	mu      sync.Mutex
	reqs    []*protocol.Request
	closed  bool
}

// screenWait bounds the wait for a screen: liveness, not speed. Under
// make test's race detector, beside the camera decoder's tests on two
// cores, 10 s was once too short for a shower to open.
const screenWait = 30 * time.Second

func newChanLink() *chanLink {
	return &chanLink{states: make(chan terminal.LinkState, 8), configs: make(chan *protocol.Config, 8),
		notices: make(chan *protocol.Notice, 8)}
}

func (l *chanLink) Request(_ context.Context, q *protocol.Request) (*protocol.Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, q)
	r := &protocol.Response{V: 1, Op: q.Op, Tx: q.Tx, Terminal: q.Terminal, Status: protocol.StatusApproved,
		Amount: q.Amount, Channel: protocol.ChannelBalance, ServerTime: time.Now()}
	if q.Op == protocol.OpHold {
		r.Status, r.Hold = protocol.StatusHeld, 1500
	}
	return r, nil
}

func (l *chanLink) requests() []*protocol.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*protocol.Request(nil), l.reqs...)
}
func (l *chanLink) States() <-chan terminal.LinkState { return l.states }
func (l *chanLink) Configs() <-chan *protocol.Config  { return l.configs }
func (l *chanLink) Notices() <-chan *protocol.Notice  { return l.notices }
func (l *chanLink) Kick()                             {}
func (l *chanLink) Close() error                      { l.mu.Lock(); l.closed = true; l.mu.Unlock(); return nil }

func TestMainInProcess(t *testing.T) {
	a := newAuthzKeysOnly(t)
	cfg := &Config{Terminal: "T1", Mode: protocol.ModePOS, DataDir: filepath.Join(t.TempDir(), "d"),
		Broker: BrokerConfig{URL: "tcp://127.0.0.1:1"}, Status: "127.0.0.1:0",
		Devices: DevicesConfig{Display: &DeviceConfig{Driver: "console"}}}
	disp, kp, sc := devicetest.NewDisplay(), devicetest.NewKeypad(), devicetest.NewScanner()
	link := newChanLink()
	var logs bytes.Buffer
	// systemd's watchdog every 3 s: fed while the loop turns.
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	var notes []string
	var nmu sync.Mutex
	fed := make(chan struct{}, 1)
	m, err := New(cfg, Options{
		Devices: &modes.Devices{Display: disp, Keypad: kp, Scanner: sc},
		Link:    link, Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &nmu}, nil)),
		Notify: func(s string) error {
			nmu.Lock()
			notes = append(notes, s)
			nmu.Unlock()
			if s == "WATCHDOG=1" {
				select {
				case fed <- struct{}{}:
				default:
				}
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	wait := func(what string, match func(device.Screen) bool) {
		t.Helper()
		c, cc := context.WithTimeout(context.Background(), screenWait)
		defer cc()
		if _, err := disp.WaitFor(c, match); err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}
	link.configs <- a.cfg
	link.states <- terminal.LinkUp
	wait("online idle", func(s device.Screen) bool { return s.Kind == device.ScreenIdle && s.Online })
	kp.Type("3\n")
	wait("await", func(s device.Screen) bool { return s.Kind == device.ScreenAwait && s.Amount == 300 })
	sc.Push(a.payCode())
	wait("paid", func(s device.Screen) bool { return s.Kind == device.ScreenResult && s.OK })

	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + m.StatusAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %s", path, resp.Status)
		}
		return string(b)
	}
	var st Status
	if err := json.Unmarshal([]byte(get("/status.json")), &st); err != nil {
		t.Fatal(err)
	}
	if !st.Online || st.JournalDepth != 1 || len(st.Recent) != 1 || st.Recent[0].State != "Approved" || st.Recent[0].Amount != "3.00" {
		t.Fatalf("status %+v", st)
	}
	if page := get("/"); !strings.Contains(page, "Approved") {
		t.Fatalf("status page %q", page)
	}
	metrics := get("/metrics")
	for _, want := range []string{`terminald_transactions_total{result="approved"} 1`, "terminald_journal_depth 1", "terminald_link_up 1",
		"go_goroutines ", "go_memstats_heap_alloc_bytes ", "process_start_time_seconds ", "process_resident_memory_bytes "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	select {
	case <-fed:
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog was not fed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !disp.Halted() || !kp.Halted() || !sc.Halted() || !link.closed {
		t.Fatal("devices not halted or link not closed on shutdown")
	}
	nmu.Lock()
	defer nmu.Unlock()
	if len(notes) < 2 || notes[0] != "READY=1" || notes[len(notes)-1] != "STOPPING=1" {
		t.Fatalf("notifications %q", notes)
	}
	if strings.Contains(logs.String(), "CW1:") {
		t.Fatal("a payment code reached the log")
	}

	// Reboot offline: the cached config still gives the static QR.
	disp2 := devicetest.NewDisplay()
	link2 := newChanLink()
	m2, err := New(cfg, Options{Devices: &modes.Devices{Display: disp2, Keypad: devicetest.NewKeypad(), Scanner: devicetest.NewScanner()},
		Link: link2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Notify: func(string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- m2.Run(ctx2) }()
	defer func() { cancel2(); <-done2 }()
	link2.states <- terminal.LinkDown
	c, cc := context.WithTimeout(context.Background(), screenWait)
	defer cc()
	if _, err := disp2.WaitFor(c, func(s device.Screen) bool { return s.Kind == device.ScreenOffline && s.QR == a.cfg.MerchantQR }); err != nil {
		t.Fatalf("offline screen with the cached static QR: %v", err)
	}
}

func TestShowerShutdownClosesValve(t *testing.T) {
	a := newAuthzKeysOnly(t)
	a.cfg.Mode = protocol.ModeShower
	cfg := &Config{Terminal: "T1", Mode: protocol.ModeShower, DataDir: filepath.Join(t.TempDir(), "d"),
		Broker: BrokerConfig{URL: "tcp://127.0.0.1:1"}, Devices: DevicesConfig{Display: &DeviceConfig{Driver: "console"}}}
	disp, kp, vl, fm := devicetest.NewDisplay(), devicetest.NewKeypad(), devicetest.NewValve(), devicetest.NewFlowMeter()
	link := newChanLink()
	m, err := New(cfg, Options{Devices: &modes.Devices{Display: disp, Keypad: kp, Valve: vl, Meter: fm}, Link: link,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Notify: func(string) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	link.configs <- a.cfg
	link.states <- terminal.LinkUp
	c, cc := context.WithTimeout(context.Background(), screenWait)
	defer cc()
	if _, err := disp.WaitFor(c, func(s device.Screen) bool { return s.Kind == device.ScreenInput && s.Online }); err != nil {
		t.Fatal(err)
	}
	kp.Type("1F2\n")
	if _, err := disp.WaitFor(c, func(s device.Screen) bool { return s.Kind == device.ScreenShower }); err != nil {
		t.Fatal(err)
	}
	fm.Set(900) // 2 L
	if _, err := disp.WaitFor(c, func(s device.Screen) bool { return s.Kind == device.ScreenShower && s.Amount == 60 }); err != nil {
		t.Fatal(err)
	}
	cancel() // SIGTERM mid-shower: the shower is closed and settled, then the valve halted
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if open, _ := vl.IsOpen(); open || !vl.Halted() {
		t.Fatal("valve not closed and halted")
	}
	r := link.requests()
	if last := r[len(r)-1]; last.Op != protocol.OpCapture || last.Amount != 60 || last.ML != 2000 {
		t.Fatalf("last request %+v", last)
	}
}

func TestCommandFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Command([]string{"--version"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "terminald") {
		t.Fatalf("--version: %d %q", code, out.String())
	}
	errb.Reset()
	if code := Command([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--config") && !strings.Contains(errb.String(), "-config") {
		t.Fatalf("--help: %d %q", code, errb.String())
	}
	if code := Command(nil, &out, &errb); code != 2 {
		t.Fatalf("no config: %d", code)
	}
	if code := Command([]string{"--config", "/nonexistent.json"}, &out, &errb); code != 1 {
		t.Fatalf("missing config: %d", code)
	}
	t.Setenv(CrashAtEnv, "Nowhere")
	p := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(p, []byte(`{"terminal":"T1","mode":"pos","data_dir":"/tmp/x","broker":{"url":"tcp://h:1"},"devices":{"display":{"driver":"console"}}}`), 0o600)
	if code := Command([]string{"--config", p}, &out, &errb); code != 2 {
		t.Fatalf("bad crash hook: %d", code)
	}
}

// JSON log lines on stderr at the level of --log-level, else the
// config's log_level; an unknown level is refused, not taken for info.
func TestCommandLogLevel(t *testing.T) {
	dir := t.TempDir()
	write := func(level string) string {
		p := filepath.Join(dir, "c-"+level+".json")
		// A pos box without scanner or card: Command logs the crash hook
		// (warn), then fails to start (error) and returns 1.
		cfg := `{"terminal":"T1","mode":"pos","data_dir":"` + filepath.Join(dir, "data") + `","broker":{"url":"tcp://127.0.0.1:1"},` +
			`"log_level":"` + level + `","devices":{"display":{"driver":"console"}}}`
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv(CrashAtEnv, "Approved")
	levels := func(args ...string) []string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := Command(args, &out, &errb); code != 1 {
			t.Fatalf("%v: exit %d, want 1 (%s)", args, code, errb.String())
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
			var rec struct{ Level, Msg, Service string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Service != "terminald" {
				t.Fatalf("not a terminald JSON log line: %q (%v)", line, err)
			}
			got = append(got, rec.Level+" "+rec.Msg)
		}
		return got
	}
	warnErr := []string{"WARN crash hook armed", "WARN no cached config yet: waiting for the authorizer's", "ERROR start"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--config", write("warn")}, warnErr},
		{[]string{"--config", write("error")}, []string{"ERROR start"}},
		{[]string{"--config", write("error"), "--log-level", "warn"}, warnErr},
		{[]string{"--config", write(""), "--log-level", "ERROR"}, []string{"ERROR start"}},
	} {
		if got := levels(tc.args...); strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%v: logged %q, want %q", tc.args, got, tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := Command([]string{"--config", write("warn"), "--log-level", "verbose"}, &out, &errb); code != 2 {
		t.Fatalf("--log-level verbose: exit %d, want 2", code)
	}
	if code := Command([]string{"--config", write("loud")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), `log level "loud"`) {
		t.Fatalf("log_level loud: exit %d %q", code, errb.String())
	}
}

func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/terminal-*.json")
	if len(files) < 3 {
		t.Fatalf("example configs: %v", files)
	}
	for _, f := range files {
		if _, err := LoadConfig(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	bad := []string{
		`{"terminal":"a/b","mode":"pos","data_dir":"d","broker":{"url":"tcp://h:1"},"devices":{"display":{"driver":"console"}}}`,
		`{"terminal":"T1","mode":"vending","data_dir":"d","broker":{"url":"tcp://h:1"},"devices":{"display":{"driver":"console"}}}`,
		`{"terminal":"T1","mode":"pos","data_dir":"d","broker":{"url":"http://h"},"devices":{"display":{"driver":"console"}}}`,
		`{"terminal":"T1","mode":"pos","data_dir":"d","broker":{"url":"tcp://h:1","password":"x"},"devices":{"display":{"driver":"console"}}}`,
		`{"terminal":"T1","mode":"pos","data_dir":"d","broker":{},"devices":{"display":{"driver":"console"}}}`,
		`{"terminal":"T1","mode":"pos","data_dir":"d","broker":{"url":"tcp://h:1","urls":["tcp://h:2"]},"devices":{"display":{"driver":"console"}}}`,
		`{"terminal":"T1","mode":"pos","data_dir":"d","broker":{"urls":["tcp://h:1","http://h:2"]},"devices":{"display":{"driver":"console"}}}`,
		`{"terminal":"T1","mode":"pos","data_dir":"d","broker":{"urls":["tcp://h:1","tcp://h:1"]},"devices":{"display":{"driver":"console"}}}`,
	}
	for i, b := range bad {
		p := filepath.Join(t.TempDir(), "bad.json")
		os.WriteFile(p, []byte(b), 0o600)
		if _, err := LoadConfig(p); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}

// TestBrokerList: the single-broker key of old configs and the list give
// the link its brokers in order.
func TestBrokerList(t *testing.T) {
	for _, tc := range []struct {
		broker string
		want   []string
	}{
		{`{"url":"tcp://a:1883"}`, []string{"tcp://a:1883"}},
		{`{"urls":["tcp://a:1883","ssl://b:8883"]}`, []string{"tcp://a:1883", "ssl://b:8883"}},
	} {
		p := filepath.Join(t.TempDir(), "c.json")
		os.WriteFile(p, []byte(`{"terminal":"T1","mode":"pos","data_dir":"d","broker":`+tc.broker+`,"devices":{"display":{"driver":"console"}}}`), 0o600)
		c, err := LoadConfig(p)
		if err != nil {
			t.Fatalf("%s: %v", tc.broker, err)
		}
		if got := c.Broker.List(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: brokers %v, want %v", tc.broker, got, tc.want)
		}
	}
}

func TestDeviceFactoryErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cases := []Config{
		{Mode: protocol.ModePOS, Devices: DevicesConfig{Display: &DeviceConfig{Driver: "console"}}},
		{Mode: protocol.ModeShower, Devices: DevicesConfig{Display: &DeviceConfig{Driver: "console"}, Keypad: &DeviceConfig{Driver: "serial", Path: "/nonexistent"}}},
		{Mode: protocol.ModeCard, Devices: DevicesConfig{Display: &DeviceConfig{Driver: "console"}, Card: &DeviceConfig{Driver: "magstripe"}}},
		{Mode: protocol.ModePOS, Devices: DevicesConfig{Display: &DeviceConfig{Driver: "lcd"}}},
	}
	for i, c := range cases {
		if _, err := buildDevices(&c, log, nil); err == nil {
			t.Errorf("case %d: no error", i)
		}
	}
	if _, err := listenLoopback("0.0.0.0:0"); err == nil {
		t.Error("status page on a public address accepted")
	}
}
