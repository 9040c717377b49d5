package rig_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"campuspay/hwsim/rig"
	"campuspay/terminal/daemon"
)

func TestNewAndCloseRemovesLinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "T01")
	r, err := rig.New(rig.Config{Terminal: "T01", Dir: dir, Card: rig.CardPN532, Scanner: true,
		Keypad: rig.KeypadSerial, Valve: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"card", "scanner", "keypad", "valve"} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is not a symlink", name)
		}
	}
	d := r.Devices()
	if d.Card != filepath.Join(dir, "card") || d.CardDriver != rig.CardPN532 || d.Valve != filepath.Join(dir, "valve") ||
		d.ValveSlave != 1 || d.PulsesPerLitre != 450 || d.Camera != "" || d.Broker != "" {
		t.Errorf("Devices() = %+v", d)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("dir still there after Close: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []rig.Config{
		{Terminal: "T/01", Dir: dir},
		{Terminal: "T01"},
		{Terminal: "T01", Dir: dir, Card: "mifare"},
		{Terminal: "T01", Dir: dir, Scanner: true, Keypad: "usb"},
	} {
		if r, err := rig.New(c); err == nil {
			r.Close()
			t.Errorf("New(%+v) succeeded", c)
		}
	}
	// The failed build closed the scanner it had made.
	if _, err := os.Lstat(filepath.Join(dir, "scanner")); !os.IsNotExist(err) {
		t.Errorf("scanner link left behind: %v", err)
	}
}

func TestMissingDevices(t *testing.T) {
	r, err := rig.New(rig.Config{Terminal: "T02", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, verr := r.ValveState()
	for name, err := range map[string]error{
		"tap":     r.Tap("04A1B2C3"),
		"key":     r.Key("1"),
		"show":    r.Show("x"),
		"camera":  r.ShowVia(rig.ViaCamera, "x"),
		"blank":   r.Blank(),
		"flow":    r.SetFlow(6),
		"valve":   verr,
		"cut":     r.Cut(1),
		"restore": r.Restore(),
	} {
		if !errors.Is(err, rig.ErrNoDevice) {
			t.Errorf("%s: %v, want ErrNoDevice", name, err)
		}
	}
}

// The rig's daemon section decodes into terminald's own config type with
// unknown fields refused, so the two shapes cannot drift apart unnoticed.
func TestDeviceConfigMatchesDaemon(t *testing.T) {
	for _, cfg := range []rig.Config{
		{Terminal: "T01", Card: rig.CardRDM6300, Scanner: true, Keypad: rig.KeypadSerial},
		{Terminal: "T03", Card: rig.CardPN532, Keypad: rig.KeypadEvdev, Valve: true, ValveSlave: 7},
	} {
		cfg.Dir = t.TempDir()
		r, err := rig.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(r.DeviceConfig())
		if err != nil {
			t.Fatal(err)
		}
		var dc daemon.DevicesConfig
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&dc); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if dc.Card == nil || dc.Card.Driver != cfg.Card || dc.Card.Path != r.Card.Path() {
			t.Errorf("card = %+v", dc.Card)
		}
		if dc.Keypad == nil || dc.Keypad.Driver != cfg.Keypad {
			t.Errorf("keypad = %+v", dc.Keypad)
		}
		if cfg.Valve && (dc.Valve == nil || dc.Valve.Driver != "modbus" || dc.Valve.Slave != 7) {
			t.Errorf("valve = %+v", dc.Valve)
		}
		if cfg.Scanner && (dc.Scanner == nil || dc.Scanner.Driver != "serialscan") {
			t.Errorf("scanner = %+v", dc.Scanner)
		}
		r.Close()
	}
}

func decodeQR(t *testing.T, jpg []byte) string {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("no QR code in the frame: %v", err)
	}
	return res.GetText()
}

func TestCameraShow(t *testing.T) {
	r, err := rig.New(rig.Config{Terminal: "T04", Dir: t.TempDir(), Camera: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dc := r.DeviceConfig()
	if dc.Scanner == nil || dc.Scanner.Driver != "camera" || dc.Scanner.Source != r.Camera.URL() || r.Camera.URL() == "" {
		t.Fatalf("scanner = %+v, camera URL %q", dc.Scanner, r.Camera.URL())
	}
	// Without a serial scanner Show goes to the camera.
	if err := r.Show("CW1:HELLO"); err != nil {
		t.Fatal(err)
	}
	jpg, err := r.Camera.JPEG(0)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQR(t, jpg); got != "CW1:HELLO" {
		t.Errorf("camera shows %q", got)
	}
	if err := r.ShowImage(image.NewGray(image.Rect(0, 0, 10, 10))); err != nil {
		t.Fatal(err)
	}
	if err := r.Blank(); err != nil {
		t.Fatal(err)
	}
}

func TestFlowRange(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r, err := rig.New(rig.Config{Terminal: "T05", Dir: t.TempDir(), Valve: true, PulsesPerLitre: 100,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, bad := range []float64{-1, 101} {
		if err := r.SetFlow(bad); err == nil {
			t.Errorf("SetFlow(%v) accepted", bad)
		}
	}
	if err := r.SetFlow(6); err != nil {
		t.Fatal(err)
	}
	r.Valve.Advance(time.Minute) // valve closed: no water
	r.Valve.SetValve(true)
	r.Valve.Advance(30 * time.Second)
	v, err := r.ValveState()
	if err != nil {
		t.Fatal(err)
	}
	if want := (rig.ValveState{Open: true, Pulses: 300, FlowLPM: 6, Litres: 3}); v != want {
		t.Errorf("ValveState = %+v, want %+v", v, want)
	}
}
