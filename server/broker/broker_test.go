package broker_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
	"campuspay/server/broker"
	"campuspay/server/broker/brokertest"
)

func TestACLRules(t *testing.T) {
	up := func(id, c string) string { return protocol.Topic(protocol.Channel(c), id) }
	tests := []struct {
		name string
		ok   bool
		got  bool
	}{
		{"own request", true, broker.TerminalCanWrite("T1", up("T1", "req"))},
		{"own status", true, broker.TerminalCanWrite("T1", up("T1", "status"))},
		{"other's request", false, broker.TerminalCanWrite("T1", up("T2", "req"))},
		{"prefix id", false, broker.TerminalCanWrite("T1", up("T12", "req"))},
		{"down topic", false, broker.TerminalCanWrite("T1", protocol.Topic(protocol.ChanResponse, "T1"))},
		{"own down filter", true, broker.TerminalCanRead("T1", "campuspay/v1/down/T1/#")},
		{"own resp", true, broker.TerminalCanRead("T1", "campuspay/v1/down/T1/resp")},
		{"other's down", false, broker.TerminalCanRead("T1", "campuspay/v1/down/T2/#")},
		{"wildcard terminal", false, broker.TerminalCanRead("T1", "campuspay/v1/down/+/resp")},
		{"everything", false, broker.TerminalCanRead("T1", "#")},
		{"shared", false, broker.TerminalCanRead("T1", "$share/g/campuspay/v1/down/T1/#")},
		{"up filter", false, broker.TerminalCanRead("T1", "campuspay/v1/up/T1/#")},
		{"bad id", false, broker.TerminalCanWrite("T+", "campuspay/v1/up/T+/req")},
		{"service writes down", true, broker.ServiceCanWrite("campuspay/v1/down/T1/resp")},
		{"service writes up", false, broker.ServiceCanWrite("campuspay/v1/up/T1/req")},
		{"service reads shared", true, broker.ServiceCanRead(protocol.AuthorizerFilter(protocol.ChanRequest, "authz"))},
		{"service reads status", true, broker.ServiceCanRead(protocol.AuthorizerFilter(protocol.ChanStatus, ""))},
		{"service reads down", false, broker.ServiceCanRead("campuspay/v1/down/#")},
		{"service bad share", false, broker.ServiceCanRead("$share/campuspay/v1/up/#")},
	}
	for _, tt := range tests {
		if tt.got != tt.ok {
			t.Errorf("%s: allowed = %v, want %v", tt.name, tt.got, tt.ok)
		}
	}
}

func TestPasswordEntryMatchesMosquittoPasswd(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	file := filepath.Join(t.TempDir(), "pw")
	if out, err := exec.Command(bin, "-c", "-b", file, "T1", "s3cret-pw").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	theirs := strings.TrimSpace(string(b))
	if !broker.CheckPasswordEntry(theirs, "s3cret-pw") {
		t.Errorf("our check refuses mosquitto_passwd's entry %q", theirs)
	}
	if broker.CheckPasswordEntry(theirs, "wrong") {
		t.Error("wrong password accepted")
	}
	ours, err := broker.PasswordEntry("T1", "s3cret-pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ours, "T1:$7$101$") || !broker.CheckPasswordEntry(ours, "s3cret-pw") || broker.CheckPasswordEntry(ours, "s3cret-px") {
		t.Errorf("our entry %q does not check", ours)
	}
	// Same shape as mosquitto_passwd's: salt 12 bytes, hash 64 bytes.
	if p, q := strings.Split(ours, "$"), strings.Split(theirs, "$"); len(p[3]) != len(q[3]) || len(p[4]) != len(q[4]) {
		t.Errorf("entry shape %q differs from mosquitto_passwd's %q", ours, theirs)
	}
}

func TestWriteMosquittoRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, err := broker.WriteMosquitto(broker.Mosquitto{Dir: dir}, nil); err == nil {
		t.Error("no port accepted")
	}
	if _, err := broker.WriteMosquitto(broker.Mosquitto{Dir: dir, TLSPort: 8883}, nil); err == nil {
		t.Error("TLS without files accepted")
	}
	if _, err := broker.WriteMosquitto(broker.Mosquitto{Dir: dir, Port: 1883}, []string{"T1:plain\nuser x"}); err == nil {
		t.Error("malformed entry accepted")
	}
	f, err := broker.WriteMosquitto(broker.Mosquitto{Dir: dir, Port: 1883, Authorizers: []string{"authz-1"}, RunAs: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(f.Conf)
	for _, want := range []string{"set_tcp_nodelay true", "per_listener_settings false", "allow_anonymous false", "password_file ", "acl_file ", "use_username_as_clientid true", "persistence_location "} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("mosquitto.conf lacks %q", want)
		}
	}
	acl, _ := os.ReadFile(f.ACL)
	for _, want := range []string{"pattern write campuspay/v1/up/%u/#", "pattern read campuspay/v1/down/%u/#", "user authz-1", "topic read campuspay/v1/up/#", "topic write campuspay/v1/down/#"} {
		if !strings.Contains(string(acl), want) {
			t.Errorf("acl lacks %q", want)
		}
	}
}

var (
	terminals = map[string]string{"T1": "pw-one-9f8e7d", "T2": "pw-two-1a2b3c"}
	service   = broker.Credential{User: "authz-1", Password: "svc-pw-5d6e7f"}
)

func authenticate(user, pass string) bool { p, ok := terminals[user]; return ok && p == pass }

func creds() []broker.Credential {
	out := []broker.Credential{service}
	for u, p := range terminals {
		out = append(out, broker.Credential{User: u, Password: p})
	}
	return out
}

// brokers starts each kind of broker with the same users; url is its
// plain listener as tcp://host:port.
type brokerUnderTest struct {
	name   string
	url    string
	tlsURL string
	log    func() string
}

func startBrokers(t *testing.T, pki *brokertest.PKI) []brokerUnderTest {
	var out []brokerUnderTest
	var buf syncBuffer
	cfg := broker.Config{
		Addr: "127.0.0.1:0", Authenticate: authenticate, Services: []broker.Credential{service},
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if pki != nil {
		cfg.TLSAddr, cfg.TLS = "127.0.0.1:0", pki.ServerTLS(true)
	}
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e := brokerUnderTest{name: "embedded", url: "tcp://" + b.Addr(), log: buf.String}
	if pki != nil {
		e.tlsURL = "ssl://" + b.TLSAddr()
	}
	out = append(out, e)

	m := broker.Mosquitto{Authorizers: []string{service.User}}
	if pki != nil {
		m.TLSPort = brokertest.FreePort(t)
		m.CAFile, m.CertFile, m.KeyFile, m.RequireClientCert = pki.CAFile, pki.CertFile, pki.KeyFile, true
	}
	mq := brokertest.StartMosquitto(t, m, creds())
	// Only the configured listeners are open (a listener option placed
	// before the first listener line would open a default one on 1883).
	want := 1
	if pki != nil {
		want = 2
	}
	if got := brokertest.Lines(mq.Log(), "Opening ipv4 listen socket"); len(got) != want {
		t.Fatalf("mosquitto opened %d listeners, want %d: %q", len(got), want, got)
	}
	mo := brokerUnderTest{name: "mosquitto", url: "tcp://" + mq.Addr(), log: mq.Log}
	if pki != nil {
		mo.tlsURL = "ssl://" + mq.TLSAddr()
	}
	return append(out, mo)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type received struct {
	ch chan paho.Message
}

func connect(t *testing.T, url, user, pass, clientID string, tc *tls.Config) (paho.Client, *received, error) {
	t.Helper()
	r := &received{ch: make(chan paho.Message, 100)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { r.ch <- m })
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, nil, os.ErrDeadlineExceeded
	}
	if err := tok.Error(); err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, r, nil
}

func mustConnect(t *testing.T, url, user string) (paho.Client, *received) {
	t.Helper()
	pass := terminals[user]
	if user == service.User {
		pass = service.Password
	}
	c, r, err := connect(t, url, user, pass, user, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	return c, r
}

func wait(t *testing.T, tok paho.Token) error {
	t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("token timed out")
	}
	return tok.Error()
}

// expect waits for a message on topic, failing on any other message first.
func (r *received) expect(t *testing.T, topic string) {
	t.Helper()
	select {
	case m := <-r.ch:
		if m.Topic() != topic {
			t.Fatalf("got a message on %s (payload %q) before the one on %s", m.Topic(), m.Payload(), topic)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no message on %s", topic)
	}
}

func TestAuthentication(t *testing.T) {
	for _, b := range startBrokers(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			cases := []struct{ name, user, pass, id string }{
				{"wrong password", "T1", "nope", "T1"},
				{"unknown user", "T9", "pw", "T9"},
				{"no credentials", "", "", "anon"},
				{"service wrong password", service.User, "nope", service.User},
				{"terminal password for another", "T1", terminals["T2"], "T1"},
			}
			if b.name == "embedded" { // mosquitto overrides the client id (use_username_as_clientid)
				cases = append(cases, struct{ name, user, pass, id string }{"client id is not the user", "T1", terminals["T1"], "T2"})
			}
			for _, c := range cases {
				if _, _, err := connect(t, b.url, c.user, c.pass, c.id, nil); err == nil {
					t.Errorf("%s: connection accepted", c.name)
				}
			}
			mustConnect(t, b.url, "T1")
			mustConnect(t, b.url, service.User)
			for _, p := range append([]string{service.Password}, terminals["T1"], terminals["T2"], "nope") {
				if p != "nope" && strings.Contains(b.log(), p) {
					t.Errorf("a password appears in the broker log")
				}
			}
		})
	}
}

func TestTerminalCannotUseAnotherTerminalsTopics(t *testing.T) {
	for _, b := range startBrokers(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			svc, svcMsgs := mustConnect(t, b.url, service.User)
			if err := wait(t, svc.Subscribe(protocol.AuthorizerFilter(protocol.ChanRequest, "authz"), 1, nil)); err != nil {
				t.Fatal(err)
			}
			t2, t2Msgs := mustConnect(t, b.url, "T2")
			if err := wait(t, t2.Subscribe("campuspay/v1/down/T2/#", 1, nil)); err != nil {
				t.Fatal(err)
			}

			// T1 tries to subscribe to T2's responses and to everything.
			// The SUBACK may grant it (mosquitto): what matters is delivery.
			t1, t1Msgs := mustConnect(t, b.url, "T1")
			for _, f := range []string{"campuspay/v1/down/T2/#", "campuspay/v1/down/+/resp", "#", "campuspay/v1/up/T2/req"} {
				wait(t, t1.Subscribe(f, 1, nil))
			}
			if err := wait(t, t1.Subscribe("campuspay/v1/down/T1/#", 1, nil)); err != nil {
				t.Fatal(err)
			}
			// The authorizer answers T2, then T1: T1 must see only its own.
			wait(t, svc.Publish(protocol.Topic(protocol.ChanResponse, "T2"), 1, false, "for T2"))
			wait(t, svc.Publish(protocol.Topic(protocol.ChanResponse, "T1"), 1, false, "for T1"))
			t2Msgs.expect(t, protocol.Topic(protocol.ChanResponse, "T2"))
			t1Msgs.expect(t, protocol.Topic(protocol.ChanResponse, "T1"))

			// T1 impersonates T2 towards the authorizer and towards T2.
			// Mosquitto acks the denied 3.1.1 PUBLISH and drops it; mochi
			// drops it and disconnects T1. Either way: no delivery.
			lost := make(chan struct{})
			t1b, _, err := connectWithLost(t, b.url, "T1", lost)
			if err != nil {
				t.Fatal(err)
			}
			for _, topic := range []string{protocol.Topic(protocol.ChanRequest, "T2"), protocol.Topic(protocol.ChanResponse, "T2")} {
				tok := t1b.Publish(topic, 1, false, "forged")
				select {
				case <-tok.Done():
				case <-lost:
				case <-time.After(10 * time.Second):
					t.Fatal("denied publish neither acked nor disconnected")
				}
			}
			// Barrier: an allowed request from T1 arrives, and nothing else did.
			t1c, _ := mustConnect(t, b.url, "T1")
			if err := wait(t, t1c.Publish(protocol.Topic(protocol.ChanRequest, "T1"), 1, false, "real")); err != nil {
				t.Fatal(err)
			}
			svcMsgs.expect(t, protocol.Topic(protocol.ChanRequest, "T1"))
			wait(t, svc.Publish(protocol.Topic(protocol.ChanResponse, "T2"), 1, false, "barrier"))
			select {
			case m := <-t2Msgs.ch:
				if string(m.Payload()) != "barrier" {
					t.Fatalf("T2 received %q from T1", m.Payload())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no barrier message")
			}
		})
	}
}

func connectWithLost(t *testing.T, url, user string, lost chan struct{}) (paho.Client, *received, error) {
	r := &received{ch: make(chan paho.Message, 100)}
	var once sync.Once
	o := paho.NewClientOptions().AddBroker(url).SetClientID(user).SetUsername(user).SetPassword(terminals[user]).
		SetAutoReconnect(false).SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { r.ch <- m }).
		SetConnectionLostHandler(func(paho.Client, error) { once.Do(func() { close(lost) }) })
	c := paho.NewClient(o)
	if err := wait(t, c.Connect()); err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, r, nil
}

func TestEmbeddedRefusesForeignWill(t *testing.T) {
	b, err := broker.New(broker.Config{Addr: "127.0.0.1:0", Authenticate: authenticate})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	o := paho.NewClientOptions().AddBroker("tcp://"+b.Addr()).SetClientID("T1").SetUsername("T1").SetPassword(terminals["T1"]).
		SetAutoReconnect(false).SetWill(protocol.Topic(protocol.ChanStatus, "T2"), "forged", 1, true)
	if err := wait(t, paho.NewClient(o).Connect()); err == nil {
		t.Error("a will on another terminal's topic was accepted")
	}
	o.SetWill(protocol.Topic(protocol.ChanStatus, "T1"), "offline", 1, true)
	c := paho.NewClient(o)
	if err := wait(t, c.Connect()); err != nil {
		t.Errorf("own will refused: %v", err)
	}
	c.Disconnect(0)
}

func TestTLS(t *testing.T) {
	pki := brokertest.NewPKI(t)
	for _, b := range startBrokers(t, pki) {
		t.Run(b.name, func(t *testing.T) {
			if _, _, err := connect(t, b.tlsURL, "T1", terminals["T1"], "T1", pki.ClientTLS(true)); err != nil {
				t.Errorf("TLS with client certificate: %v", err)
			}
			if _, _, err := connect(t, b.tlsURL, "T1", terminals["T1"], "T1", pki.ClientTLS(false)); err == nil {
				t.Error("TLS without the required client certificate accepted")
			}
			wrongCA := pki.ClientTLS(true)
			wrongCA.RootCAs = pki.OtherCAPool
			if _, _, err := connect(t, b.tlsURL, "T1", terminals["T1"], "T1", wrongCA); err == nil {
				t.Error("client accepted a server certificate from an unknown CA")
			}
			if _, _, err := connect(t, b.tlsURL, "T1", "nope", "T1", pki.ClientTLS(true)); err == nil {
				t.Error("TLS with a wrong password accepted")
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []broker.Config{
		{},
		{Addr: "127.0.0.1:0"},
		{TLSAddr: "127.0.0.1:0", Authenticate: authenticate},
		{Addr: "127.0.0.1:0", Authenticate: authenticate, Services: []broker.Credential{{User: "x"}}},
	} {
		if b, err := broker.New(c); err == nil {
			b.Close()
			t.Errorf("config %+v accepted", c)
		}
	}
}

// The example ACL in configs/ is what the generator writes.
func TestExampleACLMatchesGenerator(t *testing.T) {
	b, err := os.ReadFile("../../configs/mosquitto.acl")
	if err != nil {
		t.Skip("configs/mosquitto.acl not found")
	}
	if want := broker.MosquittoACL([]string{"authz-1"}); string(b) != want {
		t.Errorf("configs/mosquitto.acl differs from MosquittoACL:\n%s", want)
	}
}

// The example mosquitto.conf carries every directive the generator writes
// (generated configurations are run by the integration tests; the example's
// /etc paths do not exist here).
func TestExampleConfHasGeneratorDirectives(t *testing.T) {
	b, err := os.ReadFile("../../configs/mosquitto.conf")
	if err != nil {
		t.Skip("configs/mosquitto.conf not found")
	}
	f, err := broker.WriteMosquitto(broker.Mosquitto{Dir: t.TempDir(), Port: 1883, TLSPort: 8883, CAFile: "c", CertFile: "c", KeyFile: "k", RunAs: "root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gen, _ := os.ReadFile(f.Conf)
	for _, line := range strings.Split(string(gen), "\n") {
		key, _, _ := strings.Cut(line, " ")
		if key == "" || strings.HasPrefix(key, "#") {
			continue
		}
		if !strings.Contains(string(b), "\n"+key+" ") {
			t.Errorf("configs/mosquitto.conf lacks the %s directive", key)
		}
	}
}

// A terminal connecting with another terminal's client id cannot take
// over its session: the embedded broker refuses it, mosquitto renames it
// to its user name (use_username_as_clientid).
func TestNoSessionTakeover(t *testing.T) {
	for _, b := range startBrokers(t, nil) {
		t.Run(b.name, func(t *testing.T) {
			lost := make(chan struct{})
			t2, t2Msgs, err := connectWithLost(t, b.url, "T2", lost)
			if err != nil {
				t.Fatal(err)
			}
			if err := wait(t, t2.Subscribe("campuspay/v1/down/T2/#", 1, nil)); err != nil {
				t.Fatal(err)
			}
			c, _, err := connect(t, b.url, "T1", terminals["T1"], "T2", nil)
			if b.name == "embedded" && err == nil {
				t.Fatal("embedded broker accepted client id T2 for user T1")
			}
			if b.name == "mosquitto" && err != nil {
				t.Fatalf("mosquitto refused: %v", err)
			}
			_ = c
			svc, _ := mustConnect(t, b.url, service.User)
			wait(t, svc.Publish(protocol.Topic(protocol.ChanResponse, "T2"), 1, false, "still there"))
			select {
			case <-t2Msgs.ch:
			case <-lost:
				t.Fatal("T2's session was taken over")
			case <-time.After(10 * time.Second):
				t.Fatal("T2 received nothing")
			}
		})
	}
}

// Close disconnects the clients still connected and returns, also while
// others detach at the same moment: mochi's own Close could deadlock then
// (its client sweep takes the clients' read lock twice, and a detaching
// client's delete waits for the write lock between the two), and Close
// would give up after its bound with an error.
func TestCloseWhileClientsDetach(t *testing.T) {
	for round := range 10 {
		b, err := broker.New(broker.Config{Addr: "127.0.0.1:0", Authenticate: authenticate, Services: []broker.Credential{service},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		url := "tcp://" + b.Addr()
		lost := make(chan struct{})
		if _, _, err := connectWithLost(t, url, "T1", lost); err != nil {
			t.Fatal(err)
		}
		t2, _ := mustConnect(t, url, "T2")
		svc, _ := mustConnect(t, url, service.User)
		var wg sync.WaitGroup
		for _, c := range []paho.Client{t2, svc} {
			wg.Go(func() { c.Disconnect(0) })
		}
		if err := b.Close(); err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
		wg.Wait()
		select {
		case <-lost:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: T1 still connected after Close", round)
		}
	}
}
