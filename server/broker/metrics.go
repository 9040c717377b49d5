package broker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The embedded broker's collectors, on the default registry.
var (
	logSuppressed = promauto.NewCounter(prometheus.CounterOpts{
		Name: "campuspay_broker_log_suppressed_total",
		Help: "Broker log records dropped by the rate limit (repeated refusals).",
	})
	aclDenied = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "campuspay_broker_acl_denied_total",
		Help: "Publishes (access=write) and subscriptions (access=read) refused by the topic ACL.",
	}, []string{"access"})
	connRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "campuspay_broker_connections_refused_total",
		Help: "MQTT connections refused by the embedded broker, by reason.",
	}, []string{"reason"})
)

func init() {
	aclDenied.WithLabelValues("read")
	aclDenied.WithLabelValues("write")
}
