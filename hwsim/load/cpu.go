package load

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// ProcCPU is one process's CPU use over a phase.
type ProcCPU struct {
	Name string
	Pid  int
	CPU  time.Duration // user + system
	// Tree counts the process's children too (PostgreSQL: the postmaster
	// and its backends).
	Tree bool
}

// Cores is the average number of cores the process kept busy over wall.
func (p ProcCPU) Cores(wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return p.CPU.Seconds() / wall.Seconds()
}

// procCPU reads the user + system CPU time of pid (0 = this process)
// from /proc.
func procCPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("load: cpu: %w", err)
	}
	return parseStat(string(raw))
}

// parseStat takes utime and stime (fields 14 and 15) from a stat line;
// the command name (field 2) may hold spaces and parentheses, so fields
// are counted after its last ')'.
func parseStat(s string) (time.Duration, error) { return parseStatFields(s, 11, 13) }

// parseStatFields sums the tick counts f[from:to] of a stat line, f[0]
// being field 3: utime, stime are 11:13, and with cutime, cstime 11:15.
func parseStatFields(s string, from, to int) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("load: cpu: malformed stat")
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < to {
		return 0, fmt.Errorf("load: cpu: short stat")
	}
	var ticks int64
	for _, x := range f[from:to] {
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("load: cpu: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// cpuMeter measures processes' CPU between start and stop.
// The machine is measured too: on a shared box the other processes'
// share (the "machine" line minus the measured processes) explains a low
// figure.
type cpuMeter struct {
	procs   []ProcCPU
	start   []time.Duration
	machine time.Duration
}

func newCPUMeter(procs ...ProcCPU) *cpuMeter {
	m := &cpuMeter{procs: procs}
	for _, p := range procs {
		t, _ := m.read(p)
		m.start = append(m.start, t)
	}
	m.machine, _, _ = machineCPU()
	return m
}

// stop returns each process's CPU since the start, then the whole
// machine's busy time as a last entry named "machine" (Pid = CPU count).
func (m *cpuMeter) stop() []ProcCPU {
	out := make([]ProcCPU, 0, len(m.procs)+1)
	for i, p := range m.procs {
		t, err := m.read(p)
		if err != nil { // gone (killed by a fault): its CPU is unknown
			p.Name += " (gone)"
			t = m.start[i]
		}
		p.CPU = t - m.start[i]
		out = append(out, p)
	}
	if busy, cpus, err := machineCPU(); err == nil {
		out = append(out, ProcCPU{Name: "machine", Pid: cpus, CPU: busy - m.machine})
	}
	return out
}

func (m *cpuMeter) read(p ProcCPU) (time.Duration, error) {
	if p.Tree {
		return treeCPU(p.Pid)
	}
	return procCPU(p.Pid)
}

// treeCPU is the CPU of pid, of its children it has waited for, and of
// its live children (one level: a postmaster's backends).
func treeCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("load: cpu: %w", err)
	}
	total, err := parseStatFields(string(raw), 11, 15)
	if err != nil {
		return 0, err
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := string(raw)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(pid) { // f[1] is field 4, the parent
			continue
		}
		if t, err := parseStat(s); err == nil {
			total += t
		}
	}
	return total, nil
}

// machineCPU reads the busy (non-idle, non-iowait) CPU time of the whole
// machine from /proc/stat, and the number of CPUs.
func machineCPU() (busy time.Duration, cpus int, err error) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("load: cpu: %w", err)
	}
	return parseProcStat(string(raw))
}

func parseProcStat(s string) (busy time.Duration, cpus int, err error) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		var ticks int64
		for i, x := range f[1:] {
			if i == 3 || i == 4 || i >= 7 { // idle, iowait; steal, guest (guest is counted in user)
				continue
			}
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("load: cpu: /proc/stat: %w", err)
			}
			ticks += n
		}
		busy = time.Duration(ticks) * time.Second / clockTicks
	}
	if cpus == 0 {
		return 0, 0, fmt.Errorf("load: cpu: /proc/stat lists no CPU")
	}
	return busy, cpus, nil
}
