// Package modes holds the terminal's three mode state machines — pos
// (pos.go), card (card.go) and shower (shower.go) — on one event loop
// with the parts they share: journal-first transactions, in-doubt
// reversal, the offline static-QR screen and static-QR notices, and
// start-up recovery (recover.go).
//
// A Machine is driven by events (keys, scans, card taps, link states,
// configs, notices, clock ticks) through Handle, one at a time; Run feeds
// it from the devices and the link. Everything a Machine does to the world
// happens inside Handle in a fixed order — journal write, then the action
// it makes durable — so tests drive Handle directly with an injected clock
// and check the exact sequence of journal states, screens and requests.
//
// Money rules kept here: a transaction's row is written before its
// request is sent; a request whose deadline passes is reversed by its ID
// (retried from the journal until acknowledged) before the customer is
// offered any other way to pay; the valve is opened only after ValveOpen
// is durable and the shower is captured from durable meter values.
package modes

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"campuspay/protocol"
	"campuspay/terminal"
	"campuspay/terminal/device"
	"campuspay/terminal/journal"
	"campuspay/terminal/precheck"
)

// State is the machine's state. Numbers are explicit: they are logged,
// exported as a metric and shown on the status page. The durable state is
// the journal's; this one is rebuilt by recovery.
type State int

// States.
const (
	StateIdle        State = 1  // ready: pos/card wait for the cashier, shower for the account
	StateAmount      State = 2  // the cashier is keying an amount
	StateAwait       State = 3  // waiting for a code or a card for the amount
	StateAuthorising State = 4  // a pay or hold request is out
	StateUserPaying  State = 5  // WeChat USERPAYING: polling until approved, declined or the deadline
	StateReversing   State = 6  // in-doubt transactions are being reversed; nothing else is offered
	StateResult      State = 7  // showing a result for a few seconds
	StateNotices     State = 8  // showing static-QR payments made while offline
	StatePassword    State = 9  // shower: keying the water password
	StateShowering   State = 10 // shower: valve open, metering
	StateFault       State = 11 // the journal or the valve failed: nothing is accepted
)

var stateNames = map[State]string{
	StateIdle: "idle", StateAmount: "amount", StateAwait: "await", StateAuthorising: "authorising",
	StateUserPaying: "user_paying", StateReversing: "reversing", StateResult: "result",
	StateNotices: "notices", StatePassword: "password", StateShowering: "showering", StateFault: "fault",
}

func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Events a Machine handles.
type (
	// KeyEvent is a key press.
	KeyEvent struct{ Key device.Key }
	// ScanEvent is a code read by the scanner.
	ScanEvent struct{ Scan device.Scan }
	// TapEvent is a card presented to the reader.
	TapEvent struct{ Tap device.Tap }
	// LinkEvent is a link state change.
	LinkEvent struct{ State terminal.LinkState }
	// ConfigEvent is a retained config received.
	ConfigEvent struct{ Config *protocol.Config }
	// NoticeEvent is a static-QR payment notice.
	NoticeEvent struct{ Notice *protocol.Notice }
	// TickEvent means time passed: timers due at or before Now fire.
	TickEvent struct{}
)

// Devices are the machine's devices; roles a mode does not use may be nil.
type Devices struct {
	Display device.Display // required
	Keypad  device.Keypad
	Scanner device.Scanner
	Card    device.CardReader
	Valve   device.Valve     // shower
	Meter   device.FlowMeter // shower
}

// Timing defaults.
const (
	DefaultAuthTimeout   = 10 * time.Second // when the config has no AuthTimeoutMS
	DefaultPollInterval  = 2 * time.Second  // USERPAYING query interval
	DefaultPayingTimeout = 60 * time.Second // USERPAYING: reverse after this
	DefaultRetryInterval = 5 * time.Second  // reversal retries
	DefaultResultHold    = 5 * time.Second  // how long a result stays up
	DefaultNoticeHold    = 30 * time.Second // how long static-QR notices stay up
	DefaultMeterInterval = time.Second      // shower meter reads
	DefaultIdleTimeout   = 60 * time.Second // shower idle, when the tariff has none
	DefaultRetapInterval = 60 * time.Second // card: see card.go
	heartbeat            = time.Second      // Run wakes at least this often
	meterFailLimit       = 3                // consecutive meter failures before closing
)

// Options configure a Machine.
type Options struct {
	Mode     protocol.Mode
	Terminal string
	Journal  *journal.Journal
	Link     terminal.Link
	Devices  Devices
	Config   *protocol.Config // the cached config, or nil

	Now  func() time.Time // local clock; nil = time.Now
	Rand io.Reader        // transaction IDs and sealing; nil = crypto/rand
	Log  *slog.Logger     // nil = slog.Default()

	// AuthTimeout is the request deadline when the authorizer's config
	// sets none (default DefaultAuthTimeout).
	AuthTimeout   time.Duration
	PollInterval  time.Duration
	PayingTimeout time.Duration
	RetryInterval time.Duration
	ResultHold    time.Duration
	NoticeHold    time.Duration
	MeterInterval time.Duration
	// RetapInterval: after a restart, the first tap of a card whose last
	// tap (in the journal) came before the restart and less than this
	// long ago does not pay: the card may have stayed on the reader
	// across the restart (card.go).
	RetapInterval time.Duration

	// Heartbeat, when set, is called on every turn of Run's loop (at least
	// once a second): the daemon feeds the systemd watchdog from it.
	Heartbeat func()
}

// Machine is one terminal's mode state machine.
type Machine struct {
	o     Options
	log   *slog.Logger
	clock *precheck.Clock
	check *precheck.Checker

	cfg         *protocol.Config
	sawResponse bool // the clock offset came from a response, not a retained config
	clockSet    bool // a server time was observed since start: offline codes may be judged (offline.go)
	online      bool
	state       State

	input    string // keyed amount, or shower account number
	secret   []byte // shower water password being typed; wiped after sealing
	prompt   *protocol.Reason
	amount   int64
	card     string // shower: the tapped card's UID
	cur      *journal.Tx
	until    time.Time // result / notices screen until
	afterRes State     // state to return to after a result or notices

	pollAt   time.Time
	reversal []*journal.Tx
	revWhy   *protocol.Reason
	retryAt  time.Time
	queryTx  map[protocol.TxID]bool // recovered USERPAYING: query before reversing

	lines []string // static-QR payments not yet shown

	started time.Time       // when this machine (process) started
	tapped  map[string]bool // UIDs reported since started; nil once past RetapInterval

	meterAt    time.Time
	lastFlowAt time.Time
	meterFails int

	mu   sync.Mutex
	snap Snapshot
}

// Snapshot is what the status page shows.
type Snapshot struct {
	Mode      protocol.Mode
	State     State
	Online    bool
	Amount    int64
	Reversals int
	Offset    time.Duration
	Config    uint64 // config revision, 0 = none
}

// New returns a machine in StateIdle. Call Recover before Run.
func New(o Options) (*Machine, error) {
	if o.Journal == nil || o.Link == nil || o.Devices.Display == nil {
		return nil, errors.New("modes: journal, link and display are required")
	}
	switch o.Mode {
	case protocol.ModePOS:
		if o.Devices.Scanner == nil && o.Devices.Card == nil {
			return nil, errors.New("modes: pos needs a scanner or a card reader")
		}
		if o.Devices.Keypad == nil {
			return nil, errors.New("modes: pos needs a keypad")
		}
	case protocol.ModeCard:
		if o.Devices.Card == nil {
			return nil, errors.New("modes: card mode needs a card reader")
		}
	case protocol.ModeShower:
		if o.Devices.Valve == nil || o.Devices.Meter == nil || o.Devices.Keypad == nil {
			return nil, errors.New("modes: shower needs a valve, a flow meter and a keypad")
		}
	default:
		return nil, fmt.Errorf("modes: unknown mode %q", o.Mode)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.AuthTimeout, DefaultAuthTimeout)
	def(&o.PollInterval, DefaultPollInterval)
	def(&o.PayingTimeout, DefaultPayingTimeout)
	def(&o.RetryInterval, DefaultRetryInterval)
	def(&o.ResultHold, DefaultResultHold)
	def(&o.NoticeHold, DefaultNoticeHold)
	def(&o.MeterInterval, DefaultMeterInterval)
	def(&o.RetapInterval, DefaultRetapInterval)
	m := &Machine{o: o, log: o.Log.With("mode", string(o.Mode)), cfg: o.Config, state: StateIdle,
		queryTx: map[protocol.TxID]bool{}, started: o.Now(), tapped: map[string]bool{}}
	m.clock = &precheck.Clock{Local: o.Now}
	m.check = &precheck.Checker{Seen: o.Journal, Now: m.clock.Now}
	m.home()
	m.publish()
	return m, nil
}

// State returns the current state (for tests; use Snapshot concurrently).
func (m *Machine) State() State { return m.state }

// Snapshot returns the machine's state for the status page. It is safe to
// call from any goroutine.
func (m *Machine) Snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snap
}

func (m *Machine) publish() {
	s := Snapshot{Mode: m.o.Mode, State: m.state, Online: m.online, Amount: m.amount,
		Reversals: len(m.reversal), Offset: m.clock.Offset()}
	if m.cfg != nil {
		s.Config = m.cfg.Revision
	}
	m.mu.Lock()
	m.snap = s
	m.mu.Unlock()
}

// Handle processes one event. It returns an error only when the machine
// cannot go on safely (the journal failed); the machine is then in
// StateFault and the caller should stop the daemon.
func (m *Machine) Handle(ctx context.Context, ev any) error {
	defer m.publish()
	if m.state == StateFault {
		return nil
	}
	var err error
	switch ev := ev.(type) {
	case LinkEvent:
		err = m.onLink(ctx, ev.State)
	case ConfigEvent:
		err = m.onConfig(ctx, ev.Config)
	case NoticeEvent:
		err = m.onNotice(ctx, ev.Notice)
	case TickEvent:
		err = m.onTick(ctx)
	case KeyEvent:
		err = m.onKey(ctx, ev.Key)
	case ScanEvent:
		err = m.onScan(ctx, ev.Scan)
	case TapEvent:
		err = m.onTap(ctx, ev.Tap)
	default:
		return fmt.Errorf("modes: unknown event %T", ev)
	}
	if err != nil {
		m.fault(err)
		return err
	}
	return nil
}

func (m *Machine) fault(err error) {
	m.log.Error("fault: accepting nothing until restarted", "err", err)
	m.state = StateFault
	if m.o.Devices.Valve != nil {
		if herr := m.o.Devices.Valve.Halt(); herr != nil {
			m.log.Error("valve halt", "err", herr)
		}
	}
	m.show(device.Screen{Kind: device.ScreenResult, Title: "终端故障，暂停服务", TitleEN: "Out of service",
		Message: protocol.ErrInternal.ZH, MessageEN: protocol.ErrInternal.EN})
}

// Wake returns when the machine next needs a TickEvent (zero: only on
// events).
func (m *Machine) Wake() time.Time {
	var w time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (w.IsZero() || t.Before(w)) {
			w = t
		}
	}
	if len(m.reversal) > 0 {
		at(m.retryAt)
	}
	switch m.state {
	case StateResult, StateNotices:
		at(m.until)
	case StateUserPaying:
		at(m.pollAt)
	case StateShowering:
		at(m.meterAt)
	}
	return w
}

func (m *Machine) onTick(ctx context.Context) error {
	now := m.o.Now()
	if len(m.reversal) > 0 && !now.Before(m.retryAt) {
		if err := m.retryReversals(ctx); err != nil {
			return err
		}
	}
	switch m.state {
	case StateResult, StateNotices:
		if now.Before(m.until) {
			break
		}
		if m.state == StateNotices {
			m.lines = nil
			m.leaveNotices()
			break
		}
		if m.afterRes == StateAwait {
			m.state, m.cur, m.prompt, m.afterRes = StateAwait, nil, nil, 0
		} else {
			m.home()
		}
		m.render()
		m.showNotices()
	case StateUserPaying:
		if !now.Before(m.pollAt) {
			return m.poll(ctx)
		}
	case StateShowering:
		if !now.Before(m.meterAt) {
			return m.meter(ctx)
		}
	}
	return nil
}

func (m *Machine) onLink(ctx context.Context, s terminal.LinkState) error {
	was := m.online
	m.online = s == terminal.LinkUp
	if m.prompt == protocol.ErrOffline {
		m.prompt = nil
	}
	m.log.Info("link", "state", s.String())
	m.render()
	// The link itself asks for the static-QR notices after the journal's
	// cursor on every connection; they arrive as NoticeEvents.
	if m.online && !was {
		if len(m.reversal) > 0 {
			m.retryAt = m.o.Now() // retry now, not at the next interval
			return m.retryReversals(ctx)
		}
	}
	return nil
}

func (m *Machine) onConfig(ctx context.Context, c *protocol.Config) error {
	if c == nil {
		return nil
	}
	if c.Terminal != m.o.Terminal {
		m.log.Warn("config for another terminal ignored", "terminal", c.Terminal)
		return nil
	}
	if c.Mode != m.o.Mode {
		m.log.Warn("config mode differs from the daemon's", "config", c.Mode, "daemon", m.o.Mode)
	}
	if m.cfg != nil && c.Revision < m.cfg.Revision {
		return nil
	}
	// A retained config may be old: its time only seeds the clock until a
	// response brings a fresh one.
	if !m.sawResponse {
		m.clock.Observe(c.ServerTime)
	}
	m.clockSet = m.clockSet || !c.ServerTime.IsZero()
	if err := m.o.Journal.SaveConfig(ctx, c); err != nil {
		m.log.Error("cache config", "err", err) // the config is still used
	}
	m.cfg = c
	// The authorizer republishes the config on every reconnection: an
	// idle box (or a card box awaiting its fixed amount, which may have
	// changed) starts over, but an amount the cashier keyed stays up.
	if m.state == StateIdle || m.state == StateAwait && m.input == "" {
		m.home()
		m.render()
	}
	return nil
}

func (m *Machine) onNotice(ctx context.Context, n *protocol.Notice) error {
	if n == nil || n.Terminal != m.o.Terminal {
		return nil
	}
	fresh, err := m.o.Journal.RecordNotice(ctx, n)
	if err != nil {
		return err
	}
	if len(fresh) == 0 {
		return nil
	}
	m.o.Link.Kick()
	for _, p := range fresh {
		m.lines = append(m.lines, noticeLine(p))
	}
	m.showNotices()
	return nil
}

// noticeLine is one static-QR payment as the cashier sees it. Two
// students paying the same amount a minute apart, or one paying twice,
// must not look alike: the time has seconds and the line ends with the
// last digits of the transaction, which the student's app shows too.
func noticeLine(p protocol.StaticQRPayment) string {
	id := string(p.Tx)
	return fmt.Sprintf("%s  ¥%s  %s  #%s", p.At.Local().Format("01-02 15:04:05"),
		protocol.FormatCents(p.Amount), p.User, id[max(0, len(id)-noticeTxDigits):])
}

// noticeTxDigits is how many trailing characters of a static-QR payment's
// transaction ID the notices screen shows.
const noticeTxDigits = 4

// showNotices puts the pending notices up if the cashier is not in the
// middle of a payment.
func (m *Machine) showNotices() {
	if len(m.lines) == 0 || len(m.reversal) > 0 {
		return
	}
	switch m.state {
	case StateIdle, StateAmount, StateAwait:
		m.afterRes = m.state
	case StateNotices:
	default:
		return
	}
	m.state = StateNotices
	m.until = m.o.Now().Add(m.o.NoticeHold)
	m.render()
}

// request sends req with the authorisation deadline and learns the
// server's time from the response.
func (m *Machine) request(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	req.V, req.Terminal, req.At = protocol.Version, m.o.Terminal, m.clock.Now()
	if m.o.Heartbeat != nil {
		m.o.Heartbeat() // a bounded wait follows: the loop is not hung
	}
	rctx, cancel := context.WithTimeout(ctx, m.authTimeout())
	defer cancel()
	resp, err := m.o.Link.Request(rctx, req)
	if err != nil {
		m.log.Warn("request failed", "op", req.Op, "tx", req.Tx, "err", err)
		return nil, err
	}
	if !resp.ServerTime.IsZero() {
		m.clock.Observe(resp.ServerTime)
		m.sawResponse, m.clockSet = true, true
	}
	return resp, nil
}

func (m *Machine) authTimeout() time.Duration {
	if m.cfg != nil && m.cfg.AuthTimeoutMS > 0 {
		return time.Duration(m.cfg.AuthTimeoutMS) * time.Millisecond
	}
	return m.o.AuthTimeout
}

func (m *Machine) newTx(flow journal.Flow, amount int64, kind protocol.CredKind) (*journal.Tx, error) {
	id, err := protocol.NewTxID(m.o.Now(), m.o.Rand)
	if err != nil {
		return nil, err
	}
	return &journal.Tx{ID: id, Flow: flow, Amount: amount, CredKind: kind}, nil
}

func (m *Machine) show(s device.Screen) {
	s.Online = m.online
	if err := m.o.Devices.Display.Show(s); err != nil {
		m.log.Warn("display", "err", err)
	}
}

func (m *Machine) result(ok bool, title, titleEN string, why *protocol.Reason, amount int64, then State) {
	s := device.Screen{Kind: device.ScreenResult, OK: ok, Title: title, TitleEN: titleEN, Amount: amount}
	if why != nil {
		s.Message, s.MessageEN = why.ZH, why.EN
	}
	m.state, m.afterRes = StateResult, then
	m.until = m.o.Now().Add(m.o.ResultHold)
	m.show(s)
}

func sealKey(cfg *protocol.Config) (*[32]byte, error) {
	b, err := base64.StdEncoding.DecodeString(cfg.SealKey)
	if err != nil || len(b) != 32 {
		return nil, errors.New("modes: config seal key is not 32 bytes of base64")
	}
	var k [32]byte
	copy(k[:], b)
	return &k, nil
}
