package main

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"campuspay/server/broker"
	ledgersqlite "campuspay/server/ledger/sqlite"
)

// Collectors read from the running serve's parts. They are registered once
// per process on the default registry and read whichever serve runs now
// (tests start several, one after the other).
var (
	servedLedger atomic.Pointer[ledgersqlite.Store]
	servedBroker atomic.Pointer[broker.Broker]
)

var (
	_ = promauto.NewCounterFunc(prometheus.CounterOpts{
		Name: "campuspay_ledger_commits_total",
		Help: "Group-committed write transactions of the SQLite ledger in its own file, ledger.db (one fsync each), since start; 0 when the ledger is inside wallet.db, whose commits campuspay_batch_size counts.",
	}, func() float64 { return ledgerStats().batches })
	_ = promauto.NewCounterFunc(prometheus.CounterOpts{
		Name: "campuspay_ledger_ops_total",
		Help: "Ledger operations applied since start; with ledger.db, ops/commits is the mean batch size.",
	}, func() float64 { return ledgerStats().ops })
	_ = promauto.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "campuspay_ledger_max_batch",
		Help: "Largest group commit of the SQLite ledger since start (operations).",
	}, func() float64 { return ledgerStats().max })
	_ = promauto.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "campuspay_broker_clients",
		Help: "MQTT clients connected to the embedded broker (terminals and other services; the authorizer joins in-process).",
	}, func() float64 {
		if b := servedBroker.Load(); b != nil {
			return float64(b.ClientsConnected())
		}
		return 0
	})
)

type ledgerCounts struct{ batches, ops, max float64 }

func ledgerStats() ledgerCounts {
	l := servedLedger.Load()
	if l == nil {
		return ledgerCounts{}
	}
	s := l.Stats()
	return ledgerCounts{float64(s.Batches), float64(s.Ops), float64(s.MaxBatch)}
}
