package daemon

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"campuspay/protocol"
)

// A tiny authorizer over a real (in-process mochi) broker: idempotent by
// Tx, it records every request and entry so crash tests can count charges.

type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }
func (*allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }

func startBroker(t *testing.T) string {
	t.Helper()
	_, addr := startBrokerAt(t, "127.0.0.1:0")
	return addr
}

// closeMochi closes s. mochi v2.7.9's Close can deadlock when a client
// detaches at that moment (Clients.GetByListener takes its read lock
// twice, and the client's Delete, waiting for the write lock, blocks the
// second: a killed daemon's connection ending as the test closes the
// broker). So the listeners are closed first, their clients disconnected
// from one copy of the list; Close then finds them closed and skips its
// own sweep (as server/broker's Close does). A client still in its
// handshake when the list was copied can hold Close up: after 5 s the
// rest is left to the test binary's exit.
func closeMochi(t *testing.T, s *mqtt.Server) {
	done := make(chan struct{})
	go func() {
		s.Listeners.CloseAll(func(id string) {
			for _, cl := range s.Clients.GetAll() {
				if cl.Net.Listener == id && !cl.Closed() {
					_ = s.DisconnectClient(cl, packets.ErrServerShuttingDown)
				}
			}
		})
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Log("mochi: Close did not finish; left to the test binary's exit")
	}
}

// startBrokerAt starts a broker on addr; stop (idempotent) simulates an
// outage.
func startBrokerAt(t *testing.T, addr string) (stop func(), _ string) {
	t.Helper()
	s := mqtt.New(&mqtt.Options{InlineClient: false, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	var once sync.Once
	stop = func() { once.Do(func() { closeMochi(t, s) }) }
	t.Cleanup(stop)
	return stop, l.Address()
}

// txRec is the authorizer's view of one transaction.
type txRec struct {
	ops      []protocol.Op
	approved bool  // a pay was approved (money taken)
	reversed bool  // reversed: refunded if approved, refused forever if not
	pending  int   // USERPAYING answers still to give
	held     int64 // hold placed
	captured int64 // -1 until captured
	captures map[int64]bool
	entries  []protocol.JournalEntry
}

// charged is what the student paid for this transaction.
func (r *txRec) charged() int64 {
	if r.approved && !r.reversed {
		return 1
	}
	return 0
}

type fakeAuthz struct {
	t       *testing.T
	c       paho.Client
	mu      sync.Mutex
	txs     map[protocol.TxID]*txRec
	changed chan struct{}
	// Behaviour switches.
	silentPay  bool                       // process pay requests but never answer (the answer is lost)
	pendingPay int                        // answer pay and the next n queries "pending" (WeChat USERPAYING)
	staticQR   []protocol.StaticQRPayment // paid to the merchant QR, sent on OpNotices

	cfg    *protocol.Config
	cert   []byte
	device ed25519.PrivateKey
	seq    uint16
}

// newAuthzKeysOnly makes the authorizer's keys and config, unconnected.
func newAuthzKeysOnly(t *testing.T) *fakeAuthz {
	t.Helper()
	a := &fakeAuthz{t: t, txs: map[protocol.TxID]*txRec{}, changed: make(chan struct{})}
	r := rand.New(rand.NewSource(3))
	ipub, ipriv, _ := ed25519.GenerateKey(r)
	dpub, dpriv, _ := ed25519.GenerateKey(r)
	cert, err := protocol.IssueCertificate(protocol.Certificate{KeyID: 1, UserID: 42, DeviceID: 900,
		DeviceKey: dpub, Expires: time.Now().Add(24 * time.Hour)}, ipriv)
	if err != nil {
		t.Fatal(err)
	}
	a.cert, a.device = cert, dpriv
	spub, _, _ := protocol.NewSealKey(r)
	a.cfg = &protocol.Config{Revision: 1, Terminal: "T1", Merchant: "M1", Campus: "yungu", Mode: protocol.ModePOS,
		IssuerKeys: []protocol.IssuerKey{{ID: 1, Key: base64.StdEncoding.EncodeToString(ipub)}},
		SealKey:    base64.StdEncoding.EncodeToString(spub[:]), MerchantQR: "CM1:STATIC",
		AuthTimeoutMS: 700, ServerTime: time.Now(),
		Tariff: &protocol.Tariff{CentsPerLitre: 30, PulsesPerLitre: 450, Hold: 1500, IdleTimeoutS: 120}}
	return a
}

func newAuthz(t *testing.T, addr string, mode protocol.Mode) *fakeAuthz {
	t.Helper()
	a := newAuthzKeysOnly(t)
	a.cfg.Mode = mode
	if mode == protocol.ModeCard {
		a.cfg.FixedAmount = 300
	}
	// A short connect timeout, as the real authorizer has: when a test
	// stops the broker, mochi disconnects its clients before it closes
	// the listening socket, and a reconnection that lands in that gap gets
	// a TCP connection nobody answers. With paho's default (30 s) the fake
	// would sit on it past every wait in the tests; with 1 s it retries
	// (at most every 500 ms) and finds the restarted broker.
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("authz").SetCleanSession(true).
		SetConnectTimeout(time.Second).SetMaxReconnectInterval(500 * time.Millisecond).
		SetOrderMatters(false).SetAutoReconnect(true).SetDefaultPublishHandler(a.handle).
		SetOnConnectHandler(func(c paho.Client) {
			c.SubscribeMultiple(map[string]byte{
				protocol.AuthorizerFilter(protocol.ChanRequest, ""): 1,
				protocol.AuthorizerFilter(protocol.ChanJournal, ""): 1,
			}, nil).Wait()
		})
	a.c = paho.NewClient(o)
	if tok := a.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("authz connect: %v", tok.Error())
	}
	t.Cleanup(func() { a.c.Disconnect(0) })
	b, _ := protocol.Encode(a.cfg)
	if tok := a.c.Publish(protocol.Topic(protocol.ChanConfig, "T1"), 1, true, b); !tok.WaitTimeout(5 * time.Second) {
		t.Fatal("config publish")
	}
	return a
}

func (a *fakeAuthz) payCode() string {
	a.mu.Lock()
	a.seq++
	seq := a.seq
	a.mu.Unlock()
	s, err := protocol.MakeCode(a.cert, a.device, protocol.PurposePay, time.Now(), seq)
	if err != nil {
		a.t.Fatal(err)
	}
	return s
}

func (a *fakeAuthz) rec(tx protocol.TxID) *txRec {
	r := a.txs[tx]
	if r == nil {
		r = &txRec{captured: -1, captures: map[int64]bool{}}
		a.txs[tx] = r
	}
	return r
}

func (a *fakeAuthz) handle(c paho.Client, m paho.Message) {
	term, ch, err := protocol.ParseTopic(m.Topic())
	if err != nil {
		return
	}
	a.mu.Lock()
	var out []byte
	var topic string
	switch ch {
	case protocol.ChanRequest:
		var q protocol.Request
		if protocol.Decode(m.Payload(), &q) != nil {
			break
		}
		if q.Op == protocol.OpNotices { // no static-QR payments; the answer proves the authorizer alive
			n := &protocol.Notice{Terminal: term, Cursor: q.Cursor}
			for _, p := range a.staticQR {
				if p.Seq > q.Cursor {
					n.Payments = append(n.Payments, p)
					n.Cursor = max(n.Cursor, p.Seq)
				}
			}
			out, _ = protocol.Encode(n)
			topic = protocol.Topic(protocol.ChanNotify, term)
			break
		}
		resp := a.answer(&q)
		if resp != nil {
			resp.Op, resp.Tx, resp.Terminal, resp.ServerTime = q.Op, q.Tx, term, time.Now()
			out, _ = protocol.Encode(resp)
			topic = protocol.Topic(protocol.ChanResponse, term)
		}
	case protocol.ChanJournal:
		var e protocol.JournalEntry
		if protocol.Decode(m.Payload(), &e) != nil {
			break
		}
		r := a.rec(e.Tx)
		r.entries = append(r.entries, e)
		if e.Kind == protocol.EntryShower && e.Status == protocol.StatusApproved && r.held > 0 {
			a.capture(r, e.Amount) // ApplyJournal: capture if not yet captured
		}
		out, _ = protocol.Encode(&protocol.JournalAck{Terminal: term, Seq: e.Seq, Tx: e.Tx, OK: true})
		topic = protocol.Topic(protocol.ChanJournalAck, term)
	}
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
	if out != nil {
		c.Publish(topic, 1, false, out)
	}
}

func (a *fakeAuthz) capture(r *txRec, amount int64) {
	r.captures[amount] = true
	if r.captured < 0 {
		r.captured = amount
	}
}

// answer applies q idempotently and returns the response (nil: silent).
func (a *fakeAuthz) answer(q *protocol.Request) *protocol.Response {
	r := a.rec(q.Tx)
	first := len(r.ops) == 0
	r.ops = append(r.ops, q.Op)
	st := func(s protocol.Status) *protocol.Response { return &protocol.Response{Status: s} }
	switch q.Op {
	case protocol.OpPay:
		if r.reversed {
			x := st(protocol.StatusDeclined)
			x.SetReason(protocol.ErrTxReversed)
			return x
		}
		if first {
			r.approved = true
			r.pending = a.pendingPay
		}
		if a.silentPay {
			return nil
		}
		if r.pending > 0 {
			return st(protocol.StatusPending)
		}
		x := st(protocol.StatusApproved)
		x.Amount, x.Channel = q.Amount, protocol.ChannelBalance
		return x
	case protocol.OpQuery:
		switch {
		case r.reversed:
			return st(protocol.StatusReversed)
		case r.approved && r.pending > 0:
			r.pending--
			return st(protocol.StatusPending)
		case r.approved:
			return st(protocol.StatusApproved)
		}
		return st(protocol.StatusUnknown)
	case protocol.OpReverse:
		r.reversed = true
		return st(protocol.StatusReversed)
	case protocol.OpHold:
		if r.reversed {
			x := st(protocol.StatusDeclined)
			x.SetReason(protocol.ErrTxReversed)
			return x
		}
		r.held = 1500
		x := st(protocol.StatusHeld)
		x.Hold = r.held
		return x
	case protocol.OpCapture:
		if r.held == 0 {
			x := st(protocol.StatusDeclined)
			x.SetReason(protocol.ErrHoldUnknown)
			return x
		}
		a.capture(r, q.Amount)
		x := st(protocol.StatusApproved)
		x.Amount = r.captured
		return x
	}
	return nil
}

// waitFor waits until cond (called under the lock) holds.
func (a *fakeAuthz) waitFor(what string, within time.Duration, cond func() bool) {
	a.t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		a.mu.Lock()
		ok, ch := cond(), a.changed
		a.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			a.t.Fatalf("authorizer: timed out waiting for %s; state:\n%s", what, a.dump())
		}
	}
}

func (a *fakeAuthz) dump() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := ""
	for id, r := range a.txs {
		s += fmt.Sprintf("  %s ops=%v approved=%v reversed=%v held=%d captured=%d entries=%d\n",
			id, r.ops, r.approved, r.reversed, r.held, r.captured, len(r.entries))
	}
	return s
}

// only returns the single transaction the authorizer heard of (nil if none).
func (a *fakeAuthz) only() (protocol.TxID, *txRec) {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.txs) > 1 {
		a.t.Fatalf("authorizer saw %d transactions", len(a.txs))
	}
	for id, r := range a.txs {
		return id, r
	}
	return "", nil
}
