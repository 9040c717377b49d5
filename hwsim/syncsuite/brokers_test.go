package syncsuite_test

import (
	"errors"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/broker"
	"campuspay/server/broker/brokertest"
	"campuspay/terminal"
)

// twoMosquittos starts two independent Mosquittos with the same users and
// one authorizer subscribed on both.
func twoMosquittos(t *testing.T) (e *env, a, b *brokertest.Mosquitto) {
	t.Helper()
	e = &env{t: t, kind: "mosquitto", fb: newFakeBackend(termPasswords), logs: &logSink{}}
	creds := append([]broker.Credential{}, services...)
	for u, p := range termPasswords {
		creds = append(creds, broker.Credential{User: u, Password: p})
	}
	m := broker.Mosquitto{Authorizers: []string{services[0].User, services[1].User}}
	a, b = brokertest.StartMosquitto(t, m, creds), brokertest.StartMosquitto(t, m, creds)
	e.urls = []string{"tcp://" + a.Addr(), "tcp://" + b.Addr()}
	e.addAuthorizer(services[0], e.fb)
	return e, a, b
}

// One authorizer on two brokers answers each terminal on the broker it
// uses, and gives each its retained config there. The broker of T1 dies
// (SIGKILL) while the authorizer approves T1's payment: the answer dies
// with it. T1 moves to the other broker, gets its config there, settles
// the payment in doubt by query — approved, charged once — and its
// journal entry is applied once.
func TestBrokerDiesMidPayment(t *testing.T) {
	e, mqA, _ := twoMosquittos(t)
	e.fb.fund("S1", 5000)
	e.fb.fund("S2", 5000)
	out := newOutbox()
	t1 := e.newLinkOn("T1", e.urls, out, nil)
	t2 := e.newLinkOn("T2", []string{e.urls[1], e.urls[0]}, nil, nil)
	waitUp(t, t1)
	waitUp(t, t2)
	for _, tc := range []struct {
		name   string
		broker string
		got    func() string
	}{
		{"T1", e.urls[0], t1.Broker},
		{"T2", e.urls[1], t2.Broker},
	} {
		if got := tc.got(); got != tc.broker {
			t.Fatalf("%s on %q, want its first broker %q", tc.name, got, tc.broker)
		}
	}
	for _, l := range []*struct {
		name string
		cfgs <-chan *protocol.Config
	}{{"T1", t1.Configs()}, {"T2", t2.Configs()}} {
		select {
		case <-l.cfgs:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no config on its broker", l.name)
		}
	}
	if r, err := request(t, t2, pay(newTx(t), "S2", 100), 5*time.Second); err != nil || r.Status != protocol.StatusApproved {
		t.Fatalf("T2 on the second broker: %+v %v", r, err)
	}

	tx := newTx(t)
	release := e.fb.gate(tx)
	errc := make(chan error, 1)
	go func() {
		_, err := request(t, t1, pay(tx, "S1", 990), 2*time.Second)
		errc <- err
	}()
	<-e.fb.entered
	killed := time.Now()
	mqA.Kill()
	err := <-errc
	release()
	if !errors.Is(err, terminal.ErrNoResponse) && !errors.Is(err, terminal.ErrLinkDown) {
		t.Fatalf("payment across the broker's death: %v, want no answer", err)
	}
	waitUp(t, t1)
	if got := t1.Broker(); got != e.urls[1] {
		t.Fatalf("T1 on %q after its broker died, want %q", got, e.urls[1])
	}
	// A config published after the kill: the birth on the second broker's.
	for deadline := time.After(10 * time.Second); ; {
		var c *protocol.Config
		select {
		case c = <-t1.Configs():
		case <-deadline:
			t.Fatal("T1: no config on the second broker")
		}
		if c.ServerTime.After(killed) {
			break
		}
	}
	status := settle(t, t1, tx)
	if status != protocol.StatusApproved {
		t.Fatalf("payment settled %s, want approved (the authorizer approved it)", status)
	}
	seq := out.add(protocol.JournalEntry{Tx: tx, Kind: protocol.EntryPayment, Status: status, Amount: 990, CredKind: protocol.CredCard})
	t1.Kick()
	out.waitAllAcked(t)
	if got := e.fb.tx("T1", tx); got.charged != 1 || got.status != protocol.StatusApproved {
		t.Fatalf("ledger %+v, want approved and charged once", got)
	}
	if _, applied := e.fb.journalEntry("T1", seq); applied != 1 {
		t.Fatalf("journal entry applied %d times", applied)
	}
	e.fb.check(t)
}
