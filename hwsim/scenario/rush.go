package scenario

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"campuspay/hwsim/phone"
	"campuspay/hwsim/rig"
	"campuspay/protocol"
	"campuspay/terminal/device"
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
}

// RushResult is what the lunch rush saw.
type RushResult struct {
	Approved, Refused, Attempts int
	Unexpected                  []string // balance mismatches and other surprises
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
			Rig: rig.Config{Scanner: true, Keypad: "serial"}})
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
	var wg sync.WaitGroup
	errs := make(chan error, len(specs)+1)
	for _, spec := range specs {
		b := c.Boxes[spec.ID]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range queue {
				ok, attempts, err := rushPay(ctx, b, s, amounts[s.No])
				if err != nil {
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

// rushPay has one student pay at one box until the box gives a final
// answer while online. A payment refused because the box went offline, or
// reversed after a timeout, is tried again with a fresh code, as the
// student would.
func rushPay(ctx context.Context, b *Box, s *Student, cents int64) (approved bool, attempts int, err error) {
	for attempts < 6 {
		wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		mark := b.Display.Mark()
		// Wait for the box to be online and ready for a sale.
		if _, err := b.Display.WaitAfter(wctx, max(0, mark-1), "online", func(x Screen) bool { return x.Online }); err != nil {
			cancel()
			return false, attempts, err
		}
		mark = b.Display.Mark()
		attempts++
		if err := b.Rig.Key(keysFor(cents)); err != nil {
			cancel()
			return false, attempts, err
		}
		scr, err := b.Display.WaitAfter(wctx, mark, "awaiting a code", func(x Screen) bool {
			return x.Kind == device.ScreenAwait || x.Kind == device.ScreenOffline
		})
		if err != nil {
			cancel()
			return false, attempts, err
		}
		if scr.Kind == device.ScreenOffline {
			b.Rig.Key("\x1b") // cancel the sale; wait for the link
			cancel()
			continue
		}
		code, err := s.App.Code()
		if err != nil {
			cancel()
			return false, attempts, err
		}
		if err := b.Rig.ShowVia(rig.ViaScanner, code); err != nil {
			cancel()
			return false, attempts, err
		}
		scr, err = b.Display.WaitAfter(wctx, mark, "a result", func(x Screen) bool {
			return x.Kind == device.ScreenResult || x.Kind == device.ScreenOffline
		})
		cancel()
		if err != nil {
			return false, attempts, err
		}
		if scr.Kind == device.ScreenResult && scr.Result == "ok" {
			return true, attempts, nil
		}
		switch scr.Reason() {
		case protocol.ErrTimeout.Code, protocol.ErrOffline.Code, "":
			b.Rig.Key("\x1b")
			continue // try again once the box is back
		default:
			return false, attempts, fmt.Errorf("refused: %s %s", scr.Reason(), scr.Message)
		}
	}
	return false, attempts, nil
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
