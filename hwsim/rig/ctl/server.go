// Package ctl is hwsim's control interface: a JSON-over-HTTP server on
// loopback that drives the simulated hardware of every terminal box (package
// rig) by terminal id — tap a card, key on the keypad, show a code to the
// scanner or camera, open the shower tap, cut the network — and the Client
// that scenarios and the `hwsim ctl` command use to call it.
//
// The API (all bodies JSON unless noted; errors are {"error","code"} with a
// non-2xx status and code one of UNKNOWN_TERMINAL, NO_DEVICE, BAD_REQUEST,
// DEVICE_ERROR):
//
//	GET  /v1/status                      → {"terminals":[TerminalStatus…]}
//	GET  /v1/terminals/{t}               → TerminalStatus
//	POST /v1/terminals/{t}/tap           {"uid":"04A1B2C3"}
//	POST /v1/terminals/{t}/key           {"keys":"12.50\n"}
//	POST /v1/terminals/{t}/show          {"text":"CW1:…","via":"scanner"|"camera"|""}
//	POST /v1/terminals/{t}/screenshot    PNG or JPEG body: the camera films it
//	POST /v1/terminals/{t}/blank         camera: phone out of view
//	POST /v1/terminals/{t}/flow          {"lpm":6}
//	GET  /v1/terminals/{t}/valve         → rig.ValveState
//	POST /v1/terminals/{t}/net           {"action":"cut"|"restore","mode":"reset"|"blackhole"}
//
// The server is unauthenticated and therefore listens on loopback only.
package ctl

import (
	"bytes"
	"campuspay/hwsim/loopback"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // screenshots may be JPEG
	_ "image/png"
	"io"
	"net/http"
	"sort"
	"sync"

	"campuspay/hwsim/netcut"
	"campuspay/hwsim/rig"
)

// Error codes in error responses.
const (
	CodeUnknownTerminal = "UNKNOWN_TERMINAL"
	CodeNoDevice        = "NO_DEVICE"
	CodeBadRequest      = "BAD_REQUEST"
	CodeDeviceError     = "DEVICE_ERROR"
)

// maxBody bounds request bodies; a screenshot is the largest.
const maxBody = 16 << 20

// ErrUnknownTerminal is returned for a terminal id no rig is registered for.
var ErrUnknownTerminal = errors.New("ctl: unknown terminal")

// Net cut modes on the wire.
const (
	ModeReset     = "reset"
	ModeBlackhole = "blackhole"
)

// TerminalStatus is one box as the control server sees it.
type TerminalStatus struct {
	Terminal string          `json:"terminal"`
	Devices  rig.Devices     `json:"devices"`
	Valve    *rig.ValveState `json:"valve,omitempty"`
	HasNet   bool            `json:"has_net"`
	NetCut   bool            `json:"net_cut"`
}

// Server drives registered rigs. Its methods are safe for concurrent use.
type Server struct {
	mu   sync.Mutex
	rigs map[string]*rig.Rig
	nets map[string]*netcut.Proxy
	srv  *http.Server
	mux  *http.ServeMux
}

// NewServer returns a server with no rigs.
func NewServer() *Server {
	s := &Server{rigs: map[string]*rig.Rig{}, nets: map[string]*netcut.Proxy{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/terminals/{t}", s.terminal)
	mux.HandleFunc("POST /v1/terminals/{t}/tap", s.tap)
	mux.HandleFunc("POST /v1/terminals/{t}/key", s.key)
	mux.HandleFunc("POST /v1/terminals/{t}/show", s.show)
	mux.HandleFunc("POST /v1/terminals/{t}/screenshot", s.screenshot)
	mux.HandleFunc("POST /v1/terminals/{t}/blank", s.blank)
	mux.HandleFunc("POST /v1/terminals/{t}/flow", s.flow)
	mux.HandleFunc("GET /v1/terminals/{t}/valve", s.valve)
	mux.HandleFunc("POST /v1/terminals/{t}/net", s.net)
	s.mux = mux
	return s
}

// Add registers a rig under its terminal id, and its network proxy if it
// has one. A rig already registered under that id is replaced.
func (s *Server) Add(r *rig.Rig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rigs[r.Terminal] = r
	if r.Net != nil {
		s.nets[r.Terminal] = r.Net
	}
}

// AddNet registers the netcut proxy a terminal reaches its broker through,
// for boxes whose proxy the caller made (or that have no rig at all).
func (s *Server) AddNet(terminal string, p *netcut.Proxy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nets[terminal] = p
}

// Remove forgets a terminal; it does not close its rig or proxy.
func (s *Server) Remove(terminal string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rigs, terminal)
	delete(s.nets, terminal)
}

// Handler serves the control API.
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on addr (loopback only; "" picks a free 127.0.0.1 port),
// serves in the background and returns the base URL.
func (s *Server) Start(addr string) (string, error) {
	// The control API is unauthenticated: loopback only.
	ln, err := loopback.Listen(addr)
	if err != nil {
		return "", fmt.Errorf("ctl: %w", err)
	}
	srv := &http.Server{Handler: s.mux}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// Close stops serving. Registered rigs are left to their owner.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(context.Background())
}

type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownTerminal):
		writeJSON(w, http.StatusNotFound, apiError{err.Error(), CodeUnknownTerminal})
	case errors.Is(err, rig.ErrNoDevice):
		writeJSON(w, http.StatusConflict, apiError{err.Error(), CodeNoDevice})
	case errors.Is(err, errBadRequest):
		writeJSON(w, http.StatusBadRequest, apiError{err.Error(), CodeBadRequest})
	default:
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error(), CodeDeviceError})
	}
}

var errBadRequest = errors.New("bad request")

func ok(w http.ResponseWriter) { writeJSON(w, http.StatusOK, map[string]bool{"ok": true}) }

// decode reads exactly one JSON object with known fields only.
func decode(r *http.Request, v any) error {
	d := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("ctl: %w: %v", errBadRequest, err)
	}
	if d.More() {
		return fmt.Errorf("ctl: %w: trailing data", errBadRequest)
	}
	return nil
}

func (s *Server) rig(r *http.Request) (*rig.Rig, error) {
	t := r.PathValue("t")
	s.mu.Lock()
	defer s.mu.Unlock()
	if rg, ok := s.rigs[t]; ok {
		return rg, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownTerminal, t)
}

func (s *Server) statusOf(t string) (TerminalStatus, bool) {
	s.mu.Lock()
	rg, hasRig := s.rigs[t]
	p, hasNet := s.nets[t]
	s.mu.Unlock()
	if !hasRig && !hasNet {
		return TerminalStatus{}, false
	}
	st := TerminalStatus{Terminal: t, Devices: rig.Devices{Terminal: t}, HasNet: hasNet}
	if hasRig {
		st.Devices = rg.Devices()
		if v, err := rg.ValveState(); err == nil {
			st.Valve = &v
		}
	}
	if hasNet {
		st.NetCut = p.IsCut()
		if st.Devices.Broker == "" {
			st.Devices.Broker = p.Addr()
		}
	}
	return st, true
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	seen := map[string]bool{}
	for t := range s.rigs {
		seen[t] = true
	}
	for t := range s.nets {
		seen[t] = true
	}
	s.mu.Unlock()
	ids := make([]string, 0, len(seen))
	for t := range seen {
		ids = append(ids, t)
	}
	sort.Strings(ids)
	out := struct {
		Terminals []TerminalStatus `json:"terminals"`
	}{Terminals: []TerminalStatus{}}
	for _, t := range ids {
		if st, ok := s.statusOf(t); ok {
			out.Terminals = append(out.Terminals, st)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) terminal(w http.ResponseWriter, r *http.Request) {
	t := r.PathValue("t")
	st, ok := s.statusOf(t)
	if !ok {
		fail(w, fmt.Errorf("%w %q", ErrUnknownTerminal, t))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// TapRequest is the body of /tap.
type TapRequest struct {
	UID string `json:"uid"`
}

func (s *Server) tap(w http.ResponseWriter, r *http.Request) {
	var req TapRequest
	rg, err := s.rig(r)
	if err == nil {
		err = decode(r, &req)
	}
	if err == nil && req.UID == "" {
		err = fmt.Errorf("ctl: %w: uid is required", errBadRequest)
	}
	if err == nil {
		err = rg.Tap(req.UID)
	}
	if err != nil {
		fail(w, err)
		return
	}
	ok(w)
}

// KeyRequest is the body of /key.
type KeyRequest struct {
	Keys string `json:"keys"`
}

func (s *Server) key(w http.ResponseWriter, r *http.Request) {
	var req KeyRequest
	rg, err := s.rig(r)
	if err == nil {
		err = decode(r, &req)
	}
	if err == nil {
		err = rg.Key(req.Keys)
	}
	if err != nil {
		fail(w, err)
		return
	}
	ok(w)
}

// ShowRequest is the body of /show.
type ShowRequest struct {
	Text string `json:"text"`
	Via  string `json:"via,omitempty"` // rig.ViaScanner, rig.ViaCamera, "" = what the box has
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	var req ShowRequest
	rg, err := s.rig(r)
	if err == nil {
		err = decode(r, &req)
	}
	if err == nil && req.Text == "" {
		err = fmt.Errorf("ctl: %w: text is required", errBadRequest)
	}
	if err == nil && req.Via != "" && req.Via != rig.ViaScanner && req.Via != rig.ViaCamera {
		err = fmt.Errorf("ctl: %w: via must be %q or %q", errBadRequest, rig.ViaScanner, rig.ViaCamera)
	}
	if err == nil {
		err = rg.ShowVia(req.Via, req.Text)
	}
	if err != nil {
		fail(w, err)
		return
	}
	ok(w)
}

func (s *Server) screenshot(w http.ResponseWriter, r *http.Request) {
	rg, err := s.rig(r)
	if err != nil {
		fail(w, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail(w, fmt.Errorf("ctl: %w: %v", errBadRequest, err))
		return
	}
	img, _, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		fail(w, fmt.Errorf("ctl: %w: screenshot: %v", errBadRequest, err))
		return
	}
	if err := rg.ShowImage(img); err != nil {
		fail(w, err)
		return
	}
	ok(w)
}

func (s *Server) blank(w http.ResponseWriter, r *http.Request) {
	rg, err := s.rig(r)
	if err == nil {
		err = rg.Blank()
	}
	if err != nil {
		fail(w, err)
		return
	}
	ok(w)
}

// FlowRequest is the body of /flow.
type FlowRequest struct {
	LPM float64 `json:"lpm"`
}

func (s *Server) flow(w http.ResponseWriter, r *http.Request) {
	var req FlowRequest
	rg, err := s.rig(r)
	if err == nil {
		err = decode(r, &req)
	}
	if err == nil && (req.LPM < 0 || req.LPM > 100) {
		err = fmt.Errorf("ctl: %w: lpm must be within 0..100", errBadRequest)
	}
	if err == nil {
		err = rg.SetFlow(req.LPM)
	}
	if err != nil {
		fail(w, err)
		return
	}
	ok(w)
}

func (s *Server) valve(w http.ResponseWriter, r *http.Request) {
	rg, err := s.rig(r)
	if err != nil {
		fail(w, err)
		return
	}
	v, err := rg.ValveState()
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// NetRequest is the body of /net.
type NetRequest struct {
	Action string `json:"action"`         // "cut" or "restore"
	Mode   string `json:"mode,omitempty"` // ModeReset (default) or ModeBlackhole
}

func (s *Server) net(w http.ResponseWriter, r *http.Request) {
	t := r.PathValue("t")
	var req NetRequest
	if err := decode(r, &req); err != nil {
		fail(w, err)
		return
	}
	s.mu.Lock()
	p, hasNet := s.nets[t]
	_, hasRig := s.rigs[t]
	s.mu.Unlock()
	if !hasNet {
		if hasRig {
			fail(w, fmt.Errorf("%w: terminal %s has no network proxy", rig.ErrNoDevice, t))
		} else {
			fail(w, fmt.Errorf("%w %q", ErrUnknownTerminal, t))
		}
		return
	}
	switch req.Action {
	case "cut":
		switch req.Mode {
		case "", ModeReset:
			p.Cut(netcut.Reset)
		case ModeBlackhole:
			p.Cut(netcut.Blackhole)
		default:
			fail(w, fmt.Errorf("ctl: %w: mode must be %q or %q", errBadRequest, ModeReset, ModeBlackhole))
			return
		}
	case "restore":
		p.Restore()
	default:
		fail(w, fmt.Errorf("ctl: %w: action must be \"cut\" or \"restore\"", errBadRequest))
		return
	}
	ok(w)
}
