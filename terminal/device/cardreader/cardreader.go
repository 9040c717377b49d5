// Package cardreader drives serial card readers and implements
// device.CardReader for three families:
//
//   - ASCII-line UID readers (many USB/RS-232 readers): one UID per line, hex
//     or decimal text (OpenASCII, ASCIIParser);
//   - RDM6300 / EM4100 125 kHz modules: STX, 10 hex data characters, 2 hex
//     checksum characters, ETX, repeated while the tag is present
//     (OpenRDM6300, RDM6300Parser);
//   - NXP PN532 over HSU (13.56 MHz, ISO 14443A): the driver wakes the chip,
//     configures the SAM and polls InListPassiveTarget (OpenPN532,
//     FrameParser).
//
// Every parser is resumable (fed one byte at a time), skips line noise and
// resynchronises on the next frame. A card held on a reader is reported
// once per presentation.
package cardreader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"go.bug.st/serial"

	"campuspay/terminal/device"
)

// Driver names, used as Tap.Source.
const (
	SourceASCII   = "asciiuid"
	SourceRDM6300 = "rdm6300"
	SourcePN532   = "pn532"
)

// Defaults for Config fields left zero.
const (
	DefaultGap          = time.Second
	DefaultMaxAge       = 3 * time.Second
	DefaultPollInterval = 100 * time.Millisecond
	DefaultTimeout      = 500 * time.Millisecond
	DefaultMisses       = 2
)

// Config configures any of the readers. Zero fields take the defaults.
type Config struct {
	Baud int // default 9600 for ASCII and RDM6300, 115200 for PN532
	// Gap: a UID seen again within Gap of its last sighting is the same
	// presentation (RDM6300 modules repeat the frame while the tag stays).
	Gap time.Duration
	// MaxAge: a tap read while nobody was calling Read is dropped if it is
	// older than this when Read is called, so a stale tap never pays.
	MaxAge time.Duration
	// PN532 only: time between polls, time to wait for an ACK or a
	// response, and how many empty polls in a row mean the card is gone.
	PollInterval time.Duration
	Timeout      time.Duration
	Misses       int
	Now          func() time.Time // clock; nil means time.Now
	Logger       *slog.Logger     // line noise and retries; nil means silent
}

func (c *Config) fill(baud int) {
	if c.Baud <= 0 {
		c.Baud = baud
	}
	if c.Gap <= 0 {
		c.Gap = DefaultGap
	}
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Misses <= 0 {
		c.Misses = DefaultMisses
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// openPort opens a serial port in raw 8N1. Modem control lines are not
// touched: pseudo-terminals and some adapters refuse them.
func openPort(path string, baud int) (serial.Port, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud})
	if err != nil {
		return nil, err
	}
	_ = p.ResetInputBuffer() // stale bytes; refused by some adapters, harmless
	return p, nil
}

// reader is the part every driver shares: taps flow from a goroutine to
// Read, Halt stops everything, and a failed line ends Read with an error.
type reader struct {
	name   string
	cfg    Config
	port   io.ReadWriteCloser
	taps   chan device.Tap
	halted chan struct{}
	once   sync.Once
	done   chan struct{} // closed when the goroutine has ended
	err    error         // why it ended, read after done
}

func newReader(port io.ReadWriteCloser, name string, cfg Config) *reader {
	return &reader{
		name:   name,
		cfg:    cfg,
		port:   port,
		taps:   make(chan device.Tap, 16),
		halted: make(chan struct{}),
		done:   make(chan struct{}),
	}
}

func (r *reader) emit(source, uid string, p device.Presentation) {
	select {
	case r.taps <- device.Tap{UID: uid, Source: source, At: r.cfg.Now(), Presentation: p}:
	default:
		r.cfg.Logger.Warn("cardreader: queue full, tap dropped", "port", r.name)
	}
}

func (r *reader) isHalted() bool {
	select {
	case <-r.halted:
		return true
	default:
		return false
	}
}

// Read implements device.CardReader.
func (r *reader) Read(ctx context.Context) (device.Tap, error) {
	for {
		if r.isHalted() {
			return device.Tap{}, device.ErrHalted
		}
		select {
		case <-r.halted:
			return device.Tap{}, device.ErrHalted
		case <-ctx.Done():
			return device.Tap{}, ctx.Err()
		case t := <-r.taps:
			if r.fresh(t) {
				return t, nil
			}
		case <-r.done:
			select {
			case t := <-r.taps:
				if r.fresh(t) {
					return t, nil
				}
				continue
			default:
			}
			if r.isHalted() {
				return device.Tap{}, device.ErrHalted
			}
			err := r.err
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return device.Tap{}, fmt.Errorf("cardreader: read %s: %w", r.name, err)
		}
	}
}

func (r *reader) fresh(t device.Tap) bool {
	if r.cfg.Now().Sub(t.At) > r.cfg.MaxAge {
		r.cfg.Logger.Info("cardreader: stale tap dropped", "port", r.name, "uid", t.UID)
		return false
	}
	return true
}

// Halt implements device.CardReader: it stops reading and closes the port.
func (r *reader) Halt() error {
	var err error
	r.once.Do(func() {
		close(r.halted)
		if cerr := r.port.Close(); cerr != nil {
			err = fmt.Errorf("cardreader: close %s: %w", r.name, cerr)
		}
		<-r.done
	})
	return err
}

// Decoder is a resumable byte-at-a-time parser that yields card IDs.
type Decoder interface {
	Feed(b byte) (uid string, ok bool, err error)
}

// streamReader drives readers that talk unprompted (ASCII, RDM6300).
type streamReader struct {
	*reader
	source string
	dec    Decoder
	pres   Presence
	// repeats: the reader repeats its frame while the tag stays
	// (RDM6300), so a first frame within Gap of opening is a card that
	// was already in the field (PresentationHeld), any other one a new
	// presentation. A reader that does not repeat cannot tell.
	repeats bool
	opened  time.Time
}

func startStream(port io.ReadWriteCloser, name, source string, dec Decoder, cfg Config, repeats bool) *streamReader {
	s := &streamReader{reader: newReader(port, name, cfg), source: source, dec: dec, pres: Presence{Gap: cfg.Gap},
		repeats: repeats, opened: cfg.Now()}
	go s.loop()
	return s
}

func (s *streamReader) loop() {
	defer close(s.done)
	buf := make([]byte, 128)
	for {
		n, err := s.port.Read(buf)
		for _, b := range buf[:n] {
			uid, ok, perr := s.dec.Feed(b)
			if perr != nil {
				s.cfg.Logger.Debug("cardreader: frame discarded", "port", s.name, "err", perr)
			}
			if now := s.cfg.Now(); ok && s.pres.New(uid, now) {
				p := device.PresentationUnknown
				switch {
				case !s.repeats:
				case s.pres.first && now.Sub(s.opened) < s.cfg.Gap:
					p = device.PresentationHeld
				default:
					p = device.PresentationNew
				}
				s.emit(s.source, uid, p)
			}
		}
		if err != nil {
			s.err = err
			return
		}
		// (0, nil) is a read timeout on go.bug.st/serial: keep reading.
	}
}

// Presence tells a new presentation of a card from the same card still
// held on the reader: a UID is new unless it was last seen within Gap.
type Presence struct {
	Gap   time.Duration
	last  string
	at    time.Time
	first bool // the last New was the first sighting of any card
}

// New records uid as seen at now and reports whether it starts a new
// presentation.
func (p *Presence) New(uid string, now time.Time) bool {
	same := uid == p.last && now.Sub(p.at) < p.Gap && !now.Before(p.at)
	p.first = p.last == ""
	p.last, p.at = uid, now
	return !same
}

// Frame errors: each means some bytes were discarded and the parser has
// resynchronised. They are values so callers can count them by kind.
var (
	ErrBadChar     = errors.New("cardreader: unexpected character in frame")
	ErrTooLong     = errors.New("cardreader: line too long")
	ErrChecksum    = errors.New("cardreader: bad checksum")
	ErrTruncated   = errors.New("cardreader: truncated frame")
	ErrLenChecksum = errors.New("cardreader: bad length checksum")
	ErrExtended    = errors.New("cardreader: extended frame not supported")
	ErrEmptyFrame  = errors.New("cardreader: empty frame")
	ErrBadUID      = errors.New("cardreader: malformed target data")
	ErrTimeout     = errors.New("cardreader: no answer")
	ErrDeviceError = errors.New("cardreader: device reported an error frame")
)
