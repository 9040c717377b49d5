// Package authz is the authorizer's side of the terminal link (DESIGN §4):
// MQTT handlers on paho that take terminals' requests and journal entries
// from the broker, hand them to the wallet (the Backend), and publish the
// responses, journal acks, notices and each terminal's retained config. It
// also tracks terminals' online/offline status from their births and Last
// Wills.
//
// Several authorizers run side by side: requests and journal entries are
// taken with a shared subscription ($share/{group}/...), so each message
// goes to one of them; every authorizer follows all statuses.
//
// Several brokers: an authorizer connects to every broker of its list and
// subscribes on each, so a terminal may use any of them and move between
// them. A message is answered on the broker it came from (the terminal is
// connected there). Retained configs go to every connected broker; a
// terminal's birth on a broker gets its config there; a notice goes to the
// broker the terminal was last seen online on. A broker that dies takes
// only in-flight messages with it: terminals resend journal entries and
// settle in-doubt payments by query or reversal on the next broker. Exactly-once
// money is the Backend's job (idempotent by transaction ID and by journal
// sequence); this package adds that a message is acknowledged to the broker
// only after it was handled and its answer handed to the client (a payment's
// answer is not held up waiting for the broker's PUBACK: a lost one is asked
// for again by query), and that messages about the same transaction are
// handled one at a time.
package authz

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
	"campuspay/server/metrics"
)

// Backend is what the authorizer needs from the wallet service.
type Backend interface {
	// HandleRequest answers a request; idempotent by (Terminal, Tx).
	HandleRequest(ctx context.Context, req *protocol.Request) *protocol.Response
	// ApplyJournal applies a journal entry; idempotent by (Terminal, Seq)
	// and durable before it returns.
	ApplyJournal(ctx context.Context, e *protocol.JournalEntry) *protocol.JournalAck
	// Notices returns the static-QR payments for terminal after cursor.
	Notices(ctx context.Context, terminal string, after uint64) (*protocol.Notice, error)
	// TerminalConfig returns terminal's current config.
	TerminalConfig(ctx context.Context, terminal string) (*protocol.Config, error)
	// AuthenticateTerminal checks a terminal's broker credentials (used
	// by the embedded broker, not by this package).
	AuthenticateTerminal(ctx context.Context, terminal, password string) bool
}

// AnswerFirst is implemented by a Backend that can answer a request before
// its last write (wallet.Service.HandleRequestFirst): the authorizer
// publishes the answer, then calls finish, before it takes the next message
// of the same transaction.
type AnswerFirst interface {
	HandleRequestFirst(ctx context.Context, req *protocol.Request) (resp *protocol.Response, finish func())
}

// Config configures an Authorizer.
type Config struct {
	// Brokers are the broker URLs (tcp://host:port or ssl://host:port);
	// Broker is the single-broker form, used when Brokers is empty.
	Brokers []string
	Broker  string
	// TLS is used for ssl:// URLs (CA pool, optional client certificate).
	TLS *tls.Config
	// NewClient makes the client of one broker from its options (default
	// paho.NewClient). The embedded broker's in-process client
	// (broker.Broker.Client) joins it without a connection.
	NewClient func(*paho.ClientOptions) paho.Client
	// Username and Password are this instance's service credential. The
	// client id is the user name, so each instance needs its own user
	// name; it must stay the same across restarts (persistent session).
	Username, Password string
	// Group is the shared-subscription group (default "authz").
	Group string
	// Workers handle messages concurrently (default DefaultWorkers). Each waits for
	// its message's storage commits, so many workers are what lets the
	// stores commit many payments per fsync (group commit).
	Workers int
	// MaxQueue bounds the pay and hold requests waiting for a worker
	// (default DefaultMaxQueue). Past it the oldest waiting request is shed:
	// answered BUSY at once without touching money. Requests beyond what
	// the stores commit in well under a terminal's timeout only wait to
	// be declined DEADLINE_PASSED, and make every request behind them do
	// the same: without a broker's in-flight window in front (the embedded
	// broker, joined in-process), a bound of 64 × Workers let 1,000 terminals at
	// twice the capacity queue ten seconds of payments and approve a tenth
	// of the capacity.
	MaxQueue int
	// MaxPerTerminal bounds the pay and hold requests of one terminal
	// queued or being handled (default DefaultMaxPerTerminal). A till has
	// one payment in hand at a time, a few with retries; one more is
	// answered TERMINAL_BUSY at once without touching money, so a faulty
	// or forged flood from one box cannot take the workers from the rest.
	// A terminal's messages of every kind in hand are bounded too, at
	// heldPerTerminal × MaxPerTerminal: past it a message is dropped
	// unanswered (its terminal asks or resends again), so that a flood
	// cannot fill the authorizer's memory where no broker in-flight
	// window stands in front of it (the embedded broker, joined
	// in-process).
	MaxPerTerminal int
	// KeepAlive is the MQTT keepalive (default 5 s).
	KeepAlive time.Duration
	// PublishTimeout bounds waiting for the broker's PUBACK of what the
	// authorizer publishes and waits for (configs, notices, journal acks;
	// default 10 s). A payment's answer is not waited for (answer).
	PublishTimeout time.Duration
	// ConnectTimeout bounds one connection attempt, CONNACK included
	// (default 5 s).
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps paho's reconnect backoff (default 5 s).
	MaxReconnectInterval time.Duration
	// Now is the clock for ServerTime (default time.Now).
	Now func() time.Time
	// Logger receives the log; payloads and secrets are never logged.
	Logger *slog.Logger
	// OnStatus, if set, is called with every status change (state or
	// conn_seq), stale wills excluded (from a worker goroutine; it must
	// not block for long).
	OnStatus func(TerminalStatus)
}

// TerminalStatus is a terminal's connectivity as the authorizer last saw it.
type TerminalStatus struct {
	Terminal string
	State    string // protocol.StateOnline or StateOffline
	ConnSeq  uint64
	At       time.Time // the terminal's time in the status message
	Seen     time.Time // when the authorizer received it
	Software string
	Broker   string // URL of the broker the status came through
	// JournalDepth is the terminal's count of journal entries not yet
	// acknowledged as it last reported it (-1: not reported);
	// ConfigRevision the revision of the last config it received.
	JournalDepth   int
	ConfigRevision uint64
}

// Authorizer is a running set of MQTT handlers.
type Authorizer struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	conns   []*conn // one per broker, in Config.Brokers order

	ctx    context.Context
	cancel context.CancelFunc
	queue  *queue // messages ready to be handled, whatever their key
	wg     sync.WaitGroup
	// keys holds, per key (a transaction; a terminal for status), the
	// messages that arrived while one of the same key was queued or being
	// handled: they wait for it, in order, outside the queue (dispatch).
	keyMu sync.Mutex
	keys  map[string][]job
	// inHand counts each terminal's pay and hold requests dispatched and
	// not yet handled (Config.MaxPerTerminal), held its messages of every
	// kind; guarded by keyMu.
	inHand, held map[string]int

	connected chan struct{} // closed at the first subscribed connection to any broker
	connOnce  sync.Once
	closeOnce sync.Once
	subErr    chan error

	mu         sync.Mutex
	statuses   map[string]TerminalStatus
	configured map[string]uint64 // terminal → conn_seq whose birth got a config
}

// conn is the connection to one broker.
type conn struct {
	url    string
	client paho.Client
	up     atomic.Bool // connected and subscribed now
}

// heldPerTerminal times Config.MaxPerTerminal bounds one terminal's
// messages of every kind in hand: a journal window (32 entries), its
// resends, queries and statuses fit many times over.
const heldPerTerminal = 4

// DefaultMaxPerTerminal is Config.MaxPerTerminal's default.
const DefaultMaxPerTerminal = 32

// DefaultMaxQueue is Config.MaxQueue's default: about Mosquitto's
// in-flight window as generated (1000), and with the default workers busy
// as well about a second of payments at a 2-core box's capacity.
const DefaultMaxQueue = 1024

// DefaultWorkers is Config.Workers' default. A worker stays with a balance
// payment through the record's final write after its answer is out
// (HandleRequestFirst), and waits on a student's lock while another
// payment of the same student commits: with 256, a closed loop of 256
// terminals in flight paid 21 % fewer payments a second, and an overload
// of twice the capacity kept ~3,000 payments queued while the authorizer
// used under half a core (hwsim load on a 2-core box).
const DefaultWorkers = 1024

type job struct {
	key      string    // messages of one key are handled one at a time, in order
	shed     bool      // answered BUSY without the backend (queue overflow)
	burst    bool      // answered TERMINAL_BUSY without the backend (MaxPerTerminal)
	received time.Time // when the message reached this authorizer (metrics)
	msg      paho.Message
	via      *conn // the broker it came from, where it is answered
	terminal string
	ch       protocol.Channel
	req      *protocol.Request
	entry    *protocol.JournalEntry
	status   *protocol.StatusMsg
}

// New makes an Authorizer; Start connects it.
func New(cfg Config, b Backend) (*Authorizer, error) {
	if len(cfg.Brokers) == 0 && cfg.Broker != "" {
		cfg.Brokers = []string{cfg.Broker}
	}
	if len(cfg.Brokers) == 0 || cfg.Username == "" {
		return nil, errors.New("authz: broker URL and user name are required")
	}
	seen := map[string]bool{}
	for _, u := range cfg.Brokers {
		if u == "" || seen[u] {
			return nil, fmt.Errorf("authz: broker list %q: empty or repeated URL", cfg.Brokers)
		}
		seen[u] = true
	}
	if b == nil {
		return nil, errors.New("authz: no backend")
	}
	if cfg.Group == "" {
		cfg.Group = "authz"
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.MaxPerTerminal <= 0 {
		cfg.MaxPerTerminal = DefaultMaxPerTerminal
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 5 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.MaxReconnectInterval <= 0 {
		cfg.MaxReconnectInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &Authorizer{
		cfg: cfg, backend: b, log: log.With("component", "authz", "instance", cfg.Username),
		connected: make(chan struct{}), subErr: make(chan error, 1),
		statuses: map[string]TerminalStatus{}, configured: map[string]uint64{},
		keys: map[string][]job{}, inHand: map[string]int{}, held: map[string]int{}, queue: newQueue(cfg.MaxQueue),
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	for _, url := range cfg.Brokers {
		a.conns = append(a.conns, a.newConn(url))
	}
	for range cfg.Workers {
		a.wg.Add(1)
		go a.worker()
	}
	return a, nil
}

// newConn makes the (not yet connected) client for one broker. The client
// id is the user name on every broker: each broker keeps its own session.
func (a *Authorizer) newConn(url string) *conn {
	cfg := a.cfg
	c := &conn{url: url}
	o := paho.NewClientOptions().
		AddBroker(url).
		SetCustomOpenConnectionFn(dial).
		SetClientID(cfg.Username).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		// A clean session: a broker hands shared-subscription messages to
		// stored sessions of disconnected members too, so a persistent
		// session of an authorizer that died and stays down would keep
		// taking its share (1 in N) of the requests and hold them until
		// their terminals give up. Nothing depends on the broker keeping
		// them: a request lost with the authorizer times out and is
		// reversed by its terminal, a journal entry is resent.
		SetCleanSession(true).
		SetOrderMatters(true). // the handler only enqueues; workers run concurrently
		SetAutoAckDisabled(true).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(cfg.KeepAlive).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(min(time.Second, cfg.MaxReconnectInterval)).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		SetResumeSubs(true).
		// Set before Connect, so that nothing arriving before the
		// subscriptions are acknowledged is dropped.
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { a.onMessage(c, m) }).
		SetOnConnectHandler(func(pc paho.Client) { a.onConnect(c, pc) }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.up.Store(false)
			a.log.Warn("authz: connection lost", "broker", url, "err", err)
		})
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS)
	}
	newClient := paho.NewClient
	if cfg.NewClient != nil {
		newClient = cfg.NewClient
	}
	c.client = newClient(o)
	return c
}

// Start connects to every broker and subscribes; it returns once the
// subscriptions are in place on one of them, or with ctx's error. The
// clients keep retrying in the background until Close: a broker that is
// down at start is joined when it comes up.
func (a *Authorizer) Start(ctx context.Context) error {
	for _, c := range a.conns {
		c.client.Connect() // with ConnectRetry the token completes only on success
	}
	select {
	case <-a.connected:
		return nil
	case err := <-a.subErr:
		return err
	case <-ctx.Done():
		return fmt.Errorf("authz: connect %q: %w", a.cfg.Brokers, ctx.Err())
	}
}

// Connected reports whether the authorizer is connected and subscribed to
// at least one broker (for readiness probes): terminals fail over to it.
func (a *Authorizer) Connected() bool {
	for _, c := range a.conns {
		if c.up.Load() {
			return true
		}
	}
	return false
}

// BrokerState is one broker connection's state.
type BrokerState struct {
	URL string
	Up  bool // connected and subscribed
}

// Brokers reports each broker connection's state, in config order.
func (a *Authorizer) Brokers() []BrokerState {
	out := make([]BrokerState, len(a.conns))
	for i, c := range a.conns {
		out[i] = BrokerState{URL: c.url, Up: c.up.Load()}
	}
	return out
}

// Close disconnects and stops the workers. Messages not yet handled are
// not acknowledged, so the broker redelivers them to this session later
// (or, for shared subscriptions, as the broker decides).
func (a *Authorizer) Close() error {
	a.closeOnce.Do(func() {
		a.cancel()
		var wg sync.WaitGroup
		for _, c := range a.conns {
			wg.Add(1)
			go func() { defer wg.Done(); c.client.Disconnect(250) }()
		}
		wg.Wait()
		a.wg.Wait()
	})
	return nil
}

func (a *Authorizer) onConnect(via *conn, c paho.Client) {
	filters := map[string]byte{
		protocol.AuthorizerFilter(protocol.ChanRequest, a.cfg.Group): 1,
		protocol.AuthorizerFilter(protocol.ChanJournal, a.cfg.Group): 1,
		protocol.AuthorizerFilter(protocol.ChanStatus, ""):           1,
	}
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(a.cfg.PublishTimeout) || tok.Error() != nil {
		err := fmt.Errorf("authz: subscribe: %v", tok.Error())
		a.log.Error("authz: subscribe failed", "broker", via.url, "err", tok.Error())
		select {
		case a.subErr <- err:
		default:
		}
		return
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, q := range st.Result() {
			if q > 1 {
				a.log.Error("authz: subscription refused", "broker", via.url, "filter", f)
			}
		}
	}
	via.up.Store(true)
	a.log.Info("authz: connected and subscribed", "broker", via.url)
	a.connOnce.Do(func() { close(a.connected) })
}

// onMessage runs on paho's router, or on the embedded broker's goroutine of
// the publishing terminal (several at once): it decodes and enqueues,
// never blocks.
func (a *Authorizer) onMessage(via *conn, m paho.Message) {
	if a.ctx.Err() != nil {
		return // closing: left unacknowledged, no worker would take it
	}
	terminal, ch, err := protocol.ParseTopic(m.Topic())
	if err != nil || !ch.Up() {
		a.log.Warn("authz: message on an unexpected topic dropped", "topic", m.Topic())
		m.Ack()
		return
	}
	j := job{msg: m, via: via, terminal: terminal, ch: ch, received: time.Now()}
	key := terminal
	switch ch {
	case protocol.ChanRequest:
		j.req = new(protocol.Request)
		err = protocol.Decode(m.Payload(), j.req)
		if err == nil && j.req.Terminal != terminal {
			err = fmt.Errorf("request for terminal %q on %q's topic", j.req.Terminal, terminal)
		}
		if err == nil && j.req.Op != protocol.OpNotices {
			key += "/" + string(j.req.Tx) // same transaction → same worker, in order
		}
	case protocol.ChanJournal:
		j.entry = new(protocol.JournalEntry)
		err = protocol.Decode(m.Payload(), j.entry)
		if err == nil && j.entry.Terminal != terminal {
			err = fmt.Errorf("journal entry for terminal %q on %q's topic", j.entry.Terminal, terminal)
		}
		if err == nil {
			key += "/" + string(j.entry.Tx)
		}
	case protocol.ChanStatus:
		j.status = new(protocol.StatusMsg)
		err = protocol.Decode(m.Payload(), j.status)
		if err == nil && j.status.Terminal != terminal {
			err = fmt.Errorf("status for terminal %q on %q's topic", j.status.Terminal, terminal)
		}
	}
	if err != nil {
		// The error names fields, never their values.
		a.log.Warn("authz: malformed message dropped", "terminal", terminal, "channel", string(ch), "bytes", len(m.Payload()), "err", err)
		m.Ack()
		return
	}
	j.key = key
	a.dispatch(j)
}

// dispatch queues j for any free worker, unless a message of the same key
// is queued or being handled: then j waits behind it, and the worker that
// handles that one handles j next. So a transaction's messages are handled
// one at a time, in order, and no message waits for one of another key
// (a fixed key-to-worker mapping would queue a payment behind another
// transaction's commits whenever two hash alike).
func (a *Authorizer) dispatch(j job) {
	a.keyMu.Lock()
	if a.held[j.terminal] >= heldPerTerminal*a.cfg.MaxPerTerminal {
		a.keyMu.Unlock()
		metrics.ShedTotal.WithLabelValues("terminal_flood").Inc()
		j.msg.Ack()
		return
	}
	a.held[j.terminal]++
	if j.movesMoney() {
		if a.inHand[j.terminal] >= a.cfg.MaxPerTerminal {
			j.burst = true // still handled in order: answered at once
		} else {
			a.inHand[j.terminal]++
		}
	}
	if waiting, busy := a.keys[j.key]; busy {
		a.keys[j.key] = append(waiting, j)
		a.keyMu.Unlock()
		return
	}
	a.keys[j.key] = nil
	a.keyMu.Unlock()
	a.queue.push(j)
}

// next returns the message that waits behind the one of key just handled,
// or forgets key when none does.
func (a *Authorizer) next(done job) (job, bool) {
	key := done.key
	a.keyMu.Lock()
	defer a.keyMu.Unlock()
	if a.held[done.terminal]--; a.held[done.terminal] <= 0 {
		delete(a.held, done.terminal)
	}
	if done.movesMoney() {
		if a.inHand[done.terminal]--; a.inHand[done.terminal] <= 0 {
			delete(a.inHand, done.terminal)
		}
	}
	waiting := a.keys[key]
	if len(waiting) == 0 {
		delete(a.keys, key)
		return job{}, false
	}
	j := waiting[0]
	waiting[0] = job{}
	a.keys[key] = waiting[1:]
	return j, true
}

// worker handles queued messages, and after each those of the same key
// that wait behind it, until Close. Messages not handled at Close stay
// unacknowledged and are redelivered.
func (a *Authorizer) worker() {
	defer a.wg.Done()
	for {
		j, ok := a.queue.pop(a.ctx)
		if !ok {
			return
		}
		for ok {
			a.handle(j)
			if a.ctx.Err() != nil {
				return
			}
			j, ok = a.next(j)
		}
	}
}

// queue is the FIFO the workers take messages from. push never blocks:
// paho's router must not stall, or the PUBACKs that workers wait for would
// stall behind it. Its length is bounded by the broker's in-flight window
// for this client, since messages are acknowledged only after they are
// handled, and by each terminal's bound on its messages in hand
// (dispatch); on top of that, at most maxMoney pay and hold requests
// wait to be worked on: one
// more marks the oldest of them shed (its terminal has waited longest and
// is the first to give up), which the worker then answers BUSY at once.
type queue struct {
	mu       sync.Mutex
	items    []job
	money    int // pay and hold requests in items not shed
	maxMoney int
	ready    chan struct{} // holds a token while items is non-empty
}

func newQueue(maxMoney int) *queue {
	return &queue{ready: make(chan struct{}, 1), maxMoney: maxMoney}
}

// movesMoney reports whether j is a request that may start moving money
// (one refused as a burst no longer may).
func (j *job) movesMoney() bool {
	return j.req != nil && !j.burst && (j.req.Op == protocol.OpPay || j.req.Op == protocol.OpHold)
}

func (q *queue) push(j job) {
	q.mu.Lock()
	q.items = append(q.items, j)
	if j.movesMoney() {
		q.money++
		metrics.QueueDepth.Inc()
		if q.money > q.maxMoney {
			for i := range q.items {
				if it := &q.items[i]; it.movesMoney() && !it.shed {
					it.shed = true
					q.money--
					metrics.QueueDepth.Dec()
					break
				}
			}
		}
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) pop(ctx context.Context) (job, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			j := q.items[0]
			q.items[0] = job{}
			q.items = q.items[1:]
			if j.movesMoney() && !j.shed {
				q.money--
				metrics.QueueDepth.Dec()
			}
			more := len(q.items) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			if ctx.Err() != nil {
				return job{}, false
			}
			return j, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			return job{}, false
		}
	}
}

func (a *Authorizer) handle(j job) {
	defer func() {
		if r := recover(); r != nil {
			// A bug in a handler must not take the authorizer down, nor
			// come back forever as a redelivered message.
			a.log.Error("authz: handler panic", "terminal", j.terminal, "channel", string(j.ch), "panic", fmt.Sprint(r))
			a.ack(j)
		}
	}()
	ctx := a.ctx
	switch j.ch {
	case protocol.ChanRequest:
		if j.req.Op == protocol.OpNotices {
			a.handleNotices(ctx, j)
		} else {
			a.handleRequest(ctx, j)
		}
	case protocol.ChanJournal:
		a.handleJournal(ctx, j)
	case protocol.ChanStatus:
		a.handleStatus(ctx, j)
	}
}

func (a *Authorizer) handleRequest(ctx context.Context, j job) {
	req := j.req
	var resp *protocol.Response
	finish := func() {}
	if j.shed || j.burst {
		resp = &protocol.Response{V: protocol.Version, Status: protocol.StatusDeclined}
		resp.SetReason(protocol.ErrBusy)
		if j.burst {
			resp.SetReason(protocol.ErrTerminalBurst)
		}
	} else if af, ok := a.backend.(AnswerFirst); ok {
		resp, finish = af.HandleRequestFirst(ctx, req)
		done := false
		defer func() { // even on a panic: finish releases the transaction
			if !done {
				finish()
			}
		}()
		f := finish
		finish = func() { done = true; f() }
	} else {
		resp = a.backend.HandleRequest(ctx, req)
	}
	if resp == nil {
		resp = &protocol.Response{Status: protocol.StatusDeclined}
		resp.SetReason(protocol.ErrInternal)
	}
	resp.Op, resp.Tx, resp.Terminal = req.Op, req.Tx, req.Terminal
	count(j, resp)
	// Stamped at publication, also on a replayed answer: terminals set
	// their clocks by it.
	resp.ServerTime = a.cfg.Now().UTC()
	// Debug only: an info line per payment costs more than the payment's
	// own storage work at a lunch rush (metrics count them).
	a.log.Debug("authz: request", "terminal", req.Terminal, "op", string(req.Op), "tx", string(req.Tx),
		"status", string(resp.Status), "code", resp.Code, "dup", j.msg.Duplicate())
	a.answer(j.via, protocol.Topic(protocol.ChanResponse, req.Terminal), resp)
	finish() // the record's last write, off the terminal's wait
	a.ack(j)
}

func (a *Authorizer) handleNotices(ctx context.Context, j job) {
	n, err := a.backend.Notices(ctx, j.terminal, j.req.Cursor)
	if err != nil {
		a.log.Error("authz: notices", "terminal", j.terminal, "err", err)
		a.ack(j) // the terminal asks again on its next connection or probe
		return
	}
	if n == nil {
		n = &protocol.Notice{Cursor: j.req.Cursor}
	}
	n.Terminal = j.terminal
	// Always answered, even when empty: the answer tells the terminal that
	// an authorizer is alive.
	a.publish(ctx, j.via, protocol.Topic(protocol.ChanNotify, j.terminal), false, n)
	a.ack(j)
}

func (a *Authorizer) handleJournal(ctx context.Context, j job) {
	e := j.entry
	ack := a.backend.ApplyJournal(ctx, e)
	if !j.received.IsZero() {
		metrics.OpSeconds.WithLabelValues("journal").Observe(time.Since(j.received).Seconds())
	}
	if ack == nil {
		a.log.Error("authz: journal entry not applied", "terminal", e.Terminal, "seq", e.Seq)
		a.ack(j) // not acked to the terminal: it resends
		return
	}
	ack.Terminal, ack.Seq, ack.Tx = e.Terminal, e.Seq, e.Tx
	a.log.Debug("authz: journal", "terminal", e.Terminal, "seq", e.Seq, "tx", string(e.Tx), "ok", ack.OK, "code", ack.Code)
	a.publish(ctx, j.via, protocol.Topic(protocol.ChanJournalAck, e.Terminal), false, ack)
	a.ack(j)
}

func (a *Authorizer) handleStatus(ctx context.Context, j job) {
	s := j.status
	a.mu.Lock()
	prev, known := a.statuses[s.Terminal]
	stale := known && (s.ConnSeq < prev.ConnSeq ||
		// A will of the same connection after its birth is news; a birth
		// repeated (retained copy) is not.
		s.ConnSeq == prev.ConnSeq && s.State == protocol.StateOnline && prev.State == protocol.StateOffline)
	cur := TerminalStatus{
		Terminal: s.Terminal, State: s.State, ConnSeq: s.ConnSeq, At: s.At,
		Seen: a.cfg.Now(), Software: s.Software, Broker: j.via.url,
		JournalDepth: -1, ConfigRevision: s.ConfigRevision,
	}
	if s.JournalDepth != nil {
		cur.JournalDepth = *s.JournalDepth
	} else if known && prev.ConnSeq == s.ConnSeq { // its will: keep what the connection last told
		cur.JournalDepth, cur.ConfigRevision = prev.JournalDepth, prev.ConfigRevision
	}
	changed := !stale && (!known || prev.State != s.State || prev.ConnSeq != s.ConnSeq)
	if !stale {
		a.statuses[s.Terminal] = cur
	}
	// Every connection of a terminal gets a fresh config once from this
	// authorizer: at its birth, or at the retained copy of the birth when
	// the authorizer (re)starts. server_time is then fresh, and a config
	// lost with an embedded broker's restart is restored.
	sendConfig := false
	if !stale && s.State == protocol.StateOnline {
		if last, ok := a.configured[s.Terminal]; !ok || s.ConnSeq > last {
			a.configured[s.Terminal] = s.ConnSeq
			sendConfig = true
		}
	}
	a.mu.Unlock()
	a.ack(j)
	if stale {
		a.log.Info("authz: stale status ignored", "terminal", s.Terminal, "state", s.State, "conn_seq", s.ConnSeq, "last_conn_seq", prev.ConnSeq)
		return
	}
	if changed {
		a.log.Info("authz: terminal status", "terminal", s.Terminal, "state", s.State, "conn_seq", s.ConnSeq, "retained", j.msg.Retained())
		if a.cfg.OnStatus != nil {
			a.cfg.OnStatus(cur)
		}
	}
	if sendConfig {
		// On the broker the birth came through: the terminal is there.
		if err := a.publishConfig(ctx, []*conn{j.via}, s.Terminal); err != nil {
			a.log.Warn("authz: config on birth", "terminal", s.Terminal, "broker", j.via.url, "err", err)
		}
	}
}

// count records a request's outcome and its time in this authorizer
// (queue included) in the metrics.
func count(j job, resp *protocol.Response) {
	if !j.received.IsZero() {
		metrics.OpSeconds.WithLabelValues(string(j.req.Op)).Observe(time.Since(j.received).Seconds())
	}
	switch {
	case j.burst:
		metrics.ShedTotal.WithLabelValues("terminal_burst").Inc()
	case j.shed:
		metrics.ShedTotal.WithLabelValues("queue_full").Inc()
	case resp.Code == protocol.ErrDeadline.Code:
		metrics.ShedTotal.WithLabelValues("deadline").Inc()
	case resp.Code == protocol.ErrRequestTime.Code:
		metrics.ShedTotal.WithLabelValues("clock").Inc()
	}
	if j.req.Op != protocol.OpPay {
		return
	}
	channel := resp.Channel
	if channel == "" {
		channel = "none" // refused before a funding channel was chosen
	}
	outcome := metrics.OutcomeRefused
	switch {
	case resp.Status == protocol.StatusApproved:
		outcome = metrics.OutcomeApproved
	case resp.Status == protocol.StatusPending:
		outcome = metrics.OutcomePending
	case resp.Status == protocol.StatusReversed:
		outcome = metrics.OutcomeReversed
	case resp.Code == protocol.ErrInternal.Code:
		outcome = metrics.OutcomeError
	}
	metrics.PaymentsTotal.WithLabelValues(channel, outcome).Inc()
}

// ack acknowledges a handled message to the broker. It is acknowledged
// even when the answer could not be published (the terminal asks again: the
// Backend answers a repeat the same way), so that unacknowledged messages
// never fill the broker's in-flight window for this client. While closing
// it stays unacknowledged and is redelivered.
func (a *Authorizer) ack(j job) {
	if a.ctx.Err() == nil {
		j.msg.Ack()
	}
}

// PublishConfig publishes terminal's current config, retained, stamped
// with the server time, on every connected broker. Call it when a
// terminal's config changes. A broker that is down misses it; the
// terminal's next birth there brings it a fresh one.
func (a *Authorizer) PublishConfig(ctx context.Context, terminal string) error {
	return a.publishConfig(ctx, a.upConns(), terminal)
}

func (a *Authorizer) publishConfig(ctx context.Context, to []*conn, terminal string) error {
	cfg, err := a.backend.TerminalConfig(ctx, terminal)
	if err != nil {
		return fmt.Errorf("authz: config of %s: %w", terminal, err)
	}
	if cfg == nil {
		return fmt.Errorf("authz: config of %s: none", terminal)
	}
	c := *cfg
	c.Terminal = terminal
	c.ServerTime = a.cfg.Now().UTC()
	if !a.publishAll(ctx, to, protocol.Topic(protocol.ChanConfig, terminal), true, &c) {
		return fmt.Errorf("authz: config of %s: not published", terminal)
	}
	return nil
}

// upConns returns the broker connections that are up, or all of them when
// none is (a publish then fails or waits for a reconnection as paho does).
func (a *Authorizer) upConns() []*conn {
	var out []*conn
	for _, c := range a.conns {
		if c.up.Load() {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return a.conns
	}
	return out
}

// publishAll publishes on each of to at once; it reports whether at least
// one broker took it.
func (a *Authorizer) publishAll(ctx context.Context, to []*conn, topic string, retained bool, m any) bool {
	b, encoded := a.encode(topic, m)
	if !encoded {
		return false
	}
	var ok atomic.Bool
	var wg sync.WaitGroup
	for _, c := range to {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if a.send(ctx, c, topic, retained, b) {
				ok.Store(true)
			}
		}()
	}
	wg.Wait()
	return ok.Load()
}

// PublishNotice pushes a notice (e.g. one new static-QR payment) to its
// terminal, on the broker it was last seen online on (every connected one
// if none). A terminal that misses it gets it again by cursor on its next
// connection.
func (a *Authorizer) PublishNotice(ctx context.Context, n *protocol.Notice) error {
	if n == nil || !protocol.ValidID(n.Terminal) {
		return errors.New("authz: notice without a valid terminal")
	}
	to := a.upConns()
	a.mu.Lock()
	st, known := a.statuses[n.Terminal]
	a.mu.Unlock()
	if known && st.State == protocol.StateOnline {
		for _, c := range a.conns {
			if c.url == st.Broker && c.up.Load() {
				to = []*conn{c}
			}
		}
	}
	if !a.publishAll(ctx, to, protocol.Topic(protocol.ChanNotify, n.Terminal), false, n) {
		return fmt.Errorf("authz: notice for %s: not published", n.Terminal)
	}
	return nil
}

// Statuses returns every terminal's last known status, sorted by terminal.
func (a *Authorizer) Statuses() []TerminalStatus {
	a.mu.Lock()
	out := make([]TerminalStatus, 0, len(a.statuses))
	for _, s := range a.statuses {
		out = append(out, s)
	}
	a.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Terminal < out[j].Terminal })
	return out
}

// publish encodes m and publishes it on broker via with QoS 1, waiting for
// the PUBACK up to PublishTimeout. It reports whether the broker took it.
func (a *Authorizer) publish(ctx context.Context, via *conn, topic string, retained bool, m any) bool {
	b, ok := a.encode(topic, m)
	return ok && a.send(ctx, via, topic, retained, b)
}

// answer publishes a response with QoS 1 without waiting for the broker's
// PUBACK: the answer is the terminal's business from here (a lost one is
// asked for again by query, or reversed), and a worker waiting for the
// PUBACK under overload is one not answering the next payment — with the
// broker's queue to this client full, PUBACKs come back seconds late.
func (a *Authorizer) answer(via *conn, topic string, resp *protocol.Response) {
	b, ok := a.encode(topic, resp)
	if !ok {
		return
	}
	tok := via.client.Publish(topic, 1, false, b)
	select {
	case <-tok.Done(): // failed at once (not connected)
		if err := tok.Error(); err != nil {
			a.log.Warn("authz: publish", "broker", via.url, "topic", topic, "err", err)
		}
	default:
	}
}

// encode encodes one of the messages the authorizer sends.
func (a *Authorizer) encode(topic string, m any) ([]byte, bool) {
	var b []byte
	var err error
	switch m := m.(type) {
	case *protocol.Response:
		b, err = protocol.Encode(m)
	case *protocol.JournalAck:
		b, err = protocol.Encode(m)
	case *protocol.Notice:
		b, err = protocol.Encode(m)
	case *protocol.Config:
		b, err = protocol.Encode(m)
	default:
		err = fmt.Errorf("unexpected %T", m)
	}
	if err != nil {
		a.log.Error("authz: encode", "topic", topic, "err", err)
		return nil, false
	}
	return b, true
}

// send publishes b on broker via with QoS 1 and waits for the PUBACK up to
// PublishTimeout.
func (a *Authorizer) send(ctx context.Context, via *conn, topic string, retained bool, b []byte) bool {
	tok := via.client.Publish(topic, 1, retained, b)
	t := time.NewTimer(a.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			a.log.Warn("authz: publish", "broker", via.url, "topic", topic, "err", err)
			return false
		}
		return true
	case <-t.C:
		a.log.Warn("authz: publish not acknowledged in time", "broker", via.url, "topic", topic)
		return false
	case <-ctx.Done():
		return false
	}
}
