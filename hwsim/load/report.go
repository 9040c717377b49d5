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
	if r.Reversals > 0 {
		var rs []string
		for st, n := range r.ReversalAnswers {
			rs = append(rs, fmt.Sprintf("%s×%d", st, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(w, "%-10s reversals sent at the deadline %d, answered: %s\n", "", r.Reversals, strings.Join(rs, ", "))
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
