// Package serialscan drives USB-CDC (virtual COM port) barcode scanners
// that send one line per code, terminated by CR, LF or CRLF. It implements
// device.Scanner on top of go.bug.st/serial.
package serialscan

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"

	"campuspay/terminal/device"
)

// Source is the Scan.Source of this driver.
const Source = "serialscan"

// Defaults for Config fields left zero.
const (
	DefaultBaud   = 9600
	DefaultWindow = 2 * time.Second
	DefaultMaxAge = 3 * time.Second
)

// Config configures a scanner. Zero fields take the defaults above.
type Config struct {
	Baud    int // line speed; USB-CDC scanners ignore it
	MaxLine int // longest accepted line in bytes (DefaultMaxLine)
	// Window: the same text is not reported twice within this window,
	// measured from its last sighting (scanners in continuous mode repeat).
	Window time.Duration
	// MaxAge: a code read while nobody was calling Scan is dropped if it is
	// older than this when Scan is finally called, so a stale code is never
	// taken for a fresh one.
	MaxAge time.Duration
	Now    func() time.Time // clock; nil means time.Now
	Logger *slog.Logger     // discarded lines are logged here; nil means silent
}

func (c *Config) fill() {
	if c.Baud <= 0 {
		c.Baud = DefaultBaud
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Scanner is a serial barcode scanner. It implements device.Scanner.
type Scanner struct {
	cfg    Config
	name   string
	port   io.ReadCloser
	scans  chan device.Scan
	halted chan struct{}
	once   sync.Once
	done   chan struct{} // closed when the read loop has ended
	err    error         // why the read loop ended, read after done
	dedup  Dedup
}

// Open opens the scanner on a serial port (e.g. /dev/ttyACM0, or a hwsim
// symlink) and starts reading.
func Open(path string, cfg Config) (*Scanner, error) {
	cfg.fill()
	p, err := serial.Open(path, &serial.Mode{BaudRate: cfg.Baud})
	if err != nil {
		return nil, fmt.Errorf("serialscan: open %s: %w", path, err)
	}
	// Bytes that piled up while nobody listened are stale; pseudo-terminals
	// and some adapters refuse the flush, which is harmless.
	_ = p.ResetInputBuffer()
	return New(p, path, cfg), nil
}

// New runs the scanner on any byte stream (a port opened elsewhere, a
// pipe in tests). name is used in errors. Halt closes r.
func New(r io.ReadCloser, name string, cfg Config) *Scanner {
	cfg.fill()
	s := &Scanner{
		cfg:    cfg,
		name:   name,
		port:   r,
		scans:  make(chan device.Scan, 16),
		halted: make(chan struct{}),
		done:   make(chan struct{}),
		dedup:  Dedup{Window: cfg.Window},
	}
	go s.loop()
	return s
}

func (s *Scanner) loop() {
	defer close(s.done)
	p := LineParser{Max: s.cfg.MaxLine}
	buf := make([]byte, 256)
	for {
		n, err := s.port.Read(buf)
		for _, b := range buf[:n] {
			line, ok, perr := p.Feed(b)
			if perr != nil {
				s.cfg.Logger.Warn("serialscan: line discarded", "port", s.name, "err", perr)
			}
			if !ok {
				continue
			}
			now := s.cfg.Now()
			if !s.dedup.Fresh(line, now) {
				continue
			}
			select {
			case s.scans <- device.Scan{Text: line, Source: Source, At: now}:
			default:
				s.cfg.Logger.Warn("serialscan: queue full, code dropped", "port", s.name)
			}
		}
		if err != nil {
			s.err = err
			return
		}
		// (0, nil) is a read timeout on go.bug.st/serial: keep reading.
	}
}

// Scan implements device.Scanner.
func (s *Scanner) Scan(ctx context.Context) (device.Scan, error) {
	for {
		select {
		case <-s.halted:
			return device.Scan{}, device.ErrHalted
		default:
		}
		select {
		case <-s.halted:
			return device.Scan{}, device.ErrHalted
		case <-ctx.Done():
			return device.Scan{}, ctx.Err()
		case sc := <-s.scans:
			if s.cfg.Now().Sub(sc.At) > s.cfg.MaxAge {
				continue
			}
			return sc, nil
		case <-s.done:
			// Deliver what was read before the line failed, then the error.
			select {
			case sc := <-s.scans:
				if s.cfg.Now().Sub(sc.At) <= s.cfg.MaxAge {
					return sc, nil
				}
				continue
			default:
			}
			return device.Scan{}, fmt.Errorf("serialscan: read %s: %w", s.name, s.readErr())
		}
	}
}

func (s *Scanner) readErr() error {
	if s.err == nil {
		return io.ErrUnexpectedEOF
	}
	return s.err
}

// Halt stops scanning and closes the port. Scan returns device.ErrHalted
// from then on. Halt is idempotent.
func (s *Scanner) Halt() error {
	var err error
	s.once.Do(func() {
		close(s.halted)
		if cerr := s.port.Close(); cerr != nil {
			err = fmt.Errorf("serialscan: close %s: %w", s.name, cerr)
		}
		<-s.done
	})
	return err
}

// Dedup suppresses the same text seen again within Window of its last
// sighting. The zero Window suppresses nothing.
type Dedup struct {
	Window time.Duration
	seen   map[string]time.Time
}

// Fresh records text as seen at now and reports whether it should be
// reported (it was not seen within the window before now).
func (d *Dedup) Fresh(text string, now time.Time) bool {
	if d.seen == nil {
		d.seen = make(map[string]time.Time)
	}
	for t, at := range d.seen {
		if now.Sub(at) >= d.Window || now.Before(at.Add(-d.Window)) {
			delete(d.seen, t) // expired, or the clock stepped back
		}
	}
	_, dup := d.seen[text]
	d.seen[text] = now
	return !dup
}

var _ device.Scanner = (*Scanner)(nil)
