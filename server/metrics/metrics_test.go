package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"campuspay/server/metrics"
)

// The collectors are on the default registry under the names the
// dashboard (configs/grafana-authorizer.json) and docs/operations.md use.
func TestRegisteredOnTheDefaultRegistry(t *testing.T) {
	metrics.OpSeconds.WithLabelValues("pay").Observe(0.001)
	metrics.ShedTotal.WithLabelValues("queue_full").Inc()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	for name, series := range map[string]int{
		"campuspay_payments_total": 15, "campuspay_op_seconds": 1, "campuspay_queue_depth": 1, "campuspay_shed_total": 1,
		"campuspay_batch_size": 1, "campuspay_open_holds": 1, "campuspay_connected_terminals": 1,
		"go_goroutines": 1, "process_cpu_seconds_total": 1,
	} {
		if got[name] != series {
			t.Errorf("%s: %d series, want %d", name, got[name], series)
		}
	}
}
