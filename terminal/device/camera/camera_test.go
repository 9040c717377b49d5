package camera

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"

	hwcam "campuspay/hwsim/camera"
	"campuspay/protocol"
	"campuspay/terminal/device"
)

// wallet280 is shaped like the wallet's codes: "CW1:" and base45
// (QR alphanumeric) characters, 280 in all.
var wallet280 = "CW1:" + strings.Repeat("6BFOXN*TS0BI$ZDFRH%:PL5N6F1UA+WD0:/AGBV9.6SS$D2K0ZIOKWF", 6)[:276]

// clock is an injected clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func serve(t *testing.T, opts hwcam.Options) (*hwcam.Camera, string) {
	t.Helper()
	if opts.FPS == 0 {
		opts.FPS = 20
	}
	cam, err := hwcam.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cam.Close() })
	url, err := cam.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return cam, url
}

func open(t *testing.T, cfg Config) *Scanner {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Halt() })
	return s
}

func scan(t *testing.T, s *Scanner) device.Scan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sc, err := s.Scan(ctx)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	return sc
}

// TestScanMJPEG films a phone showing a 280-character wallet code with the
// virtual camera and reads it over MJPEG-over-HTTP through OpenCV's FFMPEG
// back end, through blur, tilt, noise and glare.
func TestScanMJPEG(t *testing.T) {
	scenes := []struct {
		name string
		opts hwcam.Options
	}{
		{"clean", hwcam.Options{}},
		{"defocus", hwcam.Options{Blur: 2}},
		{"tilt", hwcam.Options{Tilt: 25, Rotate: 8}},
		{"noise", hwcam.Options{Noise: 12}},
		{"glare", hwcam.Options{Glare: 0.5}},
		{"moire", hwcam.Options{Moire: 0.6, Rotate: 7}},
		{"phone", hwcam.Options{Moire: 0.5, Blur: 1, Tilt: 20, Noise: 6, Glare: 0.3}},
		{"blur+tilt", hwcam.Options{Blur: 1.2, Tilt: 25, Rotate: -10}},
		{"all", hwcam.Options{Blur: 1.0, Tilt: 20, Rotate: -6, Noise: 8, Glare: 0.3}},
		{"small", hwcam.Options{CodeSize: 0.4, Blur: 0.8, Noise: 4}},
	}
	for _, sc := range scenes {
		t.Run(sc.name, func(t *testing.T) {
			cam, url := serve(t, sc.opts)
			if err := cam.Show(wallet280); err != nil {
				t.Fatal(err)
			}
			s := open(t, Config{Source: url})
			got := scan(t, s)
			if got.Text != wallet280 || got.Format != "QR_CODE" || got.Source != "camera" {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

// TestScanScreenshot shows an app-like screenshot (a qrencode PNG, an
// independent encoder, under a coloured header bar) on the virtual phone.
func TestScanScreenshot(t *testing.T) {
	bin, err := exec.LookPath("qrencode")
	if err != nil {
		t.Skip("qrencode not installed")
	}
	file := filepath.Join(t.TempDir(), "code.png")
	if out, err := exec.Command(bin, "-o", file, "-l", "M", "-s", "6", "-m", "2", wallet280).CombinedOutput(); err != nil {
		t.Fatalf("qrencode: %v: %s", err, out)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	code, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cb := code.Bounds()
	shot := image.NewRGBA(image.Rect(0, 0, cb.Dx()+40, cb.Dy()+200))
	draw.Draw(shot, shot.Bounds(), image.NewUniform(color.RGBA{250, 250, 250, 255}), image.Point{}, draw.Src)
	draw.Draw(shot, image.Rect(0, 0, shot.Bounds().Dx(), 120), image.NewUniform(color.RGBA{20, 110, 200, 255}), image.Point{}, draw.Src)
	draw.Draw(shot, cb.Add(image.Pt(20, 150)), code, cb.Min, draw.Src)

	cam, url := serve(t, hwcam.Options{Blur: 1, Tilt: 15, Noise: 5, Glare: 0.2, CodeSize: 0.85})
	if err := cam.ShowImage(shot); err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{Source: url})
	if got := scan(t, s); got.Text != wallet280 {
		t.Fatalf("got %q", got.Text)
	}
}

// TestScanCode128 shows a Code128 barcode (e.g. a printed student ID).
func TestScanCode128(t *testing.T) {
	bm, err := oned.NewCode128Writer().Encode("2024123456", gozxing.BarcodeFormat_CODE_128, 300, 90, nil)
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, bm.GetWidth(), bm.GetHeight()))
	for y := range bm.GetHeight() {
		for x := range bm.GetWidth() {
			if !bm.Get(x, y) {
				img.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	cam, url := serve(t, hwcam.Options{Blur: 0.8, Noise: 4, Rotate: 3, CodeSize: 0.5})
	if err := cam.ShowImage(img); err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{Source: url})
	if got := scan(t, s); got.Text != "2024123456" || got.Format != "CODE_128" {
		t.Fatalf("got %+v", got)
	}
}

// TestScanSequence: a second code is read, the first is not repeated.
func TestScanSequence(t *testing.T) {
	cam, url := serve(t, hwcam.Options{Blur: 0.8, Noise: 4})
	s := open(t, Config{Source: url})
	for _, text := range []string{"CW1:FIRST", "CW1:SECOND", "1234567890123456"} {
		if err := cam.Show(text); err != nil {
			t.Fatal(err)
		}
		if got := scan(t, s); got.Text != text {
			t.Fatalf("got %q, want %q", got.Text, text)
		}
	}
}

// TestFileSources reads the virtual camera's PNG sequence and MJPG .avi.
// The code is on every frame: it is reported once, then the file ends.
func TestFileSources(t *testing.T) {
	cam, err := hwcam.New(hwcam.Options{Blur: 1, Tilt: 15, Noise: 6})
	if err != nil {
		t.Fatal(err)
	}
	if err := cam.Show(wallet280); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pattern, err := cam.WriteFrames(dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	avi := filepath.Join(dir, "cam.avi")
	if err := cam.WriteAVI(avi, 4); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{pattern, avi} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			s := open(t, Config{Source: src, Now: newClock().Now})
			if got := scan(t, s); got.Text != wallet280 {
				t.Fatalf("got %q", got.Text)
			}
			_, err := s.Scan(context.Background())
			if !errors.Is(err, ErrEndOfStream) {
				t.Fatalf("second Scan: %v, want ErrEndOfStream", err)
			}
		})
	}
}

// TestDedupWindow: the same text is reported again only once the window
// has passed since it was last seen.
func TestDedupWindow(t *testing.T) {
	cam, _ := hwcam.New(hwcam.Options{})
	if err := cam.Show("CW1:SAME"); err != nil {
		t.Fatal(err)
	}
	pattern, err := cam.WriteFrames(t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	s := open(t, Config{Source: pattern, Window: 5 * time.Second, Now: clk.Now})
	first := scan(t, s) // frame 0
	if first.Text != "CW1:SAME" || !first.At.Equal(clk.Now()) {
		t.Fatalf("first: %+v", first)
	}
	clk.Add(5 * time.Second)
	if got := scan(t, s); got.Text != "CW1:SAME" { // frame 1, window passed
		t.Fatalf("after window: %+v", got)
	}
	clk.Add(4 * time.Second)
	// Frames 2 and 3 fall inside the window of frame 1: nothing more.
	if _, err := s.Scan(context.Background()); !errors.Is(err, ErrEndOfStream) {
		t.Fatalf("within window: %v, want ErrEndOfStream", err)
	}
}

// TestReopenAfterIdle: a Scan after a long idle re-opens the stream and
// still reads.
func TestReopenAfterIdle(t *testing.T) {
	cam, url := serve(t, hwcam.Options{})
	clk := newClock()
	s := open(t, Config{Source: url, Now: clk.Now, Reopen: time.Second})
	if err := cam.Show("CW1:BEFORE"); err != nil {
		t.Fatal(err)
	}
	if got := scan(t, s); got.Text != "CW1:BEFORE" {
		t.Fatalf("got %q", got.Text)
	}
	clk.Add(time.Minute)
	if err := cam.Show("CW1:AFTER"); err != nil {
		t.Fatal(err)
	}
	if got := scan(t, s); got.Text != "CW1:AFTER" {
		t.Fatalf("got %q", got.Text)
	}
	if _, total := cam.Clients(); total != 2 {
		t.Fatalf("%d stream connections, want 2 (open, re-open after idle)", total)
	}
}

func TestScanCancel(t *testing.T) {
	_, url := serve(t, hwcam.Options{})
	s := open(t, Config{Source: url})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Scan(ctx)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Scan: %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Scan did not return after cancel")
	}
}

func TestHalt(t *testing.T) {
	cam, url := serve(t, hwcam.Options{}) // blank: Scan never finds anything
	s := open(t, Config{Source: url})
	done := make(chan error, 1)
	go func() {
		_, err := s.Scan(context.Background())
		done <- err
	}()
	if err := s.Halt(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, device.ErrHalted) {
			t.Fatalf("Scan: %v, want ErrHalted", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Scan did not return after Halt")
	}
	// Halt released the capture: the camera sees its client leave.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cam.WaitClients(ctx, func(active, _ int) bool { return active == 0 }); err != nil {
		t.Fatal(err)
	}
	if err := s.Halt(); err != nil {
		t.Fatalf("second Halt: %v", err)
	}
	if _, err := s.Scan(context.Background()); !errors.Is(err, device.ErrHalted) {
		t.Fatalf("Scan after Halt: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Error("empty source: no error")
	}
	for _, src := range []string{filepath.Join(t.TempDir(), "missing.avi"), "http://user:secret@127.0.0.1:1/none.mjpg"} {
		s, err := Open(Config{Source: src})
		if err == nil {
			s.Halt()
			t.Fatalf("Open(%q): no error", src)
		}
		if !errors.Is(err, ErrOpen) || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q): %v", src, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"rtsp://admin:secret@10.0.0.9/live": "rtsp://admin:xxxxx@10.0.0.9/live",
		"http://127.0.0.1:8080/stream.mjpg": "http://127.0.0.1:8080/stream.mjpg",
		"frames/frame_%03d.png":             "frames/frame_%03d.png",
		"0":                                 "0",
	} {
		if got := redacted(in); got != want {
			t.Errorf("redacted(%q) = %q, want %q", in, got, want)
		}
	}
}

var _ device.Scanner = (*Scanner)(nil)

// TestOnDecodeAndFreshFrames: every decoded frame is reported to OnDecode,
// and after the scanner sat idle while the stream kept running, the next
// Scan reads the code shown now, not frames queued while idle (the
// grabber keeps only the newest frame).
func TestOnDecodeAndFreshFrames(t *testing.T) {
	cam, url := serve(t, hwcam.Options{})
	var mu sync.Mutex
	frames := 0
	s := open(t, Config{Source: url, Reopen: -1, OnDecode: func(time.Duration) {
		mu.Lock()
		frames++
		mu.Unlock()
	}})
	if err := cam.Show("CW1:EARLIER"); err != nil {
		t.Fatal(err)
	}
	if got := scan(t, s); got.Text != "CW1:EARLIER" {
		t.Fatalf("got %q", got.Text)
	}
	// Idle while the camera keeps streaming (frames queue in the socket),
	// then a new code: it must be the first new text reported.
	idle, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	<-idle.Done()
	cancel()
	if err := cam.Show("CW1:NOW"); err != nil {
		t.Fatal(err)
	}
	if got := scan(t, s); got.Text != "CW1:NOW" {
		t.Fatalf("got %q, want the code shown now", got.Text)
	}
	mu.Lock()
	defer mu.Unlock()
	if frames < 2 {
		t.Fatalf("OnDecode saw %d frames", frames)
	}
}

// realPayCode is a wallet payment code made by protocol.MakeCode, as the
// web wallet makes them (Classify says KindPayCode).
func realPayCode(t *testing.T) string {
	t.Helper()
	issuer := ed25519.NewKeyFromSeed(make([]byte, 32))
	for k := byte(1); ; k++ {
		dev := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{k}, 32))
		pub := dev.Public().(ed25519.PublicKey)
		if protocol.CheckDeviceKey(pub) != nil {
			continue
		}
		at := time.Unix(1_800_000_000, 0)
		cert, err := protocol.IssueCertificate(protocol.Certificate{KeyID: 1, UserID: 2024001, DeviceID: 1, DeviceKey: pub, Expires: at.Add(time.Hour)}, issuer)
		if err != nil {
			t.Fatal(err)
		}
		code, err := protocol.MakeCode(cert, dev, protocol.PurposePay, at, 1)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
}

// TestPreferPayCode: a merchant's printed QR and a student's phone in one
// frame. The payment code is reported first; the sticker, new, by the next
// Scan; then nothing: the payment code, still in view, is never reported
// twice.
func TestPreferPayCode(t *testing.T) {
	pay := realPayCode(t)
	if protocol.Classify(pay) != protocol.KindPayCode {
		t.Fatalf("test code is %v", protocol.Classify(pay))
	}
	const sticker = "HTTPS://PAY.CAMPUS.EXAMPLE/M/42"
	cam, err := hwcam.New(hwcam.Options{CodeSize: 0.5, Poster: sticker, Blur: 0.8, Noise: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := cam.Show(pay); err != nil {
		t.Fatal(err)
	}
	pattern, err := cam.WriteFrames(t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, Config{Source: pattern, Budget: -1, Now: newClock().Now})
	for _, want := range []string{pay, sticker} {
		if got := scan(t, s); got.Text != want {
			t.Fatalf("got %q, want %q", got.Text, want)
		}
	}
	if sc, err := s.Scan(context.Background()); !errors.Is(err, ErrEndOfStream) {
		t.Fatalf("third Scan: %+v %v, want ErrEndOfStream", sc, err)
	}
}
