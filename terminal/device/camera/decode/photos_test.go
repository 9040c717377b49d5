package decode

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocv.io/x/gocv"

	hwcam "campuspay/hwsim/camera"
	"campuspay/protocol"
)

// photo is one image of the real-photo-like set: a virtual-camera frame,
// JPEG-compressed like a phone photo, and every code in view.
type photo struct {
	cat  string
	name string
	m    gocv.Mat // 8-bit gray
	want []string // every code in view; want[0] is the one that must be read
}

// photoCats are the categories of the set, in report order. "idle" frames
// show no code: anything read there is a misread.
var photoCats = []string{"closeup", "blur", "perspective", "curved", "moire", "glare", "small", "multi", "idle"}

// perCat images per category.
const perCat = 8

// payCode makes the i-th real wallet payment code (protocol.MakeCode, the
// web wallet's format: 276 base45 characters behind "CW1:").
func payCode(t testing.TB, i int) string {
	t.Helper()
	seed := sha256.Sum256([]byte(fmt.Sprintf("issuer")))
	issuer := ed25519.NewKeyFromSeed(seed[:])
	for k := 0; ; k++ {
		ds := sha256.Sum256([]byte(fmt.Sprintf("device %d %d", i, k)))
		dev := ed25519.NewKeyFromSeed(ds[:])
		pub := dev.Public().(ed25519.PublicKey)
		if protocol.CheckDeviceKey(pub) != nil {
			continue
		}
		at := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
		cert, err := protocol.IssueCertificate(protocol.Certificate{
			KeyID: 1, UserID: uint32(2024001 + i), DeviceID: uint32(i + 1), DeviceKey: pub, Expires: at.Add(90 * 24 * time.Hour),
		}, issuer)
		if err != nil {
			t.Fatal(err)
		}
		code, err := protocol.MakeCode(cert, dev, protocol.PurposePay, at.Add(time.Duration(i)*time.Minute), uint16(i))
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
}

// merchantQR makes the i-th static merchant QR (the sticker on the till).
func merchantQR(t testing.TB, i int) string {
	t.Helper()
	seed := sha256.Sum256([]byte("issuer"))
	s, err := protocol.IssueMerchantQR(protocol.MerchantQR{
		KeyID: 1, Issued: time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC),
		Merchant: fmt.Sprintf("CANTEEN-%d", i), Terminal: fmt.Sprintf("T-POS-%02d", i), Campus: "YUNGU",
	}, ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// qrencodeImage renders text with qrencode (an independent encoder) at EC
// level ec, one pixel per module; nil when qrencode is not installed.
func qrencodeImage(t testing.TB, text, ec string) image.Image {
	t.Helper()
	bin, err := exec.LookPath("qrencode")
	if err != nil {
		return nil
	}
	file := filepath.Join(t.TempDir(), "q.png")
	if out, err := exec.Command(bin, "-o", file, "-l", ec, "-s", "1", "-m", "4", text).CombinedOutput(); err != nil {
		t.Fatalf("qrencode: %v: %s", err, out)
	}
	m := gocv.IMRead(file, gocv.IMReadGrayScale)
	defer m.Close()
	img, err := m.ToImage()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// sceneOf is the i-th scene of a category.
func sceneOf(cat string, i int) hwcam.Options {
	sizes := [][2]int{{640, 480}, {1280, 720}, {1920, 1080}, {4000, 3000}}
	sz := sizes[i%len(sizes)]
	o := hwcam.Options{Width: sz[0], Height: sz[1], Seed: uint64(i + 1)}
	k := float64(sz[1]) / 480 // blur grows with the resolution
	switch cat {
	case "closeup":
		// The phone almost touching the lens: the code fills the frame,
		// its modules are huge and it is out of focus.
		o.CodeSize = 0.86 + 0.015*float64(i)
		o.Blur = k * (1 + 0.3*float64(i%4))
		if i%2 == 1 {
			o.Moire = 0.4
		}
		o.Noise = 3
	case "blur":
		o.Width, o.Height = sizes[i%2][0], sizes[i%2][1]
		k = float64(o.Height) / 480
		o.CodeSize = 0.55
		o.Blur = k * (2.0 + 0.12*float64(i))
		o.Noise = 5
	case "perspective":
		o.Width, o.Height = sizes[i%2][0], sizes[i%2][1]
		o.Tilt = 38 + 2.5*float64(i)
		o.Rotate = float64(i%3-1) * 10
		o.Blur = 0.6
	case "curved":
		o.Width, o.Height = sizes[i%2][0], sizes[i%2][1]
		o.Curve = 0.3 + 0.05*float64(i)
		o.Blur = 0.8 * float64(o.Height) / 480
		o.Tilt = float64(i%3) * 8
	case "moire":
		o.Width, o.Height = 640, 480
		o.Moire = 0.55 + 0.05*float64(i)
		o.Rotate = 4 + float64(i)
		o.Blur = 0.5
	case "glare":
		o.Width, o.Height = sizes[i%2][0], sizes[i%2][1]
		o.Glare = 0.7 + 0.04*float64(i)
		o.Noise = 12 + 2*float64(i)
	case "small":
		o.Width, o.Height = sizes[i%3][0], sizes[i%3][1]
		// About 2 px per module whatever the resolution.
		o.CodeSize = 0.24 * 480 / float64(o.Height) * (1 + 0.04*float64(i))
		o.Blur = 0.5
	case "multi":
		o.Width, o.Height = sizes[i%2][0], sizes[i%2][1]
		// A merchant's sticker beside the student's phone.
		o.CodeSize = 0.5
		o.Poster = "poster" // replaced by the caller
		o.PosterSize = 0.4
		o.Blur = float64(o.Height) / 480 * (0.8 + 0.1*float64(i))
		o.Tilt = 10 + 2*float64(i)
	case "idle":
		o.Noise = float64(i%3) * 10
		if i%4 == 3 {
			o.Moire = 0.5
		}
	}
	return o
}

// photoSet renders the real-photo-like set: phones showing real wallet
// payment codes (and codes made by qrencode) filmed by hwsim's virtual
// camera, then JPEG-compressed. Every image is the same on every run.
func photoSet(t testing.TB) []photo {
	t.Helper()
	var out []photo
	for _, cat := range photoCats {
		for i := range perCat {
			o := sceneOf(cat, i)
			var want []string
			text := payCode(t, len(out))
			var img image.Image
			if i%3 == 2 && cat != "multi" && cat != "idle" {
				// Every third phone shows a code qrencode made: other
				// payloads, other EC levels.
				text = []string{"https://pay.campus.example/m/42?t=7", merchantQR(t, i), "CW1:" + strings.Repeat("ABC123 $%*+-./:", 18)}[(i/3)%3]
				img = qrencodeImage(t, text, []string{"L", "M", "Q", "H"}[i%4])
			}
			if cat == "multi" {
				o.Poster = merchantQR(t, i)
			}
			cam, err := hwcam.New(o)
			if err != nil {
				t.Fatalf("%s %d: %v", cat, i, err)
			}
			if cat != "idle" {
				if img != nil {
					err = cam.ShowImage(img)
				} else {
					err = cam.Show(text)
				}
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, text)
			}
			if o.Poster != "" {
				want = append(want, o.Poster)
			}
			jpg, err := cam.JPEG(0)
			if err != nil {
				t.Fatal(err)
			}
			m, err := gocv.IMDecode(jpg, gocv.IMReadGrayScale)
			if err != nil || m.Empty() {
				t.Fatalf("%s %d: decode JPEG: %v", cat, i, err)
			}
			out = append(out, photo{cat: cat, name: fmt.Sprintf("%s-%d", cat, i), m: m, want: want})
		}
	}
	t.Cleanup(func() {
		for _, p := range out {
			p.m.Close()
		}
	})
	return out
}

// tally counts one decoder's results on the photo set, per category.
type tally struct {
	any, all, misread map[string]int // images with ≥1 code read, with every code read, wrong texts
}

func newTally() tally {
	return tally{any: map[string]int{}, all: map[string]int{}, misread: map[string]int{}}
}

func (tl tally) add(p photo, got []string) {
	read := 0
	for _, w := range p.want {
		for _, g := range got {
			if escapeNonGraphical(g) == escapeNonGraphical(w) {
				read++
				break
			}
		}
	}
	for _, g := range got {
		ok := false
		for _, w := range p.want {
			ok = ok || escapeNonGraphical(g) == escapeNonGraphical(w)
		}
		if !ok {
			tl.misread[p.cat]++
		}
	}
	if read > 0 {
		tl.any[p.cat]++
	}
	if len(p.want) > 0 && read == len(p.want) {
		tl.all[p.cat]++
	}
}

func (tl tally) total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func texts(syms []Symbol) []string {
	out := make([]string, len(syms))
	for i, s := range syms {
		out[i] = s.Text
	}
	return out
}

// zxingCPP reads every image with Debian's zxing-cpp command-line reader
// (ZXingReader, package zxing-cpp-tools) in one run and returns the texts
// per image, or ok false when it is not installed.
func zxingCPP(t testing.TB, imgs []gocv.Mat) (got [][]string, ok bool) {
	t.Helper()
	bin, err := exec.LookPath("ZXingReader")
	if err != nil {
		return nil, false
	}
	dir := t.TempDir()
	args := []string{"-1", "-format", "QRCode,Code128"}
	index := map[string]int{}
	for i, m := range imgs {
		p := filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		if !gocv.IMWrite(p, m) {
			t.Fatalf("write %s", p)
		}
		args = append(args, p)
		index[p] = i
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		// zxing-cpp 1.4 aborts on a few images: read them one by one,
		// an abort reading nothing.
		out = nil
		for _, p := range args[3:] {
			o, _ := exec.Command(bin, append(args[:3:3], p)...).Output()
			out = append(out, o...)
		}
	}
	got = make([][]string, len(imgs))
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		// path format "text" (non-graphical characters escaped).
		path, rest, _ := strings.Cut(sc.Text(), " ")
		_, quoted, _ := strings.Cut(rest, " ")
		i, known := index[path]
		if !known || !strings.HasPrefix(quoted, `"`) { // "path None": nothing found
			continue
		}
		text, err := strconv.Unquote(quoted)
		if err != nil {
			text = strings.Trim(quoted, `"`)
		}
		got[i] = append(got[i], unescapeNonGraphical(text))
	}
	return got, true
}

// unescapeNonGraphical undoes zxing-cpp's <LF>-style escapes.
func unescapeNonGraphical(s string) string {
	for c := range 32 {
		s = strings.ReplaceAll(s, escapeNonGraphical(string(rune(c))), string(rune(c)))
	}
	return strings.ReplaceAll(s, "<DEL>", "\x7f")
}

// havePhotoTools skips when the tools the photo set needs are missing
// outside CI.
func havePhotoTools(t testing.TB) {
	if _, err := exec.LookPath("qrencode"); err != nil && os.Getenv("CI") == "" {
		t.Skip("qrencode not installed")
	}
}

func mats(ps []photo) []gocv.Mat {
	out := make([]gocv.Mat, len(ps))
	for i, p := range ps {
		out[i] = p.m
	}
	return out
}
