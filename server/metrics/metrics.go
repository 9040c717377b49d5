// Package metrics holds the authorizer's money-path collectors, registered
// with promauto on the default Prometheus registry (served on /metrics by
// `authorizer serve`, beside the Go and process collectors). The packages
// on the money path (server/authz, server/wallet) update them; each other
// package registers its own collectors the same way, named campuspay_….
//
// Label values are small fixed sets: never a student, terminal or
// transaction id.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values used with the collectors below.
const (
	// PaymentsTotal channel: how a payment was funded (DESIGN §2 rule 6, 10).
	ChannelBalance  = "balance"
	ChannelBankCard = "bank_card"
	ChannelWeChat   = "wechat"

	// PaymentsTotal outcome.
	OutcomeApproved = "approved"
	OutcomeRefused  = "refused"  // a wallet rule or the funding source said no
	OutcomePending  = "pending"  // WeChat USERPAYING
	OutcomeReversed = "reversed" // timed out and reversed
	OutcomeError    = "error"    // unknown outcome (a gateway or the store failed)
)

// OpSecondsBuckets span 0.5 ms … 5 s: a balance payment in one batched
// commit takes about a millisecond, a bank-funded one waits on the bank.
var OpSecondsBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

var (
	// PaymentsTotal counts payments by channel and outcome.
	PaymentsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "campuspay_payments_total",
		Help: "Payments handled by the authorizer, by funding channel (balance, bank_card, wechat) and outcome (approved, refused, pending, reversed, error).",
	}, []string{"channel", "outcome"})

	// OpSeconds is the latency of each money-path operation (op: pay,
	// reverse, shower_start, shower_end, journal, top_up, withdraw, …),
	// from its arrival at the authorizer to its answer.
	OpSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "campuspay_op_seconds",
		Help:    "Latency of money-path operations at the authorizer, by operation.",
		Buckets: OpSecondsBuckets,
	}, []string{"op"})

	// QueueDepth is the number of requests waiting in the money path's
	// bounded queues.
	QueueDepth = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "campuspay_queue_depth",
		Help: "Requests waiting in the authorizer's bounded money-path queues.",
	})

	// ShedTotal counts requests refused without being processed, by reason
	// (queue_full, deadline, clock, terminal_burst; terminal_flood: a
	// message of any kind dropped unanswered past its terminal's bound).
	ShedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "campuspay_shed_total",
		Help: "Requests shed by the authorizer without moving money, by reason.",
	}, []string{"reason"})

	// BatchSize is the number of operations committed in one write
	// transaction (one fsync).
	BatchSize = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "campuspay_batch_size",
		Help:    "Operations per group-committed write transaction.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 … 512
	})

	// OpenHolds is the number of shower holds not yet captured, released
	// or expired.
	OpenHolds = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "campuspay_open_holds",
		Help: "Shower holds placed and not yet captured, released or expired.",
	})

	// ConnectedTerminals is the number of terminals whose retained status
	// says online (Last Will aware), as this authorizer last saw them.
	ConnectedTerminals = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "campuspay_connected_terminals",
		Help: "Terminals online as last reported by their retained status (Last Will aware).",
	})
)

// Every channel × outcome series exists from the start, at zero, so rates
// and alerts work before the first payment of a kind.
func init() {
	for _, c := range []string{ChannelBalance, ChannelBankCard, ChannelWeChat} {
		for _, o := range []string{OutcomeApproved, OutcomeRefused, OutcomePending, OutcomeReversed, OutcomeError} {
			PaymentsTotal.WithLabelValues(c, o)
		}
	}
}
