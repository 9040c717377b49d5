package syncsuite_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/authz"
)

// fakeBackend is a tiny in-memory ledger with the wallet's exactly-once
// rules: payments idempotent by (terminal, tx), reversals that refund an
// approval or leave a tombstone that refuses a later arrival, journal
// entries applied once by (terminal, seq). Its books are checked by check.
type fakeBackend struct {
	mu        sync.Mutex
	passwords map[string]string
	configs   map[string]*protocol.Config
	balances  map[string]int64 // by credential text (the "user")
	txs       map[txKey]*fakeTx
	journal   map[seqKey]protocol.JournalEntry
	applied   map[seqKey]int // effective (first) applications
	calls     map[txKey]map[protocol.Op]int
	postings  []posting
	notices   map[string][]protocol.StaticQRPayment

	// gate, when set for a tx, blocks HandleRequest(pay) until closed.
	gates map[protocol.TxID]chan struct{}
	// entered is signalled when a gated request is being handled.
	entered chan protocol.TxID
}

type txKey struct {
	terminal string
	tx       protocol.TxID
}

type seqKey struct {
	terminal string
	seq      uint64
}

type fakeTx struct {
	amount  int64
	user    string
	cred    string
	status  protocol.Status
	charged int // times the amount was taken (must stay ≤ 1)
	code    string
}

type posting struct {
	account string
	delta   int64
	tx      protocol.TxID
}

var _ authz.Backend = (*fakeBackend)(nil)

func newFakeBackend(passwords map[string]string) *fakeBackend {
	f := &fakeBackend{
		passwords: passwords, configs: map[string]*protocol.Config{}, balances: map[string]int64{},
		txs: map[txKey]*fakeTx{}, journal: map[seqKey]protocol.JournalEntry{}, applied: map[seqKey]int{},
		calls: map[txKey]map[protocol.Op]int{}, notices: map[string][]protocol.StaticQRPayment{},
		gates: map[protocol.TxID]chan struct{}{}, entered: make(chan protocol.TxID, 100),
	}
	for term := range passwords {
		f.configs[term] = &protocol.Config{Revision: 1, Terminal: term, Merchant: "M1", MerchantName: "一食堂", Campus: "yungu", Mode: protocol.ModePOS}
	}
	return f
}

func (f *fakeBackend) fund(user string, cents int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.balances[user] += cents
	f.postings = append(f.postings, posting{"user:" + user, cents, ""}, posting{"bank", -cents, ""})
}

// gate makes the next pay of tx block until the returned func is called.
func (f *fakeBackend) gate(tx protocol.TxID) (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.gates[tx] = ch
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (f *fakeBackend) HandleRequest(ctx context.Context, req *protocol.Request) *protocol.Response {
	f.mu.Lock()
	k := txKey{req.Terminal, req.Tx}
	if f.calls[k] == nil {
		f.calls[k] = map[protocol.Op]int{}
	}
	f.calls[k][req.Op]++
	gate := f.gates[req.Tx]
	if req.Op == protocol.OpPay && gate != nil {
		delete(f.gates, req.Tx)
		f.mu.Unlock()
		f.entered <- req.Tx
		select {
		case <-gate:
		case <-ctx.Done():
		}
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	resp := &protocol.Response{Op: req.Op, Tx: req.Tx, Terminal: req.Terminal}
	t := f.txs[k]
	switch req.Op {
	case protocol.OpPay:
		switch {
		case t == nil:
			t = &fakeTx{amount: req.Amount, user: req.Cred.Text, cred: string(req.Cred.Kind) + ":" + req.Cred.Text}
			f.txs[k] = t
			if f.balances[t.user] >= req.Amount {
				f.balances[t.user] -= req.Amount
				f.postings = append(f.postings, posting{"user:" + t.user, -req.Amount, req.Tx}, posting{"merchant:" + req.Terminal, req.Amount, req.Tx})
				t.status, t.charged = protocol.StatusApproved, 1
			} else {
				t.status, t.code = protocol.StatusDeclined, protocol.ErrBalanceLow.Code
			}
		case t.amount != req.Amount || t.cred != string(req.Cred.Kind)+":"+req.Cred.Text:
			resp.Status = protocol.StatusDeclined
			resp.SetReason(protocol.ErrTxConflict)
			return resp
		}
	case protocol.OpReverse:
		if t == nil {
			t = &fakeTx{}
			f.txs[k] = t // tombstone: a later pay with this tx is refused
		}
		f.reverse(k, t)
	case protocol.OpQuery:
		if t == nil {
			resp.Status = protocol.StatusUnknown
			return resp
		}
	default:
		resp.Status = protocol.StatusDeclined
		resp.SetReason(protocol.ErrUnsupportedOp)
		return resp
	}
	resp.Status, resp.Amount = t.status, t.amount
	if t.status == protocol.StatusReversed {
		resp.SetReason(protocol.ErrTxReversed)
	} else if t.code != "" {
		resp.Code = t.code
	}
	if t.status == protocol.StatusApproved {
		resp.Channel = protocol.ChannelBalance
	}
	return resp
}

// reverse refunds an approved tx; call with f.mu held.
func (f *fakeBackend) reverse(k txKey, t *fakeTx) {
	if t.status == protocol.StatusApproved {
		f.balances[t.user] += t.amount
		f.postings = append(f.postings, posting{"user:" + t.user, t.amount, k.tx}, posting{"merchant:" + k.terminal, -t.amount, k.tx})
	}
	t.status = protocol.StatusReversed
}

func (f *fakeBackend) ApplyJournal(_ context.Context, e *protocol.JournalEntry) *protocol.JournalAck {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := seqKey{e.Terminal, e.Seq}
	ack := &protocol.JournalAck{Terminal: e.Terminal, Seq: e.Seq, Tx: e.Tx, OK: true}
	if prev, ok := f.journal[k]; ok {
		if prev.Tx != e.Tx {
			ack.OK, ack.Code = false, protocol.ErrTxConflict.Code
		}
		return ack
	}
	f.journal[k] = *e
	f.applied[k]++
	if e.Kind == protocol.EntryReversal {
		tk := txKey{e.Terminal, e.Tx}
		t := f.txs[tk]
		if t == nil {
			t = &fakeTx{}
			f.txs[tk] = t
		}
		f.reverse(tk, t)
	}
	return ack
}

func (f *fakeBackend) Notices(_ context.Context, terminal string, after uint64) (*protocol.Notice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := &protocol.Notice{Terminal: terminal, Cursor: after}
	for _, p := range f.notices[terminal] {
		if p.Seq > after {
			n.Payments = append(n.Payments, p)
			n.Cursor = p.Seq
		}
	}
	return n, nil
}

func (f *fakeBackend) TerminalConfig(_ context.Context, terminal string) (*protocol.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.configs[terminal]
	if !ok {
		return nil, fmt.Errorf("fake: terminal %s: %w", terminal, protocol.ErrTerminalUnknown)
	}
	cp := *c
	return &cp, nil
}

func (f *fakeBackend) AuthenticateTerminal(_ context.Context, terminal, password string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.passwords[terminal]
	return ok && p == password
}

func (f *fakeBackend) tx(terminal string, tx protocol.TxID) fakeTx {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.txs[txKey{terminal, tx}]; t != nil {
		return *t
	}
	return fakeTx{status: protocol.StatusUnknown}
}

func (f *fakeBackend) callCount(terminal string, tx protocol.TxID, op protocol.Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[txKey{terminal, tx}][op]
}

func (f *fakeBackend) journalEntry(terminal string, seq uint64) (protocol.JournalEntry, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := seqKey{terminal, seq}
	return f.journal[k], f.applied[k]
}

// check verifies the books: postings balance, no balance below zero,
// no transaction charged twice, and a reversed one nets to zero.
func (f *fakeBackend) check(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum int64
	perTx := map[protocol.TxID]int64{}
	for _, p := range f.postings {
		sum += p.delta
		if p.tx != "" && len(p.account) > 5 && p.account[:5] == "user:" {
			perTx[p.tx] -= p.delta
		}
	}
	if sum != 0 {
		t.Errorf("ledger: postings sum to %d", sum)
	}
	for u, b := range f.balances {
		if b < 0 {
			t.Errorf("ledger: %s balance %d", u, b)
		}
	}
	var keys []txKey
	for k := range f.txs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].tx < keys[j].tx })
	for _, k := range keys {
		tx := f.txs[k]
		if tx.charged > 1 {
			t.Errorf("ledger: %s charged %d times", k.tx, tx.charged)
		}
		want := int64(0)
		if tx.status == protocol.StatusApproved {
			want = tx.amount
		}
		if perTx[k.tx] != want {
			t.Errorf("ledger: %s (%s) nets %d, want %d", k.tx, tx.status, perTx[k.tx], want)
		}
	}
	for k, n := range f.applied {
		if n != 1 {
			t.Errorf("journal: %s seq %d applied %d times", k.terminal, k.seq, n)
		}
	}
}

// memOutbox is an in-memory terminal.Outbox (the terminal's SQLite one is
// tested in terminal/journal).
type memOutbox struct {
	mu      sync.Mutex
	entries []protocol.JournalEntry // index = seq-1
	acked   map[uint64]protocol.JournalAck
	changed chan struct{}
}

func newOutbox() *memOutbox { return &memOutbox{acked: map[uint64]protocol.JournalAck{}} }

func (o *memOutbox) add(e protocol.JournalEntry) uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	e.Seq = uint64(len(o.entries) + 1)
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	o.entries = append(o.entries, e)
	return e.Seq
}

func (o *memOutbox) Pending(_ context.Context, after uint64, limit int) ([]protocol.JournalEntry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []protocol.JournalEntry
	for s := after + 1; s <= uint64(len(o.entries)) && len(out) < limit; s++ {
		if _, ok := o.acked[s]; !ok {
			out = append(out, o.entries[s-1])
		}
	}
	return out, nil
}

func (o *memOutbox) Acked(_ context.Context, seq uint64, a protocol.JournalAck) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq == 0 || seq > uint64(len(o.entries)) {
		return errors.New("outbox: no such entry")
	}
	if _, ok := o.acked[seq]; !ok {
		o.acked[seq] = a
	}
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	return nil
}

// waitAllAcked waits until every entry added so far is acked.
func (o *memOutbox) waitAllAcked(t *testing.T) {
	t.Helper()
	o.waitAcked(t, -1)
}

// waitAcked waits until n entries (-1: all) are acked.
func (o *memOutbox) waitAcked(t *testing.T, want int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		o.mu.Lock()
		done := len(o.acked) == len(o.entries)
		if want >= 0 {
			done = len(o.acked) >= want
		}
		if o.changed == nil {
			o.changed = make(chan struct{})
		}
		ch := o.changed
		n, total := len(o.acked), len(o.entries)
		o.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("outbox: %d of %d acked", n, total)
		}
	}
}
