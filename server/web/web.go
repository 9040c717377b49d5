// Package web serves the students' mobile web wallet: one page of plain
// HTML, CSS and JavaScript plus a WebAssembly build of package protocol
// (server/web/wasm), so codes are laid out in the browser by the same Go
// code the terminals verify. Everything is served by the authorizer; the
// page loads nothing from outside.
//
// The WebAssembly module and Go's wasm_exec.js are generated into
// assets/gen by scripts/build-wasm.sh (run by `make build`) and embedded in
// the binary; Config.GenDir serves them from a directory instead.
package web

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed all:assets
var assets embed.FS

// Config configures the handler.
type Config struct {
	// GenDir, if set, serves gen/ (wallet.wasm, wasm_exec.js) from this
	// directory, before the copies embedded by `make build` (tests build a
	// fresh module; a binary built without them needs it).
	GenDir string
}

// Handler serves the web wallet under "/".
type Handler struct {
	fs      fs.FS
	genDir  string
	started time.Time

	mu    sync.Mutex
	gzip  map[string][]byte // path → gzipped body, made on first request
	icons map[string][]byte // path → PNG, drawn on first request
}

// New returns the web wallet handler.
func New(c Config) *Handler {
	sub, _ := fs.Sub(assets, "assets")
	return &Handler{fs: sub, genDir: c.GenDir, started: time.Now(), gzip: map[string][]byte{}, icons: map[string][]byte{}}
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".wasm": "application/wasm",
	".json": "application/manifest+json",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// HasWasm reports whether the WebAssembly module can be served.
func (h *Handler) HasWasm() bool {
	_, err := h.read("gen/wallet.wasm")
	return err == nil
}

func (h *Handler) read(name string) ([]byte, error) {
	if ic, ok := iconFor(name); ok {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.icons[name] == nil {
			h.icons[name] = drawIcon(ic)
		}
		return h.icons[name], nil
	}
	if h.genDir != "" && strings.HasPrefix(name, "gen/") {
		// An explicit directory wins over the embedded copy, which may be
		// from an older `make build`.
		if b, err := os.ReadFile(path.Join(h.genDir, strings.TrimPrefix(name, "gen/"))); err == nil {
			return b, nil
		}
	}
	return fs.ReadFile(h.fs, name)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	body, err := h.read(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		hd.Set("Content-Type", ct)
	}
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	// Only this origin: no external resources, ever. WebAssembly needs
	// 'wasm-unsafe-eval'; the camera preview uses a MediaStream (blob:).
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	if name == "index.html" || name == "sw.js" {
		hd.Set("Cache-Control", "no-cache")
	} else {
		hd.Set("Cache-Control", "public, max-age=300")
	}
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") && len(body) > 1024 {
		hd.Set("Content-Encoding", "gzip")
		hd.Add("Vary", "Accept-Encoding")
		body = h.gzipped(name, body)
	}
	http.ServeContent(w, r, name, h.started, bytes.NewReader(body))
}

func (h *Handler) gzipped(name string, body []byte) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if z, ok := h.gzip[name]; ok {
		return z
	}
	var buf bytes.Buffer
	// The default level: on the 5 MB WebAssembly module BestCompression
	// costs several times the CPU for under 1 % smaller output.
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(body)
	zw.Close()
	h.gzip[name] = buf.Bytes()
	return h.gzip[name]
}

// WithAPI returns a handler that serves the app's HTTP API under /api/ and
// the web wallet everywhere else: the page calls the API on its own origin.
func (h *Handler) WithAPI(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/", h)
	return mux
}
