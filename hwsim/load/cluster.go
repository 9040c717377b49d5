package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"campuspay/hwsim/scenario"
	"campuspay/server/ledger/postgres/pgtest"
)

// Several authorizers on PostgreSQL, and the faults a run can inject.

// FaultKind is a fault injected during the authorizer phase.
type FaultKind int

const (
	// KillAuthorizer kills the last authorizer with SIGKILL and starts it
	// again at once, as systemd (Restart=always) would; what was in flight
	// to it is lost with it (its session is clean) and given up on by the
	// terminals.
	KillAuthorizer FaultKind = 1
	// FailoverDatabase kills the PostgreSQL primary with SIGKILL and
	// promotes the synchronous standby (pg_ctl promote); the authorizers'
	// multi-host URL finds the new primary by itself.
	FailoverDatabase FaultKind = 2
	// DeadAuthorizer kills the last authorizer with SIGKILL and leaves it
	// down, as a dead machine: the broker drops its clean session and the
	// others take every request.
	DeadAuthorizer FaultKind = 3
)

func (k FaultKind) String() string {
	switch k {
	case KillAuthorizer:
		return "kill -9 an authorizer (restarted at once)"
	case FailoverDatabase:
		return "kill -9 the PostgreSQL primary, promote the standby"
	case DeadAuthorizer:
		return "kill -9 an authorizer (left down)"
	}
	return fmt.Sprintf("fault %d", int(k))
}

// Fault is injected once After payments have been approved in time.
type Fault struct {
	After int
	Kind  FaultKind
}

// FaultResult is what one fault did to the campus.
type FaultResult struct {
	Fault
	At     time.Time     // injected
	Action time.Duration // how long the injection itself took (restart, promote)
	// Gap is the longest time without any approval from the fault until
	// the next one (or the end): from LastBefore, the last approval
	// before it, to FirstAfter, the first one after it.
	Gap                    time.Duration
	LastBefore, FirstAfter time.Time
	Err                    error
}

// checkStore checks the store, authorizers and faults chosen.
func (o Options) checkStore() error {
	switch {
	case o.Store == StoreSQLite || o.Store == StorePostgres || o.Store == StorePostgresStandby:
	case strings.HasPrefix(o.Store, "postgres://") || strings.HasPrefix(o.Store, "postgresql://"):
	default:
		return fmt.Errorf("load: store %q: want %s, %s, %s or a postgres:// URL", o.Store, StoreSQLite, StorePostgres, StorePostgresStandby)
	}
	if o.Authorizers > 1 && (o.Store == StoreSQLite || o.Broker != Mosquitto) {
		return errors.New("load: several authorizers need PostgreSQL and Mosquitto (SQLite files and the embedded broker belong to one process)")
	}
	for _, f := range o.Faults {
		switch {
		case (f.Kind == KillAuthorizer || f.Kind == DeadAuthorizer) && o.Broker != Mosquitto:
			return errors.New("load: killing an authorizer needs Mosquitto (the embedded broker dies with it)")
		case f.Kind == DeadAuthorizer && o.Authorizers < 2:
			return errors.New("load: an authorizer left down needs another one to answer")
		case f.Kind == FailoverDatabase && o.Store != StorePostgresStandby:
			return fmt.Errorf("load: a database failover needs store %s", StorePostgresStandby)
		case f.Kind != KillAuthorizer && f.Kind != FailoverDatabase && f.Kind != DeadAuthorizer:
			return fmt.Errorf("load: unknown fault %d", int(f.Kind))
		}
	}
	return nil
}

// startDatabase starts the throw-away PostgreSQL (and standby) the store
// asks for and sets h.database.
func (h *harness) startDatabase(ctx context.Context) error {
	switch h.opt.Store {
	case StoreSQLite:
		return nil
	case StorePostgres, StorePostgresStandby:
	default:
		h.database = h.opt.Store
		return nil
	}
	// fsync on: the figures are those of a database that keeps its data.
	primary, err := pgtest.Start(pgtest.Options{Fsync: true})
	if err != nil {
		return fmt.Errorf("load: PostgreSQL: %w", err)
	}
	h.primary = primary
	h.closers = append(h.closers, func() { primary.Stop() })
	clusters := []*pgtest.Cluster{primary}
	if h.opt.Store == StorePostgresStandby {
		standby, err := primary.StartStandby(true)
		if err != nil {
			return fmt.Errorf("load: PostgreSQL standby: %w", err)
		}
		h.standby = standby
		h.closers = append(h.closers, func() { standby.Stop() })
		clusters = append(clusters, standby)
	}
	if _, err := primary.CreateDatabase(ctx, "campuspay"); err != nil {
		return err
	}
	h.database = pgtest.MultiHostURL("campuspay", clusters...)
	if h.standby != nil {
		h.logf("setup: PostgreSQL (fsync on) on 127.0.0.1:%d, synchronous standby on 127.0.0.1:%d", primary.Port, h.standby.Port)
	} else {
		h.logf("setup: PostgreSQL (fsync on) on 127.0.0.1:%d", primary.Port)
	}
	return nil
}

// authorizerConfigs writes one config per authorizer: the first is
// cfg as written to h.cfgPath with h.data; each other one has its own
// HTTP address, broker user authz-N and data folder (the keys are copied
// into it once provisioned).
func (h *harness) authorizerConfigs(cfg map[string]any) error {
	env := []string{"CAMPUSPAY_BANK_SECRET=" + bankSecret}
	h.authorizer = []*authorizer{{name: "authz-1", cfg: h.cfgPath, data: h.data, http: h.httpAddr, env: env}}
	for i := 2; i <= h.opt.Authorizers; i++ {
		addr, err := scenario.FreeAddr()
		if err != nil {
			return err
		}
		a := &authorizer{name: fmt.Sprintf("authz-%d", i), http: addr, env: env,
			cfg: filepath.Join(h.opt.Dir, fmt.Sprintf("authorizer-%d.json", i)), data: filepath.Join(h.opt.Dir, fmt.Sprintf("authorizer-%d-data", i))}
		c := map[string]any{}
		for k, v := range cfg {
			c[k] = v
		}
		c["http"] = addr
		c["mqtt"] = map[string]string{"broker_url": "tcp://" + h.mqttAddr, "username": a.name}
		raw, _ := json.MarshalIndent(c, "", "  ")
		if err := os.WriteFile(a.cfg, raw, 0o600); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		h.authorizer = append(h.authorizer, a)
	}
	return nil
}

// startAuthorizer starts a's `authorizer serve` and waits until it
// answers /healthz.
func (h *harness) startAuthorizer(ctx context.Context, a *authorizer) error {
	if a.data != h.data {
		if err := copyFiles(h.data, a.data); err != nil {
			return err
		}
	}
	var err error
	a.proc, err = scenario.Start(h.opt.Dir, a.name, filepath.Join(h.opt.Bin, "authorizer"),
		[]string{"serve", "--data", a.data, "--config", a.cfg}, a.env)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return a.proc.WaitHTTP(wctx, "http://"+a.http+"/healthz")
}

// copyFiles copies the files of folder from (the keys, the broker
// password entries) into folder to, keeping their modes, once.
func copyFiles(from, to string) error {
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, info.Mode().Perm()); err != nil {
			return fmt.Errorf("load: %w", err)
		}
	}
	return nil
}

// injector fires the run's faults when their number of approvals is
// reached.
type injector struct {
	h      *harness
	ctx    context.Context
	wg     sync.WaitGroup
	mu     sync.Mutex
	fired  []FaultResult
	errs   []error
	faults []Fault
}

func newInjector(ctx context.Context, h *harness) *injector {
	return &injector{h: h, ctx: ctx, faults: h.opt.Faults}
}

// onApprove runs under the generator's lock: it only starts goroutines.
func (in *injector) onApprove(n int) {
	for _, f := range in.faults {
		if f.After == n {
			in.wg.Add(1)
			go func() { defer in.wg.Done(); in.fire(f) }()
		}
	}
}

func (in *injector) fire(f Fault) {
	h := in.h
	r := FaultResult{Fault: f, At: h.opt.Now()}
	switch f.Kind {
	case KillAuthorizer:
		a := h.authorizer[len(h.authorizer)-1]
		a.proc.Kill()
		r.Err = h.startAuthorizer(in.ctx, a)
	case FailoverDatabase:
		h.primary.Kill()
		r.Err = h.standby.Promote()
	case DeadAuthorizer:
		h.authorizer[len(h.authorizer)-1].proc.Kill()
	}
	r.Action = h.opt.Now().Sub(r.At)
	h.logf("fault      %s after %d approvals: done in %.2fs (%v)", f.Kind, f.After, r.Action.Seconds(), r.Err)
	in.mu.Lock()
	in.fired = append(in.fired, r)
	if r.Err != nil {
		in.errs = append(in.errs, fmt.Errorf("load: %s: %w", f.Kind, r.Err))
	}
	in.mu.Unlock()
}

// wait waits for the faults fired to be done and returns their errors.
func (in *injector) wait() error {
	in.wg.Wait()
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.fired) < len(in.faults) {
		in.errs = append(in.errs, fmt.Errorf("load: %d of %d faults fired (too few approvals)", len(in.fired), len(in.faults)))
	}
	return errors.Join(in.errs...)
}

// results measures, for each fault fired, the longest gap between
// approvals from its injection to the next fault's (or the end).
func (in *injector) results(res *Result) []FaultResult {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := append([]FaultResult(nil), in.fired...)
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	times := append([]time.Time(nil), res.ApprovalTimes...)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := range out {
		var end time.Time
		if i+1 < len(out) {
			end = out[i+1].At
		}
		out[i].Gap, out[i].LastBefore, out[i].FirstAfter = longestGap(times, out[i].At, end)
	}
	return out
}

// longestGap is the longest interval between consecutive times (sorted)
// that ends after from and starts before until (zero: no bound).
func longestGap(times []time.Time, from, until time.Time) (gap time.Duration, start, end time.Time) {
	for k := 1; k < len(times); k++ {
		if !times[k].After(from) || (!until.IsZero() && !times[k-1].Before(until)) {
			continue
		}
		if d := times[k].Sub(times[k-1]); d > gap {
			gap, start, end = d, times[k-1], times[k]
		}
	}
	return gap, start, end
}

// PrintFaults prints each fault's outage beside the longest gap between
// approvals before the first fault.
func PrintFaults(w io.Writer, faults []FaultResult, res *Result) {
	if len(faults) == 0 {
		return
	}
	times := append([]time.Time(nil), res.ApprovalTimes...)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var before []time.Time
	for _, t := range times {
		if t.Before(faults[0].At) {
			before = append(before, t)
		}
	}
	base, _, _ := longestGap(before, time.Time{}, time.Time{})
	for _, f := range faults {
		fmt.Fprintf(w, "%-10s %s (after %d approvals, took %.2fs): no payment approved for %.2fs\n", "outage", f.Kind, f.After,
			f.Action.Seconds(), f.Gap.Seconds())
	}
	fmt.Fprintf(w, "%-10s longest gap between approvals before the first fault: %.2fs\n", "", base.Seconds())
}
