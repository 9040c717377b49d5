// Package link is the terminal's MQTT link to the authorizer (DESIGN §4),
// on paho: it implements terminal.Link. It keeps one persistent session
// (client id = user name = terminal id, CleanSession=false, QoS 1) with a
// retained birth and a Last Will that carry a connection number, reconnects
// with jittered backoff, correlates requests with responses by transaction
// ID and op, tracks the clock offset to the server, delivers the retained
// config and notices, and runs the journal pump that drains the outbox.
//
// Brokers: the config lists one or more brokers in order of preference.
// The link connects to one at a time. When the connection is lost it tries
// the next broker in the list first (the one it lost may be dead), and when
// a connection attempt fails it moves on to the next; it backs off only
// after a whole round of the list failed. It stays on a broker that works
// (it does not hurry back to the first): every authorizer serves every
// broker, so any broker is as good. Each connection is a new paho client
// with a new Last Will, the birth is published on the broker connected to
// (the authorizer answers it with the retained config there), the down
// topics are subscribed again, and the journal pump resends from the first
// unacknowledged entry. Nothing of money rests in a broker's memory: a
// request whose answer died with a broker ends in doubt and is settled by
// query or reversal over the next one.
//
// Offline is detected three ways: paho's keepalive (no PINGRESP within the
// ping timeout), a closed connection, and authorizer silence (a request
// without a response). The link is LinkUp only while it is connected and
// an authorizer has answered since the last connection or silence.
//
// The static-QR notices are a separate debt of each connection: the link
// asks for them (OpNotices after the stored cursor) when it connects and
// keeps asking, every ProbeInterval and at once whenever an authorizer
// proves alive, until a reply arrives on this connection. Only a reply
// settles the debt, not any authorizer message: a journal ack can come
// first when the first request was lost (no authorizer subscribed yet).
// A reply is recognised by being empty — the authorizer answers OpNotices
// even when there is nothing to send, and never pushes an empty notice —
// so after a notice with payments the link asks once more, with the
// cursor those payments advanced, and that empty answer settles it.
package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
	"campuspay/terminal"
)

// Config configures a Link. Durations left zero take the defaults noted.
type Config struct {
	// Brokers are the broker URLs, tcp://host:port or ssl://host:port, in
	// order of preference; Broker is the single-broker form, used when
	// Brokers is empty.
	Brokers []string
	Broker  string
	// TLS is used for ssl:// URLs: the CA pool, and a client certificate
	// when the broker requires one.
	TLS *tls.Config
	// Terminal is the terminal id: broker user name and client id.
	Terminal string
	// Password is the terminal's broker password.
	Password string
	// Software is reported in the birth message.
	Software string
	// ConnSeq returns a new connection number, greater than every one
	// returned before, durably stored (the journal DB): it is called once
	// per connection attempt and goes into the birth and the Last Will.
	ConnSeq func() (uint64, error)
	// Cursor returns the highest notice cursor the terminal has stored; it
	// is sent with OpNotices on every connection.
	Cursor func() uint64

	// KeepAlive is the MQTT keepalive (default 2 s, whole seconds) and
	// PingTimeout how long to wait for a PINGRESP (default 1 s): a dead
	// broker is noticed within KeepAlive+PingTimeout.
	KeepAlive, PingTimeout time.Duration
	// ConnectTimeout bounds one connection attempt (default 3 s).
	ConnectTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay, which doubles
	// per failed attempt and is jittered to [½d, d) (defaults 200 ms, 5 s).
	BackoffMin, BackoffMax time.Duration
	// ProbeInterval is how often OpNotices is sent while the authorizer
	// is silent or the connection still owes a notices request (default
	// 2 s).
	ProbeInterval time.Duration
	// Window is the number of journal entries in flight (default 32).
	Window int
	// ResendAfter is how long a journal entry waits for its ack before the
	// window is resent (default 10 s).
	ResendAfter time.Duration

	// Now is the local clock (default time.Now); Rand returns numbers in
	// [0,1) for the backoff jitter (default math/rand/v2).
	Now  func() time.Time
	Rand func() float64
	// Logger receives the log (never passwords or credentials).
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 && c.Broker != "" {
		c.Brokers = []string{c.Broker}
	}
	if len(c.Brokers) == 0 || !protocol.ValidID(c.Terminal) {
		return errors.New("link: broker URL and a valid terminal id are required")
	}
	for _, b := range c.Brokers {
		if b == "" {
			return errors.New("link: empty broker URL in the list")
		}
	}
	if c.ConnSeq == nil {
		return errors.New("link: ConnSeq is required")
	}
	if c.Cursor == nil {
		c.Cursor = func() uint64 { return 0 }
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.KeepAlive, 2*time.Second)
	def(&c.PingTimeout, time.Second)
	def(&c.ConnectTimeout, 3*time.Second)
	def(&c.BackoffMin, 200*time.Millisecond)
	def(&c.BackoffMax, 5*time.Second)
	def(&c.ProbeInterval, 2*time.Second)
	def(&c.ResendAfter, 10*time.Second)
	if c.KeepAlive < time.Second {
		c.KeepAlive = time.Second
	}
	if c.Window <= 0 {
		c.Window = 32
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Link is the terminal's connection to the authorizer.
type Link struct {
	cfg    Config
	outbox terminal.Outbox
	log    *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	client  paho.Client   // current connection; nil while down
	broker  string        // URL of the current connection's broker; "" while down
	conn    uint64        // connection generation, +1 per successful connection
	connSeq uint64        // ConnSeq of the current connection
	rev     atomic.Uint64 // Revision of the last config received
	alive   bool          // an authorizer answered since connect/silence
	owed    bool          // no notices reply yet on this connection: keep asking
	state   terminal.LinkState
	pending map[pendingKey][]chan *protocol.Response

	states  chan terminal.LinkState
	configs chan *protocol.Config
	notices chan *protocol.Notice
	acks    chan protocol.JournalAck
	kick    chan struct{}
	probe   chan struct{} // probe now: the authorizer went silent, or came alive while notices are owed
	lost    chan uint64   // generation whose connection was lost

	offset atomic.Int64 // server − local, nanoseconds
}

type pendingKey struct {
	tx protocol.TxID
	op protocol.Op
}

var _ terminal.Link = (*Link)(nil)

// New starts a link: it connects in the background (States reports when it
// is up) and pumps out's entries whenever it is connected.
func New(cfg Config, out terminal.Outbox) (*Link, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errors.New("link: no outbox")
	}
	l := &Link{
		cfg: cfg, outbox: out,
		log:     cfg.Logger.With("component", "link", "terminal", cfg.Terminal),
		pending: map[pendingKey][]chan *protocol.Response{},
		states:  make(chan terminal.LinkState, 64),
		configs: make(chan *protocol.Config, 1),
		notices: make(chan *protocol.Notice, 64),
		acks:    make(chan protocol.JournalAck, 4*cfg.Window+64),
		kick:    make(chan struct{}, 1),
		probe:   make(chan struct{}, 1),
		lost:    make(chan uint64, 4),
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.states <- terminal.LinkDown
	l.wg.Add(2)
	go l.run()
	go l.pump()
	return l, nil
}

// States delivers every link state change, the current state first.
func (l *Link) States() <-chan terminal.LinkState { return l.states }

// State is the current link state.
func (l *Link) State() terminal.LinkState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Configs delivers the configs received (the retained one on every
// connection, then each change). Only the newest unread one is kept.
func (l *Link) Configs() <-chan *protocol.Config { return l.configs }

// Notices delivers static-QR payment notices.
func (l *Link) Notices() <-chan *protocol.Notice { return l.notices }

// Kick wakes the journal pump after new entries were committed.
func (l *Link) Kick() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Broker is the URL of the broker the link is connected to, "" while it
// is not connected.
func (l *Link) Broker() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.broker
}

// Offset is the estimated server clock minus the local clock, from the
// server times in responses.
func (l *Link) Offset() time.Duration { return time.Duration(l.offset.Load()) }

// Now is the local clock corrected by Offset: the time to judge code
// freshness by and to stamp requests with.
func (l *Link) Now() time.Time { return l.cfg.Now().Add(l.Offset()) }

// Close publishes a retained "offline" status (a graceful disconnect sends
// no Last Will), disconnects and stops the pump.
func (l *Link) Close() error {
	l.cancel()
	l.wg.Wait()
	return nil
}

// hangUp ends the current connection at Close.
func (l *Link) hangUp() {
	l.mu.Lock()
	c, seq := l.client, l.connSeq
	l.client, l.broker, l.alive = nil, "", false
	l.setStateLocked()
	l.mu.Unlock()
	if c == nil {
		return
	}
	if b, err := protocol.Encode(&protocol.StatusMsg{Terminal: l.cfg.Terminal, State: protocol.StateOffline, ConnSeq: seq, At: l.Now().UTC(), Software: l.cfg.Software}); err == nil {
		c.Publish(protocol.Topic(protocol.ChanStatus, l.cfg.Terminal), 1, true, b).WaitTimeout(time.Second)
	}
	c.Disconnect(250)
}

// depth is the outbox's count of unacknowledged entries, when it can tell
// (terminal/journal can), else nil.
func (l *Link) depth() *int {
	d, ok := l.outbox.(interface {
		Depth(context.Context) (int, error)
	})
	if !ok {
		return nil
	}
	n, err := d.Depth(l.ctx)
	if err != nil {
		return nil
	}
	return &n
}

// reportStatus repeats the connection's "online" status, retained, when
// the journal depth or the config revision it reported has changed, so
// the back office's fleet view follows them. It runs on the pump's tick.
func (l *Link) reportStatus(c paho.Client, seq uint64, last *protocol.StatusMsg) {
	depth, rev := l.depth(), l.rev.Load()
	if depth == nil || (last.ConnSeq == seq && last.JournalDepth != nil && *last.JournalDepth == *depth && last.ConfigRevision == rev) {
		return
	}
	m := protocol.StatusMsg{Terminal: l.cfg.Terminal, State: protocol.StateOnline, ConnSeq: seq, At: l.Now().UTC(),
		Software: l.cfg.Software, JournalDepth: depth, ConfigRevision: rev}
	b, err := protocol.Encode(&m)
	if err != nil {
		return
	}
	c.Publish(protocol.Topic(protocol.ChanStatus, l.cfg.Terminal), 1, true, b) // not waited for: the next tick repeats it if lost
	*last = m
}

// Request publishes req and waits for the response with the same Tx and
// Op until ctx ends. Without a connection it returns ErrLinkDown (nothing
// was sent); when ctx ends, ErrNoResponse (in doubt), and at a deadline the
// link counts the authorizer as silent until it answers again. A response
// may arrive on a later connection while the request still waits.
func (l *Link) Request(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	if req.Terminal == "" {
		req.Terminal = l.cfg.Terminal
	}
	if req.Terminal != l.cfg.Terminal {
		return nil, fmt.Errorf("link: request for terminal %q on %q's link", req.Terminal, l.cfg.Terminal)
	}
	if req.At.IsZero() {
		req.At = l.Now().UTC()
	}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("link: request: %v: %w", err, protocol.ErrBadRequest)
	}
	b, err := protocol.Encode(req)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("link: request not sent: %w", err)
	}
	key := pendingKey{req.Tx, req.Op}
	ch := make(chan *protocol.Response, 1)
	l.mu.Lock()
	c := l.client
	if c == nil {
		l.mu.Unlock()
		return nil, terminal.ErrLinkDown
	}
	l.pending[key] = append(l.pending[key], ch)
	l.mu.Unlock()
	defer l.unregister(key, ch)

	sent := l.cfg.Now()
	tok := c.Publish(protocol.Topic(protocol.ChanRequest, l.cfg.Terminal), 1, false, b)
	done := tok.Done()
	for {
		select {
		case resp := <-ch:
			l.trackClock(sent, l.cfg.Now(), resp.ServerTime)
			return resp, nil
		case <-done:
			done = nil
			if err := tok.Error(); errors.Is(err, paho.ErrNotConnected) {
				return nil, fmt.Errorf("%w: %v", terminal.ErrLinkDown, err)
			}
			// Any other error (e.g. the connection dropped before the
			// PUBACK) may come after the request reached the broker: keep
			// waiting; the answer can still come on the next connection.
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				l.markSilent()
			}
			return nil, terminal.ErrNoResponse
		}
	}
}

func (l *Link) unregister(key pendingKey, ch chan *protocol.Response) {
	l.mu.Lock()
	defer l.mu.Unlock()
	list := l.pending[key]
	for i, c := range list {
		if c == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(l.pending, key)
	} else {
		l.pending[key] = list
	}
}

// trackClock estimates the offset from a response: the server stamped it
// somewhere between send and receipt; the midpoint halves the error.
func (l *Link) trackClock(sent, recv, server time.Time) {
	if server.IsZero() {
		return
	}
	mid := sent.Add(recv.Sub(sent) / 2)
	l.offset.Store(int64(server.Sub(mid)))
}

// setState recomputes the state; call with l.mu held.
func (l *Link) setStateLocked() {
	s := terminal.LinkDown
	if l.client != nil && l.alive {
		s = terminal.LinkUp
	}
	if s == l.state {
		return
	}
	l.state = s
	l.log.Info("link: state", "state", s.String())
	select {
	case l.states <- s:
	default:
		l.log.Warn("link: state channel full; state change not delivered", "state", s.String())
	}
}

// markSilent records that the authorizer did not answer in time.
func (l *Link) markSilent() {
	l.mu.Lock()
	was := l.alive
	l.alive = false
	l.setStateLocked()
	l.mu.Unlock()
	if was {
		l.log.Warn("link: authorizer silent")
	}
	l.probeNow()
}

func (l *Link) probeNow() {
	select {
	case l.probe <- struct{}{}:
	default:
	}
}

// markAlive records traffic from an authorizer on connection gen. An
// authorizer that comes alive while the notices are still owed is asked
// for them at once.
func (l *Link) markAlive(gen uint64) {
	l.mu.Lock()
	ask := false
	if gen == l.conn && l.client != nil {
		ask = !l.alive && l.owed
		l.alive = true
		l.setStateLocked()
	}
	l.mu.Unlock()
	if ask {
		l.probeNow()
	}
}

// noticeReply records that a notices reply arrived on connection gen: the
// connection owes no more requests for them.
func (l *Link) noticeReply(gen uint64) {
	l.mu.Lock()
	if gen == l.conn && l.client != nil && l.owed {
		l.owed = false
		l.log.Debug("link: notices up to date on this connection")
	}
	l.mu.Unlock()
}

// run keeps a connection up until Close, moving along the broker list
// (see the package comment).
func (l *Link) run() {
	defer l.wg.Done()
	defer l.hangUp()
	n := len(l.cfg.Brokers)
	next, failures := 0, 0 // the broker to try next; attempts failed in a row
	for l.ctx.Err() == nil {
		url := l.cfg.Brokers[next]
		gen, err := l.connect(url)
		if err != nil {
			failures++
			next = (next + 1) % n
			// One backoff step per round of the whole list: the next broker
			// is tried at once (jittered), a dead campus is not hammered.
			d := l.backoff((failures + n - 1) / n)
			l.log.Warn("link: connect failed", "broker", url, "err", err, "retry_in", d, "next", l.cfg.Brokers[next])
			if !l.wait(d) {
				return
			}
			continue
		}
		failures = 0
		l.serve(gen)
		if l.ctx.Err() == nil {
			// The broker may be dead: the next one in the list first.
			next = (next + 1) % n
			// Reconnect soon, but jittered so a campus of terminals does
			// not reconnect at once after a broker restart.
			if !l.wait(l.backoff(1)) {
				return
			}
		}
	}
}

// backoff is the jittered delay after n failed attempts.
func (l *Link) backoff(n int) time.Duration {
	d := l.cfg.BackoffMin
	for i := 1; i < n && d < l.cfg.BackoffMax; i++ {
		d *= 2
	}
	if d > l.cfg.BackoffMax {
		d = l.cfg.BackoffMax
	}
	return d/2 + time.Duration(l.cfg.Rand()*float64(d/2))
}

func (l *Link) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.ctx.Done():
		return false
	}
}

// connect makes one connection to broker url: a new paho client whose Last
// Will carries a new connection number; it subscribes, publishes the birth
// and asks for notices. It returns the connection's generation.
func (l *Link) connect(url string) (uint64, error) {
	seq, err := l.cfg.ConnSeq()
	if err != nil {
		return 0, fmt.Errorf("link: connection number: %w", err)
	}
	id := l.cfg.Terminal
	status := func(state string) []byte {
		m := &protocol.StatusMsg{Terminal: id, State: state, ConnSeq: seq, At: l.Now().UTC(), Software: l.cfg.Software}
		if state == protocol.StateOnline {
			m.JournalDepth, m.ConfigRevision = l.depth(), l.rev.Load()
		}
		b, _ := protocol.Encode(m)
		return b
	}
	l.mu.Lock()
	gen := l.conn + 1
	l.mu.Unlock()
	o := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(id).
		SetUsername(id).
		SetPassword(l.cfg.Password).
		SetCleanSession(false).
		SetAutoReconnect(false). // our loop reconnects: each connection needs a new will
		SetConnectRetry(false).
		SetKeepAlive(l.cfg.KeepAlive).
		SetPingTimeout(l.cfg.PingTimeout).
		SetConnectTimeout(l.cfg.ConnectTimeout).
		SetWriteTimeout(l.cfg.ConnectTimeout).
		SetOrderMatters(true). // handlers never block
		SetBinaryWill(protocol.Topic(protocol.ChanStatus, id), status(protocol.StateOffline), 1, true).
		// Set before Connect: the persistent session's queued messages
		// (late responses, journal acks) arrive before we resubscribe.
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { l.onMessage(gen, m) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			l.log.Warn("link: connection lost", "err", err)
			select {
			case l.lost <- gen:
			default:
			}
		})
	if l.cfg.TLS != nil {
		o.SetTLSConfig(l.cfg.TLS)
	}
	c := paho.NewClient(o)
	ct := c.Connect()
	if err := waitToken(l.ctx, ct, l.cfg.ConnectTimeout+time.Second); err != nil {
		c.Disconnect(0)
		return 0, fmt.Errorf("link: connect %s: %w", url, err)
	}
	sessionPresent := false
	if t, ok := ct.(*paho.ConnectToken); ok {
		sessionPresent = t.SessionPresent()
	}
	if err := l.subscribe(c, sessionPresent); err != nil {
		c.Disconnect(0)
		return 0, err
	}
	if err := waitToken(l.ctx, c.Publish(protocol.Topic(protocol.ChanStatus, id), 1, true, status(protocol.StateOnline)), l.cfg.ConnectTimeout); err != nil {
		c.Disconnect(0)
		return 0, fmt.Errorf("link: birth: %w", err)
	}
	l.mu.Lock()
	l.client, l.broker, l.conn, l.connSeq, l.alive, l.owed = c, url, gen, seq, false, true
	l.setStateLocked()
	l.mu.Unlock()
	l.log.Info("link: connected", "broker", url, "conn_seq", seq)
	l.Kick()
	return gen, nil
}

// subscribe (re)subscribes to the terminal's down topics. mochi refuses a
// SUBSCRIBE whose packet id collides with one of the resumed session's
// in-flight messages, so a refusal is retried with the next ids; if it
// persists while the broker kept our session, the session's subscription
// stands.
func (l *Link) subscribe(c paho.Client, sessionPresent bool) error {
	filter := protocol.TopicRoot + "/down/" + l.cfg.Terminal + "/#"
	for attempt := 0; attempt < 4; attempt++ {
		tok := c.Subscribe(filter, 1, nil)
		if err := waitToken(l.ctx, tok, l.cfg.ConnectTimeout); err != nil {
			return fmt.Errorf("link: subscribe: %w", err)
		}
		st, ok := tok.(*paho.SubscribeToken)
		if !ok || st.Result()[filter] <= 1 {
			return nil
		}
	}
	if sessionPresent {
		l.log.Warn("link: subscription refused; relying on the session's", "filter", filter)
		return nil
	}
	return fmt.Errorf("link: subscription to %s refused (broker ACL?)", filter)
}

func waitToken(ctx context.Context, tok paho.Token, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errors.New("timed out")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serve probes the authorizer while it is silent or the notices are
// owed, and returns when the connection is lost or the link closes.
func (l *Link) serve(gen uint64) {
	probe := time.NewTimer(0) // the first probe asks for notices at once
	defer probe.Stop()
	for {
		select {
		case g := <-l.lost:
			if g != gen {
				continue // an older connection's late notice
			}
			l.mu.Lock()
			l.client, l.broker, l.alive = nil, "", false
			l.setStateLocked()
			l.mu.Unlock()
			return
		case <-l.ctx.Done():
			return
		case <-l.probe:
			probe.Reset(0)
		case <-probe.C:
			l.mu.Lock()
			alive, owed, c := l.alive, l.owed, l.client
			l.mu.Unlock()
			if c == nil {
				return
			}
			if owed || !alive {
				l.sendNotices(c)
				probe.Reset(l.cfg.ProbeInterval)
			}
		}
	}
}

// sendNotices asks for the static-QR payments after the stored cursor; the
// answer arrives on the notify topic and also proves the authorizer alive.
func (l *Link) sendNotices(c paho.Client) {
	b, err := protocol.Encode(&protocol.Request{Op: protocol.OpNotices, Terminal: l.cfg.Terminal, At: l.Now().UTC(), Cursor: l.cfg.Cursor()})
	if err != nil {
		return
	}
	c.Publish(protocol.Topic(protocol.ChanRequest, l.cfg.Terminal), 1, false, b)
}

// onMessage runs on paho's router for connection gen: decode, route, never
// block.
func (l *Link) onMessage(gen uint64, m paho.Message) {
	term, ch, err := protocol.ParseTopic(m.Topic())
	if err != nil || term != l.cfg.Terminal || ch.Up() {
		l.log.Warn("link: message on an unexpected topic dropped", "topic", m.Topic())
		return
	}
	drop := func(err error) {
		l.log.Warn("link: malformed message dropped", "channel", string(ch), "bytes", len(m.Payload()), "err", err)
	}
	switch ch {
	case protocol.ChanResponse:
		var r protocol.Response
		if err := protocol.Decode(m.Payload(), &r); err != nil || r.Terminal != l.cfg.Terminal {
			drop(err)
			return
		}
		l.markAlive(gen)
		l.mu.Lock()
		waiters := l.pending[pendingKey{r.Tx, r.Op}]
		for _, w := range waiters {
			select {
			case w <- &r:
			default:
			}
		}
		l.mu.Unlock()
		if len(waiters) == 0 {
			l.log.Info("link: response for no pending request dropped", "tx", string(r.Tx), "op", string(r.Op))
		}
	case protocol.ChanJournalAck:
		var a protocol.JournalAck
		if err := protocol.Decode(m.Payload(), &a); err != nil || a.Terminal != l.cfg.Terminal {
			drop(err)
			return
		}
		l.markAlive(gen)
		select {
		case l.acks <- a:
		default: // the pump is behind: the entry is resent and acked again
		}
	case protocol.ChanConfig:
		var c protocol.Config
		if err := protocol.Decode(m.Payload(), &c); err != nil || c.Terminal != l.cfg.Terminal {
			drop(err)
			return
		}
		l.rev.Store(c.Revision)
		l.mu.Lock() // newest wins
		select {
		case <-l.configs:
		default:
		}
		l.configs <- &c
		l.mu.Unlock()
	case protocol.ChanNotify:
		var n protocol.Notice
		if err := protocol.Decode(m.Payload(), &n); err != nil || n.Terminal != l.cfg.Terminal {
			drop(err)
			return
		}
		if len(n.Payments) == 0 {
			l.noticeReply(gen) // only a reply is ever empty
			l.markAlive(gen)
			return
		}
		l.markAlive(gen)
		select {
		case l.notices <- &n:
		default:
			l.log.Warn("link: notice channel full; asked again on the next connection", "cursor", n.Cursor)
		}
	}
}
