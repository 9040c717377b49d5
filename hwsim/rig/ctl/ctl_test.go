package ctl_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"campuspay/hwsim/netcut"
	"campuspay/hwsim/rig"
	"campuspay/hwsim/rig/ctl"
	"campuspay/terminal/device"
	"campuspay/terminal/device/camera"
	"campuspay/terminal/device/cardreader"
	"campuspay/terminal/device/keypad"
	"campuspay/terminal/device/serialscan"
	"campuspay/terminal/device/valve"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// start serves a control server for the rigs on a real loopback port.
func start(t *testing.T, rigs ...*rig.Rig) (*ctl.Server, *ctl.Client) {
	t.Helper()
	s := ctl.NewServer()
	for _, r := range rigs {
		s.Add(r)
	}
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, ctl.NewClient(url)
}

func newRig(t *testing.T, cfg rig.Config) *rig.Rig {
	t.Helper()
	cfg.Dir = filepath.Join(t.TempDir(), cfg.Terminal)
	r, err := rig.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Every card-reader family: a tap made through the control API is read by
// the terminal's real driver on the rig's symlink.
func TestTapReachesDriver(t *testing.T) {
	for _, tc := range []struct {
		card, uid, want string
		open            func(path string) (device.CardReader, error)
	}{
		{rig.CardASCII, "04a1b2c3", "04A1B2C3", func(p string) (device.CardReader, error) {
			return cardreader.OpenASCII(p, cardreader.Config{})
		}},
		{rig.CardRDM6300, "62E3086CED", "62E3086CED", func(p string) (device.CardReader, error) {
			return cardreader.OpenRDM6300(p, cardreader.Config{})
		}},
		{rig.CardPN532, "04A1B2C3D4E5F6", "04A1B2C3D4E5F6", func(p string) (device.CardReader, error) {
			return cardreader.OpenPN532(p, cardreader.Config{PollInterval: 5 * time.Millisecond})
		}},
	} {
		t.Run(tc.card, func(t *testing.T) {
			r := newRig(t, rig.Config{Terminal: "T01", Card: tc.card})
			_, c := start(t, r)
			rd, err := tc.open(filepath.Join(r.Dir, "card"))
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Halt()
			if err := c.Tap(ctx(t), "T01", tc.uid); err != nil {
				t.Fatal(err)
			}
			tap, err := rd.Read(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if tap.UID != tc.want || tap.Source != tc.card {
				t.Errorf("read %+v, want UID %s from %s", tap, tc.want, tc.card)
			}
		})
	}
}

// A whole POS box and a shower box behind one server: scanner, keypad,
// valve and flow meter through the real drivers.
func TestBoxesThroughDrivers(t *testing.T) {
	var clock atomic.Int64 // the water clock, in unix seconds
	clock.Store(1_800_000_000)
	pos := newRig(t, rig.Config{Terminal: "T01", Scanner: true, Keypad: rig.KeypadSerial})
	shower := newRig(t, rig.Config{Terminal: "T03", Keypad: rig.KeypadSerial, Valve: true, PulsesPerLitre: 450,
		Now: func() time.Time { return time.Unix(clock.Load(), 0) }})
	_, c := start(t, pos, shower)

	sc, err := serialscan.Open(pos.Devices().Scanner, serialscan.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Halt()
	if err := c.Show(ctx(t), "T01", "CW1:ABC 123"); err != nil {
		t.Fatal(err)
	}
	scan, err := sc.Scan(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if scan.Text != "CW1:ABC 123" {
		t.Errorf("scanned %q", scan.Text)
	}

	kp, err := keypad.OpenSerial(pos.Devices().Keypad, keypad.SerialConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer kp.Halt()
	if err := c.Key(ctx(t), "T01", "12.50\n"); err != nil {
		t.Fatal(err)
	}
	var got []device.Key
	for len(got) < 6 {
		k, err := kp.Key(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k)
	}
	if want := []device.Key{'1', '2', '.', '5', '0', device.KeyEnter}; string(runes(got)) != string(runes(want)) {
		t.Errorf("keys %q, want %q", runes(got), runes(want))
	}

	bus, err := valve.Open(valve.Config{Port: shower.Devices().Valve, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	if err := c.Flow(ctx(t), "T03", 6); err != nil {
		t.Fatal(err)
	}
	if err := bus.Valve().Open(); err != nil {
		t.Fatal(err)
	}
	clock.Add(60) // a minute of water at 6 l/min
	v, err := c.Valve(ctx(t), "T03")
	if err != nil {
		t.Fatal(err)
	}
	if !v.Open || v.Pulses != 2700 || v.FlowLPM != 6 || v.Litres != 6 {
		t.Errorf("valve %+v, want open, 2700 pulses, 6 l/min, 6 l", v)
	}
	p, err := bus.FlowMeter().Pulses()
	if err != nil {
		t.Fatal(err)
	}
	if p != 2700 {
		t.Errorf("driver reads %d pulses", p)
	}
	if err := bus.Valve().Halt(); err != nil {
		t.Fatal(err)
	}
	if err := c.Flow(ctx(t), "T03", 0); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Valve(ctx(t), "T03"); v.Open || v.FlowLPM != 0 {
		t.Errorf("after halt: %+v", v)
	}

	st, err := c.Status(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 2 || st[0].Terminal != "T01" || st[1].Terminal != "T03" || st[0].Valve != nil || st[1].Valve == nil {
		t.Errorf("status %+v", st)
	}
}

func runes(ks []device.Key) []rune {
	r := make([]rune, len(ks))
	for i, k := range ks {
		r[i] = rune(k)
	}
	return r
}

// The network of a box is cut and restored through its netcut proxy.
func TestNetCut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // an echo "broker"
		for {
			cn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(cn, cn); cn.Close() }()
		}
	}()
	r := newRig(t, rig.Config{Terminal: "T01", Broker: ln.Addr().String()})
	s, c := start(t, r)
	other, err := netcut.Listen("127.0.0.1:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s.AddNet("T09", other) // a box with no rig

	echo := func() error {
		cn, err := net.DialTimeout("tcp", r.Devices().Broker, 5*time.Second)
		if err != nil {
			return err
		}
		defer cn.Close()
		cn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := cn.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		_, err = io.ReadFull(cn, b)
		return err
	}
	if err := echo(); err != nil {
		t.Fatalf("before cut: %v", err)
	}
	if err := c.Cut(ctx(t), "T01", netcut.Reset); err != nil {
		t.Fatal(err)
	}
	if err := echo(); err == nil {
		t.Error("echo worked through a cut network")
	}
	if st, _ := c.Terminal(ctx(t), "T01"); !st.NetCut || !st.HasNet {
		t.Errorf("status %+v", st)
	}
	if err := c.Restore(ctx(t), "T01"); err != nil {
		t.Fatal(err)
	}
	if err := echo(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
	if err := c.Cut(ctx(t), "T09", netcut.Blackhole); err != nil || !other.IsCut() {
		t.Fatalf("cut T09: %v", err)
	}
	if err := c.Restore(ctx(t), "T09"); err != nil || other.IsCut() {
		t.Fatalf("restore T09: %v", err)
	}
}

func TestScreenshotAndErrors(t *testing.T) {
	cam := newRig(t, rig.Config{Terminal: "T04", Camera: true})
	bare := newRig(t, rig.Config{Terminal: "T05"})
	s, c := start(t, cam, bare)

	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 40, 40)))
	if err := c.Screenshot(ctx(t), "T04", buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := c.ShowVia(ctx(t), "T04", rig.ViaCamera, "CW1:X"); err != nil {
		t.Fatal(err)
	}
	if err := c.Blank(ctx(t), "T04"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		err  error
		want error
		code string
	}{
		{"unknown terminal", c.Tap(ctx(t), "T99", "04A1B2C3"), ctl.ErrUnknownTerminal, ctl.CodeUnknownTerminal},
		{"no card reader", c.Tap(ctx(t), "T05", "04A1B2C3"), rig.ErrNoDevice, ctl.CodeNoDevice},
		{"no valve", c.Flow(ctx(t), "T05", 6), rig.ErrNoDevice, ctl.CodeNoDevice},
		{"no proxy", c.Restore(ctx(t), "T05"), rig.ErrNoDevice, ctl.CodeNoDevice},
		{"unknown net", c.Restore(ctx(t), "T99"), ctl.ErrUnknownTerminal, ctl.CodeUnknownTerminal},
		{"empty uid", c.Tap(ctx(t), "T04", ""), nil, ctl.CodeBadRequest},
		{"bad flow", c.Flow(ctx(t), "T04", -1), nil, ctl.CodeBadRequest},
		{"bad via", c.ShowVia(ctx(t), "T04", "printer", "x"), nil, ctl.CodeBadRequest},
		{"not an image", c.Screenshot(ctx(t), "T04", []byte("GIF89a")), nil, ctl.CodeBadRequest},
		{"no camera", c.Screenshot(ctx(t), "T05", buf.Bytes()), rig.ErrNoDevice, ctl.CodeNoDevice},
	} {
		var ce *ctl.Error
		if !errors.As(tc.err, &ce) || ce.Code != tc.code {
			t.Errorf("%s: %v, want code %s", tc.name, tc.err, tc.code)
		}
		if tc.want != nil && !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v is not %v", tc.name, tc.err, tc.want)
		}
	}

	// Unknown fields and trailing data are refused.
	for _, body := range []string{`{"uid":"04","x":1}`, `{"uid":"04"} {}`, `[`} {
		resp, err := http.Post(c.BaseURL+"/v1/terminals/T05/tap", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", body, resp.StatusCode)
		}
	}
	s.Remove("T05")
	if _, err := c.Terminal(ctx(t), "T05"); !errors.Is(err, ctl.ErrUnknownTerminal) {
		t.Errorf("removed terminal: %v", err)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	if _, err := ctl.NewServer().Start("0.0.0.0:0"); err == nil {
		t.Error("listened on all interfaces")
	}
}

// Any body on any route is answered with JSON, never a panic, and a rig
// without devices refuses every device operation.
func FuzzControlAPI(f *testing.F) {
	for _, s := range []struct{ path, body string }{
		{"tap", `{"uid":"04A1B2C3"}`}, {"key", `{"keys":"1\n"}`}, {"show", `{"text":"x","via":"camera"}`},
		{"flow", `{"lpm":1e308}`}, {"net", `{"action":"cut","mode":"blackhole"}`}, {"screenshot", "\x89PNG\r\n"},
		{"blank", ""}, {"tap", `{"uid":"04"}{`},
	} {
		f.Add(s.path, []byte(s.body))
	}
	r, err := rig.New(rig.Config{Terminal: "T01", Dir: filepath.Join(f.TempDir(), "T01")})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	s := ctl.NewServer()
	s.Add(r)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/terminals/T01/"+url.PathEscape(op), bytes.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code/100 == 2 {
			t.Fatalf("%s %q succeeded on a rig without devices: %s", op, body, w.Body)
		}
	})
}

// A code shown through the control API to a box with only a camera is read
// by the terminal's real camera driver from the rig's MJPEG stream.
func TestCameraThroughDriver(t *testing.T) {
	r := newRig(t, rig.Config{Terminal: "T06", Camera: true})
	_, c := start(t, r)
	dc := r.DeviceConfig()
	if dc.Scanner == nil || dc.Scanner.Driver != "camera" {
		t.Fatalf("scanner %+v", dc.Scanner)
	}
	const text = "CW1:THE CAMERA READS THIS 0123456789"
	if err := c.Show(ctx(t), "T06", text); err != nil {
		t.Fatal(err)
	}
	sc, err := camera.Open(camera.Config{Source: dc.Scanner.Source})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Halt()
	scan, err := sc.Scan(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if scan.Text != text {
		t.Errorf("camera read %q", scan.Text)
	}
}
