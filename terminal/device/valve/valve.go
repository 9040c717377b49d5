// Package valve drives the shower's water valve and flow meter: one Modbus
// RTU slave on an RS-485 line (see sub-package modbus for the framing).
//
// Register map (addresses 0-based as on the wire; tools that number from 1,
// like mbpoll's default, show them one higher):
//
//	coil 0                 valve: 1 = open (water may flow), 0 = closed
//	input registers 0..1   flow pulse counter, 32 bits, high word first
//	holding registers 0..1 the same counter (read-only mirror for meters
//	                       that publish it as holding registers)
//
// The counter is cumulative and wraps at 2^32; callers take differences.
// The valve and the meter share one port, and the modbus.Client serialises
// their transactions with its mutex, so they may be used from different
// goroutines.
package valve

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"campuspay/terminal/device"
	"campuspay/terminal/device/valve/modbus"
)

// Register map.
const (
	CoilValve     uint16 = 0 // valve coil
	RegPulsesHigh uint16 = 0 // counter high word (input and holding)
	RegPulsesLow  uint16 = 1 // counter low word
)

// Table says which register table the meter publishes its counter in.
type Table int

// Tables.
const (
	InputRegisters   Table = 0 // function 0x04 (default)
	HoldingRegisters Table = 1 // function 0x03
)

// Config configures the valve/meter slave.
type Config struct {
	Port     string        // serial device, e.g. /dev/ttyUSB0
	Baud     int           // default 9600
	Parity   byte          // 'N' (default), 'E', 'O'
	Slave    byte          // slave address, default 1
	Timeout  time.Duration // response timeout per attempt, default 300 ms
	Attempts int           // tries per request, default 3
	Counter  Table         // where the pulse counter lives, default InputRegisters
}

// Bus is the valve and flow meter on one RTU slave.
type Bus struct {
	mb      *modbus.Client
	slave   byte
	counter Table

	valve *Valve
	meter *FlowMeter
}

// Open opens the serial port and returns the bus. It does not touch the
// valve: the daemon calls Valve().Close() (or Halt) at start-up to be in the
// safe state whatever the box did before it restarted.
func Open(cfg Config) (*Bus, error) {
	mb, err := modbus.Open(cfg.Port, modbus.Config{
		Baud: cfg.Baud, Parity: cfg.Parity, Timeout: cfg.Timeout, Attempts: cfg.Attempts,
	})
	if err != nil {
		return nil, fmt.Errorf("valve: %w", err)
	}
	return New(mb, cfg), nil
}

// New returns the bus over an existing master (cfg.Port, Baud, Parity,
// Timeout and Attempts are then the master's business).
func New(mb *modbus.Client, cfg Config) *Bus {
	if cfg.Slave == 0 {
		cfg.Slave = 1
	}
	b := &Bus{mb: mb, slave: cfg.Slave, counter: cfg.Counter}
	b.valve = &Valve{bus: b}
	b.meter = &FlowMeter{bus: b}
	return b
}

// Valve returns the valve on this bus.
func (b *Bus) Valve() *Valve { return b.valve }

// FlowMeter returns the flow meter on this bus.
func (b *Bus) FlowMeter() *FlowMeter { return b.meter }

// Stats returns the Modbus traffic counters.
func (b *Bus) Stats() modbus.Stats { return b.mb.Stats() }

// Close closes the serial port. Halt the valve first.
func (b *Bus) Close() error {
	if err := b.mb.Close(); err != nil {
		return fmt.Errorf("valve: %w", err)
	}
	return nil
}

// Valve is the shower valve (coil 0). It implements device.Valve.
type Valve struct {
	bus *Bus

	mu     sync.Mutex
	halted bool
}

var _ device.Valve = (*Valve)(nil)

// Open opens the valve. After Halt it refuses with device.ErrHalted: a
// halted box must not start water.
func (v *Valve) Open() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.halted {
		return fmt.Errorf("valve: open: %w", device.ErrHalted)
	}
	if err := v.bus.mb.WriteSingleCoil(v.bus.slave, CoilValve, true); err != nil {
		return fmt.Errorf("valve: open: %w", err)
	}
	return nil
}

// Close closes the valve.
func (v *Valve) Close() error {
	if err := v.bus.mb.WriteSingleCoil(v.bus.slave, CoilValve, false); err != nil {
		return fmt.Errorf("valve: close: %w", err)
	}
	return nil
}

// IsOpen reads the valve coil back from the device.
func (v *Valve) IsOpen() (bool, error) {
	bits, err := v.bus.mb.ReadCoils(v.bus.slave, CoilValve, 1)
	if err != nil {
		return false, fmt.Errorf("valve: read state: %w", err)
	}
	return bits[0], nil
}

// ErrStillOpen is returned by Halt when the device reports the valve open
// after it was told to close.
var ErrStillOpen = errors.New("valve: still open after close")

// Halt closes the valve, reads the coil back to confirm, and refuses later
// Opens. It is idempotent; every call retries the close.
func (v *Valve) Halt() error {
	v.mu.Lock()
	v.halted = true
	v.mu.Unlock()
	if err := v.Close(); err != nil {
		return fmt.Errorf("valve: halt: %w", err)
	}
	open, err := v.IsOpen()
	if err != nil {
		return fmt.Errorf("valve: halt: %w", err)
	}
	if open {
		return ErrStillOpen
	}
	return nil
}

// FlowMeter is the pulse counter (two registers, high word first). It
// implements device.FlowMeter.
type FlowMeter struct {
	bus *Bus
}

var _ device.FlowMeter = (*FlowMeter)(nil)

// Pulses reads the cumulative 32-bit pulse counter.
func (m *FlowMeter) Pulses() (uint32, error) {
	read := m.bus.mb.ReadInputRegisters
	if m.bus.counter == HoldingRegisters {
		read = m.bus.mb.ReadHoldingRegisters
	}
	regs, err := read(m.bus.slave, RegPulsesHigh, 2)
	if err != nil {
		return 0, fmt.Errorf("valve: read pulses: %w", err)
	}
	return uint32(regs[0])<<16 | uint32(regs[1]), nil
}

// Halt does nothing on the device: a meter has no unsafe state, and the
// shower still needs the final count after the valve is halted, so Pulses
// keeps working.
func (m *FlowMeter) Halt() error { return nil }
