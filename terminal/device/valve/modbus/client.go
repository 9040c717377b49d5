package modbus

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.bug.st/serial"
)

// Port is what the client needs from a serial port; go.bug.st/serial's
// Port satisfies it. A read that times out returns (0, nil).
type Port interface {
	io.ReadWriteCloser
	SetReadTimeout(time.Duration) error
}

// Config configures a master.
type Config struct {
	Baud     int           // line speed, for the inter-frame silence; default 9600
	Parity   byte          // 'N' (default), 'E' or 'O'
	StopBits int           // 1 (default) or 2
	Timeout  time.Duration // response timeout per attempt, after the request is on the wire; default 300 ms
	Attempts int           // tries per request on CRC errors, malformed frames and timeouts; default 3
}

func (c Config) withDefaults() Config {
	if c.Baud <= 0 {
		c.Baud = 9600
	}
	if c.Parity == 0 {
		c.Parity = 'N'
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = 300 * time.Millisecond
	}
	if c.Attempts <= 0 {
		c.Attempts = 3
	}
	return c
}

// CharTime is the time one character takes on the line: RTU counts 11 bits
// (start, 8 data, parity or second stop, stop).
func CharTime(baud int) time.Duration {
	return time.Duration(11 * int64(time.Second) / int64(baud))
}

// Silence is the inter-frame gap t3.5 at baud. Above 19200 baud the
// specification fixes it at 1.75 ms.
func Silence(baud int) time.Duration {
	if baud > 19200 {
		return 1750 * time.Microsecond
	}
	return time.Duration(7 * 11 * int64(time.Second) / (2 * int64(baud))) // 3.5 × 11 bits
}

// Stats counts a client's traffic, for tests and metrics.
type Stats struct {
	Requests   int // requests sent, retries included
	Retries    int // attempts after the first
	CRCErrors  int
	Malformed  int
	Timeouts   int
	Exceptions int
	Unexpected int // well-formed frames that were not the answer (skipped)
}

// Client is a Modbus RTU master. It is safe for concurrent use: requests
// are serialised, because a half-duplex bus carries one transaction at a time.
type Client struct {
	cfg     Config
	silence time.Duration

	mu     sync.Mutex // held for a whole transaction
	port   Port
	parser *Parser
	last   time.Time // last byte seen on the bus (sent or received)
	stats  Stats
	closed bool
	buf    [MaxADU]byte
}

// Open opens the serial port at path and returns a master on it.
func Open(path string, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	mode := &serial.Mode{BaudRate: cfg.Baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	switch cfg.Parity {
	case 'N':
	case 'E':
		mode.Parity = serial.EvenParity
	case 'O':
		mode.Parity = serial.OddParity
	default:
		return nil, fmt.Errorf("modbus: open %s: parity %q not N, E or O", path, cfg.Parity)
	}
	if cfg.StopBits == 2 {
		mode.StopBits = serial.TwoStopBits
	}
	p, err := serial.Open(path, mode)
	if err != nil {
		return nil, fmt.Errorf("modbus: open %s: %w", path, err)
	}
	return NewClient(p, cfg), nil
}

// NewClient returns a master on an open port.
func NewClient(p Port, cfg Config) *Client {
	cfg = cfg.withDefaults()
	return &Client{cfg: cfg, silence: Silence(cfg.Baud), port: p, parser: NewParser(Responses)}
}

// Close closes the port.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if err := c.port.Close(); err != nil {
		return fmt.Errorf("modbus: close: %w", err)
	}
	return nil
}

// Stats returns the traffic counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// ReadCoils reads qty coils from addr (function 0x01).
func (c *Client) ReadCoils(slave byte, addr, qty uint16) ([]bool, error) {
	if qty == 0 || qty > MaxReadCoils {
		return nil, fmt.Errorf("modbus: read coils: quantity %d out of 1..%d", qty, MaxReadCoils)
	}
	want := (int(qty) + 7) / 8
	resp, err := c.transact(ReadRequest(slave, FuncReadCoils, addr, qty), func(f Frame) bool {
		return len(f.Data) == 1+want && int(f.Data[0]) == want
	})
	if err != nil {
		return nil, fmt.Errorf("modbus: read coils %d+%d from slave %d: %w", addr, qty, slave, err)
	}
	bits := make([]bool, qty)
	for i := range bits {
		bits[i] = resp.Data[1+i/8]&(1<<(i%8)) != 0
	}
	return bits, nil
}

// WriteSingleCoil sets one coil (function 0x05). Slave 0 broadcasts: no
// slave answers, so success only means the frame was sent.
func (c *Client) WriteSingleCoil(slave byte, addr uint16, on bool) error {
	req := WriteSingleCoilRequest(slave, addr, on)
	_, err := c.transact(req, func(f Frame) bool { return string(f.Data) == string(req.Data) })
	if err != nil {
		return fmt.Errorf("modbus: write coil %d=%t on slave %d: %w", addr, on, slave, err)
	}
	return nil
}

// ReadHoldingRegisters reads qty holding registers from addr (function 0x03).
func (c *Client) ReadHoldingRegisters(slave byte, addr, qty uint16) ([]uint16, error) {
	return c.readRegisters(slave, FuncReadHoldingRegisters, addr, qty)
}

// ReadInputRegisters reads qty input registers from addr (function 0x04).
func (c *Client) ReadInputRegisters(slave byte, addr, qty uint16) ([]uint16, error) {
	return c.readRegisters(slave, FuncReadInputRegisters, addr, qty)
}

func (c *Client) readRegisters(slave, fn byte, addr, qty uint16) ([]uint16, error) {
	if qty == 0 || qty > MaxReadRegister {
		return nil, fmt.Errorf("modbus: read registers: quantity %d out of 1..%d", qty, MaxReadRegister)
	}
	resp, err := c.transact(ReadRequest(slave, fn, addr, qty), func(f Frame) bool {
		return len(f.Data) == 1+2*int(qty) && int(f.Data[0]) == 2*int(qty)
	})
	if err != nil {
		return nil, fmt.Errorf("modbus: read registers (0x%02X) %d+%d from slave %d: %w", fn, addr, qty, slave, err)
	}
	regs := make([]uint16, qty)
	for i := range regs {
		regs[i] = resp.Uint16(1 + 2*i)
	}
	return regs, nil
}

// transact sends req and returns the matching response, retrying on
// transport errors. valid checks a normal response's data for req.
func (c *Client) transact(req Frame, valid func(Frame) bool) (Frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Frame{}, ErrClosed
	}
	wire := req.Bytes()
	var err error
	for attempt := 1; attempt <= c.cfg.Attempts; attempt++ {
		if attempt > 1 {
			c.stats.Retries++
		}
		var resp Frame
		resp, err = c.once(req, wire, valid)
		if err == nil {
			return resp, nil
		}
		var ex Exception
		if errors.As(err, &ex) || !retryable(err) {
			return Frame{}, err
		}
	}
	return Frame{}, fmt.Errorf("after %d attempts: %w", c.cfg.Attempts, err)
}

func retryable(err error) bool {
	return errors.Is(err, ErrCRC) || errors.Is(err, ErrFrame) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnexpected)
}

func (c *Client) once(req Frame, wire []byte, valid func(Frame) bool) (Frame, error) {
	// Keep t3.5 of silence after the last byte on the bus so the slave sees
	// a frame boundary before our request.
	if wait := time.Until(c.last.Add(c.silence)); wait > 0 {
		time.Sleep(wait)
	}
	// Drop anything already waiting, such as a slave's late answer to an
	// attempt that timed out, so it is not taken for this request's answer.
	if r, ok := c.port.(interface{ ResetInputBuffer() error }); ok {
		_ = r.ResetInputBuffer() // best effort: the checks in check() still apply
	}
	c.parser.Reset()
	c.stats.Requests++
	if _, err := c.port.Write(wire); err != nil {
		return Frame{}, fmt.Errorf("write: %w", err)
	}
	// The timeout runs from when the request has left the wire.
	onWire := time.Duration(len(wire)) * CharTime(c.cfg.Baud)
	c.last = time.Now().Add(onWire)
	if req.Slave == 0 {
		return Frame{}, nil // broadcast: no answer
	}
	deadline := c.last.Add(c.cfg.Timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			c.stats.Timeouts++
			return Frame{}, fmt.Errorf("%w after %v", ErrTimeout, c.cfg.Timeout)
		}
		if err := c.port.SetReadTimeout(left); err != nil {
			return Frame{}, fmt.Errorf("set read timeout: %w", err)
		}
		n, err := c.port.Read(c.buf[:])
		if err != nil {
			return Frame{}, fmt.Errorf("read: %w", err)
		}
		if n > 0 {
			c.last = time.Now()
		}
		for i := range n {
			f, ok, perr := c.parser.Feed(c.buf[i])
			if perr != nil {
				if errors.Is(perr, ErrCRC) {
					c.stats.CRCErrors++
				} else {
					c.stats.Malformed++
				}
				c.drain()
				return Frame{}, perr
			}
			if !ok {
				continue
			}
			resp, err := c.check(req, f, valid)
			if errors.Is(err, ErrUnexpected) {
				// Another slave's frame, or a late answer to an earlier
				// request: not ours, keep listening until the timeout.
				c.stats.Unexpected++
				continue
			}
			return resp, err
		}
	}
}

func (c *Client) check(req, f Frame, valid func(Frame) bool) (Frame, error) {
	if f.Slave != req.Slave {
		return Frame{}, fmt.Errorf("%w: from slave %d", ErrUnexpected, f.Slave)
	}
	if ex, ok := f.Exception(); ok && f.Function == req.Function|exceptionBit {
		c.stats.Exceptions++
		return Frame{}, ex
	}
	if f.Function != req.Function || !valid(f) {
		return Frame{}, fmt.Errorf("%w: %v", ErrUnexpected, f)
	}
	return f, nil
}

// drain discards input until the line has been silent for t3.5 (at least
// a few milliseconds, since a pseudo-terminal or USB adapter delivers in
// bursts), so the next attempt starts on a frame boundary.
func (c *Client) drain() {
	quiet := max(c.silence, 5*time.Millisecond)
	stop := time.Now().Add(c.cfg.Timeout) // a babbling line must not hang us
	for time.Now().Before(stop) {
		if err := c.port.SetReadTimeout(quiet); err != nil {
			return
		}
		n, err := c.port.Read(c.buf[:])
		if err != nil || n == 0 {
			return
		}
		c.last = time.Now()
	}
}
