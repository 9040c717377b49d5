// Package load is `hwsim load`, the load generator that sizes a
// deployment: N simulated terminals, each with its own broker credentials,
// pay with real signed payment codes of M registered students against
// `authorizer serve` on its embedded broker or on Mosquitto.
//
// A run sets up its own campus in a fresh folder: the bank simulator (in
// this process), the authorizer's config, the students, devices, merchant
// and terminals in one `authorizer provision` call (seconds for
// thousands), and Mosquitto when asked. It then offers the same load twice:
//
//  1. to a bare paho echo responder (`hwsim load echo`, its own process)
//     that publishes each request back as its answer — on the same
//     Mosquitto, or, for the embedded broker, on the authorizer's embedded
//     broker code (server/broker) run in the echo's process, the echo
//     connecting to it with paho over loopback TCP (serve joins its
//     embedded broker in-process);
//  2. to `authorizer serve`.
//
// The load is closed loop (Concurrency requests in flight) or open loop
// (Rate requests per second whatever the answers), each request's deadline
// being the terminal's real auth timeout (auth_timeout_ms of its retained
// config). For each phase it reports payments answered per second,
// latency percentiles, timeouts, and the CPU of every process involved
// (authorizer, broker, echo, this generator) read from /proc. After the
// authorizer phase it stops the authorizer, runs `authorizer ledger
// check`, and reconciles the ledger's payment transfers with the
// approvals the terminals saw in time: a transfer the terminal never saw
// approved in time is a late charge (the terminal had given up on it).
//
// By default the generator does not reverse timed-out payments, so late
// charges stay in the ledger as they were made; with Load.Reverse each
// terminal reverses a payment at its deadline, as terminald does, and the
// tally shows how many late charges were refunded.
package load

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	banksim "campuspay/hwsim/bank"
	"campuspay/hwsim/scenario"
	"campuspay/protocol"
	"campuspay/server/ledger/postgres/pgtest"
)

// Brokers.
const (
	Embedded  = "embedded"
	Mosquitto = "mosquitto"
)

// Shared secret of the authorizer and the bank simulator of a load run.
const (
	bankClient = "authorizer"
	bankSecret = "load-bank-secret"
	merchantID = "M-LOAD"
)

// Options configure a run.
type Options struct {
	Bin       string // folder with the authorizer and hwsim binaries
	Dir       string // run folder: created, must be empty or absent
	Broker    string // Embedded or Mosquitto
	Students  int
	Terminals int
	Load      Load
	// Echo and Authorizer choose the phases (both: the ratio).
	Echo, Authorizer bool
	// AuthTimeout is written to the authorizer's config (auth_timeout_ms);
	// the authorizer phase takes the deadline from the terminals' retained
	// config, the echo phase uses this value.
	AuthTimeout time.Duration
	TopUp       int64 // cents per student; default ¥10,000.00
	// Store is where the authorizers keep their state: "" or StoreSQLite
	// (files in the data folder), StorePostgres (a throw-away PostgreSQL
	// cluster the run starts, fsync on), StorePostgresStandby (the same
	// with a synchronous streaming standby, which FailoverDatabase
	// promotes), or the postgres:// URL of an empty database.
	Store string
	// Authorizers is how many `authorizer serve` share the work (default
	// 1), each with its own service user authz-N on the broker and its
	// own copy of the keys; more than one needs PostgreSQL and Mosquitto.
	Authorizers int
	// Faults are injected during the authorizer phase.
	Faults []Fault
	Out    io.Writer
	// dbPid is the postmaster of a PostgreSQL server Scale started, for
	// its CPU figure.
	dbPid int
	Now   func() time.Time
	Rand  io.Reader // transaction IDs' random bits
}

// Stores.
const (
	StoreSQLite          = "sqlite"
	StorePostgres        = "postgres"
	StorePostgresStandby = "postgres+standby"
)

// Report is what a run measured.
type Report struct {
	Options    Options
	Setup      time.Duration // provisioning
	Echo       *Result
	Authorizer *Result
	Tally      *Tally
	Faults     []FaultResult
}

// Tally reconciles the ledger with what the terminals saw.
type Tally struct {
	CheckOK     bool
	Check       string                  // `ledger check` output
	Payments    int                     // payment transfers to the merchant
	Refunds     int                     // refund transfers from it
	Seen        int                     // approvals the terminals saw in time
	LateCharges []protocol.TxID         // in the ledger, never seen approved in time
	Refunded    int                     // of them, refunded since (reversed by the terminal)
	LateSeen    int                     // of them, approvals that came after the deadline
	Missing     []protocol.TxID         // seen approved, absent from the ledger (must be none)
	Amounts     map[protocol.TxID]int64 // ledger amount by transaction
}

// Run sets up a campus and offers the load; see the package comment.
func Run(ctx context.Context, o Options) (*Report, error) {
	h, err := newHarness(o)
	if err != nil {
		return nil, err
	}
	defer h.close()
	if err := h.setup(ctx); err != nil {
		return h.rep, err
	}
	if h.opt.Echo {
		if err := h.echoPhase(ctx); err != nil {
			return h.rep, err
		}
	}
	if h.opt.Authorizer {
		if err := h.authorizerPhase(ctx); err != nil {
			return h.rep, err
		}
	}
	raw, _ := json.MarshalIndent(Summarize(h.rep), "", "  ")
	if err := os.WriteFile(filepath.Join(h.opt.Dir, "report.json"), raw, 0o644); err != nil {
		return h.rep, fmt.Errorf("load: %w", err)
	}
	return h.rep, nil
}

// newHarness fills o's defaults and checks it.
func newHarness(o Options) (*harness, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = 5 * time.Second
	}
	if o.TopUp <= 0 {
		o.TopUp = 10_000_00
	}
	if o.Load.Amount <= 0 {
		o.Load.Amount = 1_00
	}
	if o.Load.Drain <= 0 {
		o.Load.Drain = o.AuthTimeout + 5*time.Second
	}
	if o.Broker == "" {
		o.Broker = Embedded
	}
	if o.Broker != Embedded && o.Broker != Mosquitto {
		return nil, fmt.Errorf("load: broker %q: want %s or %s", o.Broker, Embedded, Mosquitto)
	}
	if o.Store == "" {
		o.Store = StoreSQLite
	}
	if o.Authorizers <= 0 {
		o.Authorizers = 1
	}
	if err := o.checkStore(); err != nil {
		return nil, err
	}
	if o.Students < 1 || o.Terminals < 1 {
		return nil, errors.New("load: need at least one student and one terminal")
	}
	if o.Load.Duration <= 0 && o.Load.Payments <= 0 {
		return nil, errors.New("load: give a duration or a number of payments")
	}
	return &harness{opt: o, rep: &Report{Options: o}}, nil
}

type harness struct {
	opt Options
	rep *Report

	bank       *banksim.Sim
	cfgPath    string
	data       string
	credsPath  string
	creds      *creds
	mqttAddr   string
	httpAddr   string
	mosquitto  *scenario.Proc
	authzPW    []string // authz-1, authz-2, … on Mosquitto
	echoPW     string
	authorizer []*authorizer
	closers    []func()

	database string // the config's "database"; "" for SQLite
	primary  *pgtest.Cluster
	standby  *pgtest.Cluster
}

// authorizer is one `authorizer serve` of the run.
type authorizer struct {
	name, cfg, data, http string
	env                   []string
	proc                  *scenario.Proc
}

func (h *harness) close() {
	for _, a := range h.authorizer {
		if a.proc != nil {
			a.proc.Stop(10 * time.Second)
		}
	}
	if h.mosquitto != nil {
		h.mosquitto.Stop(5 * time.Second)
	}
	for i := len(h.closers) - 1; i >= 0; i-- {
		h.closers[i]()
	}
}

func (h *harness) logf(format string, args ...any) { fmt.Fprintf(h.opt.Out, format+"\n", args...) }

// setup starts the bank, writes the config and provisions the campus.
func (h *harness) setup(ctx context.Context) error {
	o := h.opt
	for _, b := range []string{"authorizer", "hwsim"} {
		if _, err := os.Stat(filepath.Join(o.Bin, b)); err != nil {
			return fmt.Errorf("load: %s not built in %s (make build): %w", b, o.Bin, err)
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if ents, _ := os.ReadDir(o.Dir); len(ents) > 0 {
		return fmt.Errorf("load: run folder %s is not empty", o.Dir)
	}
	bank, err := banksim.New(banksim.Config{Clients: map[string]string{bankClient: bankSecret}})
	if err != nil {
		return fmt.Errorf("load: bank simulator: %w", err)
	}
	h.bank = bank
	bankURL, err := bank.Start("127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("load: bank simulator: %w", err)
	}
	h.closers = append(h.closers, func() { bank.Close() })
	plan := newPlan(o.Students, o.Terminals, o.TopUp)
	for _, s := range plan.Students {
		if err := bank.AddAccount(banksim.Account{BankCode: s.BankCode, CardNumber: s.BankCard, Name: s.Name,
			IDNumber: s.IDNumber, Phone: s.Phone, Balance: 2 * o.TopUp}); err != nil {
			return fmt.Errorf("load: bank account: %w", err)
		}
	}
	if h.httpAddr, err = scenario.FreeAddr(); err != nil {
		return err
	}
	if h.mqttAddr, err = scenario.FreeAddr(); err != nil {
		return err
	}
	if err := h.startDatabase(ctx); err != nil {
		return err
	}
	mqtt := map[string]string{"listen": h.mqttAddr}
	if o.Broker == Mosquitto {
		mqtt = map[string]string{"broker_url": "tcp://" + h.mqttAddr, "username": "authz-1"}
	}
	cfg := map[string]any{
		"http":                 h.httpAddr,
		"campuses":             map[string]any{"main": map[string]any{"name": "主校区", "showers": false}},
		"supported_banks":      []string{"CCB"},
		"default_limit_per_tx": 500_00,
		"default_limit_daily":  protocol.MaxAmount,
		// Load-test data only: terminals' broker passwords are hashed at
		// bcrypt's minimum cost so that thousands are set up in seconds.
		"bcrypt_cost":     4,
		"auth_timeout_ms": int(o.AuthTimeout / time.Millisecond),
		"bank":            map[string]string{"base_url": bankURL, "client_id": bankClient},
		"mqtt":            mqtt,
	}
	if h.database != "" {
		cfg["database"] = h.database
	}
	raw, _ := json.MarshalIndent(cfg, "", "  ")
	h.cfgPath = filepath.Join(o.Dir, "authorizer.json")
	if err := os.WriteFile(h.cfgPath, raw, 0o600); err != nil {
		return err
	}
	h.data = filepath.Join(o.Dir, "authorizer-data")
	if err := h.authorizerConfigs(cfg); err != nil {
		return err
	}
	raw, _ = json.Marshal(plan)
	planPath := filepath.Join(o.Dir, "plan.json")
	if err := os.WriteFile(planPath, raw, 0o600); err != nil {
		return err
	}
	h.credsPath = filepath.Join(o.Dir, "provisioned.json")
	start := time.Now()
	out, err := h.admin(ctx, "provision", "--plan", planPath, "--out", h.credsPath)
	if err != nil {
		return fmt.Errorf("load: provision: %w\n%s", err, out)
	}
	h.rep.Setup = time.Since(start)
	if h.creds, err = readCreds(h.credsPath); err != nil {
		return err
	}
	h.logf("setup: %d students (activated, topped up, device certified) and %d terminals provisioned in %.1fs",
		len(h.creds.Students), len(h.creds.Terminals), h.rep.Setup.Seconds())
	if o.Broker == Mosquitto {
		return h.startMosquitto(ctx)
	}
	return nil
}

// admin runs an authorizer command on the run's data.
func (h *harness) admin(ctx context.Context, args ...string) (string, error) {
	words := 0
	for words < len(args) && words < 2 && !strings.HasPrefix(args[words], "-") {
		words++
	}
	full := append(append(append([]string{}, args[:words]...), "--data", h.data, "--config", h.cfgPath), args[words:]...)
	cmd := exec.CommandContext(ctx, filepath.Join(h.opt.Bin, "authorizer"), full...)
	cmd.Env = append(os.Environ(), "CAMPUSPAY_BANK_SECRET="+bankSecret)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startMosquitto writes Mosquitto's files with `authorizer broker
// mosquitto` (service users authz-1 and echo-1) and starts it.
func (h *harness) startMosquitto(ctx context.Context) error {
	_, port, _ := strings.Cut(h.mqttAddr, ":")
	args := []string{"broker", "mosquitto", "--dir", filepath.Join(h.opt.Dir, "mosquitto"), "--port", port,
		"--bind", "127.0.0.1", "--authorizer", "echo-1", "--user", "root"}
	for _, a := range h.authorizer {
		args = append(args, "--authorizer", a.name)
	}
	out, err := h.admin(ctx, args...)
	if err != nil {
		return fmt.Errorf("load: broker mosquitto: %w\n%s", err, out)
	}
	password := func(user string) string {
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, "authorizer user "+user+" password: "); ok {
				pw, _, _ := strings.Cut(rest, " ")
				return pw
			}
		}
		return ""
	}
	h.echoPW = password("echo-1")
	for _, a := range h.authorizer {
		pw := password(a.name)
		if pw == "" {
			return fmt.Errorf("load: broker mosquitto printed no password for %s:\n%s", a.name, out)
		}
		a.env = append(a.env, "CAMPUSPAY_MQTT_PASSWORD="+pw)
	}
	if h.echoPW == "" {
		return fmt.Errorf("load: broker mosquitto printed no passwords:\n%s", out)
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mosquitto"); err != nil {
			return fmt.Errorf("load: mosquitto not installed (make deps): %w", err)
		}
	}
	if h.mosquitto, err = scenario.Start(h.opt.Dir, "mosquitto", bin,
		[]string{"-c", filepath.Join(h.opt.Dir, "mosquitto", "mosquitto.conf")}, nil); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return h.mosquitto.WaitTCP(wctx, h.mqttAddr)
}

// echoPhase offers the load to the bare echo responder.
func (h *harness) echoPhase(ctx context.Context) error {
	ready := filepath.Join(h.opt.Dir, "echo.ready")
	args := []string{"load", "echo", "--ready", ready}
	var env []string
	brokerAddr := h.mqttAddr
	if h.opt.Broker == Mosquitto {
		args = append(args, "--broker", "tcp://"+h.mqttAddr, "--user", "echo-1")
		env = []string{"HWSIM_ECHO_PASSWORD=" + h.echoPW}
	} else {
		addr, err := scenario.FreeAddr()
		if err != nil {
			return err
		}
		brokerAddr = addr
		args = append(args, "--listen", addr, "--creds", h.credsPath)
	}
	p, err := scenario.Start(h.opt.Dir, "echo", filepath.Join(h.opt.Bin, "hwsim"), args, env)
	if err != nil {
		return err
	}
	defer p.Stop(5 * time.Second)
	if err := waitFile(ctx, p, ready, 30*time.Second); err != nil {
		return err
	}
	procs := []ProcCPU{{Name: "echo", Pid: p.Pid()}}
	if h.mosquitto != nil {
		procs = append(procs, ProcCPU{Name: "mosquitto", Pid: h.mosquitto.Pid()})
	}
	res, err := h.phase(ctx, "echo", "tcp://"+brokerAddr, false, procs)
	h.rep.Echo = res
	if err != nil {
		return err
	}
	PrintResult(h.opt.Out, res)
	return nil
}

// authorizerPhase starts the authorizers, offers the load (injecting the
// faults), stops them and reconciles the ledger.
func (h *harness) authorizerPhase(ctx context.Context) error {
	var procs []ProcCPU
	for _, a := range h.authorizer {
		if err := h.startAuthorizer(ctx, a); err != nil {
			return err
		}
		procs = append(procs, ProcCPU{Name: a.name, Pid: a.proc.Pid()})
	}
	if len(h.authorizer) == 1 {
		procs[0].Name = "authorizer"
	}
	if h.mosquitto != nil {
		procs = append(procs, ProcCPU{Name: "mosquitto", Pid: h.mosquitto.Pid()})
	}
	if h.primary != nil {
		procs = append(procs, ProcCPU{Name: "postgres", Pid: h.primary.Pid(), Tree: true})
	} else if h.opt.dbPid != 0 {
		procs = append(procs, ProcCPU{Name: "postgres", Pid: h.opt.dbPid, Tree: true})
	}
	inj := newInjector(ctx, h)
	res, err := h.phaseWith(ctx, "authorizer", "tcp://"+h.mqttAddr, true, procs, inj.onApprove)
	h.rep.Authorizer = res
	if ferr := inj.wait(); err == nil {
		err = ferr
	}
	if res != nil {
		h.rep.Faults = inj.results(res)
	}
	if err != nil {
		return err
	}
	PrintResult(h.opt.Out, res)
	PrintFaults(h.opt.Out, h.rep.Faults, res)
	// Stopped before the ledger is read: whatever they still had queued
	// is either in the ledger by then or never will be.
	for _, a := range h.authorizer {
		if err := a.proc.Stop(30 * time.Second); err != nil {
			return err
		}
	}
	t, err := h.tally(ctx, res)
	h.rep.Tally = t
	if err != nil {
		return err
	}
	PrintTally(h.opt.Out, t)
	return nil
}

// phase connects the terminals to broker and offers the load.
func (h *harness) phase(ctx context.Context, name, broker string, wantConfig bool, procs []ProcCPU) (*Result, error) {
	return h.phaseWith(ctx, name, broker, wantConfig, procs, nil)
}

// phaseWith is phase with a hook called after each approval in time.
func (h *harness) phaseWith(ctx context.Context, name, broker string, wantConfig bool, procs []ProcCPU, onApprove func(int)) (*Result, error) {
	g, err := newGenerator(name, broker, h.creds.Students, h.opt.Now, h.opt.Rand, h.opt.AuthTimeout, h.opt.Load.Reverse)
	if err != nil {
		return nil, err
	}
	defer g.close()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = g.connect(cctx, h.creds.Terminals, wantConfig)
	cancel()
	if err != nil {
		return nil, err
	}
	var warmRes *Result
	if w := h.opt.Load.Warmup; w > 0 {
		warm := h.opt.Load
		warm.Duration, warm.Payments = w, 0
		if err := g.run(ctx, warm); err != nil {
			return nil, fmt.Errorf("load: warm-up: %w", err)
		}
		warmRes = g.reset()
	}
	g.mu.Lock()
	g.onApprove = onApprove // faults count the measured approvals
	g.mu.Unlock()
	meter := newCPUMeter(append(procs, ProcCPU{Name: "generator"})...)
	start := h.opt.Now()
	err = g.run(ctx, h.opt.Load)
	cpu := meter.stop()
	res := g.finish()
	res.CPU, res.Wall, res.Warmup = cpu, h.opt.Now().Sub(start), warmRes
	return res, err
}

// tally runs `ledger check` and reconciles the merchant's payment
// transfers with the approvals seen.
func (h *harness) tally(ctx context.Context, res *Result) (*Tally, error) {
	t := &Tally{Amounts: map[protocol.TxID]int64{}, Seen: len(res.ApprovedTx)}
	out, err := h.admin(ctx, "ledger", "check")
	t.Check = strings.TrimSpace(out)
	t.CheckOK = err == nil
	out, err = h.admin(ctx, "ledger", "transfers", "--account", "merchant:"+h.creds.Merchant, "--json")
	if err != nil {
		return t, fmt.Errorf("load: ledger transfers: %w\n%s", err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	charged, refunded := map[protocol.TxID]bool{}, map[protocol.TxID]bool{}
	for sc.Scan() {
		var l struct {
			Key    string `json:"key"`
			Kind   string `json:"kind"`
			Amount int64  `json:"amount"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return t, fmt.Errorf("load: ledger transfers: %q: %w", sc.Text(), err)
		}
		tx, err := txOfKey(l.Key)
		if err != nil {
			return t, err
		}
		switch {
		case l.Kind == "payment" && l.Amount > 0:
			t.Payments++
			charged[tx] = true
			t.Amounts[tx] += l.Amount
		case l.Kind == "refund":
			t.Refunds++
			refunded[tx] = true
			t.Amounts[tx] += l.Amount
		}
	}
	for tx := range charged {
		if !res.ApprovedTx[tx] {
			t.LateCharges = append(t.LateCharges, tx)
			if res.LateTx[tx] {
				t.LateSeen++
			}
			if refunded[tx] {
				t.Refunded++
			}
		}
	}
	for tx := range res.ApprovedTx {
		if !charged[tx] {
			t.Missing = append(t.Missing, tx)
		}
	}
	return t, nil
}

// txOfKey takes the transaction ID from a payment transfer's key: its
// last ':'-separated field ("pay:T:<terminal>:<tx>" today).
func txOfKey(key string) (protocol.TxID, error) {
	i := strings.LastIndexByte(key, ':')
	tx, err := protocol.ParseTxID(key[i+1:])
	if err != nil {
		return "", fmt.Errorf("load: ledger transfer key %q names no transaction: %w", key, err)
	}
	return tx, nil
}

// waitFile waits until path exists, p exits, or the timeout.
func waitFile(ctx context.Context, p *scenario.Proc, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("load: before it was ready: %w", p.ExitError())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("load: %s not ready: %w (see %s)", p.Name, ctx.Err(), p.Log)
		case <-tick.C:
		}
	}
}
