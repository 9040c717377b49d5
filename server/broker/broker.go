// Package broker runs the MQTT broker that terminals and authorizers meet
// on when no external broker is configured: an embedded mochi-mqtt server
// with per-terminal authentication and the topic ACL of DESIGN §4. It also
// generates the equivalent Mosquitto configuration (mosquitto.conf,
// password file, ACL file) for deployments on an external broker, so both
// brokers enforce the same rules (see acl.go).
package broker

import (
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"campuspay/protocol"
)

// Credential is a broker user name and password.
type Credential struct {
	User     string
	Password string
}

// Config configures the embedded broker.
type Config struct {
	// Addr is the plain TCP listen address ("127.0.0.1:1883", ":0" for a
	// free port). Empty: no plain listener.
	Addr string
	// TLSAddr and TLS configure the TLS listener. Set TLS.ClientAuth to
	// tls.RequireAndVerifyClientCert with ClientCAs to require client
	// certificates in addition to passwords.
	TLSAddr string
	TLS     *tls.Config
	// Authenticate checks a terminal's credentials (user name = terminal
	// id). Typically wallet.Service.AuthenticateTerminal.
	Authenticate func(user, password string) bool
	// Services are the authorizer instances' credentials. Their user names
	// must not be terminal ids.
	Services []Credential
	// Logger receives the broker's log (never passwords). Default: slog.Default().
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv     *mqtt.Server
	addr    string
	tlsAddr string
	log     *slog.Logger
}

// New starts an embedded broker with cfg. Close stops it.
func New(cfg Config) (*Broker, error) {
	if cfg.Addr == "" && cfg.TLSAddr == "" {
		return nil, errors.New("broker: no listen address")
	}
	if cfg.TLSAddr != "" && cfg.TLS == nil {
		return nil, errors.New("broker: TLS listener without a TLS config")
	}
	if cfg.Authenticate == nil {
		return nil, errors.New("broker: no terminal authenticator")
	}
	for _, s := range cfg.Services {
		if s.User == "" || s.Password == "" {
			return nil, errors.New("broker: service credential without user or password")
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	// Packets are summarised and repeated records rate-limited (logfilter.go).
	log = slog.New(newLimitHandler(log.Handler(), time.Now)).With("component", "broker")
	// The inline client carries the in-process client's publishes (Client).
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: log})
	h := &accessHook{authenticate: cfg.Authenticate, services: cfg.Services, log: log}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, fmt.Errorf("broker: add hook: %w", err)
	}
	b := &Broker{srv: srv, log: log}
	if cfg.Addr != "" {
		l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Addr})
		if err := srv.AddListener(l); err != nil {
			return nil, fmt.Errorf("broker: listen %s: %w", cfg.Addr, err)
		}
		b.addr = l.Address()
	}
	if cfg.TLSAddr != "" {
		t := cfg.TLS.Clone()
		if t.MinVersion < tls.VersionTLS12 {
			t.MinVersion = tls.VersionTLS12
		}
		l := listeners.NewTCP(listeners.Config{ID: "tls", Address: cfg.TLSAddr, TLSConfig: t})
		if err := srv.AddListener(l); err != nil {
			srv.Close()
			return nil, fmt.Errorf("broker: listen tls %s: %w", cfg.TLSAddr, err)
		}
		b.tlsAddr = l.Address()
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("broker: serve: %w", err)
	}
	return b, nil
}

// Addr is the plain listener's address (host:port), "" if none.
func (b *Broker) Addr() string { return b.addr }

// TLSAddr is the TLS listener's address (host:port), "" if none.
func (b *Broker) TLSAddr() string { return b.tlsAddr }

// ClientsConnected is the number of MQTT clients connected now (an
// in-process Client is none of them).
func (b *Broker) ClientsConnected() int64 { return atomic.LoadInt64(&b.srv.Info.ClientsConnected) }

// Close stops the broker and disconnects every client. Sessions and
// retained messages live only in memory and are lost: nothing about money
// depends on them (the terminal journal is the source of truth).
//
// mochi v2.7.9's Close can deadlock when a client detaches at that moment
// (Clients.GetByListener takes its read lock twice, and the detaching
// client's Delete, waiting for the write lock, blocks the second), so
// Close closes the listeners first, disconnecting their clients from one
// copy of the client list (closeListeners): mochi's Close then finds
// every listener closed and skips its own sweep. It still waits for mochi
// at most closeWait and leaves the rest to the process's exit.
func (b *Broker) Close() error {
	done := make(chan error, 1)
	go func() {
		closeListeners(b.srv)
		done <- b.srv.Close()
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("broker: close: %w", err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("broker: close: mochi did not finish within %s (a client detaching at the same moment)", closeWait)
	}
}

// closeWait bounds Close.
const closeWait = 5 * time.Second

// closeListeners closes srv's listeners and disconnects each one's
// clients, listed with one read lock (Clients.GetAll copies the list), not
// two. A listener closes its clients once, so srv.Close afterwards does
// not sweep them again.
func closeListeners(srv *mqtt.Server) {
	srv.Listeners.CloseAll(func(id string) {
		for _, cl := range srv.Clients.GetAll() {
			if cl.Net.Listener == id && !cl.Closed() {
				_ = srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
			}
		}
	})
}

// accessHook authenticates clients and enforces the ACL.
type accessHook struct {
	mqtt.HookBase
	authenticate func(user, password string) bool
	services     []Credential
	log          *slog.Logger
}

func (h *accessHook) ID() string { return "campuspay-access" }

func (h *accessHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// isService reports whether user is a service user name, and if so whether
// password is its password (compared in constant time).
func (h *accessHook) isService(user, password string) (service, ok bool) {
	for _, s := range h.services {
		if s.User == user {
			return true, subtle.ConstantTimeCompare([]byte(s.Password), []byte(password)) == 1
		}
	}
	return false, false
}

func (h *accessHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	pass := string(pk.Connect.Password)
	refuse := func(why string) bool {
		// The password is never logged.
		h.log.Warn("broker: connection refused", "client", cl.ID, "user", user, "remote", cl.Net.Remote, "reason", why)
		connRefused.WithLabelValues(why).Inc()
		return false
	}
	if user == "" || cl.ID != user {
		return refuse("client id must equal the user name")
	}
	service, ok := h.isService(user, pass)
	if service {
		if !ok {
			return refuse("bad credentials")
		}
		return true
	}
	if !protocol.ValidID(user) {
		return refuse("bad terminal id")
	}
	if !h.authenticate(user, pass) {
		return refuse("bad credentials")
	}
	// mochi does not check a Last Will against the ACL: a terminal's will
	// may only be on its own topics.
	if cl.Properties.Will.Flag == 1 && !TerminalCanWrite(user, cl.Properties.Will.TopicName) {
		return refuse("will topic not allowed")
	}
	return true
}

func (h *accessHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	var ok bool
	switch service, _ := h.isService(user, ""); {
	case service && write:
		ok = ServiceCanWrite(topic)
	case service:
		ok = ServiceCanRead(topic)
	case write:
		ok = TerminalCanWrite(user, topic)
	default:
		ok = TerminalCanRead(user, topic)
	}
	if !ok {
		h.log.Warn("broker: access denied", "user", user, "topic", topic, "write", write)
		if write {
			aclDenied.WithLabelValues("write").Inc()
		} else {
			aclDenied.WithLabelValues("read").Inc()
		}
	}
	return ok
}
