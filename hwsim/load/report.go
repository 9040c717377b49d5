package load

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// PrintResult prints one phase.
func PrintResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "%-10s sent %d, answered in time %d (%.0f/s), approved %d, timeouts %d, late answers %d (%d approvals); deadline %v\n",
		r.Name, r.Sent, r.Answered, r.Throughput(), r.Approved, r.Timeouts, r.LateAnswers, r.LateApprove, r.AuthTimeout)
	fmt.Fprintf(w, "%-10s latency p50 %s  p99 %s  p99.9 %s  max %s\n", "", ms(r.Percentile(0.5)), ms(r.Percentile(0.99)),
		ms(r.Percentile(0.999)), ms(r.Percentile(1)))
	if wr := r.Warmup; wr != nil {
		fmt.Fprintf(w, "%-10s warm-up before it (not in the figures above): sent %d, answered in time %d, latency p50 %s  p99 %s  max %s\n", "",
			wr.Sent, wr.Answered, ms(wr.Percentile(0.5)), ms(wr.Percentile(0.99)), ms(wr.Percentile(1)))
	}
	if r.Behind() {
		fmt.Fprintf(w, "%-10s the generator fell behind: sent %d of the %d due (this machine could not run it at that rate); answers it read late may be late by its own delay\n", "", r.Sent, r.Due)
	}
	if r.Reversals > 0 {
		var rs []string
		for st, n := range r.ReversalAnswers {
			rs = append(rs, fmt.Sprintf("%s×%d", st, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(w, "%-10s payments reversed (deadline passed or INTERNAL) %d, %d reversal requests, answers: %s\n", "", r.Reversals, r.ReversalSends, strings.Join(rs, ", "))
	}
	if len(r.Declined) > 0 {
		var ds []string
		for k, n := range r.Declined {
			ds = append(ds, fmt.Sprintf("%s×%d", strings.TrimSpace(k), n))
		}
		sort.Strings(ds)
		fmt.Fprintf(w, "%-10s declined: %s\n", "", strings.Join(ds, ", "))
	}
	var parts []string
	for _, c := range r.CPU {
		if c.Name == "machine" {
			parts = append(parts, fmt.Sprintf("whole machine %.2f of %d cores busy", c.Cores(r.Wall), c.Pid))
			continue
		}
		per := ""
		if n := r.Answered + r.LateAnswers; n > 0 { // late answers cost as much
			per = fmt.Sprintf(", %.3f ms/answer", float64(c.CPU.Microseconds())/1000/float64(n))
		}
		parts = append(parts, fmt.Sprintf("%s %.2f cores%s", c.Name, c.Cores(r.Wall), per))
	}
	fmt.Fprintf(w, "%-10s cpu over %.1fs: %s\n", "", r.Wall.Seconds(), strings.Join(parts, "; "))
}

// PrintTally prints the ledger reconciliation.
func PrintTally(w io.Writer, t *Tally) {
	status := "OK"
	if !t.CheckOK {
		status = "FAILED"
	}
	fmt.Fprintf(w, "ledger     check %s; payment transfers %d, approvals seen in time %d, late charges %d (%d answered after the deadline, %d refunded since), missing %d, refunds %d\n",
		status, t.Payments, t.Seen, len(t.LateCharges), t.LateSeen, t.Refunded, len(t.Missing), t.Refunds)
	if !t.CheckOK {
		fmt.Fprintf(w, "%s\n", t.Check)
	}
}

// PrintRatio prints the authorizer's throughput against the echo's.
func PrintRatio(w io.Writer, rep *Report) {
	if rep.Echo == nil || rep.Authorizer == nil || rep.Echo.Throughput() == 0 {
		return
	}
	fmt.Fprintf(w, "ratio      authorizer/echo on %s: %.1f%% (%.0f/s vs %.0f/s)\n", rep.Options.Broker,
		100*rep.Authorizer.Throughput()/rep.Echo.Throughput(), rep.Authorizer.Throughput(), rep.Echo.Throughput())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

// Summary is a run's figures in a stable JSON shape (report.json in the
// run folder), for comparing runs.
type Summary struct {
	Broker      string         `json:"broker"`
	Students    int            `json:"students"`
	Terminals   int            `json:"terminals"`
	Concurrency int            `json:"concurrency,omitempty"`
	Rate        float64        `json:"rate,omitempty"`
	Reverse     bool           `json:"reverse,omitempty"`
	SetupS      float64        `json:"setup_s"`
	Phases      []PhaseSummary `json:"phases"`
	Ratio       float64        `json:"authorizer_echo_ratio,omitempty"`
	Ledger      *LedgerSummary `json:"ledger,omitempty"`
	Store       string         `json:"store"`
	Authorizers int            `json:"authorizers"`
	Faults      []FaultSummary `json:"faults,omitempty"`
}

// FaultSummary is one fault and the outage it caused.
type FaultSummary struct {
	Kind    string  `json:"kind"`
	After   int     `json:"after_approvals"`
	ActionS float64 `json:"action_s"`
	GapS    float64 `json:"no_approval_s"`
}

// PhaseSummary is one phase's figures.
type PhaseSummary struct {
	Name         string         `json:"name"`
	Sent         int            `json:"sent"`
	Answered     int            `json:"answered_in_time"`
	Approved     int            `json:"approved_in_time"`
	Timeouts     int            `json:"timeouts"`
	LateAnswers  int            `json:"late_answers"`
	PerSecond    float64        `json:"payments_per_s"`
	P50MS        float64        `json:"p50_ms"`
	P99MS        float64        `json:"p99_ms"`
	P999MS       float64        `json:"p99_9_ms"`
	DeadlineMS   int64          `json:"deadline_ms"`
	CPU          []CPUSummary   `json:"cpu"`
	Reversals    int            `json:"reversals,omitempty"`
	WallS        float64        `json:"wall_s"`
	DeclineCodes map[string]int `json:"declined,omitempty"`
	Warmup       *WarmupSummary `json:"warmup,omitempty"`
}

// WarmupSummary is what the unmeasured warm-up before a phase saw.
type WarmupSummary struct {
	Sent     int     `json:"sent"`
	Answered int     `json:"answered_in_time"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// CPUSummary is one process's CPU over a phase.
type CPUSummary struct {
	Name  string  `json:"name"`
	Cores float64 `json:"cores"`
}

// LedgerSummary is the reconciliation.
type LedgerSummary struct {
	CheckOK     bool `json:"check_ok"`
	Payments    int  `json:"payment_transfers"`
	Seen        int  `json:"approvals_seen_in_time"`
	LateCharges int  `json:"late_charges"`
	Refunded    int  `json:"late_charges_refunded"`
	Missing     int  `json:"missing"`
}

// Summarize makes rep's Summary.
func Summarize(rep *Report) Summary {
	o := rep.Options
	s := Summary{Broker: o.Broker, Students: o.Students, Terminals: o.Terminals, Rate: o.Load.Rate, Reverse: o.Load.Reverse,
		SetupS: rep.Setup.Seconds(), Store: o.Store, Authorizers: o.Authorizers}
	if strings.Contains(s.Store, "://") {
		s.Store = "postgres (URL given)" // the URL may hold a password
	}
	for _, f := range rep.Faults {
		s.Faults = append(s.Faults, FaultSummary{Kind: f.Kind.String(), After: f.After, ActionS: f.Action.Seconds(), GapS: f.Gap.Seconds()})
	}
	if o.Load.Rate <= 0 {
		s.Concurrency = max(o.Load.Concurrency, 1)
	}
	msf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, r := range []*Result{rep.Echo, rep.Authorizer} {
		if r == nil {
			continue
		}
		p := PhaseSummary{Name: r.Name, Sent: r.Sent, Answered: r.Answered, Approved: r.Approved, Timeouts: r.Timeouts,
			LateAnswers: r.LateAnswers, PerSecond: r.Throughput(), P50MS: msf(r.Percentile(0.5)), P99MS: msf(r.Percentile(0.99)),
			P999MS: msf(r.Percentile(0.999)), DeadlineMS: r.AuthTimeout.Milliseconds(), Reversals: r.Reversals,
			WallS: r.Wall.Seconds(), DeclineCodes: r.Declined}
		for _, c := range r.CPU {
			p.CPU = append(p.CPU, CPUSummary{Name: c.Name, Cores: c.Cores(r.Wall)})
		}
		if wr := r.Warmup; wr != nil {
			p.Warmup = &WarmupSummary{Sent: wr.Sent, Answered: wr.Answered, P50MS: msf(wr.Percentile(0.5)),
				P99MS: msf(wr.Percentile(0.99)), MaxMS: msf(wr.Percentile(1))}
		}
		s.Phases = append(s.Phases, p)
	}
	if rep.Echo != nil && rep.Authorizer != nil && rep.Echo.Throughput() > 0 {
		s.Ratio = rep.Authorizer.Throughput() / rep.Echo.Throughput()
	}
	if t := rep.Tally; t != nil {
		s.Ledger = &LedgerSummary{CheckOK: t.CheckOK, Payments: t.Payments, Seen: t.Seen, LateCharges: len(t.LateCharges),
			Refunded: t.Refunded, Missing: len(t.Missing)}
	}
	return s
}
