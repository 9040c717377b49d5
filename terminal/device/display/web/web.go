// Package web is the customer display as a local web page for a kiosk
// browser: one self-contained HTML page (inline CSS and JS, nothing
// fetched from outside), a server-sent-events stream that pushes each
// Screen as JSON, and the static merchant QR as a PNG drawn server-side.
//
// Routes: "/" the page, "/events" the SSE stream, "/qr.png?v=N" the
// current QR (N changes with the payload, so the browser never shows a
// stale code from its cache).
//
// Every stream sends the current screen at once, then only the latest
// screen when it changes: a slow browser skips intermediate screens
// instead of queueing them. Each stream is one goroutine that ends when
// the client goes away, a write stalls past WriteTimeout, or Close.
package web

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strconv"
	"sync"
	"time"

	"campuspay/terminal/device"
	"campuspay/terminal/device/display"
)

//go:embed page.html
var page []byte

// Options configure the web display.
type Options struct {
	QRScale      int           // PNG pixels per QR module; default 8
	KeepAlive    time.Duration // SSE comment interval that detects dead clients; default 15 s
	WriteTimeout time.Duration // a stream write stalled this long drops the client; default 10 s
}

// Server is the web display. It implements device.Display and http.Handler.
type Server struct {
	opts Options
	mux  *http.ServeMux

	showMu sync.Mutex // serialises Show/Halt so QR rendering happens once per payload

	mu      sync.Mutex
	seq     int64         // screen number, increases on every Show
	cur     []byte        // current screen as JSON
	changed chan struct{} // closed and replaced on every Show
	qr      string        // payload of the current QR PNG
	qrPNG   []byte
	qrVer   int64 // changes when the QR payload changes
	halted  bool
	closed  bool
	done    chan struct{}
	clients int
}

var (
	_ device.Display = (*Server)(nil)
	_ http.Handler   = (*Server)(nil)
)

// New returns a web display showing a blank screen.
func New(opts Options) *Server {
	if opts.QRScale <= 0 {
		opts.QRScale = 8
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 15 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	s := &Server{opts: opts, changed: make(chan struct{}), done: make(chan struct{})}
	s.cur, _ = json.Marshal(s.view(device.Screen{}, 0))
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /{$}", s.servePage)
	s.mux.HandleFunc("GET /events", s.serveEvents)
	s.mux.HandleFunc("GET /qr.png", s.serveQR)
	return s
}

// ServeHTTP serves the page, the stream and the QR image.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// view is the JSON the page renders. Money is formatted here, in integer
// cents, so the page never does arithmetic on amounts.
type view struct {
	Seq       int64             `json:"seq"`
	Kind      device.ScreenKind `json:"kind"`
	Title     string            `json:"title"`
	TitleEN   string            `json:"titleEN"`
	Message   string            `json:"message"`
	MessageEN string            `json:"messageEN"`
	Amount    string            `json:"amount"` // "¥12.50", "" when not shown
	Result    string            `json:"result"` // "ok", "fail", "" when not a result
	QR        string            `json:"qr"`     // image URL, "" for none
	Input     string            `json:"input"`
	Litres    string            `json:"litres"` // "12.3", "" unless shower
	Hold      string            `json:"hold"`
	Lines     []string          `json:"lines"`
	Online    bool              `json:"online"`
}

func (s *Server) view(sc device.Screen, qrVer int64) view {
	v := view{
		Seq: s.seq, Kind: sc.Kind, Title: sc.Title, TitleEN: sc.TitleEN,
		Message: sc.Message, MessageEN: sc.MessageEN, Input: sc.Input,
		Lines: sc.Lines, Online: sc.Online,
	}
	if v.Lines == nil {
		v.Lines = []string{}
	}
	if sc.Amount != 0 || sc.Kind == device.ScreenAmount {
		v.Amount = display.Yuan(sc.Amount)
	}
	if sc.Kind == device.ScreenResult {
		v.Result = "fail"
		if sc.OK {
			v.Result = "ok"
		}
	}
	if sc.Kind == device.ScreenShower {
		v.Litres = strconv.FormatFloat(sc.Litres, 'f', 1, 64)
		v.Hold = display.Yuan(sc.Hold)
	}
	if sc.QR != "" && qrVer > 0 {
		v.QR = "/qr.png?v=" + strconv.FormatInt(qrVer, 10)
	}
	return v
}

// Show pushes sc to every connected page. After Halt it returns
// device.ErrHalted. If the QR cannot be encoded the screen is shown
// without it and the error returned.
func (s *Server) Show(sc device.Screen) error {
	s.showMu.Lock()
	defer s.showMu.Unlock()
	s.mu.Lock()
	halted := s.halted
	s.mu.Unlock()
	if halted {
		return fmt.Errorf("web display: show: %w", device.ErrHalted)
	}
	return s.show(sc)
}

func (s *Server) show(sc device.Screen) error {
	var qrErr error
	var pngBytes []byte
	s.mu.Lock()
	needQR := sc.QR != "" && sc.QR != s.qr
	s.mu.Unlock()
	if needQR {
		pngBytes, qrErr = qrPNG(sc.QR, s.opts.QRScale)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if pngBytes != nil {
		s.qr, s.qrPNG = sc.QR, pngBytes
		s.qrVer++
	}
	ver := int64(0)
	if sc.QR != "" && sc.QR == s.qr {
		ver = s.qrVer
	}
	s.seq++
	js, err := json.Marshal(s.view(sc, ver))
	if err != nil {
		return fmt.Errorf("web display: encode screen: %w", err)
	}
	s.cur = js
	close(s.changed)
	s.changed = make(chan struct{})
	return qrErr
}

// Halt blanks every page and refuses later Shows. It is idempotent.
func (s *Server) Halt() error {
	s.showMu.Lock()
	defer s.showMu.Unlock()
	s.mu.Lock()
	if s.halted {
		s.mu.Unlock()
		return nil
	}
	s.halted = true
	s.mu.Unlock()
	return s.show(device.Screen{Kind: device.ScreenBlank})
}

// Close ends every event stream and refuses new ones, for shutdown before
// the HTTP server's own Shutdown (which waits for handlers to return).
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

// Clients reports how many event streams are open.
func (s *Server) Clients() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Nothing may load from outside the box: a kiosk must work offline.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; connect-src 'self'")
	w.Write(page)
}

func (s *Server) serveQR(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b := s.qrPNG
	s.mu.Unlock()
	if b == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "display closed", http.StatusServiceUnavailable)
		return
	}
	s.clients++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.clients--
		s.mu.Unlock()
	}()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	send := func(chunks ...[]byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout)) // unsupported writers just block
		for _, c := range chunks {
			if _, err := w.Write(c); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: 1000\n\n")) {
		return
	}
	keep := time.NewTicker(s.opts.KeepAlive)
	defer keep.Stop()
	var sent int64 = -1
	for {
		s.mu.Lock()
		seq, cur, changed := s.seq, s.cur, s.changed
		s.mu.Unlock()
		if seq != sent {
			if !send([]byte("id: "+strconv.FormatInt(seq, 10)+"\ndata: "), cur, []byte("\n\n")) {
				return
			}
			sent = seq
		}
		select {
		case <-changed:
		case <-keep.C:
			if !send([]byte(": keep-alive\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// qrPNG draws payload as a black-on-white PNG, scale pixels per module,
// quiet zone included.
func qrPNG(payload string, scale int) ([]byte, error) {
	m, err := display.QR(payload)
	if err != nil {
		return nil, fmt.Errorf("web display: %w", err)
	}
	w, h := m.GetWidth(), m.GetHeight()
	img := image.NewPaletted(image.Rect(0, 0, w*scale, h*scale), color.Palette{color.White, color.Black})
	for y := range h * scale {
		row := img.Pix[y*img.Stride:]
		for x := range w * scale {
			if m.Get(x/scale, y/scale) {
				row[x] = 1
			}
		}
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("web display: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}
