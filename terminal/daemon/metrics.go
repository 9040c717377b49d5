package daemon

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"campuspay/protocol"
	"campuspay/terminal/journal"
	"campuspay/terminal/modes"
)

// Metrics are the daemon's Prometheus metrics, on their own registry,
// with the Go runtime's (go_*) and the process's (process_*) collectors.
type Metrics struct {
	Registry *prometheus.Registry
	txs      *prometheus.CounterVec
	decode   prometheus.Histogram
}

var finalResults = map[journal.State]string{
	journal.StateApproved: "approved", journal.StateDeclined: "declined", journal.StateReversed: "reversed",
	journal.StateAbandoned: "abandoned", journal.StateCaptured: "captured", journal.StateOffline: "offline",
}

func newMetrics(j *journal.Journal, snap func() modes.Snapshot) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "terminald_transactions_total",
			Help: "Transactions that reached a final journal state, by result.",
		}, []string{"result"}),
		decode: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "terminald_scan_decode_seconds",
			Help:    "Time to decode one camera frame.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12),
		}),
	}
	for _, r := range finalResults {
		m.txs.WithLabelValues(r) // export zeros
	}
	m.Registry.MustRegister(m.txs, m.decode,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "terminald_journal_depth",
			Help: "Journal entries not yet acknowledged by the authorizer.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := j.Depth(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "terminald_link_up",
			Help: "1 when the link to the authorizer is up.",
		}, func() float64 {
			if snap().Online {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "terminald_machine_state",
			Help: "The mode state machine's state number.",
		}, func() float64 { return float64(snap().State) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "terminald_clock_offset_seconds",
			Help: "Server clock minus local clock.",
		}, func() float64 { return snap().Offset.Seconds() }),
	)
	return m
}

// onState counts final states (the journal's OnState hook).
func (m *Metrics) onState(_ protocol.TxID, s journal.State) {
	if r, ok := finalResults[s]; ok {
		m.txs.WithLabelValues(r).Inc()
	}
}

// ObserveDecode records one frame's decode time: the hook for a scanner
// driver that reports it.
func (m *Metrics) ObserveDecode(d time.Duration) { m.decode.Observe(d.Seconds()) }
