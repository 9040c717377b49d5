package journal

import (
	"context"
	"errors"
	"math/rand"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"campuspay/protocol"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func open(t *testing.T) (*Journal, *clock, string) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path, Options{Terminal: "T1", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, c, path
}

var rnd = rand.New(rand.NewSource(1))

func newID(t testing.TB, at time.Time) protocol.TxID {
	id, err := protocol.NewTxID(at, rnd)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestPayFlowAndOutbox(t *testing.T) {
	ctx := context.Background()
	j, c, path := open(t)
	tx := &Tx{ID: newID(t, c.t), Flow: FlowPay, Amount: 1250, CredKind: protocol.CredCode}
	if err := j.Create(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := j.Advance(ctx, tx, StateSent); err != nil {
		t.Fatal(err)
	}
	// Not allowed: Sent → Captured.
	if err := j.Advance(ctx, tx, StateCaptured); !errors.Is(err, ErrTransition) {
		t.Fatalf("Sent→Captured: %v", err)
	}
	tx.Status, tx.Channel = protocol.StatusApproved, protocol.ChannelBalance
	if err := j.Finish(ctx, tx, StateApproved, protocol.EntryPayment); err != nil {
		t.Fatal(err)
	}
	if tx.EntrySeq != 1 {
		t.Fatalf("entry seq %d", tx.EntrySeq)
	}
	// A final state moves nowhere.
	if err := j.Advance(ctx, tx, StateReversing); !errors.Is(err, ErrTransition) {
		t.Fatalf("Approved→Reversing: %v", err)
	}
	tx2 := &Tx{ID: newID(t, c.t.Add(time.Second)), Flow: FlowPay, Amount: 300, CredKind: protocol.CredWeChat}
	for _, s := range []State{StateSent, StateInDoubt, StateReversing} {
		if tx2.State == 0 {
			if err := j.Create(ctx, tx2); err != nil {
				t.Fatal(err)
			}
		}
		if err := j.Advance(ctx, tx2, s); err != nil {
			t.Fatal(err)
		}
	}
	tx2.Status = protocol.StatusReversed
	if err := j.Finish(ctx, tx2, StateReversed, protocol.EntryReversal); err != nil {
		t.Fatal(err)
	}
	h, err := j.History(ctx, tx2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []State{StateCreated, StateSent, StateInDoubt, StateReversing, StateReversed}; !reflect.DeepEqual(h, want) {
		t.Fatalf("history %v, want %v", h, want)
	}
	pend, err := j.Pending(ctx, 0, 10)
	if err != nil || len(pend) != 2 || pend[0].Seq != 1 || pend[1].Seq != 2 || pend[1].Kind != protocol.EntryReversal {
		t.Fatalf("pending %+v %v", pend, err)
	}
	for _, e := range pend {
		if err := e.Validate(); err != nil {
			t.Fatalf("entry %d invalid: %v", e.Seq, err)
		}
	}
	if err := j.Acked(ctx, 1, protocol.JournalAck{Seq: 1, OK: true}); err != nil {
		t.Fatal(err)
	}
	if err := j.Acked(ctx, 1, protocol.JournalAck{Seq: 1, OK: true}); err != nil {
		t.Fatalf("second ack: %v", err)
	}
	if err := j.Acked(ctx, 9, protocol.JournalAck{Seq: 9, OK: true}); err == nil {
		t.Fatal("ack of unknown entry accepted")
	}
	if d, _ := j.Depth(ctx); d != 1 {
		t.Fatalf("depth %d", d)
	}
	// Everything survives a reopen.
	j.Close()
	j2, err := Open(path, Options{Terminal: "T1", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	pend, _ = j2.Pending(ctx, 0, 10)
	if len(pend) != 1 || pend[0].Seq != 2 {
		t.Fatalf("pending after reopen %+v", pend)
	}
	un, _ := j2.Unfinished(ctx)
	if len(un) != 0 {
		t.Fatalf("unfinished %+v", un)
	}
}

func TestShowerFlowMetering(t *testing.T) {
	ctx := context.Background()
	j, c, _ := open(t)
	tx := &Tx{ID: newID(t, c.t), Flow: FlowShower, CredKind: protocol.CredAccount}
	steps := []State{StateHoldRequested, StateHeld, StateValveOpen, StateMetering}
	if err := j.Create(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s == StateHeld {
			tx.Hold = 1500
		}
		if s == StateValveOpen {
			tx.Pulses0 = 4294967000
		}
		if err := j.Advance(ctx, tx, s); err != nil {
			t.Fatal(err)
		}
	}
	tx.Pulses, tx.ML, tx.Cost = 450, 1000, 30
	if err := j.Meter(ctx, tx); err != nil {
		t.Fatal(err)
	}
	un, _ := j.Unfinished(ctx)
	if len(un) != 1 || un[0].Pulses != 450 || un[0].Cost != 30 || un[0].Pulses0 != 4294967000 || un[0].Hold != 1500 {
		t.Fatalf("unfinished %+v", un)
	}
	if err := j.Advance(ctx, tx, StateClosing); err != nil {
		t.Fatal(err)
	}
	if err := j.Meter(ctx, tx); err == nil {
		t.Fatal("meter after closing accepted")
	}
	tx.Amount, tx.Status = tx.Cost, protocol.StatusApproved
	if err := j.Finish(ctx, tx, StateCaptured, protocol.EntryShower); err != nil {
		t.Fatal(err)
	}
	e, _ := j.Entries(ctx)
	if len(e) != 1 || e[0].Kind != protocol.EntryShower || e[0].Amount != 30 || e[0].ML != 1000 {
		t.Fatalf("entries %+v", e)
	}
}

func TestMetaNoticesSeenCodes(t *testing.T) {
	ctx := context.Background()
	j, c, _ := open(t)
	for want := uint64(1); want <= 3; want++ {
		if got, err := j.NextConnSeq(ctx); err != nil || got != want {
			t.Fatalf("conn seq %d %v, want %d", got, err, want)
		}
	}
	if cfg, err := j.Config(ctx); cfg != nil || err != nil {
		t.Fatalf("config before save: %v %v", cfg, err)
	}
	if err := j.SaveConfig(ctx, &protocol.Config{Terminal: "T1", Revision: 5, MerchantQR: "CM1:NEW"}); err != nil {
		t.Fatal(err)
	}
	if err := j.SaveConfig(ctx, &protocol.Config{Terminal: "T1", Revision: 4, MerchantQR: "CM1:OLD"}); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := j.Config(ctx); cfg == nil || cfg.MerchantQR != "CM1:NEW" {
		t.Fatalf("config %+v", cfg)
	}

	p1 := protocol.StaticQRPayment{Tx: newID(t, c.t), Seq: 7, Amount: 800, User: "张*"}
	p2 := protocol.StaticQRPayment{Tx: newID(t, c.t), Seq: 8, Amount: 900}
	fresh, err := j.RecordNotice(ctx, &protocol.Notice{Terminal: "T1", Payments: []protocol.StaticQRPayment{p1}, Cursor: 7})
	if err != nil || len(fresh) != 1 {
		t.Fatalf("first notice %v %v", fresh, err)
	}
	fresh, _ = j.RecordNotice(ctx, &protocol.Notice{Terminal: "T1", Payments: []protocol.StaticQRPayment{p1, p2}, Cursor: 8})
	if len(fresh) != 1 || fresh[0].Tx != p2.Tx {
		t.Fatalf("second notice %v", fresh)
	}
	if cur, _ := j.NoticeCursor(ctx); cur != 8 {
		t.Fatalf("cursor %d", cur)
	}
	if e, _ := j.Entries(ctx); len(e) != 2 || e[0].Kind != protocol.EntryNotice {
		t.Fatalf("notice entries %+v", e)
	}

	exp := c.t.Add(70 * time.Second)
	if ok, _ := j.SeeCode(ctx, "9-100-1", exp); !ok {
		t.Fatal("first sight refused")
	}
	if ok, _ := j.SeeCode(ctx, "9-100-1", exp); ok {
		t.Fatal("second sight accepted")
	}
	c.t = c.t.Add(2 * time.Minute) // expired IDs are pruned
	if ok, _ := j.SeeCode(ctx, "9-100-1", c.t.Add(time.Minute)); !ok {
		t.Fatal("pruned id still seen")
	}
}

func TestDurabilitySettings(t *testing.T) {
	j, _, _ := open(t)
	var mode string
	var sync int
	if err := j.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q %v", mode, err)
	}
	if err := j.db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous %d %v, want 2 (FULL)", sync, err)
	}
}

func TestTransitionTable(t *testing.T) {
	for from := range stateNames {
		for _, to := range transitions[from] {
			if from.Final() {
				t.Errorf("final state %v has a transition to %v", from, to)
			}
		}
		if s, ok := ParseState(from.String()); !ok || s != from {
			t.Errorf("ParseState(%v)", from)
		}
	}
}
