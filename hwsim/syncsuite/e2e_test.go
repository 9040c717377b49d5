package syncsuite_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
	"campuspay/server/authz"
	"campuspay/server/broker/brokertest"
	"campuspay/terminal"
)

// A retried request (same Tx) is answered with the original result and
// charged once, also when both copies are in flight at the same time.
func TestDuplicateRequestsChargeOnce(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{})
		e.fb.fund("S1", 10000)
		l := e.newLink("T1", nil, nil)
		waitUp(t, l)
		tx := newTx(t)
		if r, err := request(t, l, pay(tx, "S1", 1250), 5*time.Second); err != nil || r.Status != protocol.StatusApproved {
			t.Fatalf("pay: %+v %v", r, err)
		}
		// The same Tx with another amount is a conflict, not a new charge.
		// (Checked before the concurrent copies below: their extra answers
		// carry the same Tx and op, and the link hands any of them to a
		// waiter for that Tx and op.)
		if r, err := request(t, l, pay(tx, "S1", 9999), 5*time.Second); err != nil || r.Code != protocol.ErrTxConflict.Code {
			t.Fatalf("conflicting retry: %+v %v", r, err)
		}
		var wg sync.WaitGroup
		resps := make([]*protocol.Response, 3)
		for i := range resps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := request(t, l, pay(tx, "S1", 1250), 5*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				resps[i] = r
			}()
		}
		wg.Wait()
		again, err := request(t, l, pay(tx, "S1", 1250), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range append(resps, again) {
			if r == nil || r.Status != protocol.StatusApproved || r.Amount != 1250 || r.ServerTime.IsZero() {
				t.Fatalf("response %+v", r)
			}
		}
		if got := e.fb.tx("T1", tx); got.charged != 1 || e.fb.balances["S1"] != 10000-1250 {
			t.Fatalf("charged %d times, balance %d", got.charged, e.fb.balances["S1"])
		}
		e.fb.check(t)
	})
}

// The first response is lost (it arrives after the terminal gave up and is
// dropped); the terminal queries and learns the approval; charged once.
func TestLostResponseResolvedByQuery(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{})
		e.fb.fund("S1", 5000)
		l := e.newLink("T1", nil, nil)
		waitUp(t, l)
		tx := newTx(t)
		release := e.fb.gate(tx)
		if _, err := request(t, l, pay(tx, "S1", 800), 300*time.Millisecond); !errors.Is(err, terminal.ErrNoResponse) {
			t.Fatalf("err = %v, want ErrNoResponse", err)
		}
		<-e.fb.entered
		release() // the approval's response now goes nowhere
		if st := settle(t, l, tx); st != protocol.StatusApproved {
			t.Fatalf("settled as %s, want approved", st)
		}
		if r, err := request(t, l, pay(tx, "S1", 800), 5*time.Second); err != nil || r.Status != protocol.StatusApproved {
			t.Fatalf("retry: %+v %v", r, err)
		}
		if got := e.fb.tx("T1", tx); got.charged != 1 || e.fb.callCount("T1", tx, protocol.OpPay) != 2 {
			t.Fatalf("charged %d, pay calls %d", got.charged, e.fb.callCount("T1", tx, protocol.OpPay))
		}
		e.fb.check(t)
	})
}

// A reversal sent while the approval is still being made waits for it
// (same Tx, one at a time) and refunds it; a late request after a reversal
// of an unseen Tx is refused.
func TestReversalRacesApprovalAndLateRequestRefused(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{})
		e.fb.fund("S1", 5000)
		l := e.newLink("T1", nil, nil)
		waitUp(t, l)

		tx := newTx(t)
		release := e.fb.gate(tx)
		if _, err := request(t, l, pay(tx, "S1", 700), 300*time.Millisecond); !errors.Is(err, terminal.ErrNoResponse) {
			t.Fatalf("err = %v, want ErrNoResponse", err)
		}
		<-e.fb.entered
		done := make(chan *protocol.Response, 1)
		go func() {
			r, err := request(t, l, &protocol.Request{Op: protocol.OpReverse, Tx: tx}, 10*time.Second)
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
		release()
		if r := <-done; r == nil || r.Status != protocol.StatusReversed {
			t.Fatalf("reversal %+v", r)
		}
		if got := e.fb.tx("T1", tx); got.status != protocol.StatusReversed || e.fb.balances["S1"] != 5000 {
			t.Fatalf("tx %+v, balance %d", got, e.fb.balances["S1"])
		}

		// Reversed before it ever arrived: the late request is refused.
		late := newTx(t)
		if r, err := request(t, l, &protocol.Request{Op: protocol.OpReverse, Tx: late}, 5*time.Second); err != nil || r.Status != protocol.StatusReversed {
			t.Fatalf("reverse unseen: %+v %v", r, err)
		}
		r, err := request(t, l, pay(late, "S1", 300), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == protocol.StatusApproved || e.fb.tx("T1", late).charged != 0 {
			t.Fatalf("late request after its reversal was charged: %+v", r)
		}
		e.fb.check(t)
	})
}

// The broker dies (SIGKILL for mosquitto, Close for the embedded one) while
// a payment is being authorised. The terminal settles the in-doubt payment
// and journals the result: it ends approved and recorded once, or reversed.
func TestBrokerRestartMidPayment(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{})
		e.fb.fund("S1", 5000)
		out := newOutbox()
		l := e.newLink("T1", out, nil)
		waitUp(t, l)

		tx := newTx(t)
		release := e.fb.gate(tx)
		errc := make(chan error, 1)
		var resp *protocol.Response
		go func() {
			var err error
			resp, err = request(t, l, pay(tx, "S1", 990), time.Second)
			errc <- err
		}()
		<-e.fb.entered
		e.restart()
		// The authorizer finishes only after the terminal gave up: the
		// payment is in doubt on the terminal and approved on the server.
		err := <-errc
		release()
		status := protocol.StatusUnknown
		switch {
		case err == nil:
			status = resp.Status
		case errors.Is(err, terminal.ErrNoResponse):
			status = settle(t, l, tx)
		default:
			t.Fatal(err)
		}
		entryKind := protocol.EntryPayment
		if status == protocol.StatusReversed {
			entryKind = protocol.EntryReversal
		}
		seq := out.add(protocol.JournalEntry{Tx: tx, Kind: entryKind, Status: status, Amount: 990, CredKind: protocol.CredCard})
		l.Kick()
		out.waitAllAcked(t)

		got := e.fb.tx("T1", tx)
		entry, applied := e.fb.journalEntry("T1", seq)
		switch status {
		case protocol.StatusApproved:
			if got.status != protocol.StatusApproved || got.charged != 1 || entry.Tx != tx || applied != 1 {
				t.Fatalf("approved but ledger %+v, journal %+v ×%d", got, entry, applied)
			}
		case protocol.StatusReversed:
			if got.status != protocol.StatusReversed || e.fb.balances["S1"] != 5000 {
				t.Fatalf("reversed but ledger %+v, balance %d", got, e.fb.balances["S1"])
			}
		default:
			t.Fatalf("payment ended %s", status)
		}
		t.Logf("payment across the broker restart ended %s", status)
		e.fb.check(t)
	})
}

// A link restarts with journal entries not yet acknowledged (some acks
// were lost with the broker): the new link resends them, the authorizer
// applies each once.
func TestLinkRestartWithUnackedJournal(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{authorizers: -1})
		e.addAuthorizer(services[0], &lossyAcks{fakeBackend: e.fb, seen: map[uint64]bool{}})
		out := newOutbox()
		for i := range 40 {
			out.add(protocol.JournalEntry{Tx: newTx(t), Kind: protocol.EntryPayment, Status: protocol.StatusApproved, Amount: int64(100 + i), CredKind: protocol.CredCode})
		}
		seq := &counter{}
		l1 := e.newLink("T1", out, seq)
		waitUp(t, l1)
		out.waitAcked(t, 10)
		l1.Close() // mid-drain, with entries applied but not acked
		l2 := e.newLink("T1", out, seq)
		waitUp(t, l2)
		out.waitAllAcked(t)
		for s := uint64(1); s <= 40; s++ {
			if _, n := e.fb.journalEntry("T1", s); n != 1 {
				t.Fatalf("entry %d applied %d times", s, n)
			}
		}
		e.fb.check(t)
	})
}

// Two authorizers share the work on one broker: every request is handled
// and answered exactly once.
func TestTwoAuthorizersAnswerEachRequestOnce(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{authorizers: -1})
		c1, c2 := &countingBackend{fakeBackend: e.fb}, &countingBackend{fakeBackend: e.fb}
		e.addAuthorizer(services[0], c1)
		e.addAuthorizer(services[1], c2)
		e.fb.fund("S1", 1_000_000)

		const n = 200
		var mu sync.Mutex
		answers := map[protocol.TxID]int{}
		all := make(chan struct{})
		barrierSeen := make(chan struct{})
		var barrier protocol.TxID
		term := e.rawClient("T1", termPasswords["T1"], func(m paho.Message) {
			var r protocol.Response
			if protocol.Decode(m.Payload(), &r) != nil {
				return
			}
			mu.Lock()
			answers[r.Tx]++
			if len(answers) == n {
				close(all)
			}
			if r.Tx == barrier && answers[r.Tx] == 1 {
				close(barrierSeen)
			}
			mu.Unlock()
		})
		if tok := term.Subscribe(protocol.Topic(protocol.ChanResponse, "T1"), 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		txs := make([]protocol.TxID, n)
		for i := range txs {
			txs[i] = newTx(t)
			req := pay(txs[i], "S1", 100)
			req.Terminal, req.At = "T1", time.Now()
			mustPublish(t, term, protocol.Topic(protocol.ChanRequest, "T1"), false, encode(t, req))
		}
		select {
		case <-all:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d answered", len(answers), n)
		}
		// A barrier request proves no duplicate answers were still coming:
		// the broker delivers one publisher's messages in order.
		mu.Lock()
		barrier = newTx(t)
		mu.Unlock()
		req := pay(barrier, "S1", 100)
		req.Terminal, req.At = "T1", time.Now()
		mustPublish(t, term, protocol.Topic(protocol.ChanRequest, "T1"), false, encode(t, req))
		select {
		case <-barrierSeen:
		case <-time.After(10 * time.Second):
			t.Fatal("no barrier answer")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, tx := range txs {
			if answers[tx] != 1 {
				t.Errorf("%s answered %d times", tx, answers[tx])
			}
			if calls := e.fb.callCount("T1", tx, protocol.OpPay); calls != 1 {
				t.Errorf("%s handled %d times", tx, calls)
			}
		}
		t.Logf("authorizer 1 handled %d, authorizer 2 handled %d", c1.n(), c2.n())
		if kind == "mosquitto" && (c1.n() == 0 || c2.n() == 0) {
			t.Errorf("shared subscription did not split: %d / %d", c1.n(), c2.n())
		}
		e.fb.check(t)
	})
}

type countingBackend struct {
	*fakeBackend
	mu    sync.Mutex
	count int
}

func (c *countingBackend) HandleRequest(ctx context.Context, req *protocol.Request) *protocol.Response {
	c.mu.Lock()
	c.count++
	c.mu.Unlock()
	return c.fakeBackend.HandleRequest(ctx, req)
}

func (c *countingBackend) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// Malformed payloads and a request claiming another terminal are dropped
// (logged without their content); the authorizer keeps serving.
func TestMalformedAndForgedMessagesDropped(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{})
		e.fb.fund("S1", 1000)
		got := make(chan protocol.Response, 10)
		term := e.rawClient("T1", termPasswords["T1"], func(m paho.Message) {
			var r protocol.Response
			if protocol.Decode(m.Payload(), &r) == nil {
				got <- r
			}
		})
		if tok := term.Subscribe("campuspay/v1/down/T1/resp", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		forged := pay(newTx(t), "S1", 100)
		forged.Terminal, forged.At = "T2", time.Now()
		for _, p := range [][]byte{
			[]byte("not json STUDENT-CARD-SECRET"),
			[]byte(`{"v":1,"op":"pay","tx":"x","terminal":"T1","secret":"SEALED-WATER-PW"}`),
			[]byte(`{"v":2,"op":"query","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1"}`),
			[]byte(`{"v":1,"op":"pay","unknown":"STUDENT-CARD-SECRET"}`),
			encode(t, forged),
			make([]byte, protocol.MaxMessageSize+1),
		} {
			mustPublish(t, term, protocol.Topic(protocol.ChanRequest, "T1"), false, p)
			mustPublish(t, term, protocol.Topic(protocol.ChanJournal, "T1"), false, p)
			mustPublish(t, term, protocol.Topic(protocol.ChanStatus, "T1"), false, p)
		}
		real := pay(newTx(t), "S1", 100)
		real.Terminal, real.At = "T1", time.Now()
		real.Cred.Text = "S1"
		mustPublish(t, term, protocol.Topic(protocol.ChanRequest, "T1"), false, encode(t, real))
		select {
		case r := <-got:
			if r.Tx != real.Tx || r.Status != protocol.StatusApproved {
				t.Fatalf("first answer %+v, want the real request's", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the authorizer stopped answering")
		}
		if e.fb.callCount("T2", forged.Tx, protocol.OpPay) != 0 || e.fb.callCount("T1", forged.Tx, protocol.OpPay) != 0 {
			t.Error("a forged request reached the wallet")
		}
		if !strings.Contains(e.logs.String(), "malformed message dropped") {
			t.Error("malformed messages were not logged")
		}
	})
}

// Births and wills are tracked with conn_seq: a stale will is ignored; a
// live birth gets a fresh config.
func TestStatusTrackingAndConfigOnBirth(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{authorizers: -1})
		statuses := make(chan authz.TerminalStatus, 100)
		a := e.addAuthorizerWith(services[0], e.fb, func(s authz.TerminalStatus) { statuses <- s })
		next := func() authz.TerminalStatus {
			t.Helper()
			select {
			case s := <-statuses:
				return s
			case <-time.After(10 * time.Second):
				t.Fatal("no status change")
			}
			return authz.TerminalStatus{}
		}

		// The real link: birth with its conn_seq, then a config.
		seq := &counter{}
		seq.n.Store(4)
		l := e.newLink("T1", nil, seq)
		waitUp(t, l)
		select {
		case c := <-l.Configs():
			if c.Terminal != "T1" || c.MerchantName != "一食堂" || time.Since(c.ServerTime) > time.Minute {
				t.Fatalf("config %+v", c)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no config on birth")
		}
		if s := next(); s.Terminal != "T1" || s.State != protocol.StateOnline || s.ConnSeq != 5 {
			t.Fatalf("status %+v", s)
		}
		l.Close()
		if s := next(); s.State != protocol.StateOffline || s.ConnSeq != 5 {
			t.Fatalf("status after close %+v", s)
		}

		// Hand-made statuses from T2: a will older than the last birth is
		// ignored; the will of the current connection is not.
		raw := e.rawClient("T2", termPasswords["T2"], nil)
		st := func(state string, seq uint64) []byte {
			return encode(t, &protocol.StatusMsg{Terminal: "T2", State: state, ConnSeq: seq, At: time.Now()})
		}
		topic := protocol.Topic(protocol.ChanStatus, "T2")
		mustPublish(t, raw, topic, false, st(protocol.StateOnline, 7))
		if s := next(); s.Terminal != "T2" || s.State != protocol.StateOnline || s.ConnSeq != 7 {
			t.Fatalf("T2 birth %+v", s)
		}
		mustPublish(t, raw, topic, false, st(protocol.StateOffline, 6)) // stale
		mustPublish(t, raw, topic, false, st(protocol.StateOffline, 7))
		if s := next(); s.State != protocol.StateOffline || s.ConnSeq != 7 {
			t.Fatalf("T2 will %+v (the stale will was not ignored?)", s)
		}
		var t2 authz.TerminalStatus
		for _, s := range a.Statuses() {
			if s.Terminal == "T2" {
				t2 = s
			}
		}
		if t2.State != protocol.StateOffline || t2.ConnSeq != 7 {
			t.Fatalf("Statuses() T2 = %+v", t2)
		}
	})
}

// The request dies with the broker before any authorizer saw it: the
// terminal's query finds nothing, it reverses, and the payment can never
// be charged afterwards.
func TestBrokerRestartLosesRequest(t *testing.T) {
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{})
		e.fb.fund("S1", 5000)
		out := newOutbox()
		l := e.newLink("T1", out, nil)
		waitUp(t, l)
		e.authzs[0].Close() // nobody takes the request
		tx := newTx(t)
		if _, err := request(t, l, pay(tx, "S1", 450), 500*time.Millisecond); !errors.Is(err, terminal.ErrNoResponse) {
			t.Fatalf("err = %v, want ErrNoResponse", err)
		}
		e.restart()
		e.addAuthorizer(services[0], e.fb)
		status := settle(t, l, tx)
		if status != protocol.StatusReversed && status != protocol.StatusApproved {
			t.Fatalf("ended %s", status)
		}
		entryKind := protocol.EntryPayment
		if status == protocol.StatusReversed {
			entryKind = protocol.EntryReversal
		}
		out.add(protocol.JournalEntry{Tx: tx, Kind: entryKind, Status: status, Amount: 450, CredKind: protocol.CredCard})
		l.Kick()
		out.waitAllAcked(t)
		// A copy of the request that survived somewhere arrives late.
		r, err := request(t, l, pay(tx, "S1", 450), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if status == protocol.StatusReversed && (r.Status == protocol.StatusApproved || e.fb.tx("T1", tx).charged != 0) {
			t.Fatalf("reversed payment charged later: %+v", r)
		}
		t.Logf("lost request ended %s", status)
		e.fb.check(t)
	})
}

// lossyAcks applies every entry but loses the ack of every fourth one the
// first time (as if the broker died before delivering it).
type lossyAcks struct {
	*fakeBackend
	mu   sync.Mutex
	seen map[uint64]bool
}

func (b *lossyAcks) ApplyJournal(ctx context.Context, e *protocol.JournalEntry) *protocol.JournalAck {
	ack := b.fakeBackend.ApplyJournal(ctx, e)
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Seq%4 == 0 && !b.seen[e.Seq] {
		b.seen[e.Seq] = true
		return nil
	}
	return ack
}

// TLS to both brokers with client certificates, and a card payment whose
// credential and sealed secret must not appear in any log.
func TestTLSEndToEndNoSecretsLogged(t *testing.T) {
	pki := brokertest.NewPKI(t)
	kinds(t, func(t *testing.T, kind string) {
		e := newEnv(t, kind, envOpts{pki: pki})
		e.fb.fund("STUDENT-CARD-SECRET", 3000)
		l := e.newLink("T1", nil, nil)
		waitUp(t, l)
		req := pay(newTx(t), "STUDENT-CARD-SECRET", 1500)
		req.Secret = "SEALED-WATER-PW"
		r, err := request(t, l, req, 5*time.Second)
		if err != nil || r.Status != protocol.StatusApproved {
			t.Fatalf("pay over TLS: %+v %v", r, err)
		}
		if !strings.Contains(e.logs.String(), "authz: request") {
			t.Fatal("log capture did not work")
		}
		// (newEnv's cleanup greps every log for the secrets.)
	})
}
