package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"campuspay/protocol"
	"campuspay/server/authz"
	"campuspay/server/broker"
	"campuspay/server/console"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/metrics"
	"campuspay/server/web"
)

// MQTTConfig is the "mqtt" section of the config file. With no BrokerURL
// (or BrokerURLs) the authorizer runs its own embedded broker on Listen
// (and TLSListen); with one or several, it connects to each of those
// brokers (Mosquitto, EMQX) with its service credential, the same on all.
type MQTTConfig struct {
	Listen    string `json:"listen,omitempty"`     // embedded broker, plain TCP (default 127.0.0.1:1883)
	TLSListen string `json:"tls_listen,omitempty"` // embedded broker, TLS
	TLSCert   string `json:"tls_cert,omitempty"`   // PEM certificate for TLSListen
	TLSKey    string `json:"tls_key,omitempty"`    // PEM key for TLSListen
	BrokerURL string `json:"broker_url,omitempty"` // external broker: tcp://host:1883 or ssl://host:8883
	// BrokerURLs are several external brokers (instead of BrokerURL): the
	// authorizer subscribes on each and answers on the one a request came
	// from, so terminals may fail over between them.
	BrokerURLs  []string `json:"broker_urls,omitempty"`
	CAFile      string   `json:"ca_file,omitempty"`      // CA bundle for an ssl:// broker
	Username    string   `json:"username,omitempty"`     // service user on an external broker (and client id)
	PasswordEnv string   `json:"password_env,omitempty"` // variable holding its password (default CAMPUSPAY_MQTT_PASSWORD)
	Group       string   `json:"group,omitempty"`        // shared-subscription group (default "authz")
	// Workers handle terminal messages concurrently (default
	// authz.DefaultWorkers); MaxQueue bounds the payments waiting for one
	// (default authz.DefaultMaxQueue; past it the oldest is answered BUSY);
	// MaxPerTerminal bounds one terminal's payments in hand (default
	// authz.DefaultMaxPerTerminal; past it TERMINAL_BUSY).
	Workers        int `json:"workers,omitempty"`
	MaxQueue       int `json:"max_queue,omitempty"`
	MaxPerTerminal int `json:"max_per_terminal,omitempty"`
}

// Brokers is the external brokers configured, none for the embedded one.
func (c MQTTConfig) Brokers() []string {
	if c.BrokerURL != "" {
		return append([]string{c.BrokerURL}, c.BrokerURLs...)
	}
	return c.BrokerURLs
}

// defaultMQTTListen is the embedded broker's plain listener when the
// config names no listener at all.
const defaultMQTTListen = "127.0.0.1:1883"

// embeddedBrokerURL names the embedded broker in the authorizer's broker
// states and in the terminals' link states (which broker a terminal came
// through): the authorizer joins it in-process, at no address.
const embeddedBrokerURL = "embedded"

// statusFile is where serve keeps the terminals' link states for
// `authorizer terminal list` (another process).
const statusFile = "terminal-status.json"

// wireServe adds the MQTT side and the web wallet to m before Run: the
// embedded broker (unless an external one is configured), the authz
// handlers with the wallet Service as their back end, config re-publication
// on every change, notices pushed on every static-QR payment, and the
// terminals' link states written for `terminal list`.
func wireServe(ctx context.Context, m *Main, data string) error {
	m.Mux.Handle("/", web.New(web.Config{GenDir: os.Getenv("CAMPUSPAY_WEB_GEN")}))
	if m.Config.OpsListen == "" {
		opsHandlers(m.Mux, m.ready)
	} else {
		ln, err := net.Listen("tcp", m.Config.OpsListen)
		if err != nil {
			return fmt.Errorf("ops listener: %w", err)
		}
		mux := http.NewServeMux()
		opsHandlers(mux, m.ready)
		m.Daemons = append(m.Daemons, serveDaemon("ops endpoints (/metrics, /readyz)", ln, accessLog(m.Log, mux), m.Log))
		// The API's own liveness probe stays where it was.
		m.Mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	}
	m.ready.mqtt = true
	if l, ok := m.Ledger.(*ledgersqlite.Store); ok {
		servedLedger.Store(l)
		m.closers = append(m.closers, func() { servedLedger.CompareAndSwap(l, nil) })
	}

	cfg := m.Config.MQTT
	ac := authz.Config{Brokers: cfg.Brokers(), Group: cfg.Group, Now: m.now, Logger: m.Log,
		Workers: cfg.Workers, MaxQueue: cfg.MaxQueue, MaxPerTerminal: cfg.MaxPerTerminal}
	if len(cfg.Brokers()) == 0 {
		// A plain listener only when asked for, or by default when no
		// listener at all is configured: with only tls_listen the broker
		// opens no plain TCP port (issue 13 item 9).
		listen := cfg.Listen
		if listen == "" && cfg.TLSListen == "" {
			listen = defaultMQTTListen
		}
		// The authorizer joins its embedded broker in-process
		// (broker.Broker.Client): no socket, no service user or password
		// between the broker and its handlers.
		bc := broker.Config{Addr: listen, Logger: m.Log,
			Authenticate: func(user, pass string) bool { return m.Svc.AuthenticateTerminal(ctx, user, pass) }}
		if cfg.TLSListen != "" {
			cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
			if err != nil {
				return fmt.Errorf("mqtt: tls listener: %w", err)
			}
			bc.TLSAddr, bc.TLS = cfg.TLSListen, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		b, err := broker.New(bc)
		if err != nil {
			return fmt.Errorf("mqtt: embedded broker: %w", err)
		}
		servedBroker.Store(b)
		m.closers = append(m.closers, func() { servedBroker.CompareAndSwap(b, nil); b.Close() })
		ac.Brokers, ac.Username, ac.NewClient = []string{embeddedBrokerURL}, "authz", b.Client
		m.Log.Info("embedded MQTT broker", "addr", b.Addr(), "tls", b.TLSAddr())
	} else {
		env := cfg.PasswordEnv
		if env == "" {
			env = "CAMPUSPAY_MQTT_PASSWORD"
		}
		ac.Username, ac.Password = cfg.Username, os.Getenv(env)
		if ac.Username == "" || ac.Password == "" {
			return fmt.Errorf("mqtt: external broker: give mqtt.username and the password in $%s", env)
		}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return fmt.Errorf("mqtt: ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return errors.New("mqtt: ca_file holds no certificate")
			}
			ac.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
	}
	st := &statusWriter{path: filepath.Join(data, statusFile), all: map[string]authz.TerminalStatus{}}
	ac.OnStatus = st.update
	a, err := authz.New(ac, m.Svc)
	if err == nil {
		up := a.Connected
		m.ready.broker.Store(&up)
	}
	if err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	m.Console.SetFleet(func() []console.TerminalLink { return fleetLinks(a.Statuses()) })
	m.Svc.OnConfigChanged(func(terminals []string) {
		if terminals == nil {
			ts, err := m.Svc.Terminals(ctx)
			if err != nil {
				m.Log.Error("config change: list terminals", "err", err)
				return
			}
			for _, t := range ts {
				terminals = append(terminals, t.ID)
			}
		}
		for _, t := range terminals {
			if err := a.PublishConfig(ctx, t); err != nil {
				m.Log.Error("publish config", "terminal", t, "err", err)
			}
		}
	})
	// Static-QR payments are pushed as they happen, each once: after the
	// first push for a terminal only the payments past the last pushed one
	// are read. A terminal that missed some asks for everything after its
	// own cursor when it reconnects (OpNotices).
	var pushMu sync.Mutex
	pushed := map[string]uint64{} // terminal → highest seq pushed by this process
	m.Svc.OnNotice(func(terminal string) {
		pushMu.Lock()
		defer pushMu.Unlock()
		after, seen := pushed[terminal]
		n, err := m.Svc.Notices(ctx, terminal, after)
		if err != nil || len(n.Payments) == 0 {
			return
		}
		if !seen {
			// First push since start: only the new payment, not the history.
			n.Payments = n.Payments[len(n.Payments)-1:]
		}
		n.Cursor = n.Payments[len(n.Payments)-1].Seq
		if err := a.PublishNotice(ctx, n); err != nil {
			m.Log.Error("publish notice", "terminal", terminal, "err", err)
			return
		}
		pushed[terminal] = n.Cursor
	})
	m.Daemons = append(m.Daemons, func(ctx context.Context) error {
		if err := a.Start(ctx); err != nil {
			return fmt.Errorf("mqtt: %w", err)
		}
		// Retained configs for every registered terminal, fresh at start.
		if ts, err := m.Svc.Terminals(ctx); err == nil {
			for _, t := range ts {
				if err := a.PublishConfig(ctx, t.ID); err != nil {
					m.Log.Error("publish config", "terminal", t.ID, "err", err)
				}
			}
		}
		<-ctx.Done()
		return a.Close()
	})
	return nil
}

// statusWriter keeps the terminals' link states in a JSON file.
type statusWriter struct {
	mu   sync.Mutex
	path string
	all  map[string]authz.TerminalStatus
}

func (s *statusWriter) update(t authz.TerminalStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all[t.Terminal] = t
	online := 0
	for _, x := range s.all {
		if x.State == protocol.StateOnline {
			online++
		}
	}
	metrics.ConnectedTerminals.Set(float64(online))
	b, _ := json.MarshalIndent(s.all, "", "  ")
	tmp := s.path + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		os.Rename(tmp, s.path)
	}
}

// readStatuses reads what serve last wrote.
func readStatuses(data string) map[string]authz.TerminalStatus {
	out := map[string]authz.TerminalStatus{}
	b, err := os.ReadFile(filepath.Join(data, statusFile))
	if err == nil {
		json.Unmarshal(b, &out)
	}
	return out
}
