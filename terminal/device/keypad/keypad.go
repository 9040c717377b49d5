// Package keypad drives the terminal's keypads and implements
// device.Keypad for two kinds:
//
//   - a Linux evdev keyboard or USB numeric keypad, read as raw
//     struct input_event records from /dev/input/eventN (OpenEvdev);
//   - a serial keypad that sends one byte per key (OpenSerial).
//
// Keys typed while nobody calls Key are kept (typing ahead is normal on a
// till), up to a small buffer.
package keypad

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"campuspay/terminal/device"
)

// bufferedKeys is how many keys are kept while nobody calls Key.
const bufferedKeys = 64

// Decoder is a resumable byte-at-a-time parser that yields keys.
type Decoder interface {
	Feed(b byte) (k device.Key, ok bool)
}

// Keypad is a running keypad driver. It implements device.Keypad.
type Keypad struct {
	name   string
	port   io.ReadCloser
	dec    Decoder
	log    *slog.Logger
	keys   chan device.Key
	halted chan struct{}
	once   sync.Once
	done   chan struct{}
	err    error // why the read loop ended, read after done
}

func start(port io.ReadCloser, name string, dec Decoder, log *slog.Logger) *Keypad {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Keypad{
		name: name, port: port, dec: dec, log: log,
		keys:   make(chan device.Key, bufferedKeys),
		halted: make(chan struct{}),
		done:   make(chan struct{}),
	}
	go k.loop()
	return k
}

func (k *Keypad) loop() {
	defer close(k.done)
	buf := make([]byte, 24*16)
	for {
		n, err := k.port.Read(buf)
		for _, b := range buf[:n] {
			if key, ok := k.dec.Feed(b); ok {
				select {
				case k.keys <- key:
				default:
					k.log.Warn("keypad: buffer full, key dropped", "port", k.name)
				}
			}
		}
		if err != nil {
			k.err = err
			return
		}
		// (0, nil) is a read timeout on go.bug.st/serial: keep reading.
	}
}

func (k *Keypad) isHalted() bool {
	select {
	case <-k.halted:
		return true
	default:
		return false
	}
}

// Key implements device.Keypad.
func (k *Keypad) Key(ctx context.Context) (device.Key, error) {
	if k.isHalted() {
		return 0, device.ErrHalted
	}
	select {
	case <-k.halted:
		return 0, device.ErrHalted
	case <-ctx.Done():
		return 0, ctx.Err()
	case key := <-k.keys:
		return key, nil
	case <-k.done:
		select {
		case key := <-k.keys:
			return key, nil
		default:
		}
		if k.isHalted() {
			return 0, device.ErrHalted
		}
		err := k.err
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("keypad: read %s: %w", k.name, err)
	}
}

// Halt implements device.Keypad: it stops reading and closes the device.
func (k *Keypad) Halt() error {
	var err error
	k.once.Do(func() {
		close(k.halted)
		if cerr := k.port.Close(); cerr != nil {
			err = fmt.Errorf("keypad: close %s: %w", k.name, cerr)
		}
		<-k.done
	})
	return err
}

var _ device.Keypad = (*Keypad)(nil)
