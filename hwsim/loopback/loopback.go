// Package loopback serves the simulators' HTTP APIs (bank, WeChat Pay,
// device control) on loopback addresses only: those APIs are
// unauthenticated, and hwsim never sends or accepts traffic beyond the
// machine it runs on.
package loopback

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Listen listens on addr after checking that its host is a loopback
// address; "" picks a free 127.0.0.1 port, and an empty host or
// "localhost" means 127.0.0.1.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %w", addr, err)
	}
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen %q: simulators serve on loopback only", addr)
	}
	return net.Listen("tcp", net.JoinHostPort(host, port))
}

// ErrServing is returned by Serve when the Server already serves.
var ErrServing = errors.New("loopback: already serving")

// Server serves one handler at a time; the zero value is ready.
type Server struct {
	mu  sync.Mutex
	srv *http.Server
}

// Serve serves h on ln until Close.
func (s *Server) Serve(ln net.Listener, h http.Handler) error {
	s.mu.Lock()
	if s.srv != nil {
		s.mu.Unlock()
		return ErrServing
	}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	srv := s.srv
	s.mu.Unlock()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Start listens on addr (see Listen), serves h in the background and
// returns the base URL.
func (s *Server) Start(addr string, h http.Handler) (string, error) {
	ln, err := Listen(addr)
	if err != nil {
		return "", err
	}
	go s.Serve(ln, h)
	return "http://" + ln.Addr().String(), nil
}

// Close stops serving and drops open connections.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}
