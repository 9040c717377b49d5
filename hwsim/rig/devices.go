package rig

// Devices is what a terminal daemon's configuration needs to open this box's
// hardware: device paths (the stable symlinks), driver names, the camera's
// stream URL and the broker address to dial (the netcut proxy when the rig
// has one). Empty fields are devices the box does not have.
type Devices struct {
	Terminal string `json:"terminal"`

	Card       string `json:"card,omitempty"`        // serial device path
	CardDriver string `json:"card_driver,omitempty"` // CardPN532, CardRDM6300, CardASCII

	Scanner string `json:"scanner,omitempty"` // serial device path

	Keypad       string `json:"keypad,omitempty"`        // serial path or evdev FIFO
	KeypadDriver string `json:"keypad_driver,omitempty"` // KeypadSerial, KeypadEvdev

	Valve          string  `json:"valve,omitempty"` // Modbus RTU serial path
	ValveSlave     byte    `json:"valve_slave,omitempty"`
	PulsesPerLitre float64 `json:"pulses_per_litre,omitempty"`

	Camera string `json:"camera,omitempty"` // MJPEG stream URL

	Broker string `json:"broker,omitempty"` // host:port the terminal dials
}

// Devices describes the box for a terminal daemon's configuration.
func (r *Rig) Devices() Devices {
	d := Devices{Terminal: r.Terminal}
	if r.Card != nil {
		d.Card, d.CardDriver = r.Card.Path(), r.cfg.Card
	}
	if r.Scanner != nil {
		d.Scanner = r.Scanner.Path()
	}
	if r.Keypad != nil {
		d.Keypad, d.KeypadDriver = r.Keypad.Path(), r.cfg.Keypad
	}
	if r.Valve != nil {
		d.Valve, d.ValveSlave, d.PulsesPerLitre = r.Valve.Path(), r.cfg.ValveSlave, r.cfg.PulsesPerLitre
	}
	if r.Camera != nil {
		d.Camera = r.Camera.URL()
	}
	if r.Net != nil {
		d.Broker = r.Net.Addr()
	}
	return d
}

// DaemonDevices has the JSON shape of terminald's "devices" config section
// (terminal/daemon.DevicesConfig), written out here so that hwsim does not
// link the daemon; a test checks the two decode alike.
type DaemonDevices struct {
	Scanner *DaemonDevice `json:"scanner,omitempty"`
	Card    *DaemonDevice `json:"card,omitempty"`
	Keypad  *DaemonDevice `json:"keypad,omitempty"`
	Valve   *DaemonDevice `json:"valve,omitempty"`
}

// DaemonDevice is one device in DaemonDevices.
type DaemonDevice struct {
	Driver string `json:"driver"`
	Path   string `json:"path,omitempty"`
	Source string `json:"source,omitempty"`
	Slave  byte   `json:"slave,omitempty"`
}

// DeviceConfig is the "devices" section of a terminald config for this box.
// The daemon has one scanner role: a box with both a serial scanner and a
// camera is configured with the serial scanner. The display is the daemon's
// own and is left to the caller.
func (r *Rig) DeviceConfig() DaemonDevices {
	var d DaemonDevices
	switch {
	case r.Scanner != nil:
		d.Scanner = &DaemonDevice{Driver: "serialscan", Path: r.Scanner.Path()}
	case r.Camera != nil:
		d.Scanner = &DaemonDevice{Driver: "camera", Source: r.Camera.URL()}
	}
	if r.Card != nil {
		d.Card = &DaemonDevice{Driver: r.cfg.Card, Path: r.Card.Path()}
	}
	if r.Keypad != nil {
		d.Keypad = &DaemonDevice{Driver: r.cfg.Keypad, Path: r.Keypad.Path()}
	}
	if r.Valve != nil {
		d.Valve = &DaemonDevice{Driver: "modbus", Path: r.Valve.Path(), Slave: r.cfg.ValveSlave}
	}
	return d
}
