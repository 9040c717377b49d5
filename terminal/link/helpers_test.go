package link_test

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"campuspay/protocol"
	"campuspay/terminal"
	"campuspay/terminal/link"
)

// startMochi runs a plain mochi broker (allow all): the link's own tests
// need a broker, not the server's access rules (tested in server/broker
// and, end to end, in server/authz).
func startMochi(t *testing.T, addr string) (*mqtt.Server, string) {
	t.Helper()
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := s.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: addr})
	if err := s.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeMochi(t, s) })
	return s, l.Address()
}

// closeMochi closes s, or gives up after 5 s: mochi v2.7.9's Close can
// deadlock when a client detaches at that moment (Clients.GetByListener
// takes its read lock twice, and the client's Delete, waiting for the
// write lock, blocks the second). What is left is gone with the test
// binary.
func closeMochi(t *testing.T, s *mqtt.Server) {
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Log("mochi: Close did not finish (a client detaching at the same moment); left to the test binary's exit")
	}
}

// allowAll lets every client in (mochi's own allow hook pulls in YAML).
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }
func (*allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }

// memOutbox is an in-memory terminal.Outbox.
type memOutbox struct {
	mu      sync.Mutex
	entries map[uint64]protocol.JournalEntry
	acked   map[uint64]protocol.JournalAck
	ackN    map[uint64]int
	done    chan struct{} // closed when every entry is acked
	changed chan struct{} // closed at the next ack
	pending atomic.Int64
}

func newOutbox(n int, tx func(i int) protocol.TxID) *memOutbox {
	o := &memOutbox{entries: map[uint64]protocol.JournalEntry{}, acked: map[uint64]protocol.JournalAck{}, ackN: map[uint64]int{}, done: make(chan struct{})}
	for i := 1; i <= n; i++ {
		o.entries[uint64(i)] = protocol.JournalEntry{Seq: uint64(i), Tx: tx(i), Kind: protocol.EntryPayment, Status: protocol.StatusApproved, Amount: int64(i), At: time.Unix(1700000000, 0).UTC()}
	}
	o.pending.Store(int64(n))
	if n == 0 {
		close(o.done)
	}
	return o
}

func (o *memOutbox) Pending(_ context.Context, after uint64, limit int) ([]protocol.JournalEntry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []protocol.JournalEntry
	for s := after + 1; s <= uint64(len(o.entries)) && len(out) < limit; s++ {
		if _, ok := o.acked[s]; !ok {
			out = append(out, o.entries[s])
		}
	}
	return out, nil
}

func (o *memOutbox) Acked(_ context.Context, seq uint64, a protocol.JournalAck) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ackN[seq]++
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	if _, ok := o.entries[seq]; !ok {
		return nil
	}
	if _, ok := o.acked[seq]; !ok {
		o.acked[seq] = a
		if o.pending.Add(-1) == 0 {
			close(o.done)
		}
	}
	return nil
}

// waitAcked waits until at least n entries are acked.
func (o *memOutbox) waitAcked(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		o.mu.Lock()
		got := len(o.acked)
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		ch := o.changed
		o.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("only %d of %d entries acked", got, n)
		}
	}
}

func (o *memOutbox) ackedCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.acked)
}

var txRand = rand.New(rand.NewPCG(1, 2))
var txMu sync.Mutex

func newTx(t testing.TB) protocol.TxID {
	txMu.Lock()
	defer txMu.Unlock()
	id, err := protocol.NewTxID(time.Now(), readerFunc(func(p []byte) (int, error) {
		for i := range p {
			p[i] = byte(txRand.Uint32())
		}
		return len(p), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// responder is a minimal authorizer: answers requests and journal entries
// as its hooks say (nil = stay silent), and records statuses.
type responder struct {
	t        *testing.T
	c        paho.Client
	onReq    atomic.Pointer[func(*protocol.Request) *protocol.Response]
	onJrnl   atomic.Pointer[func(*protocol.JournalEntry) *protocol.JournalAck]
	onNotice atomic.Pointer[func(*protocol.Request) *protocol.Notice]
	statuses chan protocol.StatusMsg
	requests chan protocol.Request
}

func newResponder(t *testing.T, addr string) *responder {
	t.Helper()
	r := &responder{t: t, statuses: make(chan protocol.StatusMsg, 100), requests: make(chan protocol.Request, 20000)}
	approve := func(q *protocol.Request) *protocol.Response {
		return &protocol.Response{Op: q.Op, Tx: q.Tx, Terminal: q.Terminal, Status: protocol.StatusApproved, Amount: q.Amount, ServerTime: time.Now()}
	}
	ack := func(e *protocol.JournalEntry) *protocol.JournalAck {
		return &protocol.JournalAck{Terminal: e.Terminal, Seq: e.Seq, Tx: e.Tx, OK: true}
	}
	none := func(q *protocol.Request) *protocol.Notice {
		return &protocol.Notice{Terminal: q.Terminal, Cursor: q.Cursor}
	}
	r.onReq.Store(&approve)
	r.onNotice.Store(&none)
	r.onJrnl.Store(&ack)
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("responder").SetCleanSession(true).
		SetOrderMatters(true).SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).
		SetDefaultPublishHandler(r.handle).
		SetOnConnectHandler(func(c paho.Client) {
			c.SubscribeMultiple(map[string]byte{
				protocol.AuthorizerFilter(protocol.ChanRequest, ""): 1,
				protocol.AuthorizerFilter(protocol.ChanJournal, ""): 1,
				protocol.AuthorizerFilter(protocol.ChanStatus, ""):  1,
			}, nil).Wait()
		})
	r.c = paho.NewClient(o)
	if tok := r.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("responder connect: %v", tok.Error())
	}
	t.Cleanup(func() { r.c.Disconnect(0) })
	return r
}

func (r *responder) handle(c paho.Client, m paho.Message) {
	term, ch, err := protocol.ParseTopic(m.Topic())
	if err != nil {
		return
	}
	switch ch {
	case protocol.ChanStatus:
		var s protocol.StatusMsg
		if protocol.Decode(m.Payload(), &s) == nil {
			select { // repeated statuses (depth changes) must not stall the responder
			case r.statuses <- s:
			default:
			}
		}
	case protocol.ChanRequest:
		var q protocol.Request
		if protocol.Decode(m.Payload(), &q) != nil {
			return
		}
		select {
		case r.requests <- q:
		default:
		}
		if q.Op == protocol.OpNotices {
			b, _ := protocol.Encode((*r.onNotice.Load())(&q))
			c.Publish(protocol.Topic(protocol.ChanNotify, term), 1, false, b)
			return
		}
		if resp := (*r.onReq.Load())(&q); resp != nil {
			b, _ := protocol.Encode(resp)
			c.Publish(protocol.Topic(protocol.ChanResponse, term), 1, false, b)
		}
	case protocol.ChanJournal:
		var e protocol.JournalEntry
		if protocol.Decode(m.Payload(), &e) != nil {
			return
		}
		if a := (*r.onJrnl.Load())(&e); a != nil {
			b, _ := protocol.Encode(a)
			c.Publish(protocol.Topic(protocol.ChanJournalAck, term), 1, false, b)
		}
	}
}

func (r *responder) setReq(f func(*protocol.Request) *protocol.Response)   { r.onReq.Store(&f) }
func (r *responder) setNotices(f func(*protocol.Request) *protocol.Notice) { r.onNotice.Store(&f) }
func (r *responder) setJournal(f func(*protocol.JournalEntry) *protocol.JournalAck) {
	r.onJrnl.Store(&f)
}

func (r *responder) publish(topic string, retained bool, payload []byte) {
	r.t.Helper()
	if tok := r.c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		r.t.Fatalf("responder publish: %v", tok.Error())
	}
}

// connSeq is a durable-counter stand-in.
type connSeq struct{ n atomic.Uint64 }

func (c *connSeq) next() (uint64, error) { return c.n.Add(1), nil }

func newLink(t *testing.T, addr string, out terminal.Outbox, mod func(*link.Config)) *link.Link {
	t.Helper()
	cs := &connSeq{}
	broker := ""
	if addr != "" {
		broker = "tcp://" + addr
	}
	cfg := link.Config{
		Broker: broker, Terminal: "T1", Password: "pw-t1-secret",
		// KeepAlive 2 s, not 1: mochi's read deadline is keepalive × 1.5
		// in whole seconds, so at 1 s it dropped an idle link just as paho
		// sent its first ping, and every test saw unplanned reconnections
		// (extra wills and births, notices asked again).
		ConnSeq: cs.next, KeepAlive: 2 * time.Second, PingTimeout: 500 * time.Millisecond,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		ProbeInterval: 100 * time.Millisecond, ResendAfter: time.Second,
		Rand:   rand.New(rand.NewPCG(3, 4)).Float64,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	if out == nil {
		out = newOutbox(0, nil)
	}
	l, err := link.New(cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitState waits for state s on l's state channel.
func waitState(t *testing.T, l *link.Link, s terminal.LinkState, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case got := <-l.States():
			if got == s {
				return
			}
		case <-deadline:
			t.Fatalf("link did not reach state %v within %v", s, within)
		}
	}
}

// proxy forwards TCP to a broker; Freeze stops forwarding without closing
// (a dead broker or a cut cable), Sever closes every connection.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	frozen chan struct{}
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, frozen: make(chan struct{})}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.Sever() })
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		frozen := p.frozen
		p.mu.Unlock()
		go p.copy(c, u, frozen)
		go p.copy(u, c, frozen)
	}
}

func (p *proxy) copy(dst, src net.Conn, frozen chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-frozen:
			return // swallow: the far side hears nothing more
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// Freeze stops forwarding on existing connections (kept open).
func (p *proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.frozen)
	p.frozen = make(chan struct{})
}

// Sever closes every proxied connection.
func (p *proxy) Sever() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Depth counts the entries not yet acknowledged, as terminal/journal does.
func (o *memOutbox) Depth(context.Context) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries) - len(o.acked), nil
}
