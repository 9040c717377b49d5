package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"campuspay/protocol"
)

// Status is the status page's content (also served as /status.json).
type Status struct {
	Terminal     string     `json:"terminal"`
	Mode         string     `json:"mode"`
	Version      string     `json:"version"`
	State        string     `json:"state"`
	StateNum     int        `json:"state_num"`
	Online       bool       `json:"online"`
	Broker       string     `json:"broker,omitempty"` // the broker connected to
	JournalDepth int        `json:"journal_depth"`
	Reversals    int        `json:"reversals_pending"`
	Config       uint64     `json:"config_revision"`
	ClockOffset  string     `json:"clock_offset"`
	Recent       []TxStatus `json:"recent"`
}

// TxStatus is one recent transaction on the status page (no credential).
type TxStatus struct {
	Tx      protocol.TxID `json:"tx"`
	State   string        `json:"state"`
	Amount  string        `json:"amount"`
	Status  string        `json:"status,omitempty"`
	Code    string        `json:"code,omitempty"`
	Cred    string        `json:"cred,omitempty"`
	Entry   uint64        `json:"entry,omitempty"`
	Updated time.Time     `json:"updated"`
}

func (m *Main) status(ctx context.Context) (Status, error) {
	snap := m.machine.Snapshot()
	s := Status{Terminal: m.cfg.Terminal, Mode: string(m.cfg.Mode), Version: Version, State: snap.State.String(),
		StateNum: int(snap.State), Online: snap.Online, Reversals: snap.Reversals, Config: snap.Config,
		ClockOffset: snap.Offset.String()}
	if b, ok := m.link.(interface{ Broker() string }); ok {
		s.Broker = b.Broker()
	}
	var err error
	if s.JournalDepth, err = m.journal.Depth(ctx); err != nil {
		return s, err
	}
	recent, err := m.journal.Recent(ctx, 20)
	if err != nil {
		return s, err
	}
	for _, t := range recent {
		s.Recent = append(s.Recent, TxStatus{Tx: t.ID, State: t.State.String(), Amount: protocol.FormatCents(t.Amount),
			Status: string(t.Status), Code: t.Code, Cred: string(t.CredKind), Entry: t.EntrySeq, Updated: t.Updated})
	}
	return s, nil
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<title>terminald {{.Terminal}}</title>
<style>body{font-family:sans-serif;margin:1em}td,th{padding:2px 8px;text-align:left}.off{color:#b00}</style></head>
<body><h1>{{.Terminal}} <small>{{.Mode}} · {{.Version}}</small></h1>
<p>状态 state: <b>{{.State}}</b> · 网络 link: {{if .Online}}<b>online</b>{{else}}<b class="off">offline</b>{{end}}
{{if .Broker}}({{.Broker}}){{end}}
· 待上传 journal depth: <b>{{.JournalDepth}}</b> · 待撤销 reversals: {{.Reversals}}
· config rev {{.Config}} · clock offset {{.ClockOffset}}</p>
<table><tr><th>tx</th><th>state</th><th>amount ¥</th><th>status</th><th>code</th><th>cred</th><th>entry</th><th>updated</th></tr>
{{range .Recent}}<tr><td><code>{{.Tx}}</code></td><td>{{.State}}</td><td>{{.Amount}}</td><td>{{.Status}}</td><td>{{.Code}}</td><td>{{.Cred}}</td><td>{{.Entry}}</td><td>{{.Updated.Format "01-02 15:04:05"}}</td></tr>
{{end}}</table></body></html>`))

func (m *Main) statusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		statusPage.Execute(w, s)
	})
	return mux
}

// listenLoopback listens on addr, refusing anything but a loopback
// address: the status page is for the operator on the box.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("daemon: status address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("daemon: status address %q is not loopback", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("daemon: status: %w", err)
	}
	return ln, nil
}
