package modes

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/terminal/device"
	"campuspay/terminal/device/devicetest"
	"campuspay/terminal/journal"
)

// showerHeld brings a shower online, keys account + password and opens
// the valve on a 1500-cent hold, with the meter starting at start.
func showerHeld(t *testing.T, start uint32) *harness {
	h := newHarness(t, protocol.ModeShower, nil)
	h.fm.Set(start)
	h.step(up(), StateIdle, "S Input []")
	h.step(key('2'), StateIdle, "S Input [2]")
	h.keys("023001")
	h.step(key(device.KeyFunc), StatePassword, "S Input []")
	h.step(key('1'), StatePassword, "S Input [*]")
	h.keys("23456")
	h.link.script(held(1500))
	h.step(key(device.KeyEnter), StateShowering,
		"J Created", "J HoldRequested", "S Working 0", "R hold account", "J Held", "J ValveOpen", "S Shower 0.00L 0/1500")
	if open, _ := h.vl.IsOpen(); !open {
		t.Fatal("valve not open")
	}
	r := h.link.requests()[0]
	if r.Cred.Text != "2023001" || r.Secret == "" || len(h.m.secret) != 0 {
		t.Fatalf("hold request %+v, secret left %q", r, h.m.secret)
	}
	return h
}

func TestShowerStopKey(t *testing.T) {
	h := showerHeld(t, 4294967000) // the counter wraps during the shower
	h.fm.Add(900)
	h.advance(time.Second)
	h.step(tick(), StateShowering, "J Metering", "S Shower 2.00L 60/1500")
	h.advance(time.Second)
	h.step(tick(), StateShowering, "S Shower 2.00L 60/1500")
	h.fm.Add(450)
	h.advance(time.Second)
	h.step(tick(), StateShowering, "S Shower 3.00L 90/1500") // persisted, not a state change
	if tx := h.tx(h.link.requests()[0].Tx); tx.Pulses != 1350 || tx.Cost != 90 || tx.Pulses0 != 4294967000 {
		t.Fatalf("persisted meter %+v", tx)
	}
	h.fm.Add(45) // flowed after the last tick: counted by the final read
	h.link.script(approved(""))
	h.step(key(device.KeyStop), StateResult, "J Closing", "R capture 93 ml=3100", "J Captured", "S Result ok=true 93 | 用水 3.1 升")
	if h.vl.History()[len(h.vl.History())-1].Open {
		t.Fatal("valve left open")
	}
	e := h.entries()
	if len(e) != 1 || e[0].Kind != protocol.EntryShower || e[0].Amount != 93 || e[0].ML != 3100 || e[0].Status != protocol.StatusApproved {
		t.Fatalf("entries %+v", e)
	}
	h.advance(5 * time.Second)
	h.step(tick(), StateIdle, "S Input []")
}

func TestShowerClosesAtHoldAndIdle(t *testing.T) {
	h := showerHeld(t, 0)
	h.fm.Set(30000) // 66.6 L × 30 = 19.99 yuan > the 15 yuan hold
	h.link.script(approved(""))
	h.advance(time.Second)
	h.step(tick(), StateResult, "J Metering", "J Closing", "R capture 1500 ml=66666", "J Captured", "S Result ok=true 1500 | 用水 66.7 升")

	h.advance(5 * time.Second)
	h.step(tick(), StateIdle, "S Input []")
}

func TestShowerIdleTimeoutAndLinkDrop(t *testing.T) {
	h := showerHeld(t, 100)
	h.fm.Add(45)
	h.advance(time.Second)
	h.step(tick(), StateShowering, "J Metering", "S Shower 0.10L 3/1500")
	h.step(down(), StateShowering, "S Shower 0.10L 3/1500") // the shower goes on offline
	h.advance(29 * time.Second)
	h.step(tick(), StateShowering, "S Shower 0.10L 3/1500")
	h.advance(time.Second)
	h.link.script(linkDown())
	h.step(tick(), StateResult, "J Closing", "R capture 3 ml=100", "J Captured", "S Result ok=true 3 | 用水 0.1 升")
	// The entry settles it later.
	if e := h.entries(); len(e) != 1 || e[0].Amount != 3 || e[0].Status != protocol.StatusApproved {
		t.Fatalf("entries %+v", e)
	}
	h.advance(5 * time.Second)
	h.step(tick(), StateIdle, "S Idle") // offline: no new shower
}

func TestShowerCardTapAndDecline(t *testing.T) {
	h := newHarness(t, protocol.ModeShower, nil)
	h.online()
	h.step(tap("DEAD"), StateIdle, "S Input [] | 该卡已挂失")
	h.step(tap("04AB"), StatePassword, "S Input []")
	h.keys("1234")
	h.link.script(declined(protocol.ErrShowerBalanceLow))
	h.step(key(device.KeyEnter), StateResult,
		"J Created", "J HoldRequested", "S Working 0", "R hold card", "J Declined", "S Result ok=false 0 | 余额不足15元，无法使用淋浴")
	if open, _ := h.vl.IsOpen(); open || len(h.vl.History()) != 0 {
		t.Fatal("valve touched")
	}
	h.step(key(device.KeyCancel), StateIdle, "S Input []")
}

func TestShowerHoldInDoubtIsReversed(t *testing.T) {
	h := newHarness(t, protocol.ModeShower, nil)
	h.online()
	h.keys("5F9")
	h.link.script(noResponse(), status(protocol.StatusReversed))
	h.step(key(device.KeyEnter), StateResult,
		"J Created", "J HoldRequested", "S Working 0", "R hold account", "J InDoubt", "S Working 0 | 请稍候",
		"J Reversing", "R reverse", "J Reversed", "S Result ok=false 0 | 交易超时，已撤销")
	if len(h.vl.History()) != 0 {
		t.Fatal("valve touched")
	}
}

func TestShowerValveFailure(t *testing.T) {
	h := newHarness(t, protocol.ModeShower, nil)
	h.vl.OpenErr = device.ErrHalted
	h.online()
	h.keys("5F9")
	h.link.script(held(1500), approved(""))
	h.step(key(device.KeyEnter), StateResult,
		"J Created", "J HoldRequested", "S Working 0", "R hold account", "J Held", "J ValveOpen",
		"J Closing", "R capture ml=0", "J Captured", "S Result ok=true 0 | 设备故障，已结束用水")
}

func TestRecovery(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, protocol.ModeShower, nil)
	mk := func(flow journal.Flow, amount int64, states ...journal.State) *journal.Tx {
		h.advance(time.Second)
		id, err := protocol.NewTxID(h.now, h.rnd)
		h.must(err)
		tx := &journal.Tx{ID: id, Flow: flow, Amount: amount, CredKind: protocol.CredCode}
		h.must(h.j.Create(ctx, tx))
		for _, s := range states {
			switch s {
			case journal.StateHeld:
				tx.Hold = 1500
			case journal.StateValveOpen:
				tx.Pulses0 = 10
			case journal.StateMetering:
				tx.Pulses, tx.ML, tx.Cost = 900, 2000, 60
			}
			h.must(h.j.Advance(ctx, tx, s))
		}
		return tx
	}
	created := mk(journal.FlowPay, 100)
	sent := mk(journal.FlowPay, 200, journal.StateSent)
	pending := mk(journal.FlowPay, 300, journal.StateSent, journal.StatePending)
	shower := mk(journal.FlowShower, 0, journal.StateHoldRequested, journal.StateHeld, journal.StateValveOpen, journal.StateMetering)
	reversing := mk(journal.FlowPay, 500, journal.StateSent, journal.StateInDoubt, journal.StateReversing)
	held := mk(journal.FlowShower, 0, journal.StateHoldRequested, journal.StateHeld)
	h.must(h.vl.Open()) // the crashed run left the water on

	// Restart: a new machine on the same journal.
	h.newMachine(protocol.ModeShower)
	h.log = nil
	h.must(h.m.Recover(ctx))
	want := []string{"J Abandoned", "J InDoubt", "J Closing", "J Captured", "J Closing", "J Captured", "S Working 0 | 请稍候"}
	if !reflect.DeepEqual(h.log, want) {
		t.Fatalf("recover log %q, want %q", h.log, want)
	}
	if open, _ := h.vl.IsOpen(); open || h.vl.History()[1] != (devicetest.ValveEvent{}) {
		t.Fatalf("valve %v", h.vl.History())
	}
	if h.m.State() != StateReversing {
		t.Fatalf("state %v", h.m.State())
	}
	h.link.script(status(protocol.StatusReversed), status(protocol.StatusPending), status(protocol.StatusReversed), status(protocol.StatusUnknown))
	h.step(up(), StateIdle, "S Working 0 | 请稍候",
		"J Reversing", "R reverse", "J Reversed", // sent
		"R query", "J Reversing", "R reverse", "J Reversed", // pending: still USERPAYING → reversed
		"R reverse", "J Reversed", // reversing
		"S Input []")
	for _, c := range []struct {
		tx   *journal.Tx
		want journal.State
	}{{created, journal.StateAbandoned}, {sent, journal.StateReversed}, {pending, journal.StateReversed},
		{shower, journal.StateCaptured}, {reversing, journal.StateReversed}, {held, journal.StateCaptured}} {
		if got := h.tx(c.tx.ID); got.State != c.want {
			t.Errorf("%s: %v, want %v", c.tx.ID, got.State, c.want)
		}
	}
	e := h.entries()
	if len(e) != 5 || e[0].Tx != shower.ID || e[0].Amount != 60 || e[0].ML != 2000 || e[1].Tx != held.ID || e[1].Amount != 0 {
		t.Fatalf("entries %+v", e)
	}
	// Nothing is left to recover, and no request touched the captured showers.
	if un, _ := h.j.Unfinished(ctx); len(un) != 0 {
		t.Fatalf("unfinished %+v", un)
	}
	for _, r := range h.link.requests() {
		if r.Tx == shower.ID || r.Tx == created.ID {
			t.Fatalf("request for %s", r.Tx)
		}
	}
}

func TestRecoveryDeclinedUserPaying(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, protocol.ModePOS, nil)
	id, _ := protocol.NewTxID(h.now, h.rnd)
	tx := &journal.Tx{ID: id, Flow: journal.FlowPay, Amount: 300, CredKind: protocol.CredWeChat}
	h.must(h.j.Create(ctx, tx))
	h.must(h.j.Advance(ctx, tx, journal.StateSent))
	h.must(h.j.Advance(ctx, tx, journal.StatePending))
	h.newMachine(protocol.ModePOS)
	h.must(h.m.Recover(ctx))
	h.link.script(declined(protocol.ErrWeChatDeclined))
	h.step(up(), StateIdle, "S Working 0 | 请稍候", "R query", "J Declined", "S Idle")
}

func TestShowerMeterFailureClosesValve(t *testing.T) {
	h := showerHeld(t, 0)
	h.fm.Add(450)
	h.advance(time.Second)
	h.step(tick(), StateShowering, "J Metering", "S Shower 1.00L 30/1500")
	h.fm.Err = errors.New("modbus: timeout")
	for i := 0; i < meterFailLimit-1; i++ {
		h.advance(time.Second)
		h.step(tick(), StateShowering) // a transient read error is tolerated
	}
	h.advance(time.Second)
	h.link.script(approved(""))
	h.step(tick(), StateResult, "J Closing", "R capture 30 ml=1000", "J Captured", "S Result ok=true 30 | 设备故障，已结束用水")
	if open, _ := h.vl.IsOpen(); open {
		t.Fatal("valve open")
	}
}

func TestShowerOfflineCannotStart(t *testing.T) {
	h := newHarness(t, protocol.ModeShower, nil)
	h.step(down(), StateIdle, "S Idle")
	h.step(key('1'), StateIdle, "S Idle")
	h.step(tap("04AB"), StateIdle, "S Idle")
	h.step(up(), StateIdle, "S Input []")
}

// TestShowerMeterResetKeepsCharge: a flow meter that restarts from zero
// mid-shower (a power blip on the bus) must neither lose the water metered
// so far nor look like four billion pulses.
func TestShowerMeterResetKeepsCharge(t *testing.T) {
	h := showerHeld(t, 1000)
	h.fm.Add(450)
	h.advance(time.Second)
	h.step(tick(), StateShowering, "J Metering", "S Shower 1.00L 30/1500")
	h.fm.Set(0) // the meter restarted
	h.advance(time.Second)
	h.step(tick(), StateShowering, "S Shower 1.00L 30/1500")
	h.fm.Add(450)
	h.advance(time.Second)
	h.step(tick(), StateShowering, "S Shower 2.00L 60/1500")
	h.link.script(approved(""))
	h.step(key(device.KeyStop), StateResult, "J Closing", "R capture 60 ml=2000", "J Captured", "S Result ok=true 60 | 用水 2.0 升")
}
