// Package valvetwin is the hwsim twin of the shower valve and flow meter: a
// Modbus RTU slave on a pseudo-terminal with the register map of package
// valve, and a water-flow model. The real driver opens the twin's stable
// symlink path unchanged.
//
// Water flows only while the valve coil is on and the tap is open
// (SetFlow > 0); pulses accumulate at PulsesPerLitre. Time is never read
// from the wall clock unless the caller injects Now: tests move it with
// Advance, so they are deterministic.
//
// Faults for tests: InjectCRCErrors, InjectGarbage and DropResponses
// corrupt or suppress the next n responses.
package valvetwin

import (
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"time"

	"campuspay/hwsim/pty"
	"campuspay/terminal/device/valve"
	"campuspay/terminal/device/valve/modbus"
)

// Options configure a twin.
type Options struct {
	Link           string  // stable symlink to the pty slave (replaced if present); "" for none
	Slave          byte    // slave address, default 1
	PulsesPerLitre float64 // default 450 (a common hall-effect meter)
	// Now, if set, makes water flow in (injected) real time as well as by
	// Advance. Leave nil for fully explicit time.
	Now func() time.Time
	// ReplyDelay holds each response back, like a slow or busy slave (a pty
	// has no baud rate to slow it down). Change it with SetReplyDelay.
	ReplyDelay time.Duration
	// Garbage is what InjectGarbage puts before a response; default 00 FF 55.
	Garbage []byte
	Logf    func(format string, args ...any) // optional
}

// Stats counts what the twin saw.
type Stats struct {
	Requests  int // well-formed requests addressed to us (or broadcast)
	Responses int // responses written
	Dropped   int // responses suppressed by DropResponses
	BadFrames int // CRC or framing errors on the line
}

// Twin is a running valve/meter slave.
type Twin struct {
	opts    Options
	port    *pty.Port // raw pty; it keeps its slave open so we never read EIO
	done    chan struct{}
	closing chan struct{} // closed by Close, ends a reply delay

	mu       sync.Mutex
	open     bool    // valve position (coil 0 reads it)
	stuck    bool    // coil writes are acknowledged but the valve does not move
	lpm      float64 // tap flow while the valve is open
	pulses   uint32  // counter (wraps)
	frac     float64 // fractional pulse carried between updates
	lastNow  time.Time
	crcFault int
	garbage  int
	drop     int
	stats    Stats
	closed   bool
	serveErr error
}

// Start creates the pty, the symlink and the serving goroutine.
func Start(opts Options) (*Twin, error) {
	if opts.Slave == 0 {
		opts.Slave = 1
	}
	if opts.PulsesPerLitre <= 0 {
		opts.PulsesPerLitre = 450
	}
	if opts.Garbage == nil {
		opts.Garbage = []byte{0x00, 0xFF, 0x55}
	}
	port, err := pty.Open(opts.Link)
	if err != nil {
		return nil, fmt.Errorf("valvetwin: %w", err)
	}
	t := &Twin{opts: opts, port: port, done: make(chan struct{}), closing: make(chan struct{})}
	if opts.Now != nil {
		t.lastNow = opts.Now()
	}
	go t.serve()
	return t, nil
}

// Path is what the driver opens: the symlink, or /dev/pts/N without one.
func (t *Twin) Path() string { return t.port.Path() }

// Close stops serving, closes the pty and removes the symlink.
func (t *Twin) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	close(t.closing)
	err := t.port.Close() // also ends serve's blocked Read
	<-t.done
	if err != nil {
		return fmt.Errorf("valvetwin: close: %w", err)
	}
	return nil
}

// Err is the error that stopped serving early, if any.
func (t *Twin) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.serveErr
}

// SetFlow opens the tap to lpm litres per minute (0 closes it). Water runs
// only while the valve is open too.
func (t *Twin) SetFlow(lpm float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle()
	t.lpm = max(lpm, 0)
}

// Advance moves the twin's time on by d, accumulating pulses.
func (t *Twin) Advance(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle()
	t.flow(d)
}

// Pulses returns the counter.
func (t *Twin) Pulses() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle()
	return t.pulses
}

// SetPulses sets the counter (e.g. near 2^32 to test wrapping).
func (t *Twin) SetPulses(n uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle()
	t.pulses, t.frac = n, 0
}

// ValveOpen reports the valve coil.
func (t *Twin) ValveOpen() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.open
}

// SetValve sets the coil from the "device" side (a stuck valve, a local override).
func (t *Twin) SetValve(open bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle()
	t.open = open
}

// StickValve simulates a seized valve: coil writes are acknowledged but the
// position does not change, and reads report the real position.
func (t *Twin) StickValve(stuck bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stuck = stuck
}

// SetReplyDelay changes Options.ReplyDelay.
func (t *Twin) SetReplyDelay(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.opts.ReplyDelay = d
}

// InjectCRCErrors corrupts the CRC of the next n responses.
func (t *Twin) InjectCRCErrors(n int) { t.fault(&t.crcFault, n) }

// InjectGarbage puts Options.Garbage before the next n responses.
func (t *Twin) InjectGarbage(n int) { t.fault(&t.garbage, n) }

// DropResponses executes the next n requests but sends no response, as when
// the answer is lost on the line.
func (t *Twin) DropResponses(n int) { t.fault(&t.drop, n) }

func (t *Twin) fault(c *int, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	*c = n
}

// Stats returns the counters.
func (t *Twin) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// settle brings the flow up to the injected clock. Call with mu held.
func (t *Twin) settle() {
	if t.opts.Now == nil {
		return
	}
	now := t.opts.Now()
	if d := now.Sub(t.lastNow); d > 0 {
		t.flow(d)
	}
	t.lastNow = now
}

// flow accumulates d of water at the current rate. Call with mu held.
func (t *Twin) flow(d time.Duration) {
	if !t.open || t.lpm <= 0 || d <= 0 {
		return
	}
	p := t.frac + t.lpm*t.opts.PulsesPerLitre*d.Seconds()/60
	whole := math.Floor(p)
	t.frac = p - whole
	t.pulses += uint32(uint64(whole)) // wraps at 2^32 like the real counter
}

func (t *Twin) logf(format string, args ...any) {
	if t.opts.Logf != nil {
		t.opts.Logf(format, args...)
	}
}

// frameGap is how long a partial request may stall before the twin drops
// it, standing in for the t3.5 silence a pty cannot show.
const frameGap = 100 * time.Millisecond

func (t *Twin) serve() {
	defer close(t.done)
	p := modbus.NewParser(modbus.Requests)
	var pend []byte // bytes of the frame being parsed
	var buf [512]byte
	for {
		deadline := time.Time{}
		if len(pend) > 0 {
			deadline = time.Now().Add(frameGap)
		}
		if err := t.port.SetReadDeadline(deadline); err != nil {
			t.stop(fmt.Errorf("valvetwin: set deadline: %w", err))
			return
		}
		n, err := t.port.Read(buf[:])
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.logf("valvetwin: dropping %d-byte partial frame", len(pend))
			p.Reset()
			pend = pend[:0]
			continue
		}
		if err != nil {
			t.stop(err)
			return
		}
		// A pty has no silences to resynchronise on, so after a bad frame
		// hunt for the next one from the byte after the bad frame's start;
		// the CRC keeps noise from passing as a request.
		queue := append([]byte(nil), buf[:n]...)
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			pend = append(pend, c)
			f, ok, err := p.Feed(c)
			switch {
			case err != nil:
				t.mu.Lock()
				t.stats.BadFrames++
				t.mu.Unlock()
				t.logf("valvetwin: %v", err)
				queue = append(append([]byte(nil), pend[1:]...), queue...)
				pend = pend[:0]
			case ok:
				pend = pend[:0]
				if err := t.respond(f); err != nil {
					t.stop(err)
					return
				}
			}
		}
	}
}

func (t *Twin) stop(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.serveErr = err
	}
}

// respond executes a request and writes its response, with any injected fault.
func (t *Twin) respond(req modbus.Frame) error {
	if req.Slave != t.opts.Slave && req.Slave != 0 {
		return nil // another slave's frame
	}
	t.mu.Lock()
	t.stats.Requests++
	t.settle()
	resp := t.execute(req)
	if req.Slave == 0 {
		t.mu.Unlock()
		return nil // broadcasts are never answered
	}
	var wire []byte
	switch {
	case t.drop > 0:
		t.drop--
		t.stats.Dropped++
		t.mu.Unlock()
		return nil
	case t.garbage > 0:
		t.garbage--
		wire = append(wire, t.opts.Garbage...)
	}
	wire = resp.Append(wire)
	if t.crcFault > 0 {
		t.crcFault--
		wire[len(wire)-1] ^= 0xA5
	}
	t.stats.Responses++
	delay := t.opts.ReplyDelay
	t.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-t.closing:
			return nil
		}
	}
	if _, err := t.port.Write(wire); err != nil {
		return fmt.Errorf("valvetwin: write: %w", err)
	}
	return nil
}

// execute applies req to the register map. Call with mu held.
func (t *Twin) execute(req modbus.Frame) modbus.Frame {
	ex := func(e modbus.Exception) modbus.Frame { return modbus.ExceptionResponse(req.Slave, req.Function, e) }
	addr, qty := req.Uint16(0), req.Uint16(2)
	switch req.Function {
	case modbus.FuncReadCoils:
		if qty == 0 || qty > modbus.MaxReadCoils {
			return ex(modbus.ExceptionIllegalDataValue)
		}
		if addr != valve.CoilValve || qty != 1 {
			return ex(modbus.ExceptionIllegalDataAddress)
		}
		return modbus.BitsResponse(req.Slave, req.Function, []bool{t.open})
	case modbus.FuncWriteSingleCoil:
		if qty != modbus.CoilOn && qty != modbus.CoilOff {
			return ex(modbus.ExceptionIllegalDataValue)
		}
		if addr != valve.CoilValve {
			return ex(modbus.ExceptionIllegalDataAddress)
		}
		if !t.stuck {
			t.open = qty == modbus.CoilOn
		}
		return req // the normal response echoes the request
	case modbus.FuncWriteMultipleCoils:
		// mbpoll and others may write one coil this way.
		if len(req.Data) < 6 || qty == 0 || int(qty) > 8*int(req.Data[4]) || len(req.Data) != 5+int(req.Data[4]) {
			return ex(modbus.ExceptionIllegalDataValue)
		}
		if addr != valve.CoilValve || qty != 1 {
			return ex(modbus.ExceptionIllegalDataAddress)
		}
		if !t.stuck {
			t.open = req.Data[5]&1 != 0
		}
		return modbus.Frame{Slave: req.Slave, Function: req.Function, Data: req.Data[:4]}
	case modbus.FuncReadHoldingRegisters, modbus.FuncReadInputRegisters:
		if qty == 0 || qty > modbus.MaxReadRegister {
			return ex(modbus.ExceptionIllegalDataValue)
		}
		regs := [2]uint16{uint16(t.pulses >> 16), uint16(t.pulses)}
		if int(addr)+int(qty) > len(regs) {
			return ex(modbus.ExceptionIllegalDataAddress)
		}
		return modbus.RegistersResponse(req.Slave, req.Function, regs[addr:addr+qty])
	}
	return ex(modbus.ExceptionIllegalFunction)
}
