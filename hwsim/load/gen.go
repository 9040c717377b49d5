package load

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
)

// Terminal is one simulated terminal's broker credential.
type Terminal struct {
	ID       string `json:"id"`
	Password string `json:"password"`
}

// Device is one simulated phone: its certificate and device key.
type Device struct {
	StudentNo   string `json:"student_no"`
	UserID      uint32 `json:"user_id"`
	DeviceID    uint32 `json:"device_id"`
	Certificate []byte `json:"certificate"`
	DeviceKey   []byte `json:"device_key"`
}

// Load is what one phase offers: closed loop (Concurrency requests in
// flight) or open loop (Rate requests per second whatever the answers),
// for Duration or until Payments requests have been sent.
type Load struct {
	Concurrency int
	Rate        float64
	Duration    time.Duration
	Payments    int
	Amount      int64 // cents per payment
	// Drain bounds the wait for answers still due after the last request
	// (late answers count as such).
	Drain time.Duration
	// Reverse makes a terminal reverse each payment unanswered at its
	// deadline, as terminald does (DESIGN §4): the authorizer must then
	// refund it if it had approved it. A reversal unanswered, or answered
	// other than REVERSED (e.g. the retryable INTERNAL while the database
	// fails over), is sent again every ReverseRetry, as terminald does.
	Reverse bool
	// DeclinePause is how long a closed-loop terminal waits after a
	// declined payment before its next one (a cashier keys the sale
	// again): without it a failing authorizer that declines at once turns
	// the whole budget of Payments into declines.
	DeclinePause time.Duration
	// Warmup offers the same load for this long before the measured
	// phase, unmeasured (its approvals still count in the ledger's
	// reconciliation): fresh processes dial their database connections and
	// fill their caches then.
	Warmup time.Duration
}

// ReverseRetry is how often an unconfirmed reversal is sent again: the
// deadline, but not more often than every 2 s.
func ReverseRetry(deadline time.Duration) time.Duration { return max(deadline, 2*time.Second) }

// Result is what one phase measured.
type Result struct {
	Name        string
	Sent        int
	Answered    int // answers received within the deadline
	Approved    int // approvals received within the deadline
	Declined    map[string]int
	Timeouts    int // no answer by the deadline
	LateAnswers int // answers after the deadline (LateApproved of them approvals)
	LateApprove int
	Elapsed     time.Duration // from the first request to the last one sent or answered in time, whichever is later
	Wall        time.Duration // the whole measured window, drain included (CPU's denominator)
	Latencies   []time.Duration
	AuthTimeout time.Duration
	// ApprovedTx are the approvals the terminals saw in time; LateTx the
	// approvals that came after the deadline (a real terminal would have
	// given up and reversed them).
	ApprovedTx map[protocol.TxID]bool
	LateTx     map[protocol.TxID]bool
	// ApprovalTimes are when each approval in time arrived, in order: the
	// gaps in them are when the campus could not approve payments.
	ApprovalTimes []time.Time
	// Reversals are the payments reversed (Load.Reverse): those unanswered
	// at their deadline and those declined with INTERNAL (in doubt).
	// ReversalSends are the reversal requests sent (retries included),
	// and ReversalAnswers their answers by status.
	Reversals       int
	ReversalSends   int
	ReversalAnswers map[protocol.Status]int
	CPU             []ProcCPU
	// Warmup is what the unmeasured warm-up before this phase saw
	// (Load.Warmup; nil without one): a freshly started process's first
	// second, kept apart from the steady state's percentiles but shown.
	Warmup *Result
	// Due is how many requests the open loop's schedule called for (0 in
	// a closed loop). Sent short of it means the generator fell behind:
	// the machine could not run it at that rate, and answers it read late
	// may be late by its own delay.
	Due int
}

// Throughput is answers within the deadline per second of load.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Answered) / r.Elapsed.Seconds()
}

// Behind reports whether an open loop sent under 98 % of the requests
// its schedule called for.
func (r *Result) Behind() bool { return r.Due > 0 && r.Sent*100 < r.Due*98 }

// Percentile returns the q-quantile (0..1) of the answers' latencies.
func (r *Result) Percentile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Latencies)))
	if i >= len(r.Latencies) {
		i = len(r.Latencies) - 1
	}
	return r.Latencies[i]
}

// generator drives the terminals of one phase.
type generator struct {
	now    func() time.Time
	rand   io.Reader
	randMu sync.Mutex

	broker    string
	terminals []*termClient
	devices   []*phone
	next      atomic.Uint64 // round robin over students and terminals

	pending   sync.Map // TxID → *request
	reversals sync.Map // TxID → chan protocol.Status: reversals awaiting REVERSED
	reverse   bool
	revWG     sync.WaitGroup
	// onApprove, if set, is called with the number of approvals in time so
	// far after each one, on paho's router goroutine: it must not block.
	onApprove  func(n int)
	mu         sync.Mutex
	res        *Result
	finished   bool          // under mu: answers after finish are not counted
	lastAnswer time.Time     // under mu: the last answer in time
	offset     time.Duration // terminal clock correction from the config's server time
	timeout    time.Duration
}

type termClient struct {
	id     string
	client paho.Client
	config chan *protocol.Config
}

type phone struct {
	cert []byte
	key  ed25519.PrivateKey
	seq  atomic.Uint32
}

type request struct {
	tc       *termClient
	tx       protocol.TxID
	sent     time.Time
	deadline time.Time
	state    atomic.Int32 // 0 waiting, 1 answered, 2 timed out
	declined bool         // set before done is closed, with code
	code     string
	done     chan struct{}
}

type answer struct {
	Op     protocol.Op     `json:"op"`
	Tx     protocol.TxID   `json:"tx"`
	Status protocol.Status `json:"status"`
	Code   string          `json:"code"`
}

// connect connects every terminal (its own credentials, client id = its
// id) and subscribes to its responses and, when wantConfig, its retained
// config, from which the deadline and the clock offset are taken.
func (g *generator) connect(ctx context.Context, terms []Terminal, wantConfig bool) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(terms))
	g.terminals = make([]*termClient, len(terms))
	sem := make(chan struct{}, 16)
	for i, t := range terms {
		tc := &termClient{id: t.ID, config: make(chan *protocol.Config, 1)}
		g.terminals[i] = tc
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o := paho.NewClientOptions().AddBroker(g.broker).SetClientID(t.ID).SetUsername(t.ID).SetPassword(t.Password).
				SetCleanSession(true).SetAutoReconnect(false).SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second).
				SetDefaultPublishHandler(g.onMessage(tc))
			tc.client = paho.NewClient(o)
			if tok := tc.client.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
				errs <- fmt.Errorf("load: terminal %s: connect %s: %v", t.ID, g.broker, tok.Error())
				return
			}
			filters := map[string]byte{protocol.Topic(protocol.ChanResponse, t.ID): 1}
			if wantConfig {
				filters[protocol.Topic(protocol.ChanConfig, t.ID)] = 1
			}
			if tok := tc.client.SubscribeMultiple(filters, nil); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
				errs <- fmt.Errorf("load: terminal %s: subscribe: %v", t.ID, tok.Error())
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if !wantConfig {
		return nil
	}
	// The real terminal's deadline: auth_timeout_ms of its retained config.
	for _, tc := range g.terminals {
		select {
		case c := <-tc.config:
			if c.AuthTimeoutMS <= 0 {
				return fmt.Errorf("load: terminal %s: config without auth_timeout_ms", tc.id)
			}
			g.timeout = time.Duration(c.AuthTimeoutMS) * time.Millisecond
			g.offset = c.ServerTime.Sub(g.now())
		case <-ctx.Done():
			return fmt.Errorf("load: terminal %s: no retained config: %w", tc.id, ctx.Err())
		}
	}
	return nil
}

func (g *generator) close() {
	for _, tc := range g.terminals {
		if tc != nil && tc.client != nil {
			tc.client.Disconnect(100)
		}
	}
}

// onMessage runs on paho's router goroutine: it never blocks.
func (g *generator) onMessage(tc *termClient) paho.MessageHandler {
	respTopic := protocol.Topic(protocol.ChanResponse, tc.id)
	return func(_ paho.Client, m paho.Message) {
		if m.Topic() != respTopic {
			var c protocol.Config
			if protocol.Decode(m.Payload(), &c) == nil {
				select {
				case tc.config <- &c:
				default:
				}
			}
			return
		}
		at := g.now()
		var a answer
		if json.Unmarshal(m.Payload(), &a) != nil {
			return
		}
		if a.Op == protocol.OpReverse {
			if v, ok := g.reversals.Load(a.Tx); ok {
				g.mu.Lock()
				if !g.finished {
					g.res.ReversalAnswers[a.Status]++
				}
				g.mu.Unlock()
				select {
				case v.(chan protocol.Status) <- a.Status:
				default: // a duplicate answer
				}
			}
			return
		}
		v, ok := g.pending.LoadAndDelete(a.Tx)
		if !ok {
			return // a duplicate delivery
		}
		r := v.(*request)
		lat := at.Sub(r.sent)
		// An echo answers with the request itself: no status, counted as answered.
		approved := a.Status == protocol.StatusApproved || a.Status == ""
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.finished {
			return
		}
		g.res.Latencies = append(g.res.Latencies, lat)
		if r.state.CompareAndSwap(0, 1) {
			if at.After(g.lastAnswer) {
				g.lastAnswer = at
			}
			g.res.Answered++
			if approved {
				g.res.Approved++
				g.res.ApprovedTx[a.Tx] = true
				g.res.ApprovalTimes = append(g.res.ApprovalTimes, at)
				if g.onApprove != nil {
					g.onApprove(g.res.Approved)
				}
			} else {
				g.res.Declined[string(a.Status)+" "+a.Code]++
				r.declined, r.code = true, a.Code
			}
			close(r.done)
			return
		}
		g.res.LateAnswers++
		if approved {
			g.res.LateApprove++
			g.res.LateTx[a.Tx] = true
		}
	}
}

// send publishes one payment request with a fresh code of the next
// student at the next terminal and returns its tracking entry.
func (g *generator) send(amount int64) (*request, error) {
	n := g.next.Add(1) - 1
	tc := g.terminals[n%uint64(len(g.terminals))]
	ph := g.devices[n%uint64(len(g.devices))]
	now := g.now()
	termNow := now.Add(g.offset)
	code, err := protocol.MakeCode(ph.cert, ph.key, protocol.PurposePay, termNow, uint16(ph.seq.Add(1)))
	if err != nil {
		return nil, fmt.Errorf("load: code: %w", err)
	}
	g.randMu.Lock()
	tx, err := protocol.NewTxID(termNow, g.rand)
	g.randMu.Unlock()
	if err != nil {
		return nil, err
	}
	payload, err := protocol.Encode(&protocol.Request{Op: protocol.OpPay, Tx: tx, Terminal: tc.id, At: termNow, Amount: amount,
		Cred: &protocol.Credential{Kind: protocol.CredCode, Text: code}})
	if err != nil {
		return nil, err
	}
	r := &request{tc: tc, tx: tx, sent: now, deadline: now.Add(g.timeout), done: make(chan struct{})}
	g.pending.Store(tx, r)
	g.mu.Lock()
	g.res.Sent++
	g.mu.Unlock()
	tc.client.Publish(protocol.Topic(protocol.ChanRequest, tc.id), 1, false, payload)
	return r, nil
}

// wait waits for r's answer until its deadline; a request unanswered by
// then counts as a timeout (an answer after it, as late). It reports
// whether r was declined in time.
func (g *generator) wait(ctx context.Context, r *request) (declined bool) {
	t := time.NewTimer(max(r.deadline.Sub(g.now()), 0))
	defer t.Stop()
	select {
	case <-r.done:
		return g.declined(ctx, r)
	case <-t.C:
	case <-ctx.Done():
	}
	if !r.state.CompareAndSwap(0, 2) {
		<-r.done // answered just now
		return g.declined(ctx, r)
	}
	g.mu.Lock()
	g.res.Timeouts++
	g.mu.Unlock()
	if g.reverse {
		g.revWG.Add(1)
		go func() { defer g.revWG.Done(); g.reverseUntilDone(ctx, r) }()
	}
	return false
}

// declined reports whether r was declined; one declined with INTERNAL is
// in doubt (the authorizer failed part-way and may have moved money), so
// that with Load.Reverse the terminal reverses it, as terminald does.
func (g *generator) declined(ctx context.Context, r *request) bool {
	if r.declined && r.code == protocol.ErrInternal.Code && g.reverse {
		g.revWG.Add(1)
		go func() { defer g.revWG.Done(); g.reverseUntilDone(ctx, r) }()
	}
	return r.declined
}

// reverseUntilDone reverses a payment whose deadline passed, by its ID,
// sending the reversal again every ReverseRetry until it is answered
// REVERSED or ctx ends.
func (g *generator) reverseUntilDone(ctx context.Context, r *request) {
	answers := make(chan protocol.Status, 1)
	g.reversals.Store(r.tx, answers)
	defer g.reversals.Delete(r.tx)
	g.mu.Lock()
	g.res.Reversals++
	g.mu.Unlock()
	for {
		termNow := g.now().Add(g.offset)
		payload, err := protocol.Encode(&protocol.Request{Op: protocol.OpReverse, Tx: r.tx, Terminal: r.tc.id, At: termNow})
		if err != nil {
			return
		}
		g.mu.Lock()
		g.res.ReversalSends++
		g.mu.Unlock()
		r.tc.client.Publish(protocol.Topic(protocol.ChanRequest, r.tc.id), 1, false, payload)
		retry := time.NewTimer(ReverseRetry(g.timeout))
		select {
		case st := <-answers:
			retry.Stop()
			if st == protocol.StatusReversed {
				return
			}
			// Not reversed yet (e.g. INTERNAL): again after the interval.
			select {
			case <-time.After(ReverseRetry(g.timeout)):
			case <-ctx.Done():
				return
			}
		case <-retry.C:
		case <-ctx.Done():
			retry.Stop()
			return
		}
	}
}

// run offers the load and returns when it is done and every request is
// answered or past its deadline (and then the drain is over).
func (g *generator) run(ctx context.Context, l Load) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := g.now()
	end := start.Add(l.Duration)
	var sent atomic.Int64
	more := func() bool {
		if l.Payments > 0 && sent.Add(1) > int64(l.Payments) {
			return false
		}
		return l.Duration <= 0 || g.now().Before(end)
	}
	var wg sync.WaitGroup
	var errOnce sync.Once
	var runErr error
	fail := func(err error) { errOnce.Do(func() { runErr = err; cancel() }) }
	var last atomic.Int64
	mark := func() { last.Store(int64(g.now().Sub(start))) }
	if l.Rate <= 0 { // closed loop
		for range max(l.Concurrency, 1) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil && more() {
					r, err := g.send(l.Amount)
					if err != nil {
						fail(err)
						return
					}
					mark()
					if g.wait(ctx, r) && l.DeclinePause > 0 {
						select {
						case <-time.After(l.DeclinePause):
						case <-ctx.Done():
						}
					}
				}
			}()
		}
	} else { // open loop: paced by the clock, never by the answers
		due := int(l.Rate * l.Duration.Seconds())
		if l.Payments > 0 && (due == 0 || l.Payments < due) {
			due = l.Payments
		}
		g.mu.Lock()
		g.res.Due = due
		g.mu.Unlock()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		issued := 0
	loop:
		for ctx.Err() == nil {
			due := int(g.now().Sub(start).Seconds()*l.Rate) + 1
			for ; issued < due; issued++ {
				if !more() {
					break loop
				}
				r, err := g.send(l.Amount)
				if err != nil {
					fail(err)
					break loop
				}
				mark()
				wg.Add(1)
				go func() { defer wg.Done(); g.wait(ctx, r) }()
			}
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
	}
	wg.Wait()
	g.mu.Lock()
	g.res.Elapsed = time.Duration(last.Load())
	if !g.lastAnswer.IsZero() {
		g.res.Elapsed = max(g.res.Elapsed, g.lastAnswer.Sub(start))
	}
	g.mu.Unlock()
	if runErr != nil {
		return runErr
	}
	// Late answers still on their way are counted until the drain ends
	// or nothing is outstanding any more.
	drainEnd := time.NewTimer(l.Drain)
	defer drainEnd.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	defer func() { cancel(); g.revWG.Wait() }() // reversals still retrying end with ctx
	for g.outstanding() > 0 {
		select {
		case <-drainEnd.C:
			return nil
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

func (g *generator) outstanding() int {
	n := 0
	g.pending.Range(func(_, _ any) bool { n++; return true })
	g.reversals.Range(func(_, _ any) bool { n++; return true })
	return n
}

// reset starts the measurement again after a warm-up: the counters start
// from zero, the approvals seen so far are kept for the reconciliation.
// It returns what the warm-up measured, its latencies sorted.
func (g *generator) reset() *Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := g.res
	g.res = &Result{Name: old.Name, Declined: map[string]int{}, ApprovedTx: old.ApprovedTx, LateTx: old.LateTx,
		ReversalAnswers: map[protocol.Status]int{}}
	g.lastAnswer = time.Time{}
	sort.Slice(old.Latencies, func(i, j int) bool { return old.Latencies[i] < old.Latencies[j] })
	old.AuthTimeout = g.timeout
	return old
}

// finish sorts the latencies and freezes the result.
func (g *generator) finish() *Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.finished = true
	sort.Slice(g.res.Latencies, func(i, j int) bool { return g.res.Latencies[i] < g.res.Latencies[j] })
	g.res.AuthTimeout = g.timeout
	return g.res
}

func newGenerator(name, broker string, devices []Device, now func() time.Time, rnd io.Reader, timeout time.Duration, reverse bool) (*generator, error) {
	g := &generator{now: now, rand: rnd, broker: broker, timeout: timeout, reverse: reverse,
		res: &Result{Name: name, Declined: map[string]int{}, ApprovedTx: map[protocol.TxID]bool{}, LateTx: map[protocol.TxID]bool{},
			ReversalAnswers: map[protocol.Status]int{}}}
	for _, d := range devices {
		if len(d.DeviceKey) != ed25519.PrivateKeySize || len(d.Certificate) != protocol.CertificateSize {
			return nil, fmt.Errorf("load: device of %s: bad key or certificate", d.StudentNo)
		}
		g.devices = append(g.devices, &phone{cert: d.Certificate, key: ed25519.PrivateKey(d.DeviceKey)})
	}
	if len(g.devices) == 0 {
		return nil, errors.New("load: no students")
	}
	// Students pay in a shuffled order, each once a round: consecutive
	// payments then touch scattered parts of the store, as at real tills.
	// In provisioning order they shared B-tree pages (wallets, limits,
	// statements), which made each commit write fewer pages and flattered
	// the authorizer by about 10 % of its CPU a payment.
	var seed [32]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("load: shuffle students: %w", err)
	}
	mrand.New(mrand.NewChaCha8(seed)).Shuffle(len(g.devices), func(i, j int) { g.devices[i], g.devices[j] = g.devices[j], g.devices[i] })
	return g, nil
}
