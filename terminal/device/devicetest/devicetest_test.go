package devicetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"campuspay/terminal/device"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestScanner(t *testing.T) {
	ctx := ctxT(t)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	sc := NewScanner()
	sc.Now = func() time.Time { return at }
	sc.Push("CW1:A", "CW1:B")
	sc.PushScan(device.Scan{Text: "X", Format: "QR_CODE", Source: "camera"})
	for _, want := range []device.Scan{
		{Text: "CW1:A", Source: "fake", At: at},
		{Text: "CW1:B", Source: "fake", At: at},
		{Text: "X", Format: "QR_CODE", Source: "camera", At: at},
	} {
		got, err := sc.Scan(ctx)
		if err != nil || got != want {
			t.Fatalf("Scan = %+v, %v; want %+v", got, err, want)
		}
	}
	// A push from another goroutine wakes a blocked Scan.
	go sc.Push("late")
	if got, err := sc.Scan(ctx); err != nil || got.Text != "late" {
		t.Fatalf("Scan = %+v, %v", got, err)
	}
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := sc.Scan(short); !errors.Is(err, context.Canceled) {
		t.Fatalf("Scan with ended ctx: %v", err)
	}
	errc := make(chan error, 1)
	go func() { _, err := sc.Scan(ctx); errc <- err }()
	sc.Halt()
	if err := <-errc; !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Scan across Halt: %v", err)
	}
	sc.Push("after")
	if _, err := sc.Scan(ctx); !errors.Is(err, device.ErrHalted) || !sc.Halted() {
		t.Fatalf("Scan after Halt: %v", err)
	}
}

func TestCardReaderAndKeypad(t *testing.T) {
	ctx := ctxT(t)
	cr := NewCardReader()
	cr.Tap("04A1B2C3")
	if tap, err := cr.Read(ctx); err != nil || tap.UID != "04A1B2C3" || tap.Source != "fake" || tap.At.IsZero() {
		t.Fatalf("Read = %+v, %v", tap, err)
	}
	cr.Halt()
	if _, err := cr.Read(ctx); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Read after Halt: %v", err)
	}

	kp := NewKeypad()
	kp.Type("12.50\nC\x7f")
	kp.Press(device.KeyStop, device.KeyFunc)
	want := []device.Key{'1', '2', '.', '5', '0', device.KeyEnter, device.KeyCancel, device.KeyBackspace, device.KeyStop, device.KeyFunc}
	if kp.Pending() != len(want) {
		t.Fatalf("Pending %d", kp.Pending())
	}
	for _, w := range want {
		if k, err := kp.Key(ctx); err != nil || k != w {
			t.Fatalf("Key = %q, %v; want %q", k, err, w)
		}
	}
	kp.Halt()
	if _, err := kp.Key(ctx); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Key after Halt: %v", err)
	}
}

func TestDisplay(t *testing.T) {
	ctx := ctxT(t)
	d := NewDisplay()
	if _, ok := d.Last(); ok {
		t.Fatal("Last on a new display")
	}
	d.Show(device.Screen{Kind: device.ScreenIdle})
	d.Show(device.Screen{Kind: device.ScreenResult, OK: true, Message: "支付成功"})
	d.Show(device.Screen{Kind: device.ScreenIdle})
	// WaitFor finds a screen already replaced.
	s, err := d.WaitFor(ctx, func(s device.Screen) bool { return s.Kind == device.ScreenResult })
	if err != nil || !s.OK {
		t.Fatalf("WaitFor = %+v, %v", s, err)
	}
	// WaitForAfter only looks at screens from index n on; one shown later
	// from another goroutine wakes it.
	n := d.Count()
	go d.Show(device.Screen{Kind: device.ScreenResult, OK: false})
	s, err = d.WaitForAfter(ctx, n, func(s device.Screen) bool { return s.Kind == device.ScreenResult })
	if err != nil || s.OK {
		t.Fatalf("WaitForAfter = %+v, %v", s, err)
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := d.WaitForAfter(short, d.Count(), func(device.Screen) bool { return true }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForAfter with nothing shown: %v", err)
	}
	d.ShowErr = errors.New("hdmi unplugged")
	if err := d.Show(device.Screen{Kind: device.ScreenIdle}); err == nil {
		t.Fatal("ShowErr ignored")
	}
	d.ShowErr = nil
	d.Halt()
	d.Halt()
	if last, _ := d.Last(); last.Kind != device.ScreenBlank || !d.Halted() {
		t.Fatalf("after Halt the display shows %+v", last)
	}
	if err := d.Show(device.Screen{Kind: device.ScreenIdle}); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Show after Halt: %v", err)
	}
	if got := len(d.Screens()); got != 5 {
		t.Fatalf("%d screens recorded, want 5", got)
	}
}

func TestValveAndFlowMeter(t *testing.T) {
	ctx := ctxT(t)
	v := NewValve()
	if open, _ := v.IsOpen(); open {
		t.Fatal("a new valve is open")
	}
	go v.Open()
	if err := v.WaitOpen(ctx, true); err != nil {
		t.Fatal(err)
	}
	v.Close()
	v.Open()
	v.Halt()
	if open, _ := v.IsOpen(); open || !v.Halted() {
		t.Fatal("valve open after Halt")
	}
	if err := v.Open(); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Open after Halt: %v", err)
	}
	want := []ValveEvent{{Open: true}, {}, {Open: true}, {Halt: true}}
	got := v.History()
	if len(got) != len(want) {
		t.Fatalf("history %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("history %+v, want %+v", got, want)
		}
	}

	fm := NewFlowMeter()
	fm.Set(0xFFFFFFFE)
	fm.Add(5) // wraps like the real 32-bit counter
	if n, err := fm.Pulses(); err != nil || n != 3 {
		t.Fatalf("Pulses = %d, %v; want 3", n, err)
	}
	fm.Err = errors.New("crc")
	if _, err := fm.Pulses(); err == nil {
		t.Fatal("Err ignored")
	}
	fm.Halt()
	if _, err := fm.Pulses(); !errors.Is(err, device.ErrHalted) || !fm.Halted() {
		t.Fatalf("Pulses after Halt: %v", err)
	}
}

// The reserved face reader's fake: a matched face, then Halt.
func TestFaceReader(t *testing.T) {
	ctx := ctxT(t)
	var fr device.FaceReader = NewFaceReader()
	fr.(*FaceReader).Show("2024001")
	if f, err := fr.Match(ctx); err != nil || f.Account != "2024001" || f.Source != "fake" || f.Score != 1 || f.At.IsZero() {
		t.Fatalf("Match = %+v, %v", f, err)
	}
	fr.Halt()
	if _, err := fr.Match(ctx); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Match after Halt: %v", err)
	}
}
