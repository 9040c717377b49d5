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
// shown long ago) are never decoded.
//
// De-duplication: a text is not reported again while it keeps being seen:
// it is suppressed until Config.Window has passed since it was last seen
// (reported or not). A phone held still in front of the camera is reported
// once.
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
}

// Scanner reads codes from a camera. Scan calls are serialised; Halt may be
// called from any goroutine.
type Scanner struct {
	cfg  Config
	file bool // Source is a file: end of frames is the end, not an error to retry

	scanMu sync.Mutex // one Scan at a time

	mu       sync.Mutex // guards everything below
	halted   bool
	capture  *gocv.VideoCapture
	dec      *decode.Decoder
	seen     map[string]time.Time // text → last seen
	lastScan time.Time            // when the previous Scan returned
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
	frame := gocv.NewMat()
	defer frame.Close()
	for {
		if err := ctx.Err(); err != nil {
			return device.Scan{}, err
		}
		sc, ok, err := s.step(&frame)
		if err != nil || ok {
			return sc, err
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

// step reads and decodes one frame under the lock, so Halt never closes
// the capture or decoder under a running cgo call.
func (s *Scanner) step(frame *gocv.Mat) (device.Scan, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted {
		return device.Scan{}, false, device.ErrHalted
	}
	if !s.capture.Read(frame) || frame.Empty() {
		if s.file {
			return device.Scan{}, false, fmt.Errorf("camera: %s: %w", redacted(s.cfg.Source), ErrEndOfStream)
		}
		// A live stream dropped: re-open once now; if that fails the
		// error goes to the caller and the next Scan tries again.
		s.capture.Close()
		s.capture = nil
		c, err := s.open()
		if err != nil {
			return device.Scan{}, false, fmt.Errorf("camera: read %s: %w", redacted(s.cfg.Source), err)
		}
		s.capture = c
		return device.Scan{}, false, nil
	}
	syms, err := s.dec.Decode(*frame)
	if err != nil {
		return device.Scan{}, false, fmt.Errorf("camera: decode: %w", err)
	}
	now := s.cfg.Now()
	s.prune(now)
	var found *decode.Symbol
	for i := range syms {
		last, dup := s.seen[syms[i].Text]
		s.seen[syms[i].Text] = now
		if found == nil && (!dup || now.Sub(last) >= s.cfg.Window) {
			found = &syms[i]
		}
	}
	if found == nil {
		return device.Scan{}, false, nil
	}
	return device.Scan{Text: found.Text, Format: found.Format, Source: "camera", At: now}, true, nil
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
	defer s.mu.Unlock()
	if s.capture != nil {
		s.capture.Close()
		s.capture = nil
	}
	if s.dec != nil {
		s.dec.Close()
		s.dec = nil
	}
	s.halted = true
	return nil
}
