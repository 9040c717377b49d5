package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"campuspay/server/ledger/ledgertest"
	"campuspay/server/ledger/postgres/pgtest"
)

// cutProxy forwards TCP connections to a PostgreSQL server; once armed,
// it drops the next answer the server sends and closes that connection,
// as a network failure right after the server did the work would.
type cutProxy struct {
	l      net.Listener
	target string
	armed  atomic.Bool
	cut    chan struct{} // closed when a connection was cut
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{l: l, target: target, cut: make(chan struct{})}
	p.wg.Go(p.serve)
	t.Cleanup(func() { l.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Go(func() { io.Copy(s, c); s.Close() })
		p.wg.Go(func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && p.armed.CompareAndSwap(true, false) {
					s.Close()
					close(p.cut)
					return
				}
				if n > 0 {
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

// TestOutcomeUnknown: the connection is lost after the server committed a
// batch but before its answer arrived. The caller is told the outcome is
// unknown, not that the payment failed; retrying with the same key finds
// it applied, once.
func TestOutcomeUnknown(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	host, port := dsnPart(dsn, "host"), dsnPart(dsn, "port")
	p := newCutProxy(t, net.JoinHostPort(host, port))
	_, pport, _ := net.SplitHostPort(p.l.Addr().String())
	s := open(t, strings.Replace(dsn, "port="+port, "port="+pport, 1), Options{})
	ctx := context.Background()
	mustPost(t, s, pay("fund", "bank:CCB", "wallet:1", 1000)) // statements prepared: one round trip per batch from here

	p.armed.Store(true)
	tr := pay("lost", "wallet:1", "merchant:M", 300)
	_, err := s.Post(ctx, tr)
	select {
	case <-p.cut:
	default:
		t.Fatalf("the proxy cut nothing; post: %v", err)
	}
	if !errors.Is(err, errUnknown) {
		t.Fatalf("post through a cut connection: %v, want outcome unknown", err)
	}
	r, err := s.Post(ctx, tr)
	if err != nil || !r.Duplicate {
		t.Fatalf("retry: %+v %v, want the payment found applied", r, err)
	}
	b, err := s.Balance(ctx, "wallet:1")
	if err != nil || b.Posted != 700 {
		t.Fatalf("wallet %+v %v, want 700", b, err)
	}
	if _, err := s.Post(ctx, pay("after", "wallet:1", "merchant:M", 1)); err != nil {
		t.Fatalf("post after reconnecting: %v", err)
	}
	ledgertest.RequireOK(t, s)
}

// dsnPart returns one key's value from a "k=v k=v" connection string.
func dsnPart(dsn, key string) string {
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return v
		}
	}
	return ""
}
