package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"campuspay/protocol"
	"campuspay/terminal/device"
	"campuspay/terminal/device/cardreader"
	"campuspay/terminal/device/display/console"
	"campuspay/terminal/device/display/web"
	"campuspay/terminal/device/keypad"
	"campuspay/terminal/device/serialscan"
	"campuspay/terminal/device/valve"
	"campuspay/terminal/modes"
)

// built is what the device factory made: the role devices and what must
// be closed after every device has been halted.
type built struct {
	devs    modes.Devices
	closers []io.Closer
}

// halt puts every device in its safe state: valve closed first.
func (b *built) halt(log *slog.Logger) {
	d := b.devs
	for _, h := range []struct {
		name string
		dev  interface{ Halt() error }
	}{{"valve", d.Valve}, {"flow meter", d.Meter}, {"scanner", d.Scanner}, {"card reader", d.Card},
		{"keypad", d.Keypad}, {"display", d.Display}} {
		if h.dev == nil {
			continue
		}
		if err := h.dev.Halt(); err != nil {
			log.Error("halt", "device", h.name, "err", err)
		}
	}
}

func (b *built) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i].Close()
	}
	b.closers = nil
}

// buildDevices opens the drivers the config names for the roles the mode
// uses. On error everything opened so far is halted and closed.
func buildDevices(c *Config, log *slog.Logger, onDecode func(time.Duration)) (_ *built, err error) {
	b := &built{}
	defer func() {
		if err != nil {
			b.halt(log)
			b.close()
		}
	}()
	dc := c.Devices
	if b.devs.Display, err = openDisplay(dc.Display, b); err != nil {
		return nil, err
	}
	need := func(role string, d *DeviceConfig) error {
		if d == nil {
			return fmt.Errorf("daemon: mode %s needs devices.%s", c.Mode, role)
		}
		return nil
	}
	switch c.Mode {
	case protocol.ModePOS:
		if dc.Scanner == nil && dc.Card == nil {
			return nil, errors.New("daemon: pos needs devices.scanner or devices.card")
		}
		if err := need("keypad", dc.Keypad); err != nil {
			return nil, err
		}
	case protocol.ModeCard:
		if err := need("card", dc.Card); err != nil {
			return nil, err
		}
	case protocol.ModeShower:
		if err := need("keypad", dc.Keypad); err != nil {
			return nil, err
		}
		if err := need("valve", dc.Valve); err != nil {
			return nil, err
		}
	}
	if dc.Keypad != nil {
		if b.devs.Keypad, err = openKeypad(dc.Keypad, log); err != nil {
			return nil, err
		}
	}
	if dc.Card != nil {
		if b.devs.Card, err = openCard(dc.Card, log); err != nil {
			return nil, err
		}
	}
	if dc.Scanner != nil && c.Mode == protocol.ModePOS {
		if b.devs.Scanner, err = openScanner(dc.Scanner, log, onDecode); err != nil {
			return nil, err
		}
	}
	if dc.Valve != nil && c.Mode == protocol.ModeShower {
		if dc.Valve.Driver != "modbus" {
			return nil, fmt.Errorf("daemon: valve driver %q: only modbus", dc.Valve.Driver)
		}
		bus, err := valve.Open(valve.Config{Port: dc.Valve.Path, Baud: dc.Valve.Baud, Slave: dc.Valve.Slave})
		if err != nil {
			return nil, fmt.Errorf("daemon: valve: %w", err)
		}
		b.closers = append(b.closers, bus)
		b.devs.Valve, b.devs.Meter = bus.Valve(), bus.FlowMeter()
	}
	return b, nil
}

func openDisplay(d *DeviceConfig, b *built) (device.Display, error) {
	switch d.Driver {
	case "console":
		return console.New(os.Stdout, console.Options{Clear: d.Path == "clear"}), nil
	case "web":
		if d.Listen == "" {
			return nil, errors.New("daemon: web display needs listen")
		}
		s := web.New(web.Options{})
		ln, err := net.Listen("tcp", d.Listen)
		if err != nil {
			return nil, fmt.Errorf("daemon: web display: %w", err)
		}
		srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		b.closers = append(b.closers, srv)
		return s, nil
	}
	return nil, fmt.Errorf("daemon: display driver %q: want web or console", d.Driver)
}

func openKeypad(d *DeviceConfig, log *slog.Logger) (device.Keypad, error) {
	switch d.Driver {
	case "evdev":
		k, err := keypad.OpenEvdev(d.Path, keypad.EvdevConfig{Grab: d.Grab, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		return k, nil
	case "serial":
		k, err := keypad.OpenSerial(d.Path, keypad.SerialConfig{Baud: d.Baud, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("daemon: keypad driver %q: want evdev or serial", d.Driver)
}

func openCard(d *DeviceConfig, log *slog.Logger) (device.CardReader, error) {
	cfg := cardreader.Config{Baud: d.Baud, Logger: log}
	var (
		r   device.CardReader
		err error
	)
	switch d.Driver {
	case "asciiuid":
		r, err = cardreader.OpenASCII(d.Path, cfg)
	case "rdm6300":
		r, err = cardreader.OpenRDM6300(d.Path, cfg)
	case "pn532":
		r, err = cardreader.OpenPN532(d.Path, cfg)
	default:
		return nil, fmt.Errorf("daemon: card driver %q: want asciiuid, rdm6300 or pn532", d.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return r, nil
}

func openScanner(d *DeviceConfig, log *slog.Logger, onDecode func(time.Duration)) (device.Scanner, error) {
	switch d.Driver {
	case "camera":
		src := d.Source
		if src == "" {
			src = d.Path
		}
		if src == "" {
			return nil, errors.New("daemon: camera needs source (index, file or URL)")
		}
		s, err := openCamera(src, onDecode)
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		return s, nil
	case "serialscan":
		s, err := serialscan.Open(d.Path, serialscan.Config{Baud: d.Baud, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("daemon: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("daemon: scanner driver %q: want camera or serialscan", d.Driver)
}
