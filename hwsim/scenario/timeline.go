package scenario

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"campuspay/protocol"
)

// Event is one line of the demo's timeline.
type Event struct {
	At      time.Time
	Who     string // student, cashier, admin, network ...
	Where   string // terminal id, "app", "authorizer"
	What    string // what happened, short
	Amount  int64  // cents; 0 when not relevant
	Channel string // balance | bank_card | wechat | ""
	Result  string // "approved", a reason code, ...
	OK      bool   // the outcome was the expected one
	Want    string // the expected result when it differed
}

// Timeline prints events as they happen and keeps them for the summary.
type Timeline struct {
	mu     sync.Mutex
	w      io.Writer
	start  time.Time
	events []Event
	now    func() time.Time
}

// NewTimeline writes to w; times are shown relative to the first event.
func NewTimeline(w io.Writer, now func() time.Time) *Timeline {
	return &Timeline{w: w, now: now}
}

// Add records and prints e.
func (t *Timeline) Add(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.At.IsZero() {
		e.At = t.now()
	}
	if t.start.IsZero() {
		t.start = e.At
	}
	t.events = append(t.events, e)
	mark := "✓"
	if !e.OK {
		mark = "✗"
	}
	amount := ""
	if e.Amount != 0 {
		amount = "¥" + protocol.FormatCents(e.Amount)
	}
	res := e.Result
	if !e.OK && e.Want != "" {
		res += " (expected " + e.Want + ")"
	}
	fmt.Fprintf(t.w, "%s %8.3fs  %s %s %s %10s  %-9s %s\n", mark,
		e.At.Sub(t.start).Seconds(), pad(e.Who, 8), pad(e.Where, 12), pad(e.What, 46), amount, e.Channel, res)
}

// Failures returns the events whose outcome differed from the expected one.
func (t *Timeline) Failures() []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Event
	for _, e := range t.events {
		if !e.OK {
			out = append(out, e)
		}
	}
	return out
}

// Len is the number of events.
func (t *Timeline) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.events)
}

// pad clips s to n display columns and pads it to exactly n.
func pad(s string, n int) string {
	var b strings.Builder
	w := 0
	for _, r := range s {
		rw := displayWidth(string(r))
		if w+rw > n-1 && w+rw+displayWidth(s[len(b.String()):])-rw > n {
			b.WriteString("…")
			w++
			break
		}
		b.WriteRune(r)
		w += rw
	}
	return b.String() + strings.Repeat(" ", max(0, n-w))
}

// Table prints rows as an aligned table with a header.
func Table(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = displayWidth(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], displayWidth(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", width[i]-displayWidth(c)+2))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
}

// displayWidth counts CJK characters as two columns.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x1100 && (r <= 0x115f || r >= 0x2e80 && r <= 0xa4cf || r >= 0xac00 && r <= 0xd7a3 || r >= 0xf900 && r <= 0xfaff || r >= 0xff00 && r <= 0xff60 || r >= 0xffe0 && r <= 0xffe6) {
			n += 2
		} else {
			n++
		}
	}
	return n
}
