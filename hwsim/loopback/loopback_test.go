package loopback

import (
	"io"
	"net/http"
	"testing"
)

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", ":0", "example.invalid:0", "nonsense"} {
		if ln, err := Listen(addr); err == nil {
			ln.Close()
			if addr != ":0" { // an empty host means 127.0.0.1
				t.Errorf("Listen(%q) accepted", addr)
			}
		}
	}
	for _, addr := range []string{"", "127.0.0.1:0", "localhost:0", "[::1]:0"} {
		ln, err := Listen(addr)
		if err != nil {
			if addr == "[::1]:0" {
				continue // no IPv6 loopback on this machine
			}
			t.Fatalf("Listen(%q): %v", addr, err)
		}
		ln.Close()
	}
}

func TestServerStartServeClose(t *testing.T) {
	var s Server
	url, err := s.Start("", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("got %q", b)
	}
	ln, _ := Listen("")
	defer ln.Close()
	if err := s.Serve(ln, http.NotFoundHandler()); err != ErrServing {
		t.Fatalf("second Serve: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url); err == nil {
		t.Fatal("still serving after Close")
	}
}
