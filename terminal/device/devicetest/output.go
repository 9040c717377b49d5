package devicetest

import (
	"context"
	"sync"

	"campuspay/terminal/device"
)

// Display is a fake device.Display that records every screen shown.
type Display struct {
	mu      sync.Mutex
	screens []device.Screen
	changed chan struct{} // closed and replaced on every Show
	halted  bool
	// ShowErr, when set, is returned by Show (the screen is not recorded).
	ShowErr error
}

// NewDisplay returns an empty fake display.
func NewDisplay() *Display { return &Display{changed: make(chan struct{})} }

// Show implements device.Display. After Halt it returns device.ErrHalted.
func (d *Display) Show(s device.Screen) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.halted {
		return device.ErrHalted
	}
	if d.ShowErr != nil {
		return d.ShowErr
	}
	d.record(s)
	return nil
}

func (d *Display) record(s device.Screen) {
	s.Lines = append([]string(nil), s.Lines...) // the caller may reuse its slice
	d.screens = append(d.screens, s)
	close(d.changed)
	d.changed = make(chan struct{})
}

// Halt implements device.Display: it records a blank screen once.
func (d *Display) Halt() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.halted {
		d.halted = true
		d.record(device.Screen{Kind: device.ScreenBlank})
	}
	return nil
}

// Halted reports whether Halt was called.
func (d *Display) Halted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.halted
}

// Screens returns a copy of every screen shown, oldest first.
func (d *Display) Screens() []device.Screen {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]device.Screen(nil), d.screens...)
}

// Count returns how many screens have been shown; use it with WaitForAfter.
func (d *Display) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.screens)
}

// Last returns the screen showing now (ok false before the first Show).
func (d *Display) Last() (s device.Screen, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.screens) == 0 {
		return device.Screen{}, false
	}
	return d.screens[len(d.screens)-1], true
}

// WaitFor returns the first screen, ever shown or shown later, for which
// match is true. It returns ctx.Err() if ctx ends first.
func (d *Display) WaitFor(ctx context.Context, match func(device.Screen) bool) (device.Screen, error) {
	return d.WaitForAfter(ctx, 0, match)
}

// WaitForAfter is WaitFor restricted to screens with index >= from
// (from is a value of Count taken before the action under test).
func (d *Display) WaitForAfter(ctx context.Context, from int, match func(device.Screen) bool) (device.Screen, error) {
	next := from
	for {
		d.mu.Lock()
		for ; next < len(d.screens); next++ {
			if match(d.screens[next]) {
				s := d.screens[next]
				d.mu.Unlock()
				return s, nil
			}
		}
		changed := d.changed
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return device.Screen{}, ctx.Err()
		case <-changed:
		}
	}
}

// ValveEvent is one entry in a fake valve's history.
type ValveEvent struct {
	Open bool // true for Open, false for Close or Halt
	Halt bool // the close came from Halt
}

// Valve is a fake device.Valve. It starts closed.
type Valve struct {
	mu      sync.Mutex
	open    bool
	halted  bool
	history []ValveEvent
	changed chan struct{}
	// OpenErr, CloseErr and IsOpenErr, when set, are returned by the
	// matching call; a failed call changes nothing.
	OpenErr, CloseErr, IsOpenErr error
}

// NewValve returns a closed fake valve.
func NewValve() *Valve { return &Valve{changed: make(chan struct{})} }

func (v *Valve) set(ev ValveEvent) {
	v.open = ev.Open
	v.history = append(v.history, ev)
	close(v.changed)
	v.changed = make(chan struct{})
}

// Open implements device.Valve. After Halt it returns device.ErrHalted and
// the valve stays closed.
func (v *Valve) Open() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.halted {
		return device.ErrHalted
	}
	if v.OpenErr != nil {
		return v.OpenErr
	}
	v.set(ValveEvent{Open: true})
	return nil
}

// Close implements device.Valve. Closing is always allowed, even after Halt.
func (v *Valve) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.CloseErr != nil {
		return v.CloseErr
	}
	v.set(ValveEvent{})
	return nil
}

// IsOpen implements device.Valve.
func (v *Valve) IsOpen() (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.IsOpenErr != nil {
		return false, v.IsOpenErr
	}
	return v.open, nil
}

// Halt implements device.Valve: it closes the valve, ignoring CloseErr
// (a fake has no stuck valve unless a test asks for one with IsOpenErr).
func (v *Valve) Halt() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.halted = true
	v.set(ValveEvent{Halt: true})
	return nil
}

// Halted reports whether Halt was called.
func (v *Valve) Halted() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.halted
}

// History returns every Open, Close and Halt in order.
func (v *Valve) History() []ValveEvent {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]ValveEvent(nil), v.history...)
}

// WaitOpen waits until the valve's state is open (want true) or closed.
func (v *Valve) WaitOpen(ctx context.Context, want bool) error {
	for {
		v.mu.Lock()
		open, changed := v.open, v.changed
		v.mu.Unlock()
		if open == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// FlowMeter is a fake device.FlowMeter with a settable counter.
type FlowMeter struct {
	mu     sync.Mutex
	pulses uint32
	halted bool
	// Err, when set, is returned by Pulses.
	Err error
}

// NewFlowMeter returns a meter reading 0.
func NewFlowMeter() *FlowMeter { return &FlowMeter{} }

// Set sets the cumulative counter.
func (f *FlowMeter) Set(n uint32) {
	f.mu.Lock()
	f.pulses = n
	f.mu.Unlock()
}

// Add advances the counter by n, wrapping at 2^32 like the real meter.
func (f *FlowMeter) Add(n uint32) {
	f.mu.Lock()
	f.pulses += n
	f.mu.Unlock()
}

// Pulses implements device.FlowMeter. After Halt it returns device.ErrHalted.
func (f *FlowMeter) Pulses() (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.halted {
		return 0, device.ErrHalted
	}
	if f.Err != nil {
		return 0, f.Err
	}
	return f.pulses, nil
}

// Halt implements device.FlowMeter.
func (f *FlowMeter) Halt() error {
	f.mu.Lock()
	f.halted = true
	f.mu.Unlock()
	return nil
}

// Halted reports whether Halt was called.
func (f *FlowMeter) Halted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.halted
}

// Compile-time checks that the fakes implement the role interfaces.
var (
	_ device.Scanner    = (*Scanner)(nil)
	_ device.CardReader = (*CardReader)(nil)
	_ device.Keypad     = (*Keypad)(nil)
	_ device.Display    = (*Display)(nil)
	_ device.Valve      = (*Valve)(nil)
	_ device.FlowMeter  = (*FlowMeter)(nil)
)
