package authz

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"campuspay/protocol"
	"campuspay/server/metrics"
)

// fakeMsg is a paho.Message fed straight into the handler.
type fakeMsg struct {
	topic   string
	payload []byte
	retain  bool
	mu      sync.Mutex
	acked   int
	ackedCh chan struct{} // closed at the first Ack, if set
}

func (m *fakeMsg) Duplicate() bool   { return false }
func (m *fakeMsg) Qos() byte         { return 1 }
func (m *fakeMsg) Retained() bool    { return m.retain }
func (m *fakeMsg) Topic() string     { return m.topic }
func (m *fakeMsg) MessageID() uint16 { return 1 }
func (m *fakeMsg) Payload() []byte   { return m.payload }
func (m *fakeMsg) Ack() {
	m.mu.Lock()
	m.acked++
	if m.acked == 1 && m.ackedCh != nil {
		close(m.ackedCh)
	}
	m.mu.Unlock()
}

// blockingBackend blocks pays of tx `slow` until release is closed and
// records the order of calls.
type blockingBackend struct {
	slow    protocol.TxID
	release chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	calls   []string
	other   chan protocol.TxID
}

func (b *blockingBackend) HandleRequest(_ context.Context, r *protocol.Request) *protocol.Response {
	if r.Tx == b.slow && r.Op == protocol.OpPay {
		close(b.entered)
		<-b.release
	}
	b.mu.Lock()
	b.calls = append(b.calls, string(r.Op)+":"+string(r.Tx))
	b.mu.Unlock()
	if r.Tx != b.slow {
		b.other <- r.Tx
	}
	return &protocol.Response{Status: protocol.StatusApproved}
}
func (b *blockingBackend) ApplyJournal(_ context.Context, e *protocol.JournalEntry) *protocol.JournalAck {
	return &protocol.JournalAck{OK: true}
}
func (b *blockingBackend) Notices(context.Context, string, uint64) (*protocol.Notice, error) {
	return nil, nil
}
func (b *blockingBackend) TerminalConfig(_ context.Context, t string) (*protocol.Config, error) {
	return &protocol.Config{Terminal: t, Mode: protocol.ModePOS}, nil
}
func (b *blockingBackend) AuthenticateTerminal(context.Context, string, string) bool { return false }

func newOffline(t *testing.T, b Backend) *Authorizer {
	t.Helper()
	// Never connected: publishes fail at once, which is all these tests need.
	a, err := New(Config{Broker: "tcp://127.0.0.1:1", Username: "authz-test", Workers: 8, PublishTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func txID(t *testing.T, n byte) protocol.TxID {
	id, err := protocol.NewTxID(time.Unix(1700000000, 0), readerOf(n))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type readerOf byte

func (r readerOf) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func reqMsg(t *testing.T, op protocol.Op, tx protocol.TxID) *fakeMsg {
	return termMsg(t, "T1", op, tx)
}

// termMsg is a request of op from terminal, its first Ack closing ackedCh.
func termMsg(t *testing.T, terminal string, op protocol.Op, tx protocol.TxID) *fakeMsg {
	t.Helper()
	r := &protocol.Request{Op: op, Tx: tx, Terminal: terminal, At: time.Unix(1700000000, 0)}
	if op == protocol.OpPay {
		r.Amount, r.Cred = 100, &protocol.Credential{Kind: protocol.CredCard, Text: "01"}
	}
	b, err := protocol.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeMsg{topic: protocol.Topic(protocol.ChanRequest, terminal), payload: b, ackedCh: make(chan struct{})}
}

// Messages about one transaction are handled one at a time, in order;
// every other transaction goes on meanwhile (none waits behind it).
func TestSameTxSerialized(t *testing.T) {
	slow := txID(t, 1)
	b := &blockingBackend{slow: slow, release: make(chan struct{}), entered: make(chan struct{}), other: make(chan protocol.TxID, 100)}
	a := newOffline(t, b)
	a.onMessage(a.conns[0], reqMsg(t, protocol.OpPay, slow))
	<-b.entered
	rev := reqMsg(t, protocol.OpReverse, slow)
	rev.ackedCh = make(chan struct{})
	a.onMessage(a.conns[0], rev)
	// Other transactions are answered while the slow one blocks its worker.
	want := map[protocol.TxID]bool{}
	for i := byte(2); i < 40; i++ {
		tx := txID(t, i)
		want[tx] = true // none waits behind the slow one
		a.onMessage(a.conns[0], reqMsg(t, protocol.OpQuery, tx))
	}
	for len(want) > 0 {
		select {
		case tx := <-b.other:
			delete(want, tx)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d other transactions not handled while one was slow", len(want))
		}
	}
	b.mu.Lock()
	for _, c := range b.calls {
		if c == "reverse:"+string(slow) {
			t.Fatal("the reversal ran while the payment of the same Tx was in progress")
		}
	}
	b.mu.Unlock()
	close(b.release)
	select {
	case <-rev.ackedCh:
	case <-time.After(10 * time.Second):
		t.Fatal("reversal never handled")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var order []string
	for _, c := range b.calls {
		if c == "pay:"+string(slow) || c == "reverse:"+string(slow) {
			order = append(order, c[:3])
		}
	}
	if len(order) != 2 || order[0] != "pay" || order[1] != "rev" {
		t.Fatalf("order %v, want pay then reverse", order)
	}
}

func TestStatusStaleness(t *testing.T) {
	a := newOffline(t, &blockingBackend{other: make(chan protocol.TxID, 10)})
	st := func(state string, seq uint64, retained bool) {
		b, _ := protocol.Encode(&protocol.StatusMsg{Terminal: "T1", State: state, ConnSeq: seq})
		var s protocol.StatusMsg
		if err := protocol.Decode(b, &s); err != nil {
			t.Fatal(err)
		}
		a.handleStatus(context.Background(), job{msg: &fakeMsg{retain: retained}, via: a.conns[0], terminal: "T1", ch: protocol.ChanStatus, status: &s})
	}
	tests := []struct {
		state     string
		seq       uint64
		wantState string
		wantSeq   uint64
	}{
		{protocol.StateOnline, 3, protocol.StateOnline, 3},
		{protocol.StateOffline, 2, protocol.StateOnline, 3},  // an older connection's will
		{protocol.StateOnline, 2, protocol.StateOnline, 3},   // an older birth
		{protocol.StateOnline, 3, protocol.StateOnline, 3},   // repeated birth
		{protocol.StateOffline, 3, protocol.StateOffline, 3}, // this connection's will
		{protocol.StateOnline, 3, protocol.StateOffline, 3},  // its birth replayed after the will
		{protocol.StateOnline, 4, protocol.StateOnline, 4},   // reconnected
	}
	for i, tt := range tests {
		st(tt.state, tt.seq, false)
		got := a.Statuses()
		if len(got) != 1 || got[0].State != tt.wantState || got[0].ConnSeq != tt.wantSeq {
			t.Fatalf("step %d (%s %d): statuses %+v, want %s %d", i, tt.state, tt.seq, got, tt.wantState, tt.wantSeq)
		}
	}
}

// FuzzOnMessage feeds arbitrary payloads on every up topic: nothing may
// panic or reach the backend unless it decodes.
func FuzzOnMessage(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","at":"2026-01-01T00:00:00Z","amount":100,"cred":{"kind":"card","text":"01"}}`,
		`{"v":1,"terminal":"T1","seq":1,"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","kind":"payment","status":"approved","amount":1,"at":"2026-01-01T00:00:00Z"}`,
		`{"v":1,"terminal":"T1","state":"online","conn_seq":1}`,
		`{"v":1,"op":"notices","tx":"","terminal":"T1","at":"2026-01-01T00:00:00Z","cursor":5}`,
		`{}`, `null`, `[`, "\x00",
	} {
		for _, ch := range []byte{0, 1, 2} {
			f.Add(ch, []byte(s))
		}
	}
	b := &countingOK{}
	f.Fuzz(func(t *testing.T, ch byte, payload []byte) {
		a := newOffline(t, b)
		c := []protocol.Channel{protocol.ChanRequest, protocol.ChanJournal, protocol.ChanStatus}[int(ch)%3]
		m := &fakeMsg{topic: protocol.Topic(c, "T1"), payload: payload}
		a.onMessage(a.conns[0], m)
		if json.Valid(payload) || len(payload) == 0 {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.acked != 1 {
			t.Fatalf("invalid JSON not dropped and acked: %q", payload)
		}
	})
}

type countingOK struct{ blockingBackend }

func (c *countingOK) HandleRequest(context.Context, *protocol.Request) *protocol.Response {
	return &protocol.Response{Status: protocol.StatusApproved}
}

// A worker's queue holds at most maxMoney pay and hold requests waiting:
// one more sheds the oldest waiting one (its terminal gives up first),
// never a query, a reversal or a journal entry, and the shed request is
// still delivered to the worker, which answers it BUSY without the backend.
func TestQueueShedsOldestPayment(t *testing.T) {
	q := newQueue(2)
	mk := func(op protocol.Op, n byte) job {
		return job{req: &protocol.Request{Op: op, Tx: txID(t, n)}}
	}
	push := []job{
		mk(protocol.OpReverse, 1), // never shed
		mk(protocol.OpPay, 2),
		mk(protocol.OpHold, 3),
		{entry: &protocol.JournalEntry{Seq: 1}}, // never shed
		mk(protocol.OpPay, 4),                   // over the bound: 2 is shed
		mk(protocol.OpQuery, 5),                 // not money: no shedding
		mk(protocol.OpPay, 6),                   // over again: 3 is shed
	}
	for _, j := range push {
		q.push(j)
	}
	want := []string{"reverse", "pay shed", "hold shed", "journal", "pay", "query", "pay"}
	var got []string
	for range push {
		j, ok := q.pop(context.Background())
		if !ok {
			t.Fatal("queue closed")
		}
		s := "journal"
		if j.req != nil {
			s = string(j.req.Op)
		}
		if j.shed {
			s += " shed"
		}
		got = append(got, s)
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if q.money != 0 {
		t.Fatalf("money count %d after draining, want 0", q.money)
	}
}

// countingBackend counts the requests that reach it.
type countingBackend struct {
	blockingBackend
	n int
}

func (c *countingBackend) HandleRequest(ctx context.Context, r *protocol.Request) *protocol.Response {
	c.n++
	return &protocol.Response{Status: protocol.StatusApproved}
}

// A shed request is answered BUSY and acknowledged, and never reaches the
// backend (no money path work at all).
func TestShedRequestAnsweredBusy(t *testing.T) {
	b := &countingBackend{}
	a := newOffline(t, b)
	m := reqMsg(t, protocol.OpPay, txID(t, 9))
	j := job{msg: m, terminal: "T1", ch: protocol.ChanRequest, shed: true}
	j.req = new(protocol.Request)
	if err := protocol.Decode(m.payload, j.req); err != nil {
		t.Fatal(err)
	}
	a.handle(j)
	if b.n != 0 {
		t.Fatalf("backend saw %d requests, want 0", b.n)
	}
	if m.acked != 1 {
		t.Fatalf("acked %d times, want 1", m.acked)
	}
}

// Outcomes and sheds are counted on the metrics the operator sees.
func TestCountOutcomes(t *testing.T) {
	before := testutil.ToFloat64(metrics.PaymentsTotal.WithLabelValues("balance", metrics.OutcomeApproved))
	shedBefore := testutil.ToFloat64(metrics.ShedTotal.WithLabelValues("deadline"))
	req := &protocol.Request{Op: protocol.OpPay}
	count(job{req: req, received: time.Now()}, &protocol.Response{Status: protocol.StatusApproved, Channel: "balance"})
	late := &protocol.Response{Status: protocol.StatusDeclined}
	late.SetReason(protocol.ErrDeadline)
	count(job{req: req}, late)
	if got := testutil.ToFloat64(metrics.PaymentsTotal.WithLabelValues("balance", metrics.OutcomeApproved)); got != before+1 {
		t.Fatalf("approved balance payments %v, want %v", got, before+1)
	}
	if got := testutil.ToFloat64(metrics.ShedTotal.WithLabelValues("deadline")); got != shedBefore+1 {
		t.Fatalf("deadline sheds %v, want %v", got, shedBefore+1)
	}
}

// An online status's journal depth and config revision are kept, updated
// by a repeated status of the same connection, and kept through its will;
// a status without them reads -1 and 0.
func TestStatusDepthAndRevision(t *testing.T) {
	a := newOffline(t, &blockingBackend{other: make(chan protocol.TxID, 10)})
	st := func(state string, seq uint64, depth *int, rev uint64) TerminalStatus {
		s := protocol.StatusMsg{Terminal: "T1", State: state, ConnSeq: seq, JournalDepth: depth, ConfigRevision: rev}
		a.handleStatus(context.Background(), job{msg: &fakeMsg{}, via: a.conns[0], terminal: "T1", ch: protocol.ChanStatus, status: &s})
		for _, got := range a.Statuses() {
			if got.Terminal == "T1" {
				return got
			}
		}
		t.Fatal("no status of T1")
		return TerminalStatus{}
	}
	n := func(v int) *int { return &v }
	for i, tt := range []struct {
		state     string
		seq       uint64
		depth     *int
		rev       uint64
		wantDepth int
		wantRev   uint64
	}{
		{protocol.StateOnline, 1, nil, 0, -1, 0},  // an older terminal: not reported
		{protocol.StateOnline, 2, n(5), 7, 5, 7},  // a birth with both
		{protocol.StateOnline, 2, n(0), 8, 0, 8},  // repeated on a change
		{protocol.StateOffline, 2, nil, 0, 0, 8},  // its will keeps them
		{protocol.StateOnline, 3, n(2), 8, 2, 8},  // reconnected
		{protocol.StateOffline, 4, nil, 0, -1, 0}, // another connection's will: unknown
	} {
		got := st(tt.state, tt.seq, tt.depth, tt.rev)
		if got.JournalDepth != tt.wantDepth || got.ConfigRevision != tt.wantRev {
			t.Fatalf("step %d: depth %d rev %d, want %d %d", i, got.JournalDepth, got.ConfigRevision, tt.wantDepth, tt.wantRev)
		}
	}
}

// gateBackend holds every pay until release is closed, telling entered
// which transaction came in.
type gateBackend struct {
	blockingBackend
	release chan struct{}
	entered chan protocol.TxID
}

func (g *gateBackend) HandleRequest(_ context.Context, r *protocol.Request) *protocol.Response {
	g.entered <- r.Tx
	<-g.release
	return &protocol.Response{Status: protocol.StatusApproved}
}

// gatedAuthorizer is an Authorizer of 16 workers, at most maxPerTerminal
// payments per terminal, in front of a gateBackend whose entered channel
// holds entered requests.
func gatedAuthorizer(t *testing.T, maxPerTerminal, entered int) (*Authorizer, *gateBackend) {
	t.Helper()
	g := &gateBackend{release: make(chan struct{}), entered: make(chan protocol.TxID, entered)}
	a, err := New(Config{Broker: "tcp://127.0.0.1:1", Username: "authz-test", Workers: 16, MaxPerTerminal: maxPerTerminal,
		PublishTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, g
}

// waitEntered waits for want requests to reach the backend.
func (g *gateBackend) waitEntered(t *testing.T, want int) {
	t.Helper()
	for i := 0; i < want; i++ {
		select {
		case <-g.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d messages reached the backend", i, want)
		}
	}
}

// noneEntered fails if a request has reached the backend since the last
// waitEntered.
func (g *gateBackend) noneEntered(t *testing.T) {
	t.Helper()
	select {
	case tx := <-g.entered:
		t.Fatalf("%s reached the backend over the bound", tx)
	default:
	}
}

// waitAcked waits for a message's acknowledgement.
func waitAcked(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not acknowledged", what)
	}
}

// waitOutOfHand waits until T1 has nothing left in count (a.inHand or
// a.held, read under keyMu): a message leaves it once its worker is done,
// just after its acknowledgement.
func waitOutOfHand(t *testing.T, a *Authorizer, what string, count map[string]int) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; {
		a.keyMu.Lock()
		n := count["T1"]
		a.keyMu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("T1 still has %d %s in hand", n, what)
		}
		<-tick.C
	}
}

// A terminal with MaxPerTerminal payments in hand has one more refused
// TERMINAL_BUSY at once, without the backend; other terminals go on, and
// the terminal is served again once one of its payments is done.
func TestTerminalBurstRefused(t *testing.T) {
	a, g := gatedAuthorizer(t, 3, 16)
	msg := func(terminal string, n byte) *fakeMsg { return termMsg(t, terminal, protocol.OpPay, txID(t, n)) }
	wait := func(what string, ch <-chan struct{}) { t.Helper(); waitAcked(t, what, ch) }
	entered := func(want int) { t.Helper(); g.waitEntered(t, want) }
	before := testutil.ToFloat64(metrics.ShedTotal.WithLabelValues("terminal_burst"))
	var held []*fakeMsg
	for n := byte(1); n <= 3; n++ {
		held = append(held, msg("T1", n))
		a.onMessage(a.conns[0], held[n-1])
	}
	entered(3)
	over := []*fakeMsg{msg("T1", 4), msg("T1", 5)}
	for _, m := range over {
		a.onMessage(a.conns[0], m)
	}
	for _, m := range over {
		wait("a payment over the bound", m.ackedCh) // answered while the three are held
	}
	if got := testutil.ToFloat64(metrics.ShedTotal.WithLabelValues("terminal_burst")); got != before+2 {
		t.Fatalf("terminal_burst sheds %v, want %v", got, before+2)
	}
	a.onMessage(a.conns[0], msg("T2", 6)) // another till is not affected
	entered(1)
	g.noneEntered(t)
	close(g.release)
	for _, m := range held {
		wait("a held payment", m.ackedCh)
	}
	// A payment is out of hand once its worker is done with it, just after
	// its acknowledgement.
	waitOutOfHand(t, a, "payments", a.inHand)
	later := msg("T1", 7)
	a.onMessage(a.conns[0], later)
	entered(1)
	wait("a payment after the burst", later.ackedCh)
}

// firstBackend answers first and records when finish runs.
type firstBackend struct {
	blockingBackend
	mu    sync.Mutex
	order []string
}

func (f *firstBackend) HandleRequestFirst(_ context.Context, r *protocol.Request) (*protocol.Response, func()) {
	f.mu.Lock()
	f.order = append(f.order, "answer")
	f.mu.Unlock()
	return &protocol.Response{Status: protocol.StatusApproved}, func() {
		f.mu.Lock()
		f.order = append(f.order, "finish")
		f.mu.Unlock()
	}
}

// orderMsg records its acknowledgement in the backend's order.
type orderMsg struct {
	*fakeMsg
	f *firstBackend
}

func (m orderMsg) Ack() {
	m.f.mu.Lock()
	m.f.order = append(m.f.order, "ack")
	m.f.mu.Unlock()
	m.fakeMsg.Ack()
}

// With a backend that answers first, the authorizer publishes the answer,
// then runs finish, and only then acknowledges the message.
func TestAnswerFirstFinishBeforeAck(t *testing.T) {
	f := &firstBackend{}
	a := newOffline(t, f)
	m := reqMsg(t, protocol.OpPay, txID(t, 1))
	m.ackedCh = make(chan struct{})
	a.onMessage(a.conns[0], orderMsg{fakeMsg: m, f: f})
	select {
	case <-m.ackedCh:
	case <-time.After(10 * time.Second):
		t.Fatal("not acknowledged")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := strings.Join(f.order, ","); got != "answer,finish,ack" {
		t.Fatalf("order %s, want answer,finish,ack", got)
	}
}

// A terminal's messages of every kind in hand are bounded at
// heldPerTerminal × MaxPerTerminal: past it one is dropped unanswered
// (acknowledged, never handled), other terminals go on, and the terminal
// is served again once its messages are done. Without a broker's
// in-flight window in front (the embedded broker, joined in-process),
// nothing else would bound a flood of queries.
func TestTerminalFloodDropped(t *testing.T) {
	a, g := gatedAuthorizer(t, 1, 64)
	query := func(terminal string, n byte) *fakeMsg { return termMsg(t, terminal, protocol.OpQuery, txID(t, n)) }
	acked := func(what string, m *fakeMsg) { t.Helper(); waitAcked(t, what, m.ackedCh) }
	entered := func(want int) { t.Helper(); g.waitEntered(t, want) }
	bound := heldPerTerminal * 1
	before := testutil.ToFloat64(metrics.ShedTotal.WithLabelValues("terminal_flood"))
	var held []*fakeMsg
	for n := 1; n <= bound; n++ {
		m := query("T1", byte(n))
		held = append(held, m)
		a.onMessage(a.conns[0], m)
	}
	entered(bound)
	for n := bound + 1; n <= bound+3; n++ {
		m := query("T1", byte(n))
		a.onMessage(a.conns[0], m)
		acked("a message over the bound", m) // dropped at once, never handled
	}
	if got := testutil.ToFloat64(metrics.ShedTotal.WithLabelValues("terminal_flood")); got != before+3 {
		t.Fatalf("terminal_flood drops %v, want %v", got, before+3)
	}
	a.onMessage(a.conns[0], query("T2", 20)) // another till is not affected
	entered(1)
	g.noneEntered(t)
	close(g.release)
	for _, m := range held {
		acked("a held message", m)
	}
	waitOutOfHand(t, a, "messages", a.held)
	later := query("T1", 30)
	a.onMessage(a.conns[0], later)
	entered(1)
	acked("a message after the flood", later)
}
