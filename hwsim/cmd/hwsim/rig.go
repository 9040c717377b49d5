package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"campuspay/hwsim/rig"
	"campuspay/hwsim/rig/ctl"
)

// rigReady is what `hwsim rig` prints (one JSON line) once the box is up:
// the control API and what the terminal daemon's config needs.
type rigReady struct {
	Terminal string            `json:"terminal"`
	Control  string            `json:"control"` // control API base URL
	Devices  rig.Devices       `json:"devices"`
	Daemon   rig.DaemonDevices `json:"daemon_devices"` // terminald's "devices" section
}

func runRig(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("rig", "rig --terminal T01 --dir DIR [device flags]", stderr)
	var cfg rig.Config
	fs.StringVar(&cfg.Terminal, "terminal", "", "terminal id (required)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory of the device symlinks (default /tmp/campus/TERMINAL)")
	fs.StringVar(&cfg.Card, "card", "", "card reader: pn532, rdm6300, asciiuid (default none)")
	fs.BoolVar(&cfg.Scanner, "scanner", false, "serial barcode scanner")
	fs.StringVar(&cfg.Keypad, "keypad", "", "keypad: serial, evdev (default none)")
	fs.BoolVar(&cfg.Valve, "valve", false, "shower valve and flow meter (Modbus RTU)")
	slave := fs.Uint("valve-slave", 1, "valve's Modbus slave address")
	fs.Float64Var(&cfg.PulsesPerLitre, "pulses-per-litre", 450, "flow meter pulses per litre")
	fs.BoolVar(&cfg.Camera, "camera", false, "virtual camera (MJPEG)")
	fs.StringVar(&cfg.CameraAddr, "camera-addr", "127.0.0.1:0", "camera's listen address")
	cameraFlags(fs, &cfg.CameraOptions)
	fs.StringVar(&cfg.Broker, "broker", "", "broker host:port; the terminal then dials a cuttable proxy to it")
	fs.IntVar(&cfg.Noise.Garbage, "noise-garbage", 0, "line noise: up to N garbage bytes before each frame")
	fs.IntVar(&cfg.Noise.Split, "noise-split", 0, "line noise: write frames in chunks of 1..N bytes")
	ctlAddr := fs.String("ctl-addr", "127.0.0.1:0", "control API listen address (loopback only)")
	out := fs.String("devices-out", "", "also write the ready JSON to this file")
	if code, done := parse(fs, args); done {
		return code
	}
	if cfg.Terminal == "" {
		fmt.Fprintln(stderr, "hwsim rig: --terminal is required")
		return 2
	}
	if *slave < 1 || *slave > 247 {
		fmt.Fprintln(stderr, "hwsim rig: --valve-slave must be 1..247")
		return 2
	}
	cfg.ValveSlave = byte(*slave)
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join("/tmp/campus", cfg.Terminal)
	}
	if cfg.Noise.Split > 0 {
		cfg.Noise.SplitDelay = time.Millisecond // so the driver sees the pieces apart
	}

	r, err := rig.New(cfg)
	if err != nil {
		return fail(stderr, "rig", err)
	}
	defer r.Close() // removes the symlinks
	srv := ctl.NewServer()
	srv.Add(r)
	url, err := srv.Start(*ctlAddr)
	if err != nil {
		return fail(stderr, "rig", err)
	}
	defer srv.Close()

	b, err := json.Marshal(rigReady{Terminal: r.Terminal, Control: url, Devices: r.Devices(), Daemon: r.DeviceConfig()})
	if err != nil {
		return fail(stderr, "rig", err)
	}
	if *out != "" {
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return fail(stderr, "rig", err)
		}
	}
	fmt.Fprintf(stdout, "%s\n", b)
	<-ctx.Done()
	return 0
}
