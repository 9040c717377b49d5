package netcut

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echo starts a line echo server.
func echo(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(l))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, msg string) (string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	l, err := r.ReadString('\n')
	return l, err
}

func TestResetAndRestore(t *testing.T) {
	p, err := Listen("127.0.0.1:0", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if l, err := roundTrip(t, c, r, "hello"); err != nil || l != "hello\n" {
		t.Fatalf("%q %v", l, err)
	}
	p.Cut(Reset)
	if !p.IsCut() {
		t.Fatal("IsCut")
	}
	if _, err := roundTrip(t, c, r, "lost"); err == nil {
		t.Fatal("connection survived a reset cut")
	}
	// New connections are refused (closed at once) while cut.
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		if _, err := roundTrip(t, c2, bufio.NewReader(c2), "x"); err == nil {
			t.Fatal("new connection worked while cut")
		}
		c2.Close()
	}
	p.Restore()
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if l, err := roundTrip(t, c3, bufio.NewReader(c3), "back"); err != nil || l != "back\n" {
		t.Fatalf("after restore: %q %v", l, err)
	}
}

func TestBlackholeHoldsThenDelivers(t *testing.T) {
	p, err := Listen("127.0.0.1:0", echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	p.Cut(Blackhole)
	if _, err := c.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	// Nothing arrives while black-holed: a short read deadline expires.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("data crossed a black hole")
	}
	p.Restore()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := r.ReadString('\n')
	if err != nil || l != "held\n" {
		t.Fatalf("after restore: %q %v", l, err)
	}
}
