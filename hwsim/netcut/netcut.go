// Package netcut is a TCP proxy that can cut the network between a
// terminal and its broker on command, the way a campus switch or a cable
// does: either by resetting every connection (the link notices at once) or
// by black-holing traffic while sockets stay open (only keepalives notice).
// hwsim puts one in front of the broker for each terminal it runs.
package netcut

import (
	"fmt"
	"net"
	"sync"
)

// Mode is how the network is cut.
type Mode int

const (
	Reset     Mode = 1 // close every connection and refuse new ones
	Blackhole Mode = 2 // keep sockets open but forward nothing, accept nothing
)

// Proxy forwards TCP connections from its listener to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   Mode // 0 = connected
	conns map[*pair]struct{}
	wake  *sync.Cond
	done  bool
	wg    sync.WaitGroup
}

type pair struct{ a, b net.Conn }

// Listen starts a proxy on addr ("127.0.0.1:0" for a free port) to target.
func Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("netcut: listen %s: %w", addr, err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[*pair]struct{}{}}
	p.wake = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut cuts the network in the given mode.
func (p *Proxy) Cut(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = m
	p.wake.Broadcast()
	if m == Reset {
		for c := range p.conns {
			c.a.Close()
			c.b.Close()
		}
	}
}

// Restore reconnects the network. Black-holed connections resume; reset
// ones are gone and the client must reconnect.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = 0
	p.wake.Broadcast()
	p.mu.Unlock()
}

// IsCut reports whether the network is cut.
func (p *Proxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut != 0
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.done = true
	for c := range p.conns {
		c.a.Close()
		c.b.Close()
	}
	p.wake.Broadcast()
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.connect(c)
	}
}

// connect dials the target for one accepted client. While black-holed it
// waits (a SYN into a dead link is only answered later); while reset-cut it
// refuses.
func (p *Proxy) connect(c net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	for p.cut == Blackhole && !p.done {
		p.wake.Wait()
	}
	refuse := p.cut == Reset || p.done
	p.mu.Unlock()
	if refuse {
		c.Close()
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	pr := &pair{a: c, b: up}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[pr] = struct{}{}
	p.mu.Unlock()
	p.wg.Add(2)
	go p.pipe(pr, c, up)
	go p.pipe(pr, up, c)
}

// pipe copies src to dst. While black-holed it holds data back (the
// reader stops, so TCP backpressure builds like on a dead link) and delivers
// it on Restore, as TCP retransmission would.
func (p *Proxy) pipe(pr *pair, dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, pr)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.cut == Blackhole && !p.done {
				p.wake.Wait()
			}
			done := p.done
			p.mu.Unlock()
			if done {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
