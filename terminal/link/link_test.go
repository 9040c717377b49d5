package link_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
	"campuspay/terminal"
	"campuspay/terminal/link"
)

func payReq(t *testing.T, amount int64) *protocol.Request {
	return &protocol.Request{Op: protocol.OpPay, Tx: newTx(t), Amount: amount, Cred: &protocol.Credential{Kind: protocol.CredCard, Text: "04A1B2C3"}}
}

func TestRequestResponseAndClock(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	r := newResponder(t, addr)
	r.setReq(func(q *protocol.Request) *protocol.Response {
		return &protocol.Response{Op: q.Op, Tx: q.Tx, Terminal: q.Terminal, Status: protocol.StatusApproved, Amount: q.Amount, ServerTime: time.Now().Add(time.Hour)}
	})
	l := newLink(t, addr, nil, nil)
	waitState(t, l, terminal.LinkUp, 10*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := payReq(t, 1250)
	resp, err := l.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Tx != req.Tx || resp.Status != protocol.StatusApproved || resp.Amount != 1250 {
		t.Fatalf("response %+v", resp)
	}
	if off := l.Offset(); off < 59*time.Minute || off > 61*time.Minute {
		t.Errorf("offset %v, want about 1h", off)
	}
	if d := l.Now().Sub(time.Now()); d < 59*time.Minute {
		t.Errorf("corrected now is off by %v", d)
	}

	// Concurrent requests are each answered with their own response.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := payReq(t, int64(100+i))
			resp, err := l.Request(ctx, q)
			if err == nil && (resp.Tx != q.Tx || resp.Amount != q.Amount) {
				err = errors.New("mismatched response")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestRequestTimeoutMarksAuthorizerSilent(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	r := newResponder(t, addr)
	l := newLink(t, addr, nil, nil)
	waitState(t, l, terminal.LinkUp, 10*time.Second)

	// A response for a transaction nobody asked about is dropped.
	b, _ := protocol.Encode(&protocol.Response{Op: protocol.OpPay, Tx: newTx(t), Terminal: "T1", Status: protocol.StatusApproved, ServerTime: time.Now()})
	r.publish(protocol.Topic(protocol.ChanResponse, "T1"), false, b)

	// Garbage on the link's topics is dropped too.
	r.publish(protocol.Topic(protocol.ChanResponse, "T1"), false, []byte(`{"v":1,"bogus":true}`))
	r.publish(protocol.Topic(protocol.ChanJournalAck, "T1"), false, []byte(`not json`))

	silent := make(chan struct{})
	var once sync.Once
	r.setReq(func(q *protocol.Request) *protocol.Response {
		once.Do(func() { close(silent) })
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := l.Request(ctx, payReq(t, 100)); !errors.Is(err, terminal.ErrNoResponse) {
		t.Fatalf("err = %v, want ErrNoResponse", err)
	}
	<-silent
	waitState(t, l, terminal.LinkDown, 5*time.Second)
	// The link probes with OpNotices; the (still answering) notices
	// handler proves the authorizer back.
	waitState(t, l, terminal.LinkUp, 5*time.Second)
}

func TestRequestWhileDisconnected(t *testing.T) {
	l := newLink(t, "127.0.0.1:1", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := l.Request(ctx, payReq(t, 100)); !errors.Is(err, terminal.ErrLinkDown) {
		t.Fatalf("err = %v, want ErrLinkDown", err)
	}
	if _, err := l.Request(ctx, &protocol.Request{Op: protocol.OpPay, Tx: newTx(t), Terminal: "T2", Amount: 1, Cred: &protocol.Credential{Kind: protocol.CredCard, Text: "01"}}); err == nil {
		t.Fatal("request for another terminal accepted")
	}
}

func TestBirthWillAndConnSeq(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	r := newResponder(t, addr)
	p := newProxy(t, addr)
	l := newLink(t, p.Addr(), nil, func(c *link.Config) { c.Software = "test/1" })
	waitState(t, l, terminal.LinkUp, 10*time.Second)
	next := func() protocol.StatusMsg {
		select {
		case s := <-r.statuses:
			return s
		case <-time.After(10 * time.Second):
			t.Fatal("no status")
		}
		return protocol.StatusMsg{}
	}
	if s := next(); s.State != protocol.StateOnline || s.ConnSeq != 1 || s.Software != "test/1" {
		t.Fatalf("birth %+v", s)
	}
	p.Sever() // the broker sees the connection die: the will fires
	if s := next(); s.State != protocol.StateOffline || s.ConnSeq != 1 {
		t.Fatalf("will %+v", s)
	}
	waitState(t, l, terminal.LinkDown, 5*time.Second)
	// The next birth has a higher conn_seq (a refused attempt may have
	// used one: each attempt takes a new number).
	s := next()
	for s.State == protocol.StateOffline && s.ConnSeq > 1 {
		s = next()
	}
	if s.State != protocol.StateOnline || s.ConnSeq < 2 {
		t.Fatalf("second birth %+v", s)
	}
	last := s.ConnSeq
	waitState(t, l, terminal.LinkUp, 10*time.Second)
	l.Close()
	if s := next(); s.State != protocol.StateOffline || s.ConnSeq != last {
		t.Fatalf("graceful offline %+v, want conn_seq %d", s, last)
	}
}

// A broker that stops answering (no FIN, no RST) is noticed by the
// keepalive: the state goes down, and comes back after reconnecting.
func TestOfflineDetectionSilentBroker(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	newResponder(t, addr)
	p := newProxy(t, addr)
	// KeepAlive 1 s + PingTimeout 0.5 s; the deadline is the product's 5 s.
	// (mochi may drop the idle link at 1 s too: either way it goes down.)
	l := newLink(t, p.Addr(), nil, func(c *link.Config) { c.KeepAlive = time.Second })
	waitState(t, l, terminal.LinkUp, 10*time.Second)
	p.Freeze()
	waitState(t, l, terminal.LinkDown, 5*time.Second)
	waitState(t, l, terminal.LinkUp, 10*time.Second)
}

func TestConfigsAndNotices(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	r := newResponder(t, addr)
	cfgMsg, _ := protocol.Encode(&protocol.Config{Revision: 7, Terminal: "T1", Mode: protocol.ModePOS, MerchantName: "一食堂", ServerTime: time.Now()})
	r.publish(protocol.Topic(protocol.ChanConfig, "T1"), true, cfgMsg)
	l := newLink(t, addr, nil, func(c *link.Config) { c.Cursor = func() uint64 { return 41 } })
	select {
	case c := <-l.Configs():
		if c.Revision != 7 || c.MerchantName != "一食堂" {
			t.Fatalf("config %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no retained config")
	}
	// The link asked for notices after cursor 41 on connecting.
	deadline := time.After(10 * time.Second)
	for asked := false; !asked; {
		select {
		case q := <-r.requests:
			asked = q.Op == protocol.OpNotices && q.Cursor == 41
		case <-deadline:
			t.Fatal("no notices request with the cursor")
		}
	}
	n, _ := protocol.Encode(&protocol.Notice{Terminal: "T1", Cursor: 42, Payments: []protocol.StaticQRPayment{{Tx: newTx(t), Seq: 42, Amount: 800, User: "张*", At: time.Now()}}})
	r.publish(protocol.Topic(protocol.ChanNotify, "T1"), false, n)
	select {
	case got := <-l.Notices():
		if got.Cursor != 42 || len(got.Payments) != 1 || got.Payments[0].Amount != 800 {
			t.Fatalf("notice %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notice")
	}
}

// Draining a 10,000-entry backlog does not hold up a request, and every
// entry is acked.
func TestPumpDrainsBacklogWithoutBlockingRequests(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	r := newResponder(t, addr)
	const n = 10000
	out := newOutbox(n, func(int) protocol.TxID { return newTx(t) })
	firstAck := make(chan struct{})
	var once sync.Once
	r.setJournal(func(e *protocol.JournalEntry) *protocol.JournalAck {
		once.Do(func() { close(firstAck) })
		return &protocol.JournalAck{Terminal: e.Terminal, Seq: e.Seq, Tx: e.Tx, OK: true}
	})
	l := newLink(t, addr, out, func(c *link.Config) { c.ResendAfter = 30 * time.Second })
	<-firstAck
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 5 {
		if _, err := l.Request(ctx, payReq(t, 100)); err != nil {
			t.Fatalf("request during the drain: %v", err)
		}
	}
	during := out.ackedCount()
	select {
	case <-out.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("drain stuck at %d of %d", out.ackedCount(), n)
	}
	t.Logf("5 requests answered while %d of %d entries were acked", during, n)
	if during == n {
		t.Error("requests were answered only after the whole backlog")
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	for seq := uint64(1); seq <= n; seq++ {
		if out.ackN[seq] < 1 {
			t.Fatalf("entry %d never acked", seq)
		}
	}
}

// Acks lost in transit are made up by resending after ResendAfter; a new
// link on the same outbox (a restart) finishes the job; entries are sent
// in Seq order on a fresh connection.
func TestPumpResendsAndSurvivesRestart(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	r := newResponder(t, addr)
	out := newOutbox(50, func(int) protocol.TxID { return newTx(t) })
	var mu sync.Mutex
	seen := map[uint64]int{}
	var order []uint64
	r.setJournal(func(e *protocol.JournalEntry) *protocol.JournalAck {
		mu.Lock()
		defer mu.Unlock()
		seen[e.Seq]++
		order = append(order, e.Seq)
		if seen[e.Seq] == 1 && e.Seq%3 == 0 {
			return nil // the first ack of every third entry is lost
		}
		return &protocol.JournalAck{Terminal: e.Terminal, Seq: e.Seq, Tx: e.Tx, OK: true}
	})
	l1 := newLink(t, addr, out, func(c *link.Config) { c.Window = 8; c.ResendAfter = 300 * time.Millisecond })
	out.waitAcked(t, 20)
	l1.Close()
	newLink(t, addr, out, func(c *link.Config) { c.Window = 8; c.ResendAfter = 300 * time.Millisecond })
	select {
	case <-out.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("stuck at %d of 50 acked", out.ackedCount())
	}
	mu.Lock()
	defer mu.Unlock()
	for seq := uint64(1); seq <= 50; seq++ {
		if seq%3 == 0 && seen[seq] < 2 {
			t.Errorf("entry %d whose ack was lost was sent %d times", seq, seen[seq])
		}
	}
	if len(order) == 0 || order[0] != 1 {
		t.Errorf("first entry sent was %v, want seq 1", order[:1])
	}
}

func TestNoSecretsInLogs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, addr := startMochi(t, "127.0.0.1:0")
	newResponder(t, addr)
	l := newLink(t, addr, nil, func(c *link.Config) { c.Logger = logger })
	waitState(t, l, terminal.LinkUp, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := payReq(t, 100)
	req.Cred.Text = "CARD-UID-SECRET-77"
	req.Secret = "SEALED-SECRET-88"
	if _, err := l.Request(ctx, req); err != nil {
		t.Fatal(err)
	}
	l.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, s := range []string{"pw-t1-secret", "CARD-UID-SECRET-77", "SEALED-SECRET-88"} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("log contains %q", s)
		}
	}
	if !strings.Contains(buf.String(), "link: connected") {
		t.Error("log capture did not work")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestNewRefusesBadConfig(t *testing.T) {
	out := newOutbox(0, nil)
	seq := (&connSeq{}).next
	for _, c := range []link.Config{
		{Terminal: "T1", ConnSeq: seq},
		{Broker: "tcp://x:1", Terminal: "bad/id", ConnSeq: seq},
		{Broker: "tcp://x:1", Terminal: "T1"},
	} {
		if l, err := link.New(c, out); err == nil {
			l.Close()
			t.Errorf("config %+v accepted", c)
		}
	}
	if _, err := link.New(link.Config{Broker: "tcp://x:1", Terminal: "T1", ConnSeq: seq}, nil); err == nil {
		t.Error("nil outbox accepted")
	}
}

// An entry the authorizer refuses for good is recorded with its refusal
// and not sent again.
func TestPumpRecordsRefusal(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	r := newResponder(t, addr)
	out := newOutbox(3, func(int) protocol.TxID { return newTx(t) })
	var mu sync.Mutex
	sent := map[uint64]int{}
	r.setJournal(func(e *protocol.JournalEntry) *protocol.JournalAck {
		mu.Lock()
		sent[e.Seq]++
		mu.Unlock()
		a := &protocol.JournalAck{Terminal: e.Terminal, Seq: e.Seq, Tx: e.Tx, OK: e.Seq != 2}
		if !a.OK {
			a.Code = protocol.ErrBadRequest.Code
		}
		return a
	})
	l := newLink(t, addr, out, func(c *link.Config) { c.ResendAfter = 5 * time.Second })
	select {
	case <-out.done:
	case <-time.After(10 * time.Second):
		t.Fatal("not all entries answered")
	}
	l.Close()
	out.mu.Lock()
	defer out.mu.Unlock()
	if a := out.acked[2]; a.OK || a.Code != protocol.ErrBadRequest.Code {
		t.Errorf("refusal recorded as %+v", a)
	}
	mu.Lock()
	defer mu.Unlock()
	if sent[2] != 1 {
		t.Errorf("refused entry sent %d times", sent[2])
	}
}

// Issue 13: the authorizer comes back after the terminal, so the notices
// request of the connection is lost; a journal ack (for entries waiting
// since before) then proves the authorizer alive before any notice
// reply. The link must still ask for the notices until one is answered,
// or the cashier never sees the static-QR payments made while offline.
// The probe interval is an hour: only the "notices still owed" rule can
// ask again within the test.
func TestNoticesOwedUntilAnsweredAfterAJournalAck(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	asked := make(chan protocol.Request, 100) // every request on the broker, seen by a plain subscriber
	spy := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("spy").SetCleanSession(true))
	if tok := spy.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("spy connect: %v", tok.Error())
	}
	t.Cleanup(func() { spy.Disconnect(0) })
	sub := spy.Subscribe(protocol.Topic(protocol.ChanRequest, "T1"), 1, func(_ paho.Client, m paho.Message) {
		var q protocol.Request
		if protocol.Decode(m.Payload(), &q) == nil {
			asked <- q
		}
	})
	if !sub.WaitTimeout(5*time.Second) || sub.Error() != nil {
		t.Fatalf("spy subscribe: %v", sub.Error())
	}

	out := newOutbox(3, func(int) protocol.TxID { return newTx(t) })
	l := newLink(t, addr, out, func(c *link.Config) { c.ProbeInterval = time.Hour })
	select {
	case q := <-asked:
		if q.Op != protocol.OpNotices {
			t.Fatalf("first request %s, want notices", q.Op)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the link did not ask for notices on connecting")
	}

	// The authorizer arrives: the first notices request went to nobody.
	r := newResponder(t, addr)
	paid := protocol.StaticQRPayment{Tx: newTx(t), Seq: 1, Amount: 800, User: "张*", At: time.Now()}
	r.setNotices(func(q *protocol.Request) *protocol.Notice {
		n := &protocol.Notice{Terminal: q.Terminal, Cursor: q.Cursor}
		if q.Cursor < paid.Seq {
			n.Payments, n.Cursor = []protocol.StaticQRPayment{paid}, paid.Seq
		}
		return n
	})
	out.waitAcked(t, 3) // resent after ResendAfter and acked: the link is up on an ack
	select {
	case n := <-l.Notices():
		if len(n.Payments) != 1 || n.Payments[0].Tx != paid.Tx {
			t.Fatalf("notice %+v", n)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the static-QR payment was never asked for again after the journal ack")
	}
}

// The link repeats its "online" status when the journal depth or the
// config revision changes (the back office's fleet view): first the
// backlog the authorizer has not acknowledged and the config received,
// then a depth of zero once it acknowledges.
func TestStatusReportsDepthAndRevision(t *testing.T) {
	_, addr := startMochi(t, "127.0.0.1:0")
	r := newResponder(t, addr)
	var ackNow atomic.Bool
	r.setJournal(func(e *protocol.JournalEntry) *protocol.JournalAck {
		if !ackNow.Load() {
			return nil
		}
		return &protocol.JournalAck{Terminal: e.Terminal, Seq: e.Seq, Tx: e.Tx, OK: true}
	})
	cfgMsg, _ := protocol.Encode(&protocol.Config{Revision: 9, Terminal: "T1", Mode: protocol.ModePOS, ServerTime: time.Now()})
	r.publish(protocol.Topic(protocol.ChanConfig, "T1"), true, cfgMsg)
	out := newOutbox(3, func(int) protocol.TxID { return newTx(t) })
	newLink(t, addr, out, func(c *link.Config) { c.ResendAfter = 200 * time.Millisecond })
	want := func(depth int, rev uint64) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case s := <-r.statuses:
				if s.State == protocol.StateOnline && s.JournalDepth != nil && *s.JournalDepth == depth && s.ConfigRevision == rev {
					return
				}
			case <-deadline:
				t.Fatalf("no online status with journal depth %d and config revision %d", depth, rev)
			}
		}
	}
	want(3, 9)
	ackNow.Store(true)
	out.waitAcked(t, 3)
	want(0, 9)
}
