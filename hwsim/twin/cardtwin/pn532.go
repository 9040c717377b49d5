package cardtwin

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"campuspay/hwsim/pty"
	"campuspay/hwsim/twin"
)

// PN532 wire constants (UM0701-02 §6.2).
var (
	pnACK   = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	pnNACK  = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
	pnError = []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}
)

// pnFrame encodes a PN532→host information frame (TFI D5).
func pnFrame(data ...byte) []byte {
	l := byte(len(data) + 1)
	out := []byte{0x00, 0x00, 0xFF, l, byte(0x100 - int(l)), 0xD5}
	sum := 0xD5
	for _, b := range data {
		sum += int(b)
	}
	out = append(out, data...)
	return append(out, byte(-sum), 0x00)
}

// PN532 is a PN532 (HSU) twin. It sleeps until it sees the 0x55 wake-up
// bytes, like the chip after power-on, and then answers commands.
type PN532 struct {
	port *pty.Port
	wire *twin.Wire
	cfg  Config

	mu       sync.Mutex
	awake    bool
	muted    bool   // answers nothing (powered off, unplugged)
	uid      []byte // card in the field, nil for none
	left     int    // polls the card still answers; <0 while Present
	last     []byte // last response frame, resent on NACK
	polls    uint64
	commands map[byte]int
	nacks    int
	corrupt  int           // responses still to send with a bad checksum
	changed  chan struct{} // closed and replaced after every poll
	done     chan struct{}
}

// OpenPN532 creates a PN532 twin and starts answering on its pty.
func OpenPN532(cfg Config) (*PN532, error) {
	p, err := pty.Open(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("cardtwin: %w", err)
	}
	if cfg.TapPolls <= 0 {
		cfg.TapPolls = 3
	}
	t := &PN532{
		port: p, wire: twin.NewWire(p, cfg.Noise), cfg: cfg,
		commands: map[byte]int{}, changed: make(chan struct{}), done: make(chan struct{}),
	}
	go t.serve()
	return t, nil
}

// Path is the device path a driver opens.
func (t *PN532) Path() string { return t.port.Path() }

func parseUID(uid string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(uid, ":", ""))
	if err != nil || (len(b) != 4 && len(b) != 7 && len(b) != 10) {
		return nil, fmt.Errorf("cardtwin: UID %q: want 4, 7 or 10 bytes of hex", uid)
	}
	return b, nil
}

// Tap puts a card (NFCID1 as hex, 4, 7 or 10 bytes) in the field for the
// next TapPolls polls.
func (t *PN532) Tap(uid string) error {
	b, err := parseUID(uid)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.uid, t.left = b, t.cfg.TapPolls
	t.mu.Unlock()
	return nil
}

// Present puts a card in the field until Remove.
func (t *PN532) Present(uid string) error {
	b, err := parseUID(uid)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.uid, t.left = b, -1
	t.mu.Unlock()
	return nil
}

// Remove takes the card out of the field.
func (t *PN532) Remove() {
	t.mu.Lock()
	t.uid = nil
	t.mu.Unlock()
}

// Polls returns how many InListPassiveTarget commands were answered.
func (t *PN532) Polls() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.polls
}

// Commands returns how many times each command code was received.
func (t *PN532) Commands() map[byte]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[byte]int, len(t.commands))
	for k, v := range t.commands {
		m[k] = v
	}
	return m
}

// WaitPolls waits until at least n polls have been answered in total.
func (t *PN532) WaitPolls(ctx context.Context, n uint64) error {
	for {
		t.mu.Lock()
		polls, changed := t.polls, t.changed
		t.mu.Unlock()
		if polls >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.done:
			return errors.New("cardtwin: closed")
		case <-changed:
		}
	}
}

// NACKs returns how many NACKs the host sent.
func (t *PN532) NACKs() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nacks
}

// Corrupt makes the next n responses go out with a bad data checksum, as
// line noise would; a NACK from the host gets the intact frame.
func (t *PN532) Corrupt(n int) {
	t.mu.Lock()
	t.corrupt = n
	t.mu.Unlock()
}

// Sleep puts the chip back to power-down, as after a reset: it ignores
// commands until the next wake-up.
func (t *PN532) Sleep() {
	t.mu.Lock()
	t.awake = false
	t.mu.Unlock()
}

// Mute makes the chip answer nothing, like a reader still powering up
// or unplugged, until Mute(false). A card in the field stays there.
func (t *PN532) Mute(on bool) {
	t.mu.Lock()
	t.muted = on
	t.mu.Unlock()
}

// SendRaw writes bytes exactly, without noise.
func (t *PN532) SendRaw(b []byte) error { return t.wire.SendRaw(b) }

// Close stops the twin and removes its pty.
func (t *PN532) Close() error {
	err := t.port.Close()
	<-t.done
	return err
}

// serve reads host frames from the line and answers them.
func (t *PN532) serve() {
	defer close(t.done)
	var in []byte
	buf := make([]byte, 256)
	for {
		n, err := t.port.Read(buf)
		in = append(in, buf[:n]...)
		in = t.consume(in)
		if err != nil {
			return // Close, or the pty is gone
		}
	}
}

// consume handles every complete frame at the start of in and returns
// what is left (an incomplete frame, or nothing).
func (t *PN532) consume(in []byte) []byte {
	for {
		i := bytes.Index(in, []byte{0x00, 0xFF})
		if i < 0 {
			t.noticeWake(in)
			if len(in) > 0 && in[len(in)-1] == 0x00 {
				return in[len(in)-1:]
			}
			return in[:0]
		}
		t.noticeWake(in[:i])
		f := in[i+2:]
		if len(f) < 2 {
			return in[i:]
		}
		ln, lcs := f[0], f[1]
		switch {
		case ln == 0x00 && lcs == 0xFF: // ACK from the host: abort, nothing to do
			in = f[2:]
			continue
		case ln == 0xFF && lcs == 0x00: // NACK: send the last response again
			t.resend()
			in = f[2:]
			continue
		case ln+lcs != 0 || ln == 0:
			in = f[1:] // not a frame: look for the next start code
			continue
		}
		if len(f) < 2+int(ln)+1 {
			return in[i:]
		}
		body, dcs := f[2:2+int(ln)], f[2+int(ln)]
		var sum byte
		for _, b := range body {
			sum += b
		}
		in = f[3+int(ln):]
		if sum+dcs != 0 || body[0] != 0xD4 || len(body) < 2 {
			continue // the chip ignores a corrupt frame; the host times out
		}
		t.answer(body[1], body[2:])
	}
}

func (t *PN532) noticeWake(b []byte) {
	if bytes.IndexByte(b, 0x55) >= 0 {
		t.mu.Lock()
		t.awake = true
		t.mu.Unlock()
	}
}

func (t *PN532) answer(cmd byte, params []byte) {
	t.mu.Lock()
	if !t.awake || t.muted {
		t.mu.Unlock()
		return
	}
	t.commands[cmd]++
	var resp []byte
	switch cmd {
	case 0x02: // GetFirmwareVersion: IC PN532, version 1.6, all protocols
		resp = pnFrame(0x03, 0x32, 0x01, 0x06, 0x07)
	case 0x14: // SAMConfiguration
		resp = pnFrame(0x15)
	case 0x32: // RFConfiguration
		resp = pnFrame(0x33)
	case 0x4A: // InListPassiveTarget
		resp = t.target(params)
		t.polls++
		close(t.changed)
		t.changed = make(chan struct{})
	default:
		resp = pnError
	}
	t.last = resp
	if t.corrupt > 0 && len(resp) > 8 {
		t.corrupt--
		resp = append([]byte(nil), resp...)
		resp[len(resp)-2]++ // the DCS
	}
	t.mu.Unlock()
	if err := t.wire.Send(pnACK); err != nil {
		return
	}
	_ = t.wire.Send(resp)
}

// target answers InListPassiveTarget (t.mu held).
func (t *PN532) target(params []byte) []byte {
	if len(params) < 2 || params[1] != 0x00 || t.uid == nil {
		return pnFrame(0x4B, 0x00)
	}
	uid := t.uid
	if t.left > 0 {
		if t.left--; t.left == 0 {
			t.uid = nil
		}
	}
	// SENS_RES/SEL_RES as a MIFARE Classic 1K (4-byte UID) or an
	// Ultralight/NTAG (7-byte UID) would answer.
	sensRes, selRes := []byte{0x00, 0x04}, byte(0x08)
	if len(uid) != 4 {
		sensRes, selRes = []byte{0x00, 0x44}, 0x00
	}
	data := []byte{0x4B, 0x01, 0x01}
	data = append(data, sensRes...)
	data = append(data, selRes, byte(len(uid)))
	data = append(data, uid...)
	return pnFrame(data...)
}

func (t *PN532) resend() {
	t.mu.Lock()
	t.nacks++
	last := t.last
	t.mu.Unlock()
	if last != nil {
		_ = t.wire.Send(last)
	}
}
