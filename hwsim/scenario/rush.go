package scenario

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"time"

	"campuspay/hwsim/phone"
	"campuspay/hwsim/rig"
	"campuspay/protocol"
)

// RushOptions size the lunch rush.
type RushOptions struct {
	Students  int   // students in the queue
	Terminals int   // POS boxes
	Seed      int64 // amounts and queue order
	// KillAfter kills the broker with SIGKILL once this many payments
	// have finished, then starts it again: the authorizer with its
	// embedded broker, or the external Mosquitto (Options.Broker).
	KillAfter int
	// Failover: with several brokers (Options.Brokers; the boxes
	// alternate their first choice), KillAfter kills the first broker
	// with SIGKILL for good instead of restarting it, and the rush times
	// how long each of its boxes took to be online on another.
	Failover bool
}

// RushResult is what the lunch rush saw.
type RushResult struct {
	Approved, Refused, Attempts int
	Unexpected                  []string // balance mismatches and other surprises
	Moves                       []Move   // Failover: the killed broker's boxes
}

// Rush runs the lunch rush: many students pay by code at many POS boxes
// while the authorizer and its broker are killed and restarted. Every
// payment the display showed as approved must be charged exactly once, and
// every other attempt not at all.
func Rush(ctx context.Context, opt Options, ro RushOptions) (*Campus, *RushResult, error) {
	c, err := New(ctx, opt)
	if err != nil {
		return nil, nil, err
	}
	r := rand.New(rand.NewSource(ro.Seed))
	const topUp = 200_00
	var students []*Student
	for i := 0; i < ro.Students; i++ {
		s := &Student{No: fmt.Sprintf("2025%04d", i+1), Name: fmt.Sprintf("学生%03d", i+1), Phone: fmt.Sprintf("139%08d", i+1),
			Category: "本科生", Campus: "main", CardUID: fmt.Sprintf("04C0%010X", i+1), Password: "rush2025"}
		if err := c.AddStudent(s, 10_000_00, 0); err != nil {
			return c, nil, err
		}
		students = append(students, s)
	}
	var specs []BoxSpec
	for i := 0; i < ro.Terminals; i++ {
		specs = append(specs, BoxSpec{ID: fmt.Sprintf("T-RUSH-%02d", i+1), Merchant: "M-RUSH", Mode: "pos",
			Rig: rig.Config{Scanner: true, Keypad: "serial"}, FirstBroker: i % max(1, opt.Brokers)})
	}
	if err := c.StartAuthorizer([][3]string{{"M-RUSH", "二食堂", "main"}}, specs); err != nil {
		return c, nil, err
	}
	for _, b := range specs {
		if err := c.StartBox(b); err != nil {
			return c, nil, err
		}
	}
	for _, b := range specs {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.WaitOnline(wctx, b.ID)
		cancel()
		if err != nil {
			return c, nil, err
		}
	}
	// Every student activates and tops up ¥200.00.
	if err := parallel(ctx, 8, students, func(s *Student) error {
		if err := s.App.Login(ctx); err != nil {
			return err
		}
		if _, err := s.App.BindCard(ctx, phone.BankCard{BankCode: s.BankCode, CardNumber: s.BankCard}); err != nil {
			return err
		}
		if _, err := s.App.RegisterDevice(ctx); err != nil {
			return err
		}
		_, err := s.App.TopUp(ctx, topUp)
		return err
	}); err != nil {
		return c, nil, fmt.Errorf("rush: activation: %w", err)
	}
	c.Timeline.Add(Event{Who: "admin", Where: "app", What: fmt.Sprintf("%d students activated, ¥200.00 each", len(students)), Result: "ok", OK: true})

	res := &RushResult{}
	var mu sync.Mutex
	charged := map[string]int64{} // student → approved cents
	queue := make(chan *Student, len(students))
	for _, i := range r.Perm(len(students)) {
		queue <- students[i]
	}
	close(queue)
	amounts := map[string]int64{}
	for _, s := range students {
		amounts[s.No] = int64(5_00 + r.Intn(25_00))
	}
	done := 0
	var killOnce sync.Once
	var wg, moving sync.WaitGroup
	errs := make(chan error, len(specs)+1)
	for _, spec := range specs {
		b := c.Boxes[spec.ID]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range queue {
				ok, attempts, err := rushPay(ctx, b, s, amounts[s.No])
				if err != nil {
					if q, ok := b.Rig.Keypad.(interface{ Queued() (int, error) }); ok {
						n, qerr := q.Queued()
						err = fmt.Errorf("%w (keypad bytes unread by the box: %d %v)", err, n, qerr)
					}
					b.Proc.DumpGoroutines(5 * time.Second) // its stacks go to its log
					errs <- fmt.Errorf("rush: %s at %s: %w", s.No, b.ID, err)
					return
				}
				mu.Lock()
				res.Attempts += attempts
				if ok {
					res.Approved++
					charged[s.No] += amounts[s.No]
				} else {
					res.Refused++
				}
				done++
				kill := ro.KillAfter > 0 && done == ro.KillAfter
				mu.Unlock()
				if kill {
					killOnce.Do(func() {
						if ro.Failover {
							moving.Add(1)
							go func() {
								defer moving.Done()
								moves := c.failover(ctx, 0)
								mu.Lock()
								res.Moves = moves
								mu.Unlock()
							}()
							return
						}
						what := "kill -9 the authorizer and its embedded broker"
						if opt.Broker == "mosquitto" {
							what = "kill -9 Mosquitto"
						}
						c.Timeline.Add(Event{Who: "chaos", Where: "broker", What: what, Result: "killed", OK: true})
						if err := c.RestartBroker(); err != nil {
							errs <- err
						}
						c.Timeline.Add(Event{Who: "chaos", Where: "broker", What: "broker back", Result: "ok", OK: true})
					})
				}
			}
		}()
	}
	wg.Wait()
	moving.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return c, res, err
		}
	}
	// Drain: every box's journal and reversals reach the authorizer.
	for _, spec := range specs {
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := c.journalDepth(dctx, spec.ID)
		cancel()
		if err != nil {
			res.Unexpected = append(res.Unexpected, err.Error())
		}
	}
	// Exactly once: each wallet holds its top-up minus what its display approved.
	for _, s := range students {
		w, err := s.App.Wallet(ctx)
		if err != nil {
			res.Unexpected = append(res.Unexpected, fmt.Sprintf("%s: wallet: %v", s.No, err))
			continue
		}
		if want := topUp - charged[s.No]; w.Balance != want || w.Held != 0 {
			res.Unexpected = append(res.Unexpected, fmt.Sprintf("%s: balance %s held %s, want %s (approved %s)", s.No,
				protocol.FormatCents(w.Balance), protocol.FormatCents(w.Held), protocol.FormatCents(want), protocol.FormatCents(charged[s.No])))
		}
	}
	c.Timeline.Add(Event{Who: "rush", Where: "campus", What: fmt.Sprintf("%d approved, %d refused, %d attempts", res.Approved, res.Refused, res.Attempts),
		Result: fmt.Sprintf("%d unexpected", len(res.Unexpected)), OK: len(res.Unexpected) == 0})
	return c, res, nil
}

// boxStatus is the part of terminald's /status.json the rush reads: the
// state machine and the journal are authoritative, unlike a display
// stream that may skip a screen.
type boxStatus struct {
	State  string `json:"state"`
	Online bool   `json:"online"`
	Broker string `json:"broker"`
	Recent []struct {
		Tx     string `json:"tx"`
		State  string `json:"state"`
		Amount string `json:"amount"`
		Status string `json:"status"`
		Code   string `json:"code"`
	} `json:"recent"`
}

// pollStatus polls the box's status until ok, pressing Cancel (at most
// every half second) when the box sits in a state that Cancel leaves.
func pollStatus(ctx context.Context, b *Box, what string, ok func(boxStatus) bool, cancelFrom ...string) (boxStatus, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last boxStatus
	var pressed time.Time
	for {
		var st boxStatus
		if err := getJSON(ctx, b.StatusURL+"/status.json", &st); err == nil {
			last = st
			if ok(st) {
				return st, nil
			}
			for _, s := range cancelFrom {
				if st.State == s && time.Since(pressed) > 500*time.Millisecond {
					b.Rig.Key("\x1b")
					pressed = time.Now()
				}
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("box %s: waiting for %s: %w (state %s, online %v)", b.ID, what, ctx.Err(), last.State, last.Online)
		case <-tick.C:
		}
	}
}

// rushPay has one student pay at one box until the box's journal holds a
// final answer for the student's payment. A code the box could not take
// (it went offline first), or a payment reversed after a timeout, is tried
// again with a fresh code, as the student would. It reports whether a
// payment was approved: exactly one approval per student is expected.
func rushPay(ctx context.Context, b *Box, s *Student, cents int64) (approved bool, attempts int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for attempts < 8 {
		// Ready: online and idle (Cancel leaves a result, notices, or an
		// amount a previous attempt left up).
		st, err := pollStatus(ctx, b, "ready", func(x boxStatus) bool { return x.Online && x.State == "idle" },
			"result", "await", "amount", "notices")
		if err != nil {
			return false, attempts, err
		}
		seen := map[string]bool{}
		for _, t := range st.Recent {
			seen[t.Tx] = true
		}
		attempts++
		if err := b.Rig.Key(keysFor(cents)); err != nil {
			return false, attempts, err
		}
		// A cashier whose keyed amount does not show up keys it again. (The
		// rush found a box wiping a keyed sale when the authorizer
		// republished its config after a reconnection; fixed in modes and
		// pinned by TestPOSConfigRepublishKeepsKeyedAmount. This stays so a
		// cashier-level retry never hides as a hung test.)
		kctx, kcancel := context.WithTimeout(ctx, 10*time.Second)
		st, err = pollStatus(kctx, b, "awaiting a code", func(x boxStatus) bool { return x.State == "await" || !x.Online })
		kcancel()
		if err != nil && ctx.Err() == nil {
			b.Rig.Key("\x1b")
			continue
		}
		if err != nil {
			return false, attempts, err
		}
		if !st.Online {
			continue
		}
		code, err := s.App.Code()
		if err != nil {
			return false, attempts, err
		}
		if err := b.Rig.ShowVia(rig.ViaScanner, code); err != nil {
			return false, attempts, err
		}
		// The box journals the payment before it sends it; wait for its
		// final state. A code shown just as the box went offline is not
		// taken: the box stays awaiting, offline.
		var final string
		_, err = pollStatus(ctx, b, "the payment's final state", func(x boxStatus) bool {
			for _, t := range x.Recent {
				if seen[t.Tx] || t.Amount != protocol.FormatCents(cents) {
					continue
				}
				switch t.State {
				case "Approved", "Declined", "Reversed":
					final = t.State + " " + t.Code
					return true
				}
				return false // in flight: wait, whatever the link does
			}
			return !x.Online && x.State == "await"
		})
		if err != nil {
			return false, attempts, err
		}
		switch {
		case final == "":
			continue // not taken: try again once the box is back
		case strings.HasPrefix(final, "Approved"):
			return true, attempts, nil
		case strings.HasPrefix(final, "Reversed"):
			continue // timed out and reversed: nothing charged, pay again
		default:
			return false, attempts, fmt.Errorf("refused: %s", final)
		}
	}
	return false, attempts, fmt.Errorf("no final answer after %d attempts", attempts)
}

func parallel[T any](ctx context.Context, n int, items []T, f func(T) error) error {
	sem := make(chan struct{}, n)
	errs := make(chan error, len(items))
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(it); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
