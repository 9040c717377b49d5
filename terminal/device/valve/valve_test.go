package valve_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"campuspay/hwsim/twin/valvetwin"
	"campuspay/terminal/device"
	"campuspay/terminal/device/valve"
	"campuspay/terminal/device/valve/modbus"
)

// rig is the driver on a real pty against the twin.
func rig(t *testing.T, cfg valve.Config) (*valve.Bus, *valvetwin.Twin) {
	t.Helper()
	tw, err := valvetwin.Start(valvetwin.Options{Link: filepath.Join(t.TempDir(), "valve"), PulsesPerLitre: 450, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tw.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg.Port = tw.Path()
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond // generous: CI machines are loaded; timeouts are tested on purpose elsewhere
	}
	b, err := valve.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, tw
}

func TestValveOpenCloseAndMeter(t *testing.T) {
	b, tw := rig(t, valve.Config{})
	v, m := b.Valve(), b.FlowMeter()

	if open, err := v.IsOpen(); err != nil || open {
		t.Fatalf("IsOpen at start = %v, %v", open, err)
	}
	tw.SetFlow(6) // tap open, valve closed: no water
	tw.Advance(10 * time.Second)
	if n, err := m.Pulses(); err != nil || n != 0 {
		t.Fatalf("pulses with valve closed = %d, %v", n, err)
	}

	if err := v.Open(); err != nil {
		t.Fatal(err)
	}
	if !tw.ValveOpen() {
		t.Fatal("twin valve not open")
	}
	if open, err := v.IsOpen(); err != nil || !open {
		t.Fatalf("IsOpen = %v, %v", open, err)
	}
	tw.Advance(10 * time.Second) // 6 L/min × 10 s = 1 L = 450 pulses
	if n, err := m.Pulses(); err != nil || n != 450 {
		t.Fatalf("pulses = %d, %v; want 450", n, err)
	}
	tw.SetFlow(9) // 9 L/min × 20 s = 3 L = 1350 pulses
	tw.Advance(20 * time.Second)
	if n, err := m.Pulses(); err != nil || n != 1800 {
		t.Fatalf("pulses = %d, %v; want 1800", n, err)
	}

	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	tw.Advance(time.Minute)
	if n, err := m.Pulses(); err != nil || n != 1800 {
		t.Fatalf("pulses after close = %d, %v; want 1800", n, err)
	}
	if open, err := v.IsOpen(); err != nil || open {
		t.Fatalf("IsOpen after close = %v, %v", open, err)
	}
}

func TestCounterHighWordFirstAndWraps(t *testing.T) {
	for _, table := range []valve.Table{valve.InputRegisters, valve.HoldingRegisters} {
		b, tw := rig(t, valve.Config{Counter: table})
		tw.SetPulses(0xFFFF_FFF0)
		if n, err := b.FlowMeter().Pulses(); err != nil || n != 0xFFFF_FFF0 {
			t.Fatalf("table %d: pulses = %#x, %v", table, n, err)
		}
		tw.SetFlow(60) // 1 L/s = 450 pulses/s
		if err := b.Valve().Open(); err != nil {
			t.Fatal(err)
		}
		tw.Advance(time.Second)
		if n, err := b.FlowMeter().Pulses(); err != nil || n != 450-16 {
			t.Fatalf("table %d: pulses after wrap = %d, %v; want %d", table, n, err, 450-16)
		}
	}
}

func TestHaltClosesAndRefusesOpen(t *testing.T) {
	b, tw := rig(t, valve.Config{})
	v := b.Valve()
	if err := v.Open(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := v.Halt(); err != nil {
			t.Fatal(err)
		}
		if tw.ValveOpen() {
			t.Fatal("valve open after Halt")
		}
	}
	if err := v.Open(); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Open after Halt = %v, want ErrHalted", err)
	}
	if tw.ValveOpen() {
		t.Fatal("valve opened after Halt")
	}
	// The meter keeps reading after Halt, for the final charge.
	if err := b.FlowMeter().Halt(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.FlowMeter().Pulses(); err != nil {
		t.Fatal(err)
	}
}

func TestHaltReportsStuckValve(t *testing.T) {
	b, tw := rig(t, valve.Config{})
	if err := b.Valve().Open(); err != nil {
		t.Fatal(err)
	}
	tw.StickValve(true) // the close is acknowledged but the valve does not move
	if err := b.Valve().Halt(); !errors.Is(err, valve.ErrStillOpen) {
		t.Fatalf("Halt on a stuck valve = %v, want ErrStillOpen", err)
	}
	tw.StickValve(false)
	if err := b.Valve().Halt(); err != nil {
		t.Fatal(err)
	}
}

func TestHaltLostAnswerStillCloses(t *testing.T) {
	b, tw := rig(t, valve.Config{Timeout: 200 * time.Millisecond, Attempts: 5})
	tw.SetValve(true)
	tw.DropResponses(1) // the close is executed but its answer is lost: retried
	if err := b.Valve().Halt(); err != nil {
		t.Fatal(err)
	}
	if tw.ValveOpen() {
		t.Fatal("twin valve open")
	}
}

func TestFaultsAreRetried(t *testing.T) {
	cases := []struct {
		name   string
		inject func(*valvetwin.Twin)
		check  func(modbus.Stats) bool
	}{
		{"crc", func(tw *valvetwin.Twin) { tw.InjectCRCErrors(2) }, func(s modbus.Stats) bool { return s.CRCErrors == 2 && s.Retries >= 2 }},
		{"garbage", func(tw *valvetwin.Twin) { tw.InjectGarbage(1) }, func(s modbus.Stats) bool { return s.CRCErrors+s.Malformed == 1 && s.Retries >= 1 }},
		{"dropped", func(tw *valvetwin.Twin) { tw.DropResponses(1) }, func(s modbus.Stats) bool { return s.Timeouts >= 1 && s.Retries >= 1 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, tw := rig(t, valve.Config{Timeout: 200 * time.Millisecond, Attempts: 5})
			tw.SetPulses(123456)
			tc.inject(tw)
			n, err := b.FlowMeter().Pulses()
			if err != nil || n != 123456 {
				t.Fatalf("pulses = %d, %v", n, err)
			}
			if s := b.Stats(); !tc.check(s) {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func TestTimeoutWhenSilent(t *testing.T) {
	b, tw := rig(t, valve.Config{Timeout: 100 * time.Millisecond, Attempts: 2})
	tw.DropResponses(2)
	_, err := b.FlowMeter().Pulses()
	if !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("err = %v, want timeout", err)
	}
	if s := tw.Stats(); s.Dropped != 2 {
		t.Fatalf("twin stats %+v", s)
	}
	// The bus recovers once the slave answers again.
	if _, err := b.FlowMeter().Pulses(); err != nil {
		t.Fatal(err)
	}
}

func TestWrongSlaveTimesOut(t *testing.T) {
	b, _ := rig(t, valve.Config{Slave: 9, Timeout: 20 * time.Millisecond, Attempts: 1})
	if _, err := b.Valve().IsOpen(); !errors.Is(err, modbus.ErrTimeout) {
		t.Fatalf("err = %v, want timeout", err)
	}
}

func TestSharedBusConcurrent(t *testing.T) {
	// Valve and meter from different goroutines: the client's mutex keeps
	// transactions whole, so nothing is misframed (run with -race).
	b, tw := rig(t, valve.Config{})
	tw.SetPulses(77)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				var err error
				if g%2 == 0 {
					var n uint32
					if n, err = b.FlowMeter().Pulses(); err == nil && n != 77 {
						err = errors.New("bad count")
					}
				} else {
					_, err = b.Valve().IsOpen()
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Requests != 80+s.Retries || s.CRCErrors+s.Malformed != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLateAnswersAreNotMistaken(t *testing.T) {
	// A busy slave answers after the master gave up. Its late "closed"
	// answers must never be taken for the answer to a later request.
	b, tw := rig(t, valve.Config{Timeout: 30 * time.Millisecond, Attempts: 20})
	tw.SetReplyDelay(150 * time.Millisecond)
	if open, err := b.Valve().IsOpen(); err != nil || open {
		t.Fatalf("slow IsOpen = %v, %v", open, err) // a late answer to the same request is still right
	}
	tw.SetReplyDelay(0)
	if err := b.Valve().Open(); err != nil {
		t.Fatal(err)
	}
	if !tw.ValveOpen() {
		t.Fatal("twin valve not open")
	}
	if open, err := b.Valve().IsOpen(); err != nil || !open {
		t.Fatalf("IsOpen after Open = %v, %v (a stale answer was taken)", open, err)
	}
	if s := b.Stats(); s.Timeouts == 0 {
		t.Fatalf("the slow slave caused no timeout: %+v", s)
	}
}
