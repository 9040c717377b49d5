package wechat

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The adapter's collectors, on the default registry. One observation per
// HTTP attempt (retries included), labelled by API (micropay, orderquery,
// reverse, authcodetoopenid, jscode2session).
var (
	requestSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "campuspay_wechat_request_seconds",
		Help:    "Latency of each HTTP attempt to WeChat Pay and the mini-program API, by API.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"api"})
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "campuspay_wechat_requests_total",
		Help: "HTTP attempts to WeChat by API and result: ok, refused (a definite business answer), " +
			"unavailable (no trustworthy answer), rejected (return_code FAIL), bad_request.",
	}, []string{"api", "result"})
)

// observe records one attempt at path that started at start.
func observe(path string, start time.Time, err error) {
	api := path[strings.LastIndexByte(path, '/')+1:]
	requestSeconds.WithLabelValues(api).Observe(time.Since(start).Seconds())
	requestsTotal.WithLabelValues(api, resultLabel(err)).Inc()
}

func resultLabel(err error) string {
	var re *ResultError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrBadRequest):
		return "bad_request"
	case errors.As(err, &re):
		return "refused"
	default:
		return "error"
	}
}
