package bank

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The adapter's collectors, on the default registry. One observation per
// HTTP attempt (retries included), labelled by operation (verify, debit,
// credit).
var (
	requestSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "campuspay_bank_request_seconds",
		Help:    "Latency of each HTTP attempt to the bank gateway, by operation.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"op"})
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "campuspay_bank_requests_total",
		Help: "HTTP attempts to the bank gateway by operation and result: ok, refused (a definite no: funds, mismatch, …), " +
			"unavailable (no definite answer: timeout, 5xx, bad signature), unauthorized, bad_request.",
	}, []string{"op", "result"})
)

// observe records one attempt at path that started at start.
func observe(path string, start time.Time, err error) {
	op := strings.TrimPrefix(path, "/v1/")
	requestSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	requestsTotal.WithLabelValues(op, resultLabel(err)).Inc()
}

func resultLabel(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrBadRequest):
		return "bad_request"
	default:
		return "refused"
	}
}
