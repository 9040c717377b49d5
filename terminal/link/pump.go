package link

import (
	"context"
	"time"

	"campuspay/protocol"
)

// pump drains the outbox in Seq order while connected: at most Window
// entries in flight, each marked Acked only when its JournalAck arrives.
// On a new connection, or when the oldest entry waited ResendAfter, it
// starts again from the first unacknowledged entry: the authorizer applies
// entries idempotently by Seq, so a resend is harmless. All state that
// matters is in the outbox, so a restarted link simply carries on.
//
// The window is what keeps a long backlog from delaying requests: a
// request's PUBLISH queues behind at most Window journal entries.
func (l *Link) pump() {
	defer l.wg.Done()
	var (
		gen      uint64                   // connection the in-flight entries were sent on
		cursor   uint64                   // highest Seq sent on gen
		inflight = map[uint64]time.Time{} // Seq → sent at
	)
	tick := time.NewTicker(l.cfg.ResendAfter / 4)
	defer tick.Stop()
	var reported protocol.StatusMsg // the last status the tick repeated
	restart := func() {
		clear(inflight)
		cursor = 0
	}
	for {
		select {
		case <-l.ctx.Done():
			return
		case a := <-l.acks:
			// Apply a burst of acks before refilling the window. An entry
			// whose ack could not be stored stays in flight and is resent.
			for more := true; more; {
				if l.applyAck(a) {
					delete(inflight, a.Seq)
				}
				select {
				case a = <-l.acks:
				default:
					more = false
				}
			}
		case <-l.kick:
		case <-tick.C:
			l.mu.Lock()
			c, seq := l.client, l.connSeq
			l.mu.Unlock()
			if c != nil {
				l.reportStatus(c, seq, &reported)
			}
			now := time.Now()
			for _, at := range inflight {
				if now.Sub(at) >= l.cfg.ResendAfter {
					l.log.Info("link: journal acks overdue; resending", "in_flight", len(inflight))
					restart()
					break
				}
			}
		}
		l.mu.Lock()
		c, g := l.client, l.conn
		l.mu.Unlock()
		if c == nil {
			continue
		}
		if g != gen {
			gen = g
			restart()
		}
		for len(inflight) < l.cfg.Window && l.ctx.Err() == nil {
			want := l.cfg.Window - len(inflight)
			entries, err := l.outbox.Pending(l.ctx, cursor, want)
			if err != nil {
				l.log.Error("link: outbox", "err", err)
				break
			}
			for i := range entries {
				e := &entries[i]
				e.Terminal = l.cfg.Terminal
				b, err := protocol.Encode(e)
				if err != nil {
					l.log.Error("link: journal entry not encodable", "seq", e.Seq, "err", err)
					continue
				}
				c.Publish(protocol.Topic(protocol.ChanJournal, l.cfg.Terminal), 1, false, b)
				inflight[e.Seq] = time.Now()
				cursor = e.Seq
			}
			if len(entries) < want {
				break
			}
		}
	}
}

// applyAck records an ack durably. Acks may repeat (a resent entry is
// acked twice) or come from an earlier connection: Outbox.Acked must be
// idempotent. A refusal (OK=false) is recorded the same way: the outbox
// keeps the entry for the operator and no longer returns it from Pending.
func (l *Link) applyAck(a protocol.JournalAck) bool {
	if !a.OK {
		l.log.Warn("link: journal entry refused by the authorizer", "seq", a.Seq, "code", a.Code)
	}
	ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
	defer cancel()
	if err := l.outbox.Acked(ctx, a.Seq, a); err != nil {
		l.log.Error("link: outbox ack", "seq", a.Seq, "err", err)
		return false
	}
	return true
}
