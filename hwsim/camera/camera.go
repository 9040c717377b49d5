// Package camera is hwsim's virtual camera: it films a phone screen that
// shows a QR code (or any image, e.g. a browser screenshot of the web
// wallet) with the distortions of a cheap USB camera held close to a
// phone — blur, perspective tilt, in-plane rotation, sensor noise, screen
// glare and moiré from the screen's pixel grid — and serves the frames as MJPEG over HTTP
// (multipart/x-mixed-replace), which OpenCV's FFMPEG back end opens like
// a network camera. It can also write a frame_%03d.png sequence or an MJPG
// .avi for the camera driver's file sources.
//
//	cam, _ := camera.New(camera.Options{Blur: 1.2, Tilt: 20, Noise: 6})
//	defer cam.Close()
//	url, _ := cam.Serve("127.0.0.1:0")
//	cam.Show("CW1:...")
//
// Noise and hand shake come from a seeded generator: frame n of a given
// content and Options is the same on every run.
package camera

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"gocv.io/x/gocv"
)

// Options describe the camera and the scene. Zero values give a clean
// 640×480, 10 fps picture with the code filling 60 % of the frame height.
type Options struct {
	Width, Height int     // frame size (default 640×480)
	FPS           int     // frames per second served (default 10)
	CodeSize      float64 // code height as a fraction of the frame height (default 0.6)
	Blur          float64 // Gaussian blur sigma in pixels (0: sharp)
	Tilt          float64 // phone turned this many degrees about the vertical axis (and half about the horizontal)
	Rotate        float64 // in-plane rotation in degrees
	Noise         float64 // sensor noise standard deviation in grey levels
	Glare         float64 // strength of a reflected light spot, 0..1
	Moire         float64 // screen pixel grid depth, 0..1: aliases into moiré stripes
	Curve         float64 // the phone (or label) bent round a cylinder: 0 flat … 1 a half turn in view
	// Poster, when not empty, is a second code in view: a printed QR on
	// white paper (a merchant's sticker) in the frame's top-left corner,
	// PosterSize of the frame height (default 0.3), drawn behind the phone.
	Poster     string
	PosterSize float64
	Quality    int    // JPEG quality of served frames (default 85)
	Seed       uint64 // noise and shake seed
}

// Camera is a virtual camera. Its methods are safe for concurrent use.
type Camera struct {
	opts Options

	mu      sync.Mutex
	content *image.RGBA // what the phone screen shows; nil: no phone in view
	gen     uint64      // bumped on every Show/Blank, seeds the frame noise
	srv     *http.Server
	ln      net.Listener
	closed  bool
	active  int           // stream clients connected now
	total   int           // stream clients ever connected
	changed chan struct{} // closed and replaced when active or total changes
}

// New returns a camera showing nothing (an empty desk).
func New(opts Options) (*Camera, error) {
	if opts.Width == 0 || opts.Height == 0 {
		opts.Width, opts.Height = 640, 480
	}
	if opts.FPS <= 0 {
		opts.FPS = 10
	}
	if opts.CodeSize <= 0 {
		opts.CodeSize = 0.6
	}
	if opts.Quality <= 0 {
		opts.Quality = 85
	}
	if opts.PosterSize <= 0 {
		opts.PosterSize = 0.3
	}
	if opts.Width < 64 || opts.Height < 64 || opts.CodeSize > 1 || opts.Glare > 1 || opts.Moire > 1 ||
		opts.Curve < 0 || opts.Curve > 1 || opts.PosterSize > 1 {
		return nil, fmt.Errorf("camera: bad options %+v", opts)
	}
	return &Camera{opts: opts, changed: make(chan struct{})}, nil
}

// Clients reports how many stream clients are connected now and how many
// have connected since Serve.
func (c *Camera) Clients() (active, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active, c.total
}

// WaitClients blocks until ok(active, total) holds or ctx ends.
func (c *Camera) WaitClients(ctx context.Context, ok func(active, total int) bool) error {
	for {
		c.mu.Lock()
		done, ch := ok(c.active, c.total), c.changed
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			a, t := c.Clients()
			return fmt.Errorf("camera: waiting for clients (active %d, total %d): %w", a, t, ctx.Err())
		}
	}
}

func (c *Camera) addClient(d int) {
	c.mu.Lock()
	c.active += d
	if d > 0 {
		c.total++
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// Show puts a phone showing text as a QR code (EC level M) in view.
func (c *Camera) Show(text string) error {
	img, err := QRImage(text, 1)
	if err != nil {
		return err
	}
	return c.ShowImage(img)
}

// ShowImage puts a phone showing img (scaled to the code area, aspect kept)
// in view.
func (c *Camera) ShowImage(img image.Image) error {
	if img == nil || img.Bounds().Empty() {
		return errors.New("camera: empty image")
	}
	rgba := image.NewRGBA(image.Rect(0, 0, img.Bounds().Dx(), img.Bounds().Dy()))
	draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
	c.mu.Lock()
	c.content = rgba
	c.gen++
	c.mu.Unlock()
	return nil
}

// Blank takes the phone out of view.
func (c *Camera) Blank() {
	c.mu.Lock()
	c.content = nil
	c.gen++
	c.mu.Unlock()
}

// Frame renders frame n of the current scene as a BGR Mat; the caller
// closes it.
func (c *Camera) Frame(n int) (gocv.Mat, error) {
	c.mu.Lock()
	content, gen := c.content, c.gen
	c.mu.Unlock()
	rng := rand.New(rand.NewPCG(c.opts.Seed, gen<<32|uint64(n)))
	flat := gocv.NewMat()
	if content != nil {
		var err error
		flat.Close()
		codePx := c.opts.CodeSize * float64(c.opts.Height)
		if c.opts.Moire > 0 {
			codePx *= moireScale
		}
		flat, err = phone(content, int(codePx), c.opts.Moire)
		if err != nil {
			return gocv.Mat{}, err
		}
		if c.opts.Curve > 0 {
			bent := curve(flat, c.opts.Curve)
			flat.Close()
			flat = bent
		}
	}
	defer flat.Close()
	return c.frame(flat, rng)
}

// JPEG renders frame n and encodes it as JPEG.
func (c *Camera) JPEG(n int) ([]byte, error) {
	m, err := c.Frame(n)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	buf, err := gocv.IMEncodeWithParams(gocv.JPEGFileExt, m, []int{gocv.IMWriteJpegQuality, c.opts.Quality})
	if err != nil {
		return nil, fmt.Errorf("camera: encode JPEG: %w", err)
	}
	defer buf.Close()
	return append([]byte(nil), buf.GetBytes()...), nil
}

// WriteFrames writes n frames as dir/frame_000.png … and returns the
// pattern OpenCV opens as an image sequence (dir/frame_%03d.png).
func (c *Camera) WriteFrames(dir string, n int) (string, error) {
	if n > 1000 {
		return "", fmt.Errorf("camera: %d frames do not fit frame_%%03d", n)
	}
	for i := range n {
		m, err := c.Frame(i)
		if err != nil {
			return "", err
		}
		name := filepath.Join(dir, fmt.Sprintf("frame_%03d.png", i))
		ok := gocv.IMWrite(name, m)
		m.Close()
		if !ok {
			return "", fmt.Errorf("camera: write %s failed", name)
		}
	}
	return filepath.Join(dir, "frame_%03d.png"), nil
}

// WriteAVI writes n frames to path as an MJPG .avi.
func (c *Camera) WriteAVI(path string, n int) error {
	w, err := gocv.VideoWriterFile(path, "MJPG", float64(c.opts.FPS), c.opts.Width, c.opts.Height, true)
	if err != nil {
		return fmt.Errorf("camera: create %s: %w", path, err)
	}
	defer w.Close()
	if !w.IsOpened() {
		return fmt.Errorf("camera: create %s: writer not opened", path)
	}
	for i := range n {
		m, err := c.Frame(i)
		if err != nil {
			return err
		}
		err = w.Write(m)
		m.Close()
		if err != nil {
			return fmt.Errorf("camera: write %s frame %d: %w", path, i, err)
		}
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("camera: write %s: %w", path, err)
	}
	return nil
}

// Serve starts serving MJPEG on addr ("127.0.0.1:0" picks a port) and
// returns the stream URL. Every client gets its own frame clock at FPS.
func (c *Camera) Serve(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("camera: listen %s: %w", addr, err)
	}
	c.mu.Lock()
	if c.closed || c.srv != nil {
		c.mu.Unlock()
		ln.Close()
		return "", errors.New("camera: closed or already serving")
	}
	c.ln = ln
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second}
	srv := c.srv
	c.mu.Unlock()
	go srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
	return c.URL(), nil
}

// URL is the MJPEG stream's URL ("" before Serve).
func (c *Camera) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ln == nil {
		return ""
	}
	return "http://" + c.ln.Addr().String() + "/stream.mjpg"
}

const boundary = "campuspayframe"

// ServeHTTP streams frames as multipart/x-mixed-replace until the client
// goes away or the camera is closed.
func (c *Camera) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.addClient(1)
	defer c.addClient(-1)
	w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary="+boundary)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	tick := time.NewTicker(time.Second / time.Duration(c.opts.FPS))
	defer tick.Stop()
	for n := 0; ; n++ {
		jpg, err := c.JPEG(n % 1000)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %s\r\n\r\n",
			boundary, strconv.Itoa(len(jpg))); err != nil {
			return
		}
		if _, err := w.Write(jpg); err != nil {
			return
		}
		if _, err := w.Write([]byte("\r\n")); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// Close stops the server and drops its clients.
func (c *Camera) Close() error {
	c.mu.Lock()
	srv := c.srv
	c.closed = true
	c.mu.Unlock()
	if srv != nil {
		return srv.Close()
	}
	return nil
}
