package modes

import (
	"context"
	"errors"
	"sync"
	"time"

	"campuspay/terminal/device"
)

// Run feeds the machine from its devices, the link and the clock until
// ctx ends. Scanning runs only while a code is awaited. When ctx ends a
// running shower is closed and settled before Run returns; a request in
// flight finishes (up to the authorisation deadline) so that its outcome
// is journalled. Run returns an error only on a fault.
func (m *Machine) Run(ctx context.Context) error {
	// Work started by an event is finished even if ctx ends meanwhile;
	// only waiting for new events is cancelled.
	work := context.WithoutCancel(ctx)
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	events := make(chan any, 32)
	d := m.o.Devices
	if d.Keypad != nil {
		wg.Add(1)
		go pump(pctx, &wg, m, events, "keypad", func(c context.Context) (any, error) {
			k, err := d.Keypad.Key(c)
			return KeyEvent{k}, err
		})
	}
	if d.Card != nil {
		wg.Add(1)
		go pump(pctx, &wg, m, events, "card", func(c context.Context) (any, error) {
			t, err := d.Card.Read(c)
			return TapEvent{t}, err
		})
	}
	var stopScan context.CancelFunc
	defer func() {
		if stopScan != nil {
			stopScan()
		}
	}()
	states, configs, notices := m.o.Link.States(), m.o.Link.Configs(), m.o.Link.Notices()
	timer := time.NewTimer(heartbeat)
	defer timer.Stop()
	for {
		if m.o.Heartbeat != nil {
			m.o.Heartbeat()
		}
		want := d.Scanner != nil && m.wantScan()
		switch {
		case want && stopScan == nil:
			sctx, c := context.WithCancel(pctx)
			stopScan = c
			wg.Add(1)
			go pump(sctx, &wg, m, events, "scanner", func(c context.Context) (any, error) {
				s, err := d.Scanner.Scan(c)
				return ScanEvent{s}, err
			})
		case !want && stopScan != nil:
			stopScan()
			stopScan = nil
		}
		wait := heartbeat
		if w := m.Wake(); !w.IsZero() {
			wait = min(wait, max(w.Sub(m.o.Now()), 0))
		}
		timer.Reset(wait)
		var err error
		select {
		case <-ctx.Done():
			return m.stop(work)
		case ev := <-events:
			err = m.Handle(work, ev)
		case s, ok := <-states:
			if !ok {
				states = nil
				continue
			}
			err = m.Handle(work, LinkEvent{s})
		case c, ok := <-configs:
			if !ok {
				configs = nil
				continue
			}
			err = m.Handle(work, ConfigEvent{c})
		case n, ok := <-notices:
			if !ok {
				notices = nil
				continue
			}
			err = m.Handle(work, NoticeEvent{n})
		case <-timer.C:
			err = m.Handle(work, TickEvent{})
		}
		if err != nil {
			return err
		}
	}
}

func (m *Machine) wantScan() bool { return m.payReady() || m.offlineReady() }

// stop closes a running shower so that it is settled now rather than by
// recovery.
func (m *Machine) stop(ctx context.Context) error {
	if m.state == StateShowering {
		err := m.closeShower(ctx, "shutdown")
		m.publish()
		return err
	}
	return nil
}

// pump reads one device into events until ctx ends or the device halts.
func pump(ctx context.Context, wg *sync.WaitGroup, m *Machine, events chan<- any, name string, read func(context.Context) (any, error)) {
	defer wg.Done()
	for {
		ev, err := read(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, device.ErrHalted) {
				return
			}
			m.log.Warn("device read", "device", name, "err", err)
			t := time.NewTimer(time.Second) // a failing device is retried, not spun on
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
	}
}
