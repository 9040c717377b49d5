package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/curve25519"

	"campuspay/protocol"
	"campuspay/server/api"
	"campuspay/server/bank"
	"campuspay/server/console"
	"campuspay/server/metrics"
	"campuspay/server/wallet"
	walletsqlite "campuspay/server/wallet/sqlite"
	"campuspay/server/wechat"
)

// Duration is a time.Duration written as "15m" in the config file.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string like \"15m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// FileConfig is the authorizer's configuration file (JSON). Secrets may be
// left empty in the file and given in the environment instead:
// CAMPUSPAY_BANK_SECRET, CAMPUSPAY_WECHAT_API_KEY, CAMPUSPAY_WECHAT_MINI_SECRET.
type FileConfig struct {
	HTTP string `json:"http"` // API listen address
	// TLSCert and TLSKey (PEM files) make serve speak HTTPS: phones on the
	// campus network need it, WebCrypto only works in a secure context.
	TLSCert           string                   `json:"tls_cert,omitempty"`
	TLSKey            string                   `json:"tls_key,omitempty"`
	Campuses          map[string]wallet.Campus `json:"campuses"`
	SupportedBanks    []string                 `json:"supported_banks"`
	DefaultLimitPerTx int64                    `json:"default_limit_per_tx"`
	DefaultLimitDaily int64                    `json:"default_limit_daily"`
	BcryptCost        int                      `json:"bcrypt_cost"`
	PasswordLock      Duration                 `json:"password_lock"`
	CertValidity      Duration                 `json:"cert_validity"`
	HoldTTL           Duration                 `json:"hold_ttl"`
	Tariff            protocol.Tariff          `json:"tariff"`
	AuthTimeoutMS     int                      `json:"auth_timeout_ms"`
	Offline           OfflineFileConfig        `json:"offline,omitzero"` // offline payment codes (offline.go)
	// LogLevel (debug, info, warn, error) and LogFormat (json, text) set
	// serve's log on stderr; --log-level overrides the level.
	LogLevel  string `json:"log_level,omitempty"`
	LogFormat string `json:"log_format,omitempty"`
	// OpsListen, when set, serves /metrics, /healthz and /readyz on their
	// own listener (keep it off the students' network) instead of the API's.
	OpsListen string `json:"ops_listen,omitempty"`
	// Database is where the state lives: empty for SQLite files in the
	// data folder, or a postgres:// URL (database.go).
	Database string `json:"database,omitempty"`
	// MaxBatch bounds the writes one commit carries, in the wallet store
	// and the ledger alike (0: their defaults, 128 and 256). See
	// docs/money-path.md.
	MaxBatch int `json:"max_batch,omitempty"`
	// ConsoleSessionTTL is how long a back-office login lasts (default
	// 8h); PlacardFont the font with Chinese glyphs the printed
	// placards use (default: fonts-wqy-microhei's).
	ConsoleSessionTTL Duration   `json:"console_session_ttl,omitempty"`
	PlacardFont       string     `json:"placard_font,omitempty"`
	MQTT              MQTTConfig `json:"mqtt"`
	Bank              struct {
		BaseURL  string `json:"base_url"`
		ClientID string `json:"client_id"`
		Secret   string `json:"secret,omitempty"`
	} `json:"bank"`
	WeChat struct {
		PayURL     string `json:"pay_url"`
		LoginURL   string `json:"login_url,omitempty"`
		AppID      string `json:"app_id"`
		MchID      string `json:"mch_id"`
		APIKey     string `json:"api_key,omitempty"`
		MiniAppID  string `json:"mini_app_id,omitempty"`
		MiniSecret string `json:"mini_secret,omitempty"`
	} `json:"wechat"`
	// Support is the help desk the web wallet's help pages name.
	Support api.Support `json:"support,omitempty"`
}

// DefaultConfig is used when no config file exists.
func DefaultConfig() FileConfig {
	c := FileConfig{
		HTTP: "127.0.0.1:8080",
		Campuses: map[string]wallet.Campus{
			"yungu": {Name: "云谷", Showers: true},
			"main":  {Name: "主校区"},
		},
		SupportedBanks:    []string{"CCB", "ICBC", "ABC", "BOC", "BOCOM", "PSBC"},
		DefaultLimitPerTx: 500_00,
		DefaultLimitDaily: 1000_00,
		PasswordLock:      Duration(15 * time.Minute),
		CertValidity:      Duration(30 * 24 * time.Hour),
		HoldTTL:           Duration(72 * time.Hour),
		Tariff:            protocol.Tariff{CentsPerLitre: 10, PulsesPerLitre: 450, Hold: 2000, IdleTimeoutS: 60},
		AuthTimeoutMS:     5000,
		LogLevel:          "info",
		LogFormat:         "json",
	}
	return c
}

// LoadConfig reads path over the defaults; a missing file at the default
// place is not an error.
func LoadConfig(path string, mustExist bool) (FileConfig, error) {
	c := DefaultConfig()
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !mustExist {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if v := os.Getenv("CAMPUSPAY_BANK_SECRET"); v != "" {
		c.Bank.Secret = v
	}
	if v := os.Getenv("CAMPUSPAY_WECHAT_API_KEY"); v != "" {
		c.WeChat.APIKey = v
	}
	if v := os.Getenv("CAMPUSPAY_WECHAT_MINI_SECRET"); v != "" {
		c.WeChat.MiniSecret = v
	}
	return c, nil
}

func (c FileConfig) wallet() wallet.Config {
	return wallet.Config{
		Campuses: c.Campuses, SupportedBanks: c.SupportedBanks,
		DefaultLimitPerTx: c.DefaultLimitPerTx, DefaultLimitDaily: c.DefaultLimitDaily,
		BcryptCost: c.BcryptCost, PasswordLock: time.Duration(c.PasswordLock), CertValidity: time.Duration(c.CertValidity),
		HoldTTL: time.Duration(c.HoldTTL), Tariff: c.Tariff, AuthTimeoutMS: c.AuthTimeoutMS,
		Offline: c.Offline.wallet(),
	}
}

// Options open a Main.
type Options struct {
	Data       string           // data folder: SQLite files and keys
	ConfigPath string           // default DATA/authorizer.json (optional there)
	Now        func() time.Time // default time.Now
	// Log is the log; when nil, one is made from the config's log_level
	// and log_format on LogOutput (default stderr), LogLevel overriding.
	Log       *slog.Logger
	LogOutput io.Writer
	LogLevel  string
	// Bank and WeChat override the adapters built from the config (tests).
	Bank     bank.Client
	WeChat   wechat.Client
	NoWeChat bool // do not build a WeChat adapter from the config
	// Serve: the daemon is starting, so the gateways' secrets are checked
	// with the rest of the config.
	Serve bool
}

// Daemon is a long-running part of serve; it returns when ctx ends.
type Daemon func(ctx context.Context) error

// Main is the authorizer daemon: its stores, keys, wallet Service and HTTP
// API. Tests start the real daemon with Open, Run and Close.
type Main struct {
	Config FileConfig
	Keys   wallet.Keys
	Store  walletStore // wallet/sqlite or wallet/postgres (database.go)
	Ledger ledgerStore // ledger/sqlite or ledger/postgres
	Svc    *wallet.Service
	API    *api.Server
	// Console is the back office (server/console), mounted on /console/.
	Console *console.Console
	// Mux is what serve serves: /api/ is the app API; the web wallet
	// (server/web) is mounted on "/" by whoever wires it.
	Mux *http.ServeMux
	Log *slog.Logger

	// Daemons run beside the HTTP API during Run. The MQTT side — the
	// embedded broker (server/broker) and the terminal handlers
	// (server/authz, which call Svc.HandleRequest, ApplyJournal, Notices,
	// TerminalConfig, AuthenticateTerminal and Terminals and subscribe to
	// Svc.OnConfigChanged / OnNotice) — is added here by serve.
	Daemons []Daemon

	// Bank and WeChat are the adapters the Service uses (WeChat may be
	// nil); settlement downloads their statements (money.go).
	Bank   bank.Client
	WeChat wechat.Client

	closers []func() // run by Close before the stores close (the embedded broker)
	ready   *readiness
	dbProbe func(context.Context) error // PostgreSQL's readiness; nil for SQLite files

	now func() time.Time
}

// Open opens the data folder (creating it, the databases and the keys on
// first run) and builds the Service.
func Open(o Options) (*Main, error) {
	if o.Data == "" {
		o.Data = "data"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	explicit := o.ConfigPath != ""
	if !explicit {
		o.ConfigPath = filepath.Join(o.Data, "authorizer.json")
	}
	cfg, err := LoadConfig(o.ConfigPath, explicit)
	if err != nil {
		return nil, err
	}
	need := Secrets{Bank: o.Serve && o.Bank == nil, WeChat: o.Serve && o.WeChat == nil && !o.NoWeChat}
	if o.LogLevel != "" {
		cfg.LogLevel = o.LogLevel
	}
	if err := cfg.Validate(o.ConfigPath, need); err != nil {
		return nil, err
	}
	if o.Log == nil {
		w := o.LogOutput
		if w == nil {
			w = os.Stderr
		}
		if o.Log, err = newLogger(w, cfg.LogFormat, cfg.LogLevel); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	m := &Main{Config: cfg, Log: o.Log, now: o.Now}
	m.ready = newReadiness(m, o.Data)
	if m.Keys, err = loadKeys(o.Data); err != nil {
		return nil, err
	}
	// Bank card, ID and phone numbers are encrypted under a key kept
	// beside the other keys, not in the database.
	fieldKey, err := readOrCreate(filepath.Join(o.Data, walletsqlite.KeyFile), walletsqlite.NewFieldKey)
	if err != nil {
		return nil, err
	}
	// A migration that rebuilds a table can outlast systemd's start
	// timeout (90 s unless the unit says otherwise): from the first one on,
	// the start is extended until the stores are open.
	var migrating sync.Once
	opened := make(chan struct{})
	st, err := openStores(cfg, o.Data, fieldKey, func(msg string) {
		o.Log.Info(msg)
		migrating.Do(func() { go extendStart(opened, o.Log) })
	})
	close(opened)
	if err != nil {
		return nil, err
	}
	m.Store, m.Ledger, m.dbProbe = st.wallet, st.ledger, st.probe
	bc, wc := o.Bank, o.WeChat
	if bc == nil {
		bc = unconfiguredBank{}
		if cfg.Bank.BaseURL != "" {
			if bc, err = bank.NewHTTPClient(bank.HTTPConfig{BaseURL: cfg.Bank.BaseURL, ClientID: cfg.Bank.ClientID, Secret: cfg.Bank.Secret, Now: o.Now}); err != nil {
				m.Close()
				return nil, err
			}
		}
	}
	if wc == nil && !o.NoWeChat && cfg.WeChat.PayURL != "" {
		if wc, err = wechat.NewHTTPClient(wechat.Config{PayURL: cfg.WeChat.PayURL, LoginURL: cfg.WeChat.LoginURL, AppID: cfg.WeChat.AppID,
			MchID: cfg.WeChat.MchID, APIKey: cfg.WeChat.APIKey, MiniAppID: cfg.WeChat.MiniAppID, MiniSecret: cfg.WeChat.MiniSecret}); err != nil {
			m.Close()
			return nil, err
		}
	}
	m.Bank, m.WeChat = bc, wc
	if m.Svc, err = wallet.New(cfg.wallet(), m.Keys, wallet.Deps{Store: m.Store, Ledger: m.Ledger, Bank: bc, WeChat: wc, Now: o.Now}); err != nil {
		m.Close()
		return nil, err
	}
	m.API = api.New(m.Svc, m.Store, api.Options{Now: o.Now, Log: o.Log, Support: cfg.Support})
	m.Mux = http.NewServeMux()
	m.Mux.Handle("/api/", m.API)
	parties, _ := m.ReconcileParties() // none without a bank gateway: the page says so
	m.Console = console.New(m.Svc, m.Store, console.Options{Now: o.Now, Log: o.Log, SecureCookie: cfg.TLSCert != "",
		SessionTTL: time.Duration(cfg.ConsoleSessionTTL), FontPath: cfg.PlacardFont, Parties: parties})
	m.Mux.Handle(console.Prefix, m.Console)
	return m, nil
}

// Run serves the HTTP API on addr (the config's when empty) and the
// Daemons until ctx ends; ready, if not nil, gets the bound address.
func (m *Main) Run(ctx context.Context, addr string, ready func(net.Addr)) error {
	if addr == "" {
		addr = m.Config.HTTP
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if m.Config.TLSCert != "" || m.Config.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(m.Config.TLSCert, m.Config.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("serve: tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	srv := &http.Server{Handler: accessLog(m.Log, m.Mux), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(m.Daemons)+2)
	var wg sync.WaitGroup
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	run(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	run(func() error { m.housekeeping(ctx); return nil })
	for _, d := range m.Daemons {
		run(func() error { return d(ctx) })
	}
	m.Log.Info("authorizer serving", "http", ln.Addr().String(), "version", version)
	run(func() error { notifier{r: m.ready, log: m.Log}.run(ctx); return nil })
	if ready != nil {
		ready(ln.Addr())
	}
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	srv.Shutdown(sctx)
	wg.Wait()
	close(errs)
	return <-errs
}

// housekeeping settles unfinished transactions (wallet.Service.Recover)
// at start and then, with expired shower holds, once a minute.
func (m *Main) housekeeping(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if n, err := m.Svc.Recover(ctx, wallet.RecoverAfter); err != nil {
			m.Log.Error("recover unfinished transactions", "settled", n, "err", err)
		} else if n > 0 {
			m.Log.Info("recovered unfinished transactions", "settled", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := m.Svc.ExpireHolds(ctx); err != nil {
			m.Log.Error("expire holds", "err", err)
		} else if n > 0 {
			m.Log.Info("expired holds", "n", n)
		}
		if n, _, err := m.Svc.OpenHolds(ctx); err == nil {
			metrics.OpenHolds.Set(float64(n))
		}
	}
}

// Close closes the stores.
func (m *Main) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		m.closers[i]()
	}
	m.closers = nil
	if m.ready != nil {
		m.ready.close()
	}
	if m.Ledger != nil { // first: it may live in the store's database
		errs = append(errs, m.Ledger.Close())
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}

// Key files in the data folder.
const (
	issuerKeyFile = "issuer.key" // base64 Ed25519 private key (64 bytes)
	sealKeyFile   = "seal.key"   // base64 X25519 private key (32 bytes)
)

// loadKeys reads the keys, creating them (mode 0600) on first run.
func loadKeys(dir string) (wallet.Keys, error) {
	k := wallet.Keys{IssuerID: 1}
	raw, err := readOrCreate(filepath.Join(dir, issuerKeyFile), func() ([]byte, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	})
	if err != nil {
		return k, err
	}
	if len(raw) != ed25519.PrivateKeySize {
		return k, fmt.Errorf("keys: %s has %d bytes, want %d", issuerKeyFile, len(raw), ed25519.PrivateKeySize)
	}
	k.Issuer = ed25519.PrivateKey(raw)
	raw, err = readOrCreate(filepath.Join(dir, sealKeyFile), func() ([]byte, error) {
		_, priv, err := protocol.NewSealKey(nil)
		if err != nil {
			return nil, err
		}
		return priv[:], nil
	})
	if err != nil {
		return k, err
	}
	if len(raw) != 32 {
		return k, fmt.Errorf("keys: %s has %d bytes, want 32", sealKeyFile, len(raw))
	}
	var priv, pub [32]byte
	copy(priv[:], raw)
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return k, fmt.Errorf("keys: seal key: %w", err)
	}
	copy(pub[:], p)
	k.SealPriv, k.SealPub = &priv, &pub
	return k, nil
}

func readOrCreate(path string, make func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw, err := make()
		if err != nil {
			return nil, fmt.Errorf("keys: generate %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		if _, err := io.WriteString(f, base64.StdEncoding.EncodeToString(raw)+"\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("keys: write %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("keys: sync %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("keys: %w", err)
		}
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	return raw, nil
}

// unconfiguredBank answers every call with ErrUnavailable: admin commands
// need no bank, and a server without one refuses bank operations clearly.
type unconfiguredBank struct{}

var errNoBank = fmt.Errorf("bank gateway not configured: %w", bank.ErrUnavailable)

func (unconfiguredBank) Verify(context.Context, bank.Holder) error { return errNoBank }
func (unconfiguredBank) Debit(context.Context, string, string, string, int64) (bank.Receipt, error) {
	return bank.Receipt{}, errNoBank
}
func (unconfiguredBank) Credit(context.Context, string, string, string, int64) (bank.Receipt, error) {
	return bank.Receipt{}, errNoBank
}
func (unconfiguredBank) Refund(context.Context, string, string, string, string, int64) (bank.Receipt, error) {
	return bank.Receipt{}, errNoBank
}
func (unconfiguredBank) SendOTP(context.Context, string, string, string) (bank.OTP, error) {
	return bank.OTP{}, errNoBank
}
func (unconfiguredBank) CheckOTP(context.Context, string, string, string, string) error {
	return errNoBank
}
