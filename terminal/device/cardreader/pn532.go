package cardreader

import (
	"errors"
	"fmt"
	"io"
	"time"

	"campuspay/terminal/device"
)

// PN532 commands used by the driver (UM0701-02 §7).
const (
	cmdSAMConfiguration     = 0x14
	cmdRFConfiguration      = 0x32
	cmdInListPassiveTarget  = 0x4A
	rfCfgMaxRetries         = 0x05
	samNormalMode           = 0x01
	brTy106TypeA            = 0x00
	pn532MaxNACKsPerCommand = 2
	maxBackoff              = 5 * time.Second
)

// pn532WakeUp is the HSU wake-up sequence: 0x55 0x55 then enough zeros for
// the chip to leave power-down before the first command's frame.
var pn532WakeUp = []byte{0x55, 0x55, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// pnEvent is one thing the read goroutine saw on the line.
type pnEvent struct {
	f   Frame
	err error // a frame was discarded (checksum...), or the line failed
}

// PN532Reader is an NXP PN532 over HSU (UART, 115200 8N1 by default).
// It wakes the chip, sets the SAM to normal mode, limits passive-activation
// retries so that InListPassiveTarget answers "no target" instead of
// waiting for a card forever, and then polls for one ISO 14443A target.
type PN532Reader struct {
	*reader
	events chan pnEvent
}

// OpenPN532 opens a PN532 on a serial port.
func OpenPN532(path string, cfg Config) (*PN532Reader, error) {
	cfg.fill(115200)
	p, err := openPort(path, cfg.Baud)
	if err != nil {
		return nil, fmt.Errorf("cardreader: open %s: %w", path, err)
	}
	return NewPN532(p, path, cfg), nil
}

// NewPN532 runs the PN532 driver on any byte stream; Halt closes it.
func NewPN532(port io.ReadWriteCloser, name string, cfg Config) *PN532Reader {
	cfg.fill(115200)
	r := &PN532Reader{reader: newReader(port, name, cfg), events: make(chan pnEvent, 16)}
	lineDone := make(chan struct{})
	go r.readLine(lineDone)
	go r.poll(lineDone)
	return r
}

// readLine parses frames off the line for poll.
func (r *PN532Reader) readLine(lineDone chan<- struct{}) {
	defer close(lineDone)
	var p FrameParser
	buf := make([]byte, 128)
	for {
		n, err := r.port.Read(buf)
		for _, b := range buf[:n] {
			f, ok, perr := p.Feed(b)
			if perr != nil {
				r.cfg.Logger.Debug("cardreader: pn532 frame discarded", "port", r.name, "err", perr)
				r.post(pnEvent{err: perr})
			}
			if ok {
				r.post(pnEvent{f: f})
			}
		}
		if err != nil {
			r.post(pnEvent{err: fmt.Errorf("%w: %w", errLine, err)})
			return
		}
	}
}

var errLine = errors.New("line failed")

func (r *PN532Reader) post(ev pnEvent) {
	select {
	case r.events <- ev:
	case <-r.halted:
	}
}

// poll is the driver's main loop: (re)initialise, then poll for targets.
func (r *PN532Reader) poll(lineDone <-chan struct{}) {
	defer close(r.done)
	defer func() { <-lineDone }()
	ready := false
	present, misses := "", 0
	first := true // no poll answered yet: a card found now was already in the field
	backoff := r.cfg.PollInterval
	for !r.isHalted() {
		if !ready {
			if err := r.init(); err != nil {
				if r.fatal(err) {
					return
				}
				// A missing or dead chip: retry, ever more slowly, and
				// log each failure once per attempt.
				r.cfg.Logger.Warn("cardreader: pn532 init failed", "port", r.name, "err", err, "retry_in", backoff)
				r.wait(backoff)
				backoff = min(2*backoff, maxBackoff)
				continue
			}
			ready, backoff = true, r.cfg.PollInterval
		}
		resp, err := r.command(cmdInListPassiveTarget, 0x01, brTy106TypeA)
		if err == nil {
			var uid string
			uid, err = ParseTargetUID(resp)
			switch {
			case err != nil:
			case uid == "":
				if misses++; misses >= r.cfg.Misses {
					present = ""
				}
			default:
				misses = 0
				if uid != present {
					present = uid
					p := device.PresentationNew
					if first {
						p = device.PresentationHeld
					}
					r.emit(SourcePN532, uid, p)
				}
			}
			if err == nil {
				first = false
			}
		}
		if err != nil {
			if r.fatal(err) {
				return
			}
			// The chip may have been reset or the line garbled: start over.
			r.cfg.Logger.Warn("cardreader: pn532 poll failed", "port", r.name, "err", err)
			ready = false
		}
		r.wait(r.cfg.PollInterval)
	}
}

// fatal reports whether err ends the driver (halt or a failed line), and
// records it for Read.
func (r *PN532Reader) fatal(err error) bool {
	if r.isHalted() {
		return true
	}
	if errors.Is(err, errLine) {
		r.err = err
		return true
	}
	return false
}

func (r *PN532Reader) wait(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.halted:
	}
}

func (r *PN532Reader) init() error {
	// The wake-up preamble goes right before the first command.
	if _, err := r.port.Write(pn532WakeUp); err != nil {
		return fmt.Errorf("%w: wake-up: %w", errLine, err)
	}
	if _, err := r.command(cmdSAMConfiguration, samNormalMode, 0x14, 0x01); err != nil {
		return fmt.Errorf("SAMConfiguration: %w", err)
	}
	// MxRtyATR, MxRtyPSL, MxRtyPassiveActivation: a few tries, not 0xFF (forever).
	if _, err := r.command(cmdRFConfiguration, rfCfgMaxRetries, 0xFF, 0x01, 0x02); err != nil {
		return fmt.Errorf("RFConfiguration: %w", err)
	}
	return nil
}

// command sends one command and returns the response data after the
// response code. It waits for the ACK, then the response; a garbled
// response is asked again with a NACK.
func (r *PN532Reader) command(code byte, params ...byte) ([]byte, error) {
	r.drain()
	frame := EncodeFrame(tfiHost, append([]byte{code}, params...))
	if _, err := r.port.Write(frame); err != nil {
		return nil, fmt.Errorf("%w: write: %w", errLine, err)
	}
	deadline := time.NewTimer(r.cfg.Timeout)
	defer deadline.Stop()
	acked, nacks := false, 0
	for {
		select {
		case <-r.halted:
			return nil, errHaltedCmd
		case <-deadline.C:
			if !acked {
				return nil, fmt.Errorf("command %02X: %w (no ACK)", code, ErrTimeout)
			}
			return nil, fmt.Errorf("command %02X: %w", code, ErrTimeout)
		case ev := <-r.events:
			switch {
			case errors.Is(ev.err, errLine):
				return nil, ev.err
			case ev.err != nil:
				// A frame was garbled. Once acknowledged, it was most likely
				// our response: ask for it again.
				if acked && nacks < pn532MaxNACKsPerCommand {
					nacks++
					if _, err := r.port.Write(pn532NACK); err != nil {
						return nil, fmt.Errorf("%w: write: %w", errLine, err)
					}
				}
			case ev.f.Kind == FrameACK:
				acked = true
			case ev.f.Kind == FrameError:
				return nil, fmt.Errorf("command %02X: %w", code, ErrDeviceError)
			case ev.f.Kind == FrameInfo && ev.f.TFI == tfiPN532 &&
				len(ev.f.Data) > 0 && ev.f.Data[0] == code+1:
				// A lost ACK does not matter once the response is here.
				return ev.f.Data[1:], nil
			default:
				// A stale answer to an earlier command, or our own echo: skip.
			}
		}
	}
}

var errHaltedCmd = errors.New("halted")

// drain drops events left over from an earlier command (late answers).
func (r *PN532Reader) drain() {
	for {
		select {
		case ev := <-r.events:
			if errors.Is(ev.err, errLine) {
				r.post(ev) // keep the line failure for command to see
				return
			}
		default:
			return
		}
	}
}
