package wechat_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Every attempt to WeChat is timed and counted by API and result.
func TestMetrics(t *testing.T) {
	e := setup(t, nil)
	counter := func() float64 {
		mfs, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "campuspay_wechat_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["api"] == "micropay" && labels["result"] == "ok" {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	before := counter()
	e.pay("o-rich", 1200)
	if d := counter() - before; d != 1 {
		t.Errorf("micropay ok +%v, want +1", d)
	}
	mfs, _ := prometheus.DefaultGatherer.Gather()
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "campuspay_wechat_request_seconds"
	}
	if !found {
		t.Error("no latency series")
	}
}
