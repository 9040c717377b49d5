package camera

import (
	"bufio"
	"bytes"
	"image/jpeg"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

// wallet280 is a 280-character payload in QR alphanumeric mode, shaped like
// the wallet's base45 codes.
var wallet280 = "CW1:" + strings.Repeat("6BFOXN*TS0BI$ZDFRH%:PL5N6F1UA+WD0:/AGBV9.6SS$D2K0ZIOKWF", 6)[:276]

// scenes are the distortions every test renders; each must stay readable.
// zbar reads perspective up to ~15° of tilt and light moiré; harder
// scenes are checked only by our own pipeline (terminal/device/camera).
var scenes = []struct {
	name string
	opts Options
	zbar bool
}{
	{"clean", Options{}, true},
	{"blur", Options{Blur: 1.2}, true},
	{"tilt", Options{Tilt: 15, Rotate: 8}, true},
	{"steep", Options{Tilt: 25, Rotate: 8}, false},
	{"noise", Options{Noise: 10}, true},
	{"glare", Options{Glare: 0.5}, true},
	{"moire", Options{Moire: 0.3}, true},
	{"deep moire", Options{Moire: 0.6, Rotate: 7}, false},
	{"all", Options{Blur: 1.0, Tilt: 15, Rotate: -6, Noise: 6, Glare: 0.3}, true},
}

func TestWallet280IsAlphanumeric(t *testing.T) {
	if len(wallet280) != 280 {
		t.Fatalf("len %d", len(wallet280))
	}
	for _, r := range wallet280 {
		if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", r) {
			t.Fatalf("rune %q not alphanumeric", r)
		}
	}
}

func TestQRImageVersion(t *testing.T) {
	img, err := QRImage(wallet280, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Version 10 is 57 modules, plus a 4-module quiet zone on each side.
	if got := img.Bounds().Dx(); got != 57+8 {
		t.Fatalf("280 alphanumeric chars at EC M: %d px wide, want 65 (version 10)", got)
	}
}

// TestZbarReadsFrames checks the rendered frames with an independent
// decoder (zbarimg, installed by make deps).
func TestZbarReadsFrames(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed")
	}
	for _, sc := range scenes {
		t.Run(sc.name, func(t *testing.T) {
			if !sc.zbar {
				t.Skip("beyond zbar's tolerance")
			}
			cam, err := New(sc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer cam.Close()
			if err := cam.Show(wallet280); err != nil {
				t.Fatal(err)
			}
			m, err := cam.Frame(0)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			file := filepath.Join(t.TempDir(), "frame.png")
			if !gocv.IMWrite(file, m) {
				t.Fatal("IMWrite failed")
			}
			out, err := exec.Command(zbar, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", file).Output()
			if err != nil {
				t.Fatalf("zbarimg: %v", err)
			}
			if got := strings.TrimRight(string(out), "\n"); got != wallet280 {
				t.Fatalf("zbarimg read %q", got)
			}
		})
	}
}

func TestServeMJPEG(t *testing.T) {
	cam, err := New(Options{Width: 320, Height: 240, FPS: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	url, err := cam.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := cam.Show("HELLO"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/x-mixed-replace" {
		t.Fatalf("content type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(bufio.NewReader(resp.Body), params["boundary"])
	for range 3 {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		if part.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("part type %q", part.Header.Get("Content-Type"))
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(part); err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
			t.Fatalf("frame %v", b)
		}
	}
}

func TestWriteFramesAndAVI(t *testing.T) {
	cam, err := New(Options{Width: 320, Height: 240})
	if err != nil {
		t.Fatal(err)
	}
	if err := cam.Show("HELLO"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pattern, err := cam.WriteFrames(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := countFrames(t, pattern); got != 3 {
		t.Fatalf("%s: %d frames", pattern, got)
	}
	avi := filepath.Join(dir, "cam.avi")
	if err := cam.WriteAVI(avi, 4); err != nil {
		t.Fatal(err)
	}
	if got := countFrames(t, avi); got != 4 {
		t.Fatalf("%s: %d frames", avi, got)
	}
}

func countFrames(t *testing.T, src string) int {
	t.Helper()
	vc, err := gocv.VideoCaptureFile(src)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	n := 0
	for vc.Read(&m) && !m.Empty() {
		n++
	}
	return n
}

func TestFramesAreDeterministic(t *testing.T) {
	cam, _ := New(Options{Noise: 8, Tilt: 10})
	_ = cam.Show("HELLO")
	a, err := cam.JPEG(3)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := cam.JPEG(3)
	if !bytes.Equal(a, b) {
		t.Fatal("same frame number rendered differently")
	}
}

func TestWriteSamples(t *testing.T) {
	dir := os.Getenv("CAMERA_SAMPLES")
	if dir == "" {
		t.Skip("set CAMERA_SAMPLES=dir to write one frame per scene")
	}
	for _, sc := range scenes {
		cam, _ := New(sc.opts)
		_ = cam.Show(wallet280)
		m, err := cam.Frame(0)
		if err != nil {
			t.Fatal(err)
		}
		gocv.IMWrite(filepath.Join(dir, sc.name+".png"), m)
		m.Close()
	}
}

// TestCurveAndPoster: a bent phone and a merchant's printed sticker beside
// a phone are both read by an independent decoder (zbarimg), the sticker
// and the phone's code from one frame.
func TestCurveAndPoster(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed")
	}
	const sticker = "CM1:STICKER-OF-THE-CANTEEN"
	for _, c := range []struct {
		name string
		opts Options
		want []string
	}{
		{"curve", Options{Curve: 0.4}, []string{wallet280}},
		{"poster", Options{CodeSize: 0.5, Poster: sticker}, []string{sticker, wallet280}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cam, err := New(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer cam.Close()
			if err := cam.Show(wallet280); err != nil {
				t.Fatal(err)
			}
			m, err := cam.Frame(0)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			file := filepath.Join(t.TempDir(), "frame.png")
			if !gocv.IMWrite(file, m) {
				t.Fatal("IMWrite failed")
			}
			out, err := exec.Command(zbar, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", file).Output()
			if err != nil {
				t.Fatalf("zbarimg: %v", err)
			}
			got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			for _, w := range c.want {
				if !slices.Contains(got, w) {
					t.Errorf("zbarimg read %q, not %q", got, w)
				}
			}
		})
	}
	for _, bad := range []Options{{Curve: 1.5}, {Curve: -1}, {PosterSize: 2}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v): no error", bad)
		}
	}
}
