// Package camera is the device.Scanner for cameras: frames come from an
// OpenCV VideoCapture (gocv) and are decoded by the decode sub-package
// (gozxing QR and Code128 behind OpenCV pre-processing).
//
// The source is a device index ("0"), a file (an MJPG .avi, or a frame
// sequence such as "dir/frame_%03d.png") or a stream URL (MJPEG over HTTP,
// RTSP; opened with OpenCV's FFMPEG back end).
//
// Frames are grabbed and decoded only while Scan is being called. The
// capture stays open between calls (re-opening a stream costs hundreds of
// milliseconds), but when Scan was not called for Config.Reopen the capture
// is re-opened first, so frames buffered while the box was idle (a code
// shown long ago) are never decoded. While scanning a live source, a
// grabber reads frames as fast as they arrive and the decoder always takes
// the newest one, so a slow decode on a busy box never lags the phone.
//
// De-duplication: a text is not reported again while it keeps being seen:
// it is suppressed until Config.Window has passed since it was last seen
// (reported or not). A phone held still in front of the camera is reported
// once.
//
// Several codes in one frame: the decoder returns them all and Scan
// reports the most wanted new one — a campus payment code before other
// wallets' codes, identity codes and anything else (a merchant's printed
// QR beside the till never wins over the student's phone); the others stay
// new and are reported by later Scan calls.
//
// Each frame is decoded within Config.Budget (see package decode for what
// the pipeline reads and what a 280-character wallet code needs). Halt
// waits for the frame in progress (a read plus at most one budget), then
// releases the capture; a stream that stalls inside OpenCV's read delays
// Halt until FFMPEG gives up on it.
package camera

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"campuspay/protocol"
	"campuspay/terminal/device"
	"campuspay/terminal/device/camera/decode"
)

// Errors returned (wrapped) by Open and Scan.
var (
	// ErrEndOfStream: a file source has no more frames.
	ErrEndOfStream = errors.New("camera: end of stream")
	// ErrOpen: OpenCV could not open the source (no such device, file or
	// stream, or no back end for it).
	ErrOpen = errors.New("camera: OpenCV could not open the source")
)

// Config configures a Scanner.
type Config struct {
	// Source is a device index ("0"), a file path or a stream URL.
	Source string
	// Window is the de-duplication window (default 3 s).
	Window time.Duration
	// Budget bounds the decoder's fallback stages per frame so a live
	// camera keeps up (default 80 ms; negative means no limit).
	Budget time.Duration
	// Reopen re-opens a live capture before scanning when Scan was idle
	// this long, dropping stale buffered frames (default 2 s; negative
	// never re-opens).
	Reopen time.Duration
	// Width and Height request a capture size from a device (0: driver default).
	Width, Height int
	// Now is the clock for de-duplication, Scan.At, Reopen and the decode
	// budget (default time.Now; a clock that stands still means no budget).
	Now func() time.Time
	// WeChat adds OpenCV's wechat_qrcode as a last decode stage (see
	// package decode: slower, reads a few more codes).
	WeChat bool
	// OnDecode, if set, receives each frame's decode time (wall clock),
	// e.g. for a metrics histogram.
	OnDecode func(time.Duration)
}

// Scanner reads codes from a camera. Scan calls are serialised; Halt may be
// called from any goroutine.
type Scanner struct {
	cfg  Config
	file bool // Source is a file: end of frames is the end, not an error to retry

	scanMu sync.Mutex // one Scan at a time

	mu       sync.Mutex // guards the capture and the fields below it
	halted   bool
	capture  *gocv.VideoCapture
	lastScan time.Time // when the previous Scan returned

	decMu sync.Mutex // guards the decoder and seen: decoding runs beside reading
	dec   *decode.Decoder
	seen  map[string]time.Time // text → last seen
}

// Open opens the capture and returns a Scanner.
func Open(cfg Config) (*Scanner, error) {
	if cfg.Source == "" {
		return nil, errors.New("camera: empty source")
	}
	if cfg.Window == 0 {
		cfg.Window = 3 * time.Second
	}
	if cfg.Budget == 0 {
		cfg.Budget = 80 * time.Millisecond
	}
	if cfg.Reopen == 0 {
		cfg.Reopen = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Scanner{cfg: cfg, file: isFile(cfg.Source), seen: map[string]time.Time{}}
	c, err := s.open()
	if err != nil {
		return nil, err
	}
	budget := cfg.Budget
	if budget < 0 {
		budget = 0
	}
	dec, err := decode.New(decode.Options{Budget: budget, Now: cfg.Now, WeChat: cfg.WeChat})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("camera: %w", err)
	}
	s.capture = c
	s.dec = dec
	s.lastScan = cfg.Now()
	return s, nil
}

// redacted is the source for messages: a stream URL's password is hidden.
func redacted(src string) string {
	if u, err := url.Parse(src); err == nil && u.User != nil {
		return u.Redacted()
	}
	return src
}

func isFile(src string) bool {
	if _, err := strconv.Atoi(src); err == nil {
		return false
	}
	return !strings.Contains(src, "://")
}

func (s *Scanner) open() (*gocv.VideoCapture, error) {
	var (
		c   *gocv.VideoCapture
		err error
	)
	if n, aerr := strconv.Atoi(s.cfg.Source); aerr == nil {
		c, err = gocv.VideoCaptureDevice(n)
	} else if strings.Contains(s.cfg.Source, "://") {
		// FFMPEG handles MJPEG over HTTP and RTSP; the default order would
		// try GStreamer first, which is slow to give up on these.
		c, err = gocv.VideoCaptureFileWithAPI(s.cfg.Source, gocv.VideoCaptureFFmpeg)
	} else {
		c, err = gocv.VideoCaptureFile(s.cfg.Source)
	}
	if err != nil {
		// gocv's error repeats the URL, password included: not wrapped.
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("camera: open %s: %w", redacted(s.cfg.Source), ErrOpen)
	}
	if !c.IsOpened() {
		c.Close()
		return nil, fmt.Errorf("camera: open %s: %w", redacted(s.cfg.Source), ErrOpen)
	}
	if s.cfg.Width > 0 && s.cfg.Height > 0 {
		c.Set(gocv.VideoCaptureFrameWidth, float64(s.cfg.Width))
		c.Set(gocv.VideoCaptureFrameHeight, float64(s.cfg.Height))
	}
	return c, nil
}

// Scan grabs and decodes frames until a code not seen within the window is
// read, ctx ends or the scanner is halted.
func (s *Scanner) Scan(ctx context.Context) (device.Scan, error) {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	defer func() {
		s.mu.Lock()
		s.lastScan = s.cfg.Now()
		s.mu.Unlock()
	}()
	if err := s.freshen(); err != nil {
		return device.Scan{}, err
	}
	if !s.file {
		return s.scanLive(ctx)
	}
	frame := gocv.NewMat()
	defer frame.Close()
	for {
		if err := ctx.Err(); err != nil {
			return device.Scan{}, err
		}
		ok, err := s.read(&frame)
		if err != nil {
			return device.Scan{}, err
		}
		if !ok {
			continue
		}
		if sc, found, err := s.decodeFrame(frame); err != nil || found {
			return sc, err
		}
	}
}

// scanLive decodes the newest frame of a live source. A grabber goroutine
// reads the stream as fast as it arrives and keeps only the latest frame:
// an MJPEG stream over HTTP queues every frame (unlike a V4L2 ring that
// drops them), so a decoder slower than the camera, on a busy box, would
// otherwise fall further and further behind the student's phone.
func (s *Scanner) scanLive(ctx context.Context) (device.Scan, error) {
	g := &grabber{latest: gocv.NewMat(), next: gocv.NewMat(), wake: make(chan struct{}, 1)}
	gctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.run(gctx, s)
	}()
	defer func() {
		stop()
		<-done
		g.latest.Close()
		g.next.Close()
	}()
	frame := gocv.NewMat()
	defer frame.Close()
	var taken uint64
	for {
		select {
		case <-ctx.Done():
			return device.Scan{}, ctx.Err()
		case <-done:
			g.mu.Lock()
			err := g.err
			g.mu.Unlock()
			if err == nil {
				err = ctx.Err()
			}
			return device.Scan{}, err
		case <-g.wake:
		}
		g.mu.Lock()
		fresh := g.seq > taken
		if fresh {
			g.latest.CopyTo(&frame)
			taken = g.seq
		}
		g.mu.Unlock()
		if !fresh {
			continue
		}
		if sc, found, err := s.decodeFrame(frame); err != nil || found {
			return sc, err
		}
	}
}

// grabber holds the newest frame of a live capture.
type grabber struct {
	mu     sync.Mutex
	latest gocv.Mat // newest frame, guarded by mu
	next   gocv.Mat // being read into, owned by run
	seq    uint64   // frames read
	err    error    // why run stopped
	wake   chan struct{}
}

func (g *grabber) run(ctx context.Context, s *Scanner) {
	for ctx.Err() == nil {
		ok, err := s.read(&g.next)
		if err != nil {
			g.mu.Lock()
			g.err = err
			g.mu.Unlock()
			return
		}
		if !ok {
			continue
		}
		g.mu.Lock()
		g.latest, g.next = g.next, g.latest
		g.seq++
		g.mu.Unlock()
		select {
		case g.wake <- struct{}{}:
		default:
		}
	}
}

// freshen re-opens a live capture that sat idle, so stale frames are
// dropped, and opens one that was lost.
func (s *Scanner) freshen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted {
		return device.ErrHalted
	}
	idle := !s.file && s.cfg.Reopen >= 0 && s.cfg.Now().Sub(s.lastScan) >= s.cfg.Reopen
	if s.capture != nil && !idle {
		return nil
	}
	if s.capture != nil {
		s.capture.Close()
		s.capture = nil
	}
	c, err := s.open()
	if err != nil {
		return err
	}
	s.capture = c
	return nil
}

// read reads one frame under the capture lock, so Halt never closes the
// capture under a running cgo call. ok is false when a live stream dropped
// and was re-opened (the caller reads again).
func (s *Scanner) read(frame *gocv.Mat) (ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted {
		return false, device.ErrHalted
	}
	if s.capture.Read(frame) && !frame.Empty() {
		return true, nil
	}
	if s.file {
		return false, fmt.Errorf("camera: %s: %w", redacted(s.cfg.Source), ErrEndOfStream)
	}
	// A live stream dropped: re-open once now; if that fails the error goes
	// to the caller and the next Scan tries again.
	s.capture.Close()
	s.capture = nil
	c, err := s.open()
	if err != nil {
		return false, fmt.Errorf("camera: read %s: %w", redacted(s.cfg.Source), err)
	}
	s.capture = c
	return false, nil
}

// decodeFrame decodes one frame under the decoder lock and applies the
// de-duplication window.
func (s *Scanner) decodeFrame(frame gocv.Mat) (device.Scan, bool, error) {
	s.decMu.Lock()
	defer s.decMu.Unlock()
	if s.dec == nil {
		return device.Scan{}, false, device.ErrHalted
	}
	start := time.Now()
	syms, err := s.dec.Decode(frame)
	if s.cfg.OnDecode != nil {
		s.cfg.OnDecode(time.Since(start))
	}
	if err != nil {
		return device.Scan{}, false, fmt.Errorf("camera: decode: %w", err)
	}
	now := s.cfg.Now()
	s.prune(now)
	// Several codes in view (a merchant's sticker, a second phone): the
	// most wanted new one is reported — a payment code before anything
	// else. Codes in view refresh their window; a new code that was not
	// reported stays new, for the next Scan.
	var found *decode.Symbol
	for i := range syms {
		if last, dup := s.seen[syms[i].Text]; dup && now.Sub(last) < s.cfg.Window {
			s.seen[syms[i].Text] = now
			continue
		}
		if found == nil || preference(syms[i].Text) < preference(found.Text) {
			found = &syms[i]
		}
	}
	if found == nil {
		return device.Scan{}, false, nil
	}
	s.seen[found.Text] = now
	return device.Scan{Text: found.Text, Format: found.Format, Source: "camera", At: now}, true, nil
}

// preference orders texts seen in one frame, lowest first: a campus
// payment code, then other wallets' payment codes, then anything else.
func preference(text string) int {
	switch protocol.Classify(text) {
	case protocol.KindPayCode:
		return 0
	case protocol.KindWeChat, protocol.KindAlipay, protocol.KindUnionPay:
		return 1
	case protocol.KindIdentity:
		return 2
	}
	return 3
}

// prune forgets texts not seen within the window.
func (s *Scanner) prune(now time.Time) {
	for t, at := range s.seen {
		if now.Sub(at) >= s.cfg.Window {
			delete(s.seen, t)
		}
	}
}

// Halt stops scanning and releases the capture and the decoder. A Scan in
// progress returns ErrHalted after its current frame. Halt is idempotent.
func (s *Scanner) Halt() error {
	s.mu.Lock()
	if s.capture != nil {
		s.capture.Close()
		s.capture = nil
	}
	s.halted = true
	s.mu.Unlock()
	s.decMu.Lock()
	if s.dec != nil {
		s.dec.Close()
		s.dec = nil
	}
	s.decMu.Unlock()
	return nil
}
