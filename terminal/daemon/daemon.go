// Package daemon is terminald: it wires the config file, the SQLite
// journal, the MQTT link, the devices (through a small factory over the
// drivers in terminal/device/...), the mode state machine, Prometheus
// metrics, a loopback status page and systemd's notify/watchdog protocol.
//
// Main has Run and Close so that tests start the real daemon in-process;
// Command is the whole command line (cmd/terminald is a one-line main).
//
// Start-up order: journal → cached config → devices → link → recovery
// (valve closed first, in-doubt transactions queued for reversal, open
// showers settled) → READY=1 → the machine's loop, which feeds the
// watchdog. Shutdown (SIGTERM): the loop stops (a running shower is
// closed and settled), every device is halted (valve closed, display
// blanked), the link says offline and the journal is closed cleanly.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"campuspay/protocol"
	"campuspay/terminal"
	"campuspay/terminal/journal"
	"campuspay/terminal/link"
	"campuspay/terminal/modes"
)

// Version is set at build time: -ldflags "-X campuspay/terminal/daemon.Version=1.2.3".
var Version = "dev"

// Options are for tests and embedding; the zero value is production.
type Options struct {
	Logger *slog.Logger
	// Devices, when set, replace the drivers named in the config.
	Devices *modes.Devices
	// Link, when set, replaces the MQTT link (Main closes it).
	Link terminal.Link
	// Now is the local clock (default time.Now).
	Now func() time.Time
	// OnState is called after every durable journal state change.
	OnState func(protocol.TxID, journal.State)
	// Notify sends a systemd notification ("READY=1"); default sd_notify.
	Notify func(state string) error
}

// Main is one running terminal daemon.
type Main struct {
	cfg     *Config
	o       Options
	log     *slog.Logger
	journal *journal.Journal
	link    terminal.Link
	devs    *built
	machine *modes.Machine
	metrics *Metrics

	statusLn  net.Listener
	statusSrv *http.Server

	beat      atomic.Int64 // unix nanos of the loop's last turn
	closeOnce sync.Once
	closeErr  error
}

// New opens the journal, the devices and the link. Call Run, then (or
// instead) Close.
func New(cfg *Config, o Options) (_ *Main, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Notify == nil {
		o.Notify = func(s string) error { _, err := sddaemon.SdNotify(false, s); return err }
	}
	m := &Main{cfg: cfg, o: o, log: o.Logger.With("terminal", cfg.Terminal)}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: data dir: %w", err)
	}
	m.journal, err = journal.Open(filepath.Join(cfg.DataDir, "journal.db"), journal.Options{
		Terminal: cfg.Terminal, Now: o.Now, OnState: m.onState})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	ctx := context.Background()
	cached, err := m.journal.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	if cached == nil {
		m.log.Warn("no cached config yet: waiting for the authorizer's")
	}
	if o.Devices != nil {
		m.devs = &built{devs: *o.Devices}
	} else if m.devs, err = buildDevices(cfg, m.log, func(d time.Duration) {
		// Set before Run starts the scanner, so reading it here is safe.
		if m.metrics != nil {
			m.metrics.ObserveDecode(d)
		}
	}); err != nil {
		return nil, err
	}
	if o.Link != nil {
		m.link = o.Link
	} else if m.link, err = m.newLink(); err != nil {
		return nil, err
	}
	m.machine, err = modes.New(modes.Options{
		Mode: cfg.Mode, Terminal: cfg.Terminal, Journal: m.journal, Link: m.link, Devices: m.devs.devs,
		Config: cached, Now: o.Now, Log: m.log, Heartbeat: m.heartbeat,
		AuthTimeout:   time.Duration(cfg.AuthTimeoutMS) * time.Millisecond,
		PayingTimeout: time.Duration(cfg.PayingTimeoutMS) * time.Millisecond,
		RetapInterval: time.Duration(cfg.CardRetapMS) * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	m.metrics = newMetrics(m.journal, m.machine.Snapshot)
	if cfg.Status != "" {
		if m.statusLn, err = listenLoopback(cfg.Status); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Main) newLink() (terminal.Link, error) {
	pw, err := m.cfg.Broker.password()
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if m.cfg.Broker.CAFile != "" {
		pem, err := os.ReadFile(m.cfg.Broker.CAFile)
		if err != nil {
			return nil, fmt.Errorf("daemon: broker CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("daemon: broker CA %s: no certificates", m.cfg.Broker.CAFile)
		}
		tc = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	j := m.journal
	l, err := link.New(link.Config{
		Brokers: m.cfg.Broker.List(), TLS: tc, Terminal: m.cfg.Terminal, Password: pw,
		Software: "terminald/" + Version,
		ConnSeq:  func() (uint64, error) { return j.NextConnSeq(context.Background()) },
		Cursor: func() uint64 {
			c, err := j.NoticeCursor(context.Background())
			if err != nil {
				m.log.Error("notice cursor", "err", err)
			}
			return c
		},
		Now: m.o.Now, Logger: m.log,
	}, j)
	if err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	return l, nil
}

func (m *Main) onState(id protocol.TxID, s journal.State) {
	if m.metrics != nil {
		m.metrics.onState(id, s)
	}
	if m.o.OnState != nil {
		m.o.OnState(id, s)
	}
}

func (m *Main) heartbeat() { m.beat.Store(m.o.Now().UnixNano()) }

// Metrics returns the daemon's metrics (for a scanner's decode hook).
func (m *Main) Metrics() *Metrics { return m.metrics }

// StatusAddr returns the status page's address ("" when off).
func (m *Main) StatusAddr() string {
	if m.statusLn == nil {
		return ""
	}
	return m.statusLn.Addr().String()
}

// Snapshot returns the machine's state.
func (m *Main) Snapshot() modes.Snapshot { return m.machine.Snapshot() }

// Run recovers, tells systemd it is ready and runs the machine until ctx
// ends; then it shuts down (Close) and returns. It returns an error if
// recovery or the machine failed.
func (m *Main) Run(ctx context.Context) error {
	defer m.Close()
	if err := m.machine.Recover(ctx); err != nil {
		return fmt.Errorf("daemon: recovery: %w", err)
	}
	if m.statusLn != nil {
		m.statusSrv = &http.Server{Handler: m.statusHandler(), ReadHeaderTimeout: 5 * time.Second}
		go m.statusSrv.Serve(m.statusLn)
	}
	m.heartbeat()
	if err := m.o.Notify(sddaemon.SdNotifyReady); err != nil {
		m.log.Warn("sd_notify", "err", err)
	}
	wctx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	go m.watchdog(wctx)
	m.log.Info("terminald running", "mode", m.cfg.Mode, "version", Version)
	err := m.machine.Run(ctx)
	m.o.Notify(sddaemon.SdNotifyStopping)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	return nil
}

// watchdog feeds systemd's watchdog only while the machine's loop turns:
// a hung loop stops the feeding and systemd restarts the daemon.
func (m *Main) watchdog(ctx context.Context) {
	every, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		return
	}
	t := time.NewTicker(every / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if m.o.Now().Sub(time.Unix(0, m.beat.Load())) < every/2 {
				m.o.Notify(sddaemon.SdNotifyWatchdog)
			} else {
				m.log.Error("main loop stalled: not feeding the watchdog")
			}
		}
	}
}

// Close halts every device (valve closed, display blanked), closes the
// link, the status page and the journal. It is idempotent.
func (m *Main) Close() error {
	m.closeOnce.Do(func() {
		var errs []error
		if m.devs != nil {
			m.devs.halt(m.log)
		}
		if m.link != nil {
			errs = append(errs, m.link.Close())
		}
		if m.statusSrv != nil {
			errs = append(errs, m.statusSrv.Close())
		} else if m.statusLn != nil {
			errs = append(errs, m.statusLn.Close())
		}
		if m.devs != nil {
			m.devs.close()
		}
		if m.journal != nil {
			errs = append(errs, m.journal.Close())
		}
		m.closeErr = errors.Join(errs...)
		m.log.Info("terminald stopped")
	})
	return m.closeErr
}
