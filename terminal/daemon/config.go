package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"campuspay/protocol"
)

// Config is terminald's JSON configuration file. What the authorizer
// decides (merchant, tariff, keys, static QR, fixed amount) is not here:
// it comes in the retained config over the link and is cached in the
// journal.
type Config struct {
	Terminal string        `json:"terminal"` // terminal id: broker user name and client id
	Mode     protocol.Mode `json:"mode"`     // pos | card | shower
	DataDir  string        `json:"data_dir"` // the journal lives here
	Broker   BrokerConfig  `json:"broker"`
	Devices  DevicesConfig `json:"devices"`
	// Status is the loopback address of the status page and /metrics
	// ("" = off).
	Status   string `json:"status_listen,omitempty"`
	LogLevel string `json:"log_level,omitempty"` // debug | info | warn | error
	// AuthTimeoutMS is the request deadline used until the authorizer's
	// config says otherwise (0 = the modes default).
	AuthTimeoutMS int `json:"auth_timeout_ms,omitempty"`
	// PayingTimeoutMS is how long a WeChat payment may wait for the
	// student's password on the phone before it is reversed (0 = the
	// modes default, 60 s).
	PayingTimeoutMS int `json:"paying_timeout_ms,omitempty"`
	// CardRetapMS: after a restart, the first tap of a card whose last
	// tap came before the restart and less than this long ago does not
	// pay — the card may have stayed on the reader (0 = the modes
	// default, 60 s; see terminal/modes/card.go).
	CardRetapMS int `json:"card_retap_ms,omitempty"`
}

// BrokerConfig says how to reach the broker: URL for one, or URLs for a
// list in order of preference (the link fails over along it; see
// terminal/link). The password (the same on every broker of the list) is
// read from PasswordFile or the PasswordEnv environment variable, never
// from this file, and is never logged.
type BrokerConfig struct {
	URL          string   `json:"url,omitempty"`  // tcp://host:1883 or ssl://host:8883
	URLs         []string `json:"urls,omitempty"` // several brokers, first choice first
	PasswordFile string   `json:"password_file,omitempty"`
	PasswordEnv  string   `json:"password_env,omitempty"`
	CAFile       string   `json:"ca_file,omitempty"` // PEM CA bundle for ssl:// URLs
}

// DevicesConfig names a driver for each role the mode uses.
type DevicesConfig struct {
	Scanner *DeviceConfig `json:"scanner,omitempty"` // camera | serialscan
	Card    *DeviceConfig `json:"card,omitempty"`    // asciiuid | rdm6300 | pn532
	Keypad  *DeviceConfig `json:"keypad,omitempty"`  // evdev | serial
	Display *DeviceConfig `json:"display,omitempty"` // web | console
	Valve   *DeviceConfig `json:"valve,omitempty"`   // modbus (valve and flow meter)
}

// DeviceConfig is one device: a driver and its parameters.
type DeviceConfig struct {
	Driver string `json:"driver"`
	Path   string `json:"path,omitempty"`   // serial port or input device
	Source string `json:"source,omitempty"` // camera: device index, file or stream URL
	Baud   int    `json:"baud,omitempty"`
	Slave  byte   `json:"slave,omitempty"`  // modbus slave address
	Listen string `json:"listen,omitempty"` // web display address
	Grab   bool   `json:"grab,omitempty"`   // evdev: take the device exclusively
}

// LoadConfig reads and validates a config file. Unknown fields are refused
// so a typo is not silently ignored.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("daemon: config: %w", err)
	}
	var c Config
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("daemon: config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("daemon: config %s: %w", path, err)
	}
	return &c, nil
}

// Validate checks the fields a daemon cannot start without.
func (c *Config) Validate() error {
	var errs []error
	if !protocol.ValidID(c.Terminal) {
		errs = append(errs, fmt.Errorf("terminal %q is not a valid id", c.Terminal))
	}
	switch c.Mode {
	case protocol.ModePOS, protocol.ModeCard, protocol.ModeShower:
	default:
		errs = append(errs, fmt.Errorf("mode %q is not pos, card or shower", c.Mode))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is required"))
	}
	switch {
	case c.Broker.URL != "" && len(c.Broker.URLs) > 0:
		errs = append(errs, errors.New("broker: give url or urls, not both"))
	case c.Broker.URL == "" && len(c.Broker.URLs) == 0:
		errs = append(errs, errors.New("broker: url (or urls) is required"))
	}
	seen := map[string]bool{}
	for _, u := range c.Broker.List() {
		if !strings.HasPrefix(u, "tcp://") && !strings.HasPrefix(u, "ssl://") {
			errs = append(errs, fmt.Errorf("broker url %q must be tcp:// or ssl://", u))
		}
		if seen[u] {
			errs = append(errs, fmt.Errorf("broker url %q is listed twice", u))
		}
		seen[u] = true
	}
	if c.Devices.Display == nil {
		errs = append(errs, errors.New("devices.display is required"))
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ParseLogLevel parses a log level: debug, info, warn or error ("" is
// info).
func ParseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	switch strings.ToLower(s) {
	case "debug", "info", "warn", "error":
	default:
		return l, fmt.Errorf("log level %q is not debug, info, warn or error", s)
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("log level %q: %w", s, err)
	}
	return l, nil
}

// List is the brokers to use, in order of preference.
func (b BrokerConfig) List() []string {
	if len(b.URLs) > 0 {
		return b.URLs
	}
	if b.URL != "" {
		return []string{b.URL}
	}
	return nil
}

// password returns the broker password from its file or variable.
func (b BrokerConfig) password() (string, error) {
	if b.PasswordFile != "" {
		p, err := os.ReadFile(b.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("daemon: broker password: %w", err)
		}
		return strings.TrimRight(string(p), "\r\n"), nil
	}
	if b.PasswordEnv != "" {
		return os.Getenv(b.PasswordEnv), nil
	}
	return "", nil
}
