package valvetwin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.bug.st/serial"

	"campuspay/hwsim/twin/valvetwin"
	"campuspay/terminal/device/valve/modbus"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func start(t *testing.T, opts valvetwin.Options) *valvetwin.Twin {
	t.Helper()
	if opts.Link == "" {
		opts.Link = filepath.Join(t.TempDir(), "valve")
	}
	opts.Logf = t.Logf
	tw, err := valvetwin.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tw.Close(); err != nil {
			t.Error(err)
		}
		if err := tw.Err(); err != nil {
			t.Error(err)
		}
	})
	return tw
}

func master(t *testing.T, path string) *modbus.Client {
	t.Helper()
	c, err := modbus.Open(path, modbus.Config{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func pulses(t *testing.T, c *modbus.Client) uint32 {
	t.Helper()
	r, err := c.ReadInputRegisters(1, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(r[0])<<16 | uint32(r[1])
}

func TestFlowModelInjectedClock(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 7, 0, 0, 0, time.UTC)}
	tw := start(t, valvetwin.Options{PulsesPerLitre: 450, Now: clk.Now})
	c := master(t, tw.Path())

	tw.SetFlow(6)
	clk.add(time.Minute) // valve closed: nothing flows
	if n := pulses(t, c); n != 0 {
		t.Fatalf("pulses %d with valve closed", n)
	}
	if err := c.WriteSingleCoil(1, 0, true); err != nil {
		t.Fatal(err)
	}
	clk.add(10 * time.Second) // 6 L/min × 10 s = 1 L
	if n := pulses(t, c); n != 450 {
		t.Fatalf("pulses %d, want 450", n)
	}
	// 1 L/min = 7.5 pulses/s: fractions carry over between reads.
	tw.SetFlow(1)
	clk.add(time.Second)
	if n := pulses(t, c); n != 457 {
		t.Fatalf("pulses %d, want 457", n)
	}
	clk.add(time.Second)
	tw.Advance(2 * time.Second) // explicit time adds to the clock's
	if n := pulses(t, c); n != 480 {
		t.Fatalf("pulses %d, want 480", n)
	}
	if err := c.WriteSingleCoil(1, 0, false); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Hour)
	if n := tw.Pulses(); n != 480 {
		t.Fatalf("pulses %d after close, want 480", n)
	}
}

func TestExceptions(t *testing.T) {
	tw := start(t, valvetwin.Options{})
	c := master(t, tw.Path())
	cases := []struct {
		name string
		call func() error
		want modbus.Exception
	}{
		{"register 2", func() error { _, err := c.ReadHoldingRegisters(1, 2, 1); return err }, modbus.ExceptionIllegalDataAddress},
		{"registers 1+2", func() error { _, err := c.ReadInputRegisters(1, 1, 2); return err }, modbus.ExceptionIllegalDataAddress},
		{"coil 1", func() error { _, err := c.ReadCoils(1, 1, 1); return err }, modbus.ExceptionIllegalDataAddress},
		{"write coil 3", func() error { return c.WriteSingleCoil(1, 3, true) }, modbus.ExceptionIllegalDataAddress},
	}
	for _, tc := range cases {
		if err := tc.call(); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// raw opens the twin as a plain serial port for hand-made frames.
func raw(t *testing.T, path string) serial.Port {
	t.Helper()
	p, err := serial.Open(path, &serial.Mode{BaudRate: 9600})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// readFrame reads one response, byte at a time through the parser.
func readFrame(t *testing.T, p serial.Port) modbus.Frame {
	t.Helper()
	parser := modbus.NewParser(modbus.Responses)
	deadline := time.Now().Add(5 * time.Second)
	var b [1]byte
	for time.Now().Before(deadline) {
		if err := p.SetReadTimeout(time.Until(deadline)); err != nil {
			t.Fatal(err)
		}
		n, err := p.Read(b[:])
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			continue
		}
		f, ok, err := parser.Feed(b[0])
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return f
		}
	}
	t.Fatal("no response")
	return modbus.Frame{}
}

func TestIllegalFunctionAndLineNoise(t *testing.T) {
	tw := start(t, valvetwin.Options{})
	p := raw(t, tw.Path())

	// Write Single Register (0x06) is framed but not implemented.
	req := modbus.Frame{Slave: 1, Function: modbus.FuncWriteSingleRegister, Data: []byte{0, 0, 0, 1}}
	if _, err := p.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	want := modbus.ExceptionResponse(1, modbus.FuncWriteSingleRegister, modbus.ExceptionIllegalFunction)
	if got := readFrame(t, p); !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("got %v, want %v", got, want)
	}

	// Noise in one burst is discarded; the next request is answered.
	if _, err := p.Write([]byte{0x01, 0x2B, 0x99, 0x00}); err != nil {
		t.Fatal(err)
	}
	// Another slave's frame is ignored.
	if _, err := p.Write(modbus.ReadRequest(2, modbus.FuncReadCoils, 0, 1).Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(modbus.ReadRequest(1, modbus.FuncReadCoils, 0, 1).Bytes()); err != nil {
		t.Fatal(err)
	}
	if got := readFrame(t, p); got.Function != modbus.FuncReadCoils || got.Slave != 1 {
		t.Fatalf("got %v", got)
	}
	if s := tw.Stats(); s.BadFrames < 1 || s.Requests != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCloseRemovesLinkAndIsIdempotent(t *testing.T) {
	link := filepath.Join(t.TempDir(), "valve")
	if err := os.WriteFile(link, nil, 0o600); err != nil { // a stale file is replaced
		t.Fatal(err)
	}
	tw, err := valvetwin.Start(valvetwin.Options{Link: link})
	if err != nil {
		t.Fatal(err)
	}
	c := master(t, link)
	if _, err := c.ReadCoils(1, 0, 1); err != nil {
		t.Fatal(err)
	}
	c.Close() // the driver going away must not stop the twin
	c = master(t, link)
	if _, err := c.ReadCoils(1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link still there: %v", err)
	}
}

// mbpoll is the independent peer: libmodbus's RTU master, Debian's build.
func mbpoll(t *testing.T, path string, args []string, values ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("mbpoll")
	if err != nil {
		t.Skip("mbpoll not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	argv := append([]string{"-m", "rtu", "-a", "1", "-b", "9600", "-P", "none", "-s", "1", "-1", "-o", "1", "-v"}, args...)
	argv = append(append(argv, path), values...)
	out, err := exec.CommandContext(ctx, bin, argv...).CombinedOutput()
	t.Logf("mbpoll %s\n%s", strings.Join(argv, " "), out)
	return string(out), err
}

var (
	valueLine = regexp.MustCompile(`(?m)^\[(\d+)\]:\s+(-?\d+)`)
	sentFrame = regexp.MustCompile(`(?m)^((?:\[[0-9A-F]{2}\])+)\s*$`)
	gotFrame  = regexp.MustCompile(`(?m)^((?:<[0-9A-F]{2}>)+)\s*$`)
)

// values parses mbpoll's "[ref]: value" lines.
func values(t *testing.T, out string) map[int]int64 {
	t.Helper()
	m := map[int]int64{}
	for _, sm := range valueLine.FindAllStringSubmatch(out, -1) {
		ref, _ := strconv.Atoi(sm[1])
		v, err := strconv.ParseInt(sm[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		m[ref] = v
	}
	return m
}

// frames parses mbpoll -v's "[01][05]..." (sent) or "<01><05>..." (received) dumps.
func frames(re *regexp.Regexp, out string) []string {
	var fs []string
	for _, sm := range re.FindAllStringSubmatch(out, -1) {
		s := strings.NewReplacer("[", "", "]", " ", "<", "", ">", " ").Replace(sm[1])
		fs = append(fs, strings.TrimSpace(s))
	}
	return fs
}

func hexFrame(f modbus.Frame) string { return fmt.Sprintf("% X", f.Bytes()) }

func TestMbpollPeer(t *testing.T) {
	tw := start(t, valvetwin.Options{})
	tw.SetPulses(123456) // 0x0001E240

	// Holding registers, 1-based references: [1] high word, [2] low word.
	out, err := mbpoll(t, tw.Path(), []string{"-t", "4", "-r", "1", "-c", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if v := values(t, out); v[1] != 1 || v[2] != 0xE240 {
		t.Fatalf("holding registers %v, want [1]=1 [2]=57920", v)
	}
	if s := frames(sentFrame, out); len(s) != 1 || s[0] != hexFrame(modbus.ReadRequest(1, modbus.FuncReadHoldingRegisters, 0, 2)) {
		t.Fatalf("mbpoll sent %q", s)
	}
	if r := frames(gotFrame, out); len(r) != 1 || r[0] != hexFrame(modbus.RegistersResponse(1, modbus.FuncReadHoldingRegisters, []uint16{1, 0xE240})) {
		t.Fatalf("mbpoll received %q", r)
	}

	// The same counter as a 32-bit big-endian (high word first) input register pair, 0-based.
	out, err = mbpoll(t, tw.Path(), []string{"-0", "-t", "3:int", "-B", "-r", "0", "-c", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := values(t, out); v[0] != 123456 {
		t.Fatalf("32-bit counter %v, want 123456", v)
	}

	// Write the valve coil (reference 1 = coil 0) on, then read it back.
	out, err = mbpoll(t, tw.Path(), []string{"-t", "0", "-r", "1"}, "1")
	if err != nil {
		t.Fatal(err)
	}
	if !tw.ValveOpen() {
		t.Fatal("mbpoll's write did not open the valve")
	}
	if s := frames(sentFrame, out); len(s) != 1 || s[0] != hexFrame(modbus.WriteSingleCoilRequest(1, 0, true)) {
		t.Fatalf("mbpoll sent %q", s)
	}
	tw.SetFlow(6)
	tw.Advance(10 * time.Second)
	out, err = mbpoll(t, tw.Path(), []string{"-t", "0", "-r", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := values(t, out); v[1] != 1 {
		t.Fatalf("coil %v, want 1", v)
	}
	out, err = mbpoll(t, tw.Path(), []string{"-0", "-t", "3:int", "-B", "-r", "0", "-c", "1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := values(t, out); v[0] != 123456+450 {
		t.Fatalf("counter %v, want %d", v, 123456+450)
	}
	if _, err = mbpoll(t, tw.Path(), []string{"-t", "0", "-r", "1"}, "0"); err != nil {
		t.Fatal(err)
	}
	if tw.ValveOpen() {
		t.Fatal("mbpoll's write did not close the valve")
	}

	// Out of the map: mbpoll reports the slave's exception.
	out, err = mbpoll(t, tw.Path(), []string{"-t", "4", "-r", "5"})
	if err == nil || !strings.Contains(out, "Illegal data address") {
		t.Fatalf("want an illegal data address failure, got %v", err)
	}
}

func TestBroadcastWriteIsExecutedNotAnswered(t *testing.T) {
	tw := start(t, valvetwin.Options{})
	c := master(t, tw.Path())
	if err := c.WriteSingleCoil(0, 0, true); err != nil {
		t.Fatal(err)
	}
	// The twin handles frames in order, so this read sees the broadcast's effect.
	bits, err := c.ReadCoils(1, 0, 1)
	if err != nil || !bits[0] {
		t.Fatalf("coil after broadcast = %v, %v", bits, err)
	}
	if s := tw.Stats(); s.Requests != 2 || s.Responses != 1 {
		t.Fatalf("twin stats %+v", s)
	}
	if s := c.Stats(); s.Timeouts != 0 || s.Unexpected != 0 {
		t.Fatalf("client stats %+v", s)
	}
}
