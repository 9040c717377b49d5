package link_test

import (
	"context"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/terminal"
	"campuspay/terminal/link"
)

// TestFailoverToNextBroker: a link with two brokers uses the first; when
// that broker dies (closed: the socket drops and new ones are refused; frozen: it goes silent and
// only the keepalive notices) the link moves to the second, publishes a
// birth there with a higher connection number, and the journal drain
// resumes there: every entry is acked, those the first broker swallowed
// included. A request is answered on the second broker.
func TestFailoverToNextBroker(t *testing.T) {
	for _, death := range []string{"closed", "frozen"} {
		t.Run(death, func(t *testing.T) {
			_, addrA := startMochi(t, "127.0.0.1:0")
			_, addrB := startMochi(t, "127.0.0.1:0")
			px := newProxy(t, addrA)
			ra, rb := newResponder(t, addrA), newResponder(t, addrB)
			// The first broker's authorizer acks entries 1..10 only: the
			// rest are swallowed, as by a broker that dies with them.
			ra.setJournal(func(e *protocol.JournalEntry) *protocol.JournalAck {
				if e.Seq > 10 {
					return nil
				}
				return &protocol.JournalAck{Terminal: e.Terminal, Seq: e.Seq, Tx: e.Tx, OK: true}
			})
			out := newOutbox(40, func(int) protocol.TxID { return newTx(t) })
			urlA, urlB := "tcp://"+px.Addr(), "tcp://"+addrB
			l := newLink(t, "", out, func(c *link.Config) {
				c.Brokers = []string{urlA, urlB}
				c.Window = 8
				c.ResendAfter = time.Hour // only a new connection resends
			})
			waitState(t, l, terminal.LinkUp, 10*time.Second)
			if got := l.Broker(); got != urlA {
				t.Fatalf("connected to %q, want the first broker %q", got, urlA)
			}
			out.waitAcked(t, 10)
			birthA := waitBirth(t, ra)

			switch death {
			case "closed":
				px.ln.Close() // refused from now on
				px.Sever()
			case "frozen":
				px.Freeze()
			}
			waitState(t, l, terminal.LinkDown, 10*time.Second)
			waitState(t, l, terminal.LinkUp, 15*time.Second)
			if got := l.Broker(); got != urlB {
				t.Fatalf("after the first broker died: connected to %q, want %q", got, urlB)
			}
			if birthB := waitBirth(t, rb); birthB.ConnSeq <= birthA.ConnSeq {
				t.Errorf("birth on the second broker has conn_seq %d, not above the first's %d", birthB.ConnSeq, birthA.ConnSeq)
			}
			select {
			case <-out.done:
			case <-time.After(20 * time.Second):
				t.Fatalf("journal drain stuck at %d of 40 acked after failover", out.ackedCount())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req := payReq(t, 700)
			resp, err := l.Request(ctx, req)
			if err != nil || resp.Tx != req.Tx || resp.Status != protocol.StatusApproved {
				t.Fatalf("request on the second broker: %+v, %v", resp, err)
			}
		})
	}
}

// TestFirstBrokerDownAtStart: a link whose first broker is unreachable
// connects to the next one in the list.
func TestFirstBrokerDownAtStart(t *testing.T) {
	_, addrB := startMochi(t, "127.0.0.1:0")
	newResponder(t, addrB)
	l := newLink(t, "", nil, func(c *link.Config) {
		c.Brokers = []string{"tcp://127.0.0.1:1", "tcp://" + addrB}
	})
	waitState(t, l, terminal.LinkUp, 10*time.Second)
	if got := l.Broker(); got != "tcp://"+addrB {
		t.Fatalf("connected to %q, want the second broker", got)
	}
}

// waitBirth returns the next "online" status a responder sees.
func waitBirth(t *testing.T, r *responder) protocol.StatusMsg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-r.statuses:
			if s.State == protocol.StateOnline {
				return s
			}
		case <-deadline:
			t.Fatal("no birth seen")
		}
	}
}
