package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"campuspay/server/backup"
)

// Operations: the log, the HTTP access log, liveness and readiness, the
// Prometheus endpoint, pprof and systemd's notify protocol.

// newLogger makes the daemon's log: JSON (default) or text lines on w at
// level (debug, info, warn, error).
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: l}
	switch format {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}

// accessLog logs one line per HTTP request: method, path (never the query
// string, headers or body: no token, password or code reaches the log),
// status, size, duration and the client's address. Probes and scrapes
// (/healthz, /readyz, /metrics) are logged at debug level.
func accessLog(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &respWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rw, r)
		path := r.URL.Path
		if len(path) > 128 {
			path = path[:128] + "…"
		}
		level := slog.LevelInfo
		switch path {
		case "/healthz", "/readyz", "/metrics":
			level = slog.LevelDebug
		}
		log.LogAttrs(r.Context(), level, "http request",
			slog.String("method", r.Method), slog.String("path", path), slog.Int("status", rw.status),
			slog.Int64("bytes", rw.bytes), slog.Float64("ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", r.RemoteAddr), slog.String("proto", r.Proto))
	})
}

// respWriter remembers the status and counts the body bytes.
type respWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (w *respWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	w.wrote = true
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Check is one readiness check's result.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// readiness answers /readyz: the databases are writable, the MQTT link is
// up (when serve runs one) and the ledger's migrations are current.
type readiness struct {
	m    *Main
	data string

	mqtt   bool                        // serve runs the MQTT side
	broker atomic.Pointer[func() bool] // the authz client's link state, once it exists

	probeMu sync.Mutex
	dbs     map[string]*sql.DB // probe connections, one per database
}

func newReadiness(m *Main, data string) *readiness {
	return &readiness{m: m, data: data, dbs: map[string]*sql.DB{}}
}

// close closes the probe connections.
func (r *readiness) close() {
	r.probeMu.Lock()
	defer r.probeMu.Unlock()
	for _, db := range r.dbs {
		db.Close()
	}
	clear(r.dbs)
}

// writable checks that the data folder takes a synced write and that each
// database's write lock can be taken (BEGIN IMMEDIATE, then ROLLBACK: no
// data changes) within 2 s — what every payment needs.
func (r *readiness) writable(ctx context.Context) Check {
	if r.m.dbProbe != nil {
		return dbCheck(ctx, r.m.dbProbe)
	}
	c := Check{Name: "database"}
	probe := filepath.Join(r.data, ".readyz-probe")
	f, err := os.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		_, err = f.Write([]byte("ok\n"))
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		os.Remove(probe)
	}
	if err != nil {
		c.Detail = fmt.Sprintf("data folder not writable: %v", err)
		return c
	}
	r.probeMu.Lock()
	defer r.probeMu.Unlock()
	for _, name := range []string{"wallet.db", "ledger.db"} {
		if name == "ledger.db" && !backup.HasLedgerFile(r.data) {
			continue // the ledger is inside wallet.db
		}
		if err := r.lockProbe(ctx, name); err != nil {
			c.Detail = fmt.Sprintf("%s: %v", name, err)
			return c
		}
	}
	c.OK = true
	return c
}

func (r *readiness) lockProbe(ctx context.Context, name string) error {
	db := r.dbs[name]
	if db == nil {
		var err error
		if db, err = sql.Open("sqlite3", "file:"+filepath.Join(r.data, name)+"?_busy_timeout=2000"); err != nil {
			return err
		}
		db.SetMaxOpenConns(1)
		r.dbs[name] = db
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	_, err = conn.ExecContext(ctx, "ROLLBACK")
	return err
}

// checks runs every readiness check.
func (r *readiness) checks(ctx context.Context) []Check {
	out := []Check{r.writable(ctx)}
	if r.mqtt {
		up := r.broker.Load()
		c := Check{Name: "broker", OK: up != nil && (*up)()}
		if !c.OK {
			c.Detail = "the MQTT link to the broker is down"
		}
		out = append(out, c)
	}
	mc := Check{Name: "migrations"}
	if have, want, err := r.m.Ledger.SchemaVersion(ctx); err != nil {
		mc.Detail = err.Error()
	} else if have != want {
		mc.Detail = fmt.Sprintf("ledger schema %d, this program's %d", have, want)
	} else {
		mc.OK = true
	}
	return append(out, mc)
}

// ServeHTTP answers /readyz: 200 when every check passes, else 503, with
// the checks as JSON.
func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	cs := r.checks(req.Context())
	ready := true
	for _, c := range cs {
		ready = ready && c.OK
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(struct {
		Ready  bool    `json:"ready"`
		Checks []Check `json:"checks"`
	}{ready, cs})
}

// opsHandlers adds /healthz (liveness: the process serves HTTP), /readyz
// and /metrics (the default Prometheus registry: every campuspay_
// collector, the Go and process collectors) to mux.
func opsHandlers(mux *http.ServeMux, r *readiness) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.Handle("GET /readyz", r)
	mux.Handle("GET /metrics", promhttp.Handler())
}

// listenLoopback listens on addr, which must name a loopback host: pprof
// and a split-off ops listener expose internals.
func listenLoopback(what, addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s %q: only a loopback address (127.0.0.1, [::1], localhost)", what, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ln, nil
}

// pprofDaemon serves net/http/pprof on ln until ctx ends.
func pprofDaemon(ln net.Listener, log *slog.Logger) Daemon {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveDaemon("pprof", ln, mux, log)
}

// serveDaemon serves h on ln until ctx ends.
func serveDaemon(what string, ln net.Listener, h http.Handler, log *slog.Logger) Daemon {
	return func(ctx context.Context) error {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		log.Info(what+" listening", "addr", ln.Addr().String())
		go func() {
			<-ctx.Done()
			srv.Close()
		}()
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

// notifier speaks systemd's notify protocol (Type=notify): READY=1 once
// the stores are open and HTTP is served, WATCHDOG=1 while the databases
// take a write lock (a wedged store stops the feeding and systemd restarts
// the daemon; a broker outage does not, a restart would not cure it),
// STOPPING=1 on shutdown. Without $NOTIFY_SOCKET it does nothing.
type notifier struct {
	r   *readiness
	log *slog.Logger
}

func (n notifier) notify(state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify", "state", strings.SplitN(state, "=", 2)[0], "err", err)
	}
}

// extendStartBy is how much start time each EXTEND_TIMEOUT_USEC asks for;
// extendStart sends one every third of it.
const extendStartBy = 30 * time.Second

// extendStart asks systemd for extendStartBy more start time, again and
// again, until done is closed: a schema migration runs before READY=1.
// Without $NOTIFY_SOCKET it does nothing.
func extendStart(done <-chan struct{}, log *slog.Logger) {
	n := notifier{log: log}
	t := time.NewTicker(extendStartBy / 3)
	defer t.Stop()
	for {
		n.notify(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", extendStartBy.Microseconds()))
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// run sends READY=1 and feeds the watchdog until ctx ends.
func (n notifier) run(ctx context.Context) {
	n.notify(sddaemon.SdNotifyReady)
	every, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || every <= 0 {
		<-ctx.Done()
		n.notify(sddaemon.SdNotifyStopping)
		return
	}
	t := time.NewTicker(every / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			n.notify(sddaemon.SdNotifyStopping)
			return
		case <-t.C:
			if c := n.r.writable(ctx); c.OK {
				n.notify(sddaemon.SdNotifyWatchdog)
			} else {
				n.log.Error("databases not writable: not feeding the watchdog", "detail", c.Detail)
			}
		}
	}
}
