package syncsuite_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
	"campuspay/server/authz"
	"campuspay/server/broker"
	"campuspay/server/broker/brokertest"
	"campuspay/terminal"
	"campuspay/terminal/link"
)

// These are end-to-end tests: the real authorizer handlers, the real
// terminal link (terminal/link, imported by tests only), and a real broker
// — the embedded one and a mosquitto process — with the fake ledger.

var (
	termPasswords = map[string]string{"T1": "t1-pw-Zq8xW2", "T2": "t2-pw-Lm4vB9"}
	services      = []broker.Credential{{User: "authz-1", Password: "svc1-pw-Hn3kP7"}, {User: "authz-2", Password: "svc2-pw-Rt6yU1"}}
	secretsInLogs = []string{"t1-pw-Zq8xW2", "t2-pw-Lm4vB9", "svc1-pw-Hn3kP7", "svc2-pw-Rt6yU1", "STUDENT-CARD-SECRET", "SEALED-WATER-PW"}
)

// logSink collects slog output of every part in a test.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type env struct {
	t       testing.TB
	kind    string
	fb      *fakeBackend
	logs    *logSink
	url     string
	urls    []string    // several brokers: the authorizers subscribe on each (url unused)
	tls     *tls.Config // client TLS (nil = plain)
	restart func()      // kill and restart the broker
	authzs  []*authz.Authorizer
	mq      *brokertest.Mosquitto
}

type envOpts struct {
	authorizers int
	pki         *brokertest.PKI
}

func kinds(t *testing.T, f func(t *testing.T, kind string)) {
	for _, k := range []string{"embedded", "mosquitto"} {
		t.Run(k, func(t *testing.T) { f(t, k) })
	}
}

func newEnv(t testing.TB, kind string, o envOpts) *env {
	t.Helper()
	if o.authorizers == 0 {
		o.authorizers = 1
	}
	e := &env{t: t, kind: kind, fb: newFakeBackend(termPasswords), logs: &logSink{}}
	switch kind {
	case "embedded":
		addr := "127.0.0.1:0"
		var b *broker.Broker
		start := func() {
			cfg := broker.Config{
				Addr: addr, Services: services, Logger: e.logs.logger(),
				Authenticate: func(u, p string) bool { return e.fb.AuthenticateTerminal(context.Background(), u, p) },
			}
			if o.pki != nil {
				cfg.Addr, cfg.TLSAddr, cfg.TLS = "", addr, o.pki.ServerTLS(true)
			}
			var err error
			if b, err = broker.New(cfg); err != nil {
				t.Fatal(err)
			}
			if o.pki != nil {
				addr = b.TLSAddr()
			} else {
				addr = b.Addr()
			}
		}
		start()
		e.url = "tcp://" + addr
		if o.pki != nil {
			e.url = "ssl://" + addr
		}
		e.restart = func() { b.Close(); start() }
		t.Cleanup(func() { b.Close() })
	case "mosquitto":
		m := broker.Mosquitto{Authorizers: []string{services[0].User, services[1].User}}
		if o.pki != nil {
			m.TLSPort = brokertest.FreePort(t)
			m.CAFile, m.CertFile, m.KeyFile, m.RequireClientCert = o.pki.CAFile, o.pki.CertFile, o.pki.KeyFile, true
		}
		var creds []broker.Credential
		creds = append(creds, services...)
		for u, p := range termPasswords {
			creds = append(creds, broker.Credential{User: u, Password: p})
		}
		e.mq = brokertest.StartMosquitto(t, m, creds)
		e.url = "tcp://" + e.mq.Addr()
		if o.pki != nil {
			e.url = "ssl://" + e.mq.TLSAddr()
		}
		e.restart = func() { e.mq.Kill(); e.mq.Start() }
	}
	if o.pki != nil {
		e.tls = o.pki.ClientTLS(true)
	}
	for i := 0; i < o.authorizers; i++ { // -1: none
		e.addAuthorizer(services[i], e.fb)
	}
	t.Cleanup(func() {
		log := e.logs.String()
		if os.Getenv("AUTHZ_TEST_LOG") != "" {
			t.Log(log)
		}
		if t.Failed() {
			return
		}
		if e.mq != nil {
			log += e.mq.Log()
		}
		for _, s := range secretsInLogs {
			if strings.Contains(log, s) {
				t.Errorf("a secret (%.4s…) appears in the logs", s)
			}
		}
	})
	return e
}

func (e *env) addAuthorizer(svc broker.Credential, b authz.Backend) *authz.Authorizer {
	e.t.Helper()
	return e.addAuthorizerWith(svc, b, nil)
}

func (e *env) addAuthorizerWith(svc broker.Credential, b authz.Backend, onStatus func(authz.TerminalStatus)) *authz.Authorizer {
	e.t.Helper()
	a, err := authz.New(authz.Config{
		Broker: e.url, Brokers: e.urls, TLS: e.tls, Username: svc.User, Password: svc.Password,
		// MaxPerTerminal: one terminal here publishes up to 200 pay
		// requests at once to see them shared; the burst refusal has its
		// own test (authz TestTerminalBurstRefused).
		Workers: 4, MaxPerTerminal: 1000, KeepAlive: 2 * time.Second, MaxReconnectInterval: 200 * time.Millisecond, ConnectTimeout: time.Second,
		PublishTimeout: 3 * time.Second, Logger: e.logs.logger(), OnStatus: onStatus,
	}, b)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { a.Close() })
	e.authzs = append(e.authzs, a)
	return a
}

type counter struct{ n atomic.Uint64 }

func (c *counter) next() (uint64, error) { return c.n.Add(1), nil }

// newLink starts terminal id's link on out (nil = an empty outbox).
func (e *env) newLink(id string, out terminal.Outbox, seq *counter) *link.Link {
	e.t.Helper()
	return e.newLinkOn(id, []string{e.url}, out, seq)
}

// newLinkOn is newLink with the brokers the link tries, in order.
func (e *env) newLinkOn(id string, brokers []string, out terminal.Outbox, seq *counter) *link.Link {
	e.t.Helper()
	if out == nil {
		out = newOutbox()
	}
	if seq == nil {
		seq = &counter{}
	}
	l, err := link.New(link.Config{
		Brokers: brokers, TLS: e.tls, Terminal: id, Password: termPasswords[id], ConnSeq: seq.next,
		// KeepAlive 2 s, not 1: at 1 s the embedded (mochi) broker's read
		// deadline is also 1 s (1.5 × keepalive in whole seconds) and it
		// cut idle links as paho sent its first ping; mosquitto allows
		// 1.5 s, a quarter-second margin over paho's ping check on a
		// loaded machine. No test here relies on keepalive detection: a
		// broker restart closes the connections.
		KeepAlive: 2 * time.Second, PingTimeout: time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond,
		ProbeInterval: 200 * time.Millisecond, ResendAfter: 2 * time.Second, Window: 8,
		Rand: rand.New(rand.NewPCG(5, 6)).Float64, Logger: e.logs.logger(),
	}, out)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { l.Close() })
	return l
}

// waitUp waits until l is LinkUp.
func waitUp(t testing.TB, l *link.Link) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for l.State() != terminal.LinkUp {
		select {
		case <-l.States():
		case <-deadline:
			t.Fatal("link not up")
		}
	}
}

var (
	txMu   sync.Mutex
	txRand = rand.New(rand.NewPCG(7, 8))
)

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

func pay(tx protocol.TxID, user string, amount int64) *protocol.Request {
	return &protocol.Request{Op: protocol.OpPay, Tx: tx, Amount: amount, Cred: &protocol.Credential{Kind: protocol.CredCard, Text: user}}
}

func request(t *testing.T, l *link.Link, req *protocol.Request, d time.Duration) (*protocol.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return l.Request(ctx, req)
}

// settle is the terminal's in-doubt rule: after a payment without an
// answer, ask again (query) until answered; if the authorizer never saw
// it, reverse it so that a late arrival is refused. It returns the final
// status.
func settle(t *testing.T, l *link.Link, tx protocol.TxID) protocol.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		waitUp(t, l)
		resp, err := request(t, l, &protocol.Request{Op: protocol.OpQuery, Tx: tx}, 2*time.Second)
		if err != nil {
			continue
		}
		switch resp.Status {
		case protocol.StatusApproved, protocol.StatusDeclined, protocol.StatusReversed:
			return resp.Status
		}
		// Unknown (or pending): reverse, so that it can never be charged later.
		resp, err = request(t, l, &protocol.Request{Op: protocol.OpReverse, Tx: tx}, 2*time.Second)
		if err == nil {
			return resp.Status
		}
	}
	t.Fatalf("transaction %s never settled", tx)
	return ""
}

// rawClient is a bare paho client, for what the link would never send.
func (e *env) rawClient(user, pass string, onMsg func(paho.Message)) paho.Client {
	e.t.Helper()
	o := paho.NewClientOptions().AddBroker(e.url).SetClientID(user).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false).SetTLSConfig(e.tls).SetOrderMatters(false)
	if onMsg != nil {
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { onMsg(m) })
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		e.t.Fatalf("raw connect %s: %v", user, tok.Error())
	}
	e.t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func mustPublish(t *testing.T, c paho.Client, topic string, retained bool, payload []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

func encode[M protocol.Message](t testing.TB, m M) []byte {
	b, err := protocol.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
