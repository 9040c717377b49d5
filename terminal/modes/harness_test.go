package modes

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/terminal"
	"campuspay/terminal/device"
	"campuspay/terminal/device/devicetest"
	"campuspay/terminal/journal"
)

// The harness records, in one ordered log, every durable journal state
// change ("J Sent"), every screen ("S Await 1250 msg") and every request
// ("R pay 1250 code"), so that tests assert exact sequences.

var t0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

type reply struct {
	resp *protocol.Response
	err  error
}

type fakeLink struct {
	h       *harness
	mu      sync.Mutex
	replies []reply
	reqs    []*protocol.Request
	kicks   int
}

func (l *fakeLink) Request(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := req.Validate(); err != nil {
		l.h.t.Errorf("invalid request %+v: %v", req, err)
	}
	l.reqs = append(l.reqs, req)
	line := "R " + string(req.Op)
	if req.Amount != 0 {
		line += fmt.Sprint(" ", req.Amount)
	}
	if req.Cred != nil {
		line += " " + string(req.Cred.Kind)
	}
	if req.Op == protocol.OpCapture {
		line += fmt.Sprintf(" ml=%d", req.ML)
	}
	l.h.log = append(l.h.log, line)
	if len(l.replies) == 0 {
		l.h.t.Errorf("unscripted request %s", line)
		return nil, terminal.ErrNoResponse
	}
	r := l.replies[0]
	l.replies = l.replies[1:]
	if r.resp != nil {
		c := *r.resp
		c.Op, c.Tx, c.Terminal, c.V = req.Op, req.Tx, req.Terminal, protocol.Version
		return &c, nil
	}
	return nil, r.err
}

func (l *fakeLink) States() <-chan terminal.LinkState { return nil }
func (l *fakeLink) Configs() <-chan *protocol.Config  { return nil }
func (l *fakeLink) Notices() <-chan *protocol.Notice  { return nil }
func (l *fakeLink) Kick()                             { l.mu.Lock(); l.kicks++; l.mu.Unlock() }
func (l *fakeLink) Close() error                      { return nil }
func (l *fakeLink) script(r ...reply) {
	l.mu.Lock()
	l.replies = append(l.replies, r...)
	l.mu.Unlock()
}
func status(s protocol.Status) reply {
	return reply{resp: &protocol.Response{Status: s, ServerTime: t0}}
}
func declined(r *protocol.Reason) reply {
	x := status(protocol.StatusDeclined)
	x.resp.SetReason(r)
	return x
}
func noResponse() reply                           { return reply{err: terminal.ErrNoResponse} }
func linkDown() reply                             { return reply{err: terminal.ErrLinkDown} }
func approved(ch string) reply                    { x := status(protocol.StatusApproved); x.resp.Channel = ch; return x }
func held(hold int64) reply                       { x := status(protocol.StatusHeld); x.resp.Hold = hold; return x }
func (l *fakeLink) requests() []*protocol.Request { l.mu.Lock(); defer l.mu.Unlock(); return l.reqs }
func (l *fakeLink) pendingReplies() int           { l.mu.Lock(); defer l.mu.Unlock(); return len(l.replies) }
func (d *recDisplay) Halt() error                 { return d.Display.Halt() }
func (h *harness) advance(d time.Duration)        { h.now = h.now.Add(d) }
func (h *harness) clock() time.Time               { return h.now }
func (h *harness) tx(id protocol.TxID) *journal.Tx {
	t, err := h.j.Get(context.Background(), id)
	h.must(err)
	return t
}
func (h *harness) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

type recDisplay struct {
	*devicetest.Display
	h *harness
}

var kindNames = map[device.ScreenKind]string{
	device.ScreenBlank: "Blank", device.ScreenIdle: "Idle", device.ScreenAmount: "Amount", device.ScreenAwait: "Await",
	device.ScreenWorking: "Working", device.ScreenResult: "Result", device.ScreenOffline: "Offline",
	device.ScreenShower: "Shower", device.ScreenInput: "Input", device.ScreenNotices: "Notices",
}

func (d *recDisplay) Show(s device.Screen) error {
	line := "S " + kindNames[s.Kind]
	switch s.Kind {
	case device.ScreenResult:
		line += fmt.Sprint(" ok=", s.OK, " ", s.Amount)
	case device.ScreenAmount, device.ScreenAwait, device.ScreenOffline, device.ScreenWorking:
		line += fmt.Sprint(" ", s.Amount)
	case device.ScreenShower:
		line += fmt.Sprintf(" %.2fL %d/%d", s.Litres, s.Amount, s.Hold)
	case device.ScreenInput:
		line += " [" + s.Input + "]"
	case device.ScreenNotices:
		line += fmt.Sprint(" ", len(s.Lines))
	}
	if s.Message != "" {
		line += " | " + s.Message
	}
	d.h.log = append(d.h.log, line)
	return d.Display.Show(s)
}

type harness struct {
	t    *testing.T
	now  time.Time
	log  []string
	j    *journal.Journal
	link *fakeLink
	disp *recDisplay
	kp   *devicetest.Keypad
	sc   *devicetest.Scanner
	cr   *devicetest.CardReader
	vl   *devicetest.Valve
	fm   *devicetest.FlowMeter
	m    *Machine
	cfg  *protocol.Config
	path string

	cert   []byte
	device ed25519.PrivateKey
	seq    uint16
	rnd    *rand.Rand
}

func newHarness(t *testing.T, mode protocol.Mode, edit func(*protocol.Config)) *harness {
	h := &harness{t: t, now: t0, rnd: rand.New(rand.NewSource(1))}
	h.path = filepath.Join(t.TempDir(), "journal.db")
	h.openJournal()
	h.link = &fakeLink{h: h}
	h.disp = &recDisplay{Display: devicetest.NewDisplay(), h: h}
	h.kp, h.sc, h.cr = devicetest.NewKeypad(), devicetest.NewScanner(), devicetest.NewCardReader()
	h.vl, h.fm = devicetest.NewValve(), devicetest.NewFlowMeter()

	ipub, ipriv, _ := ed25519.GenerateKey(h.rnd)
	dpub, dpriv, _ := ed25519.GenerateKey(h.rnd)
	cert, err := protocol.IssueCertificate(protocol.Certificate{KeyID: 1, UserID: 42, DeviceID: 900,
		DeviceKey: dpub, Expires: t0.Add(24 * time.Hour)}, ipriv)
	h.must(err)
	h.cert, h.device = cert, dpriv
	spub, _, err := protocol.NewSealKey(h.rnd)
	h.must(err)
	h.cfg = &protocol.Config{V: 1, Revision: 1, Terminal: "T1", Merchant: "M1", Campus: "yungu", Mode: mode,
		IssuerKeys: []protocol.IssuerKey{{ID: 1, Key: base64.StdEncoding.EncodeToString(ipub)}},
		SealKey:    base64.StdEncoding.EncodeToString(spub[:]), MerchantQR: "CM1:STATICQR",
		LostCards: []string{"DEAD"}, AuthTimeoutMS: 1000, ServerTime: t0,
		Tariff: &protocol.Tariff{CentsPerLitre: 30, PulsesPerLitre: 450, Hold: 1500, IdleTimeoutS: 30}}
	if edit != nil {
		edit(h.cfg)
	}
	h.newMachine(mode)
	return h
}

func (h *harness) openJournal() {
	j, err := journal.Open(h.path, journal.Options{Terminal: "T1", Now: h.clock,
		OnState: func(_ protocol.TxID, s journal.State) { h.log = append(h.log, "J "+s.String()) }})
	h.must(err)
	h.j = j
	h.t.Cleanup(func() { j.Close() })
}

func (h *harness) newMachine(mode protocol.Mode) {
	devs := Devices{Display: h.disp, Keypad: h.kp}
	switch mode {
	case protocol.ModePOS:
		devs.Scanner, devs.Card = h.sc, h.cr
	case protocol.ModeCard:
		devs.Card = h.cr
	case protocol.ModeShower:
		devs.Card, devs.Valve, devs.Meter = h.cr, h.vl, h.fm
	}
	m, err := New(Options{Mode: mode, Terminal: "T1", Journal: h.j, Link: h.link, Devices: devs,
		Config: h.cfg, Now: h.clock, Rand: h.rnd, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h.must(err)
	h.m = m
}

// payCode makes a fresh campus payment code.
func (h *harness) payCode(p protocol.Purpose) string {
	h.seq++
	s, err := protocol.MakeCode(h.cert, h.device, p, h.now, h.seq)
	h.must(err)
	return s
}

// step handles events and checks the exact log they produce and the
// machine's state afterwards.
func (h *harness) step(ev any, state State, want ...string) {
	h.t.Helper()
	h.log = nil
	if err := h.m.Handle(context.Background(), ev); err != nil {
		h.t.Fatalf("Handle(%T %v): %v", ev, ev, err)
	}
	if want == nil {
		want = []string{}
	}
	got := h.log
	if got == nil {
		got = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("after %T %v:\n got: %s\nwant: %s", ev, ev, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	if h.m.State() != state {
		h.t.Fatalf("after %T %v: state %v, want %v", ev, ev, h.m.State(), state)
	}
}

// keys presses each key of s, ignoring the log.
func (h *harness) keys(s string) {
	h.t.Helper()
	for _, r := range s {
		h.must(h.m.Handle(context.Background(), KeyEvent{device.Key(r)}))
	}
}

func key(k device.Key) KeyEvent  { return KeyEvent{k} }
func scan(text string) ScanEvent { return ScanEvent{device.Scan{Text: text, Source: "fake"}} }
func tap(uid string) TapEvent    { return TapEvent{device.Tap{UID: uid, Source: "fake"}} }
func up() LinkEvent              { return LinkEvent{terminal.LinkUp} }
func down() LinkEvent            { return LinkEvent{terminal.LinkDown} }
func tick() TickEvent            { return TickEvent{} }
func (h *harness) online()       { h.t.Helper(); h.must(h.m.Handle(context.Background(), up())) }
func (h *harness) entries() []protocol.JournalEntry {
	e, err := h.j.Entries(context.Background())
	h.must(err)
	return e
}
