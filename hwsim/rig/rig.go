// Package rig assembles the simulated hardware of one terminal box: its card
// reader, barcode scanner, keypad and shower valve as pseudo-terminal twins
// behind stable symlinks in one directory, its virtual camera on a loopback
// MJPEG URL, and optionally a netcut proxy in front of the broker so that the
// box's network can be cut. The terminal daemon is pointed at the paths in
// Devices and opens them with its real drivers.
//
// A Rig is what one "box" is in hwsim: the control server (package ctl)
// drives many of them by terminal id, and a scenario may also call a Rig's
// methods directly.
package rig

import (
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sync"
	"time"

	"campuspay/hwsim/camera"
	"campuspay/hwsim/netcut"
	"campuspay/hwsim/twin"
	"campuspay/hwsim/twin/cardtwin"
	"campuspay/hwsim/twin/keypadtwin"
	"campuspay/hwsim/twin/scannertwin"
	"campuspay/hwsim/twin/valvetwin"
	"campuspay/protocol"
)

// Card reader families (the names terminal/device/cardreader uses).
const (
	CardPN532   = "pn532"
	CardRDM6300 = "rdm6300"
	CardASCII   = "asciiuid"
)

// Keypad kinds.
const (
	KeypadSerial = "serial"
	KeypadEvdev  = "evdev"
)

// Where a code is shown: the serial scanner reads its text, the camera films
// a phone showing it as a QR code.
const (
	ViaScanner = "scanner"
	ViaCamera  = "camera"
)

// ErrNoDevice is returned when a rig is asked to drive a device it was not
// built with (a tap on a box without a card reader).
var ErrNoDevice = errors.New("rig: device not fitted")

// Config describes one terminal box. Zero device fields leave the device out.
type Config struct {
	Terminal string // terminal id (protocol.ValidID)
	Dir      string // directory of the device symlinks, e.g. /tmp/campus/T01

	Card    string // CardPN532, CardRDM6300, CardASCII or "" for none
	Scanner bool   // serial barcode scanner
	Keypad  string // KeypadSerial, KeypadEvdev or "" for none

	Valve          bool    // shower valve and flow meter (Modbus RTU)
	ValveSlave     byte    // Modbus slave address; default 1
	PulsesPerLitre float64 // flow meter; default 450

	Camera        bool           // virtual camera
	CameraAddr    string         // where it serves MJPEG; default 127.0.0.1:0
	CameraOptions camera.Options // blur, tilt, noise…

	// Broker, when set, is the broker's address: the rig puts a netcut proxy
	// in front of it on 127.0.0.1 and the terminal connects to the proxy.
	Broker string

	Noise twin.Noise // line faults on the serial twins

	// Now is the water clock: water runs in this time. Default time.Now;
	// tests inject a clock they move (and may also call Valve.Advance).
	Now func() time.Time
}

// Card is a card-reader twin of any family.
type Card interface {
	Tap(uid string) error
	Path() string
	Close() error
}

// Keypad is a keypad twin of any kind.
type Keypad interface {
	Type(keys string) error
	Path() string
	Close() error
}

// Rig is one terminal box's simulated hardware. The exported handles are nil
// for devices the box does not have; they stay valid until Close.
type Rig struct {
	Terminal string
	Dir      string

	Card    Card              // nil without a card reader
	Scanner *scannertwin.Twin // nil without a scanner
	Keypad  Keypad            // nil without a keypad
	Valve   *valvetwin.Twin   // nil without a shower valve
	Camera  *camera.Camera    // nil without a camera
	Net     *netcut.Proxy     // nil without Config.Broker

	cfg     Config         // as given, defaults applied
	closers []func() error // in opening order

	mu     sync.Mutex // guards lpm, closed
	lpm    float64    // tap opening last set with SetFlow
	closed bool
}

// New builds the box's devices. On error every device already made is
// closed again.
func New(cfg Config) (*Rig, error) {
	if !protocol.ValidID(cfg.Terminal) {
		return nil, fmt.Errorf("rig: invalid terminal id %q", cfg.Terminal)
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("rig %s: Config.Dir is required", cfg.Terminal)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ValveSlave == 0 {
		cfg.ValveSlave = 1
	}
	if cfg.PulsesPerLitre == 0 {
		cfg.PulsesPerLitre = 450
	}
	if cfg.CameraAddr == "" {
		cfg.CameraAddr = "127.0.0.1:0"
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("rig %s: %w", cfg.Terminal, err)
	}
	r := &Rig{Terminal: cfg.Terminal, Dir: cfg.Dir, cfg: cfg}
	if err := r.open(); err != nil {
		r.Close()
		return nil, fmt.Errorf("rig %s: %w", cfg.Terminal, err)
	}
	return r, nil
}

func (r *Rig) open() error {
	cfg := r.cfg
	link := func(name string) string { return filepath.Join(cfg.Dir, name) }
	if cfg.Card != "" {
		cc := cardtwin.Config{Link: link("card"), Noise: cfg.Noise}
		var (
			c   Card
			err error
		)
		switch cfg.Card {
		case CardPN532:
			c, err = cardtwin.OpenPN532(cc)
		case CardRDM6300:
			c, err = cardtwin.OpenRDM6300(cc)
		case CardASCII:
			c, err = cardtwin.OpenASCII(cc)
		default:
			return fmt.Errorf("unknown card reader %q (want %s, %s or %s)", cfg.Card, CardPN532, CardRDM6300, CardASCII)
		}
		if err != nil {
			return fmt.Errorf("card reader: %w", err)
		}
		r.Card = c
		r.closers = append(r.closers, c.Close)
	}
	if cfg.Scanner {
		s, err := scannertwin.Open(scannertwin.Config{Link: link("scanner"), Noise: cfg.Noise})
		if err != nil {
			return fmt.Errorf("scanner: %w", err)
		}
		r.Scanner = s
		r.closers = append(r.closers, s.Close)
	}
	switch cfg.Keypad {
	case "":
	case KeypadSerial:
		k, err := keypadtwin.OpenSerial(keypadtwin.Config{Link: link("keypad"), Noise: keypadNoise(cfg.Noise)})
		if err != nil {
			return fmt.Errorf("keypad: %w", err)
		}
		r.Keypad = k
		r.closers = append(r.closers, k.Close)
	case KeypadEvdev:
		k, err := keypadtwin.OpenEvdev(link("keypad"))
		if err != nil {
			return fmt.Errorf("keypad: %w", err)
		}
		r.Keypad = k
		r.closers = append(r.closers, k.Close)
	default:
		return fmt.Errorf("unknown keypad %q (want %s or %s)", cfg.Keypad, KeypadSerial, KeypadEvdev)
	}
	if cfg.Valve {
		v, err := valvetwin.Start(valvetwin.Options{
			Link:           link("valve"),
			Slave:          cfg.ValveSlave,
			PulsesPerLitre: cfg.PulsesPerLitre,
			Now:            cfg.Now,
		})
		if err != nil {
			return fmt.Errorf("valve: %w", err)
		}
		r.Valve = v
		r.closers = append(r.closers, v.Close)
	}
	if cfg.Camera {
		c, err := camera.New(cfg.CameraOptions)
		if err != nil {
			return fmt.Errorf("camera: %w", err)
		}
		r.closers = append(r.closers, c.Close)
		if _, err := c.Serve(cfg.CameraAddr); err != nil {
			return fmt.Errorf("camera: %w", err)
		}
		r.Camera = c
	}
	if cfg.Broker != "" {
		p, err := netcut.Listen("127.0.0.1:0", cfg.Broker)
		if err != nil {
			return fmt.Errorf("network proxy: %w", err)
		}
		r.Net = p
		r.closers = append(r.closers, p.Close)
	}
	return nil
}

// keypadNoise keeps garbage on a keypad line to bytes that are not keys:
// a stray digit would change an amount, which no real line fault does in a
// way the driver could detect.
func keypadNoise(n twin.Noise) twin.Noise {
	if n.Garbage > 0 && n.GarbageBytes == nil {
		n.GarbageBytes = []byte{0x00, 0x7f, 0xff, 0x11, 0x13}
	}
	return n
}

// Close closes every device, removing its symlink, and the directory if it
// is then empty. It is idempotent.
func (r *Rig) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		if err := r.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	os.Remove(r.Dir) // only succeeds when empty; other files are not ours
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rig %s: close: %w", r.Terminal, err)
	}
	return nil
}

func (r *Rig) missing(dev string) error {
	return fmt.Errorf("%w: terminal %s has no %s", ErrNoDevice, r.Terminal, dev)
}

// Tap presents a card (UID as the reader family expects it: NFCID1 hex for
// PN532 and ASCII readers, 10 hex characters for RDM6300).
func (r *Rig) Tap(uid string) error {
	if r.Card == nil {
		return r.missing("card reader")
	}
	if err := r.Card.Tap(uid); err != nil {
		return fmt.Errorf("rig %s: tap %s: %w", r.Terminal, uid, err)
	}
	return nil
}

// Key presses keys on the keypad: digits, '.', '\n' (Enter), ESC or 'C'
// (Cancel), '\b' (Backspace), 'S' (Stop), 'F' (Func).
func (r *Rig) Key(keys string) error {
	if r.Keypad == nil {
		return r.missing("keypad")
	}
	if err := r.Keypad.Type(keys); err != nil {
		return fmt.Errorf("rig %s: keys: %w", r.Terminal, err)
	}
	return nil
}

// Show presents a code: through the serial scanner if the box has one,
// else to the camera as a phone screen showing it as a QR code.
func (r *Rig) Show(text string) error {
	switch {
	case r.Scanner != nil:
		return r.ShowVia(ViaScanner, text)
	case r.Camera != nil:
		return r.ShowVia(ViaCamera, text)
	}
	return r.missing("scanner or camera")
}

// ShowVia presents a code on the named device (ViaScanner or ViaCamera).
func (r *Rig) ShowVia(via, text string) error {
	var err error
	switch via {
	case ViaScanner:
		if r.Scanner == nil {
			return r.missing("scanner")
		}
		err = r.Scanner.Show(text)
	case ViaCamera:
		if r.Camera == nil {
			return r.missing("camera")
		}
		err = r.Camera.Show(text)
	case "":
		return r.Show(text)
	default:
		return fmt.Errorf("rig %s: unknown device %q (want %s or %s)", r.Terminal, via, ViaScanner, ViaCamera)
	}
	if err != nil {
		return fmt.Errorf("rig %s: show on %s: %w", r.Terminal, via, err)
	}
	return nil
}

// ShowImage holds a phone showing img (e.g. a screenshot of the web
// wallet's code page) in front of the camera.
func (r *Rig) ShowImage(img image.Image) error {
	if r.Camera == nil {
		return r.missing("camera")
	}
	if err := r.Camera.ShowImage(img); err != nil {
		return fmt.Errorf("rig %s: show image: %w", r.Terminal, err)
	}
	return nil
}

// Blank takes the phone out of the camera's view.
func (r *Rig) Blank() error {
	if r.Camera == nil {
		return r.missing("camera")
	}
	r.Camera.Blank()
	return nil
}

// SetFlow opens the shower tap to lpm litres per minute; 0 closes it.
// Water runs only while the terminal also has the valve open.
func (r *Rig) SetFlow(lpm float64) error {
	if r.Valve == nil {
		return r.missing("valve")
	}
	if lpm < 0 || lpm > 100 || lpm != lpm {
		return fmt.Errorf("rig %s: flow %v l/min out of range 0..100", r.Terminal, lpm)
	}
	r.mu.Lock()
	r.lpm = lpm
	r.mu.Unlock()
	r.Valve.SetFlow(lpm)
	return nil
}

// ValveState is what the shower's hardware shows.
type ValveState struct {
	Open    bool    `json:"open"`     // valve coil as the terminal set it
	Pulses  uint32  `json:"pulses"`   // flow meter counter
	FlowLPM float64 `json:"flow_lpm"` // tap opening (SetFlow)
	Litres  float64 `json:"litres"`   // Pulses / pulses per litre
}

// ValveState reads the valve and its meter.
func (r *Rig) ValveState() (ValveState, error) {
	if r.Valve == nil {
		return ValveState{}, r.missing("valve")
	}
	r.mu.Lock()
	lpm := r.lpm
	r.mu.Unlock()
	p := r.Valve.Pulses()
	return ValveState{
		Open:    r.Valve.ValveOpen(),
		Pulses:  p,
		FlowLPM: lpm,
		Litres:  float64(p) / r.cfg.PulsesPerLitre,
	}, nil
}

// Cut cuts the box's network through its proxy.
func (r *Rig) Cut(m netcut.Mode) error {
	if r.Net == nil {
		return r.missing("network proxy")
	}
	r.Net.Cut(m)
	return nil
}

// Restore reconnects the box's network.
func (r *Rig) Restore() error {
	if r.Net == nil {
		return r.missing("network proxy")
	}
	r.Net.Restore()
	return nil
}
