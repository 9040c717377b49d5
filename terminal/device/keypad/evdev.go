package keypad

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"os"

	"golang.org/x/sys/unix"

	"campuspay/terminal/device"
)

// Linux input event constants (linux/input-event-codes.h).
const (
	evKey     = 0x01
	keyDown   = 1 // value: 0 up, 1 down, 2 autorepeat
	eviocgrab = 0x40044590
)

// evdevKeys maps key codes to keys. Digits come from the main row and from
// the numeric keypad (which sends KP codes whatever the NumLock state).
var evdevKeys = map[uint16]device.Key{
	1: device.KeyCancel, // KEY_ESC
	2: '1', 3: '2', 4: '3', 5: '4', 6: '5', 7: '6', 8: '7', 9: '8', 10: '9', 11: '0',
	14: device.KeyBackspace,   // KEY_BACKSPACE
	28: device.KeyEnter,       // KEY_ENTER
	31: device.KeyStop,        // KEY_S
	33: device.KeyFunc,        // KEY_F
	52: '.',                   // KEY_DOT
	59: device.KeyFunc,        // KEY_F1
	71: '7', 72: '8', 73: '9', // KEY_KP7..KP9
	75: '4', 76: '5', 77: '6', // KEY_KP4..KP6
	79: '1', 80: '2', 81: '3', 82: '0', // KEY_KP1..KP3, KEY_KP0
	83:  '.',             // KEY_KPDOT
	96:  device.KeyEnter, // KEY_KPENTER
	121: '.',             // KEY_KPCOMMA (keypads in comma-decimal locales)
}

// NativeEventSize is sizeof(struct input_event) on this machine: a timeval
// of two longs, then type u16, code u16, value s32 (24 bytes on 64-bit).
const NativeEventSize = 2*bits.UintSize/8 + 8

// EvdevParser decodes struct input_event records and yields a key for each
// key-down (value 1) of a mapped key; releases, autorepeat, SYN and other
// events are ignored. It is resumable: records may arrive split anyhow.
type EvdevParser struct {
	// Size is the record size: 24 on 64-bit kernels, 16 on 32-bit ones;
	// 0 means NativeEventSize.
	Size int
	buf  [24]byte
	n    int
}

// Feed consumes one byte and returns a key when b completes a key-down record.
func (p *EvdevParser) Feed(b byte) (device.Key, bool) {
	size := p.Size
	if size != 16 && size != 24 {
		size = NativeEventSize
	}
	p.buf[p.n] = b
	if p.n++; p.n < size {
		return 0, false
	}
	p.n = 0
	rec := p.buf[size-8 : size]
	typ := binary.NativeEndian.Uint16(rec[0:])
	code := binary.NativeEndian.Uint16(rec[2:])
	value := int32(binary.NativeEndian.Uint32(rec[4:]))
	if typ != evKey || value != keyDown {
		return 0, false
	}
	k, ok := evdevKeys[code]
	return k, ok
}

// EvdevConfig configures an evdev keypad.
type EvdevConfig struct {
	// Grab takes the device for this process alone (EVIOCGRAB), so key
	// presses do not also reach a console or the kiosk browser. A failed
	// grab (e.g. on a FIFO in tests) is logged, not fatal.
	Grab      bool
	EventSize int          // 0: NativeEventSize
	Logger    *slog.Logger // nil means silent
}

// OpenEvdev opens /dev/input/eventN (or any file or FIFO carrying the same
// records) and starts reading keys.
func OpenEvdev(path string, cfg EvdevConfig) (*Keypad, error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("keypad: open %s: %w", path, err)
	}
	if cfg.Grab {
		if err := grab(f); err != nil && cfg.Logger != nil {
			cfg.Logger.Warn("keypad: EVIOCGRAB failed; keys are shared", "path", path, "err", err)
		}
	}
	return NewEvdev(f, path, cfg), nil
}

func grab(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var gerr error
	if err := rc.Control(func(fd uintptr) { gerr = unix.IoctlSetInt(int(fd), eviocgrab, 1) }); err != nil {
		return err
	}
	return gerr
}

// NewEvdev runs the evdev parser on any stream of input_event records
// (a pipe in tests); Halt closes r.
func NewEvdev(r io.ReadCloser, name string, cfg EvdevConfig) *Keypad {
	return start(r, name, &EvdevParser{Size: cfg.EventSize}, cfg.Logger)
}

// EncodeEvent builds one native-size input_event record (time left zero),
// for tests and simulators.
func EncodeEvent(typ, code uint16, value int32) []byte {
	rec := make([]byte, NativeEventSize)
	tail := rec[NativeEventSize-8:]
	binary.NativeEndian.PutUint16(tail[0:], typ)
	binary.NativeEndian.PutUint16(tail[2:], code)
	binary.NativeEndian.PutUint32(tail[4:], uint32(value))
	return rec
}
