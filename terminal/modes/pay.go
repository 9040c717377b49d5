package modes

import (
	"context"
	"errors"

	"campuspay/protocol"
	"campuspay/terminal/device"
	"campuspay/terminal/journal"
)

// The payment flow shared by pos and card: journal first, OpPay, the
// WeChat USERPAYING poll, and in-doubt reversal.

// pay authorises m.amount with cred. The row is durable (Created, then
// Sent) before the request is published.
func (m *Machine) pay(ctx context.Context, cred protocol.Credential) error {
	t, err := m.newTx(journal.FlowPay, m.amount, cred.Kind)
	if err != nil {
		return err
	}
	if cred.Kind == protocol.CredCard {
		err = m.o.Journal.CreateForTap(ctx, t, cred.Text) // the card's last tap, in the same commit
	} else {
		err = m.o.Journal.Create(ctx, t)
	}
	if err != nil {
		return err
	}
	if err := m.o.Journal.Advance(ctx, t, journal.StateSent); err != nil {
		return err
	}
	m.cur, m.state, m.prompt = t, StateAuthorising, nil
	m.show(device.Screen{Kind: device.ScreenWorking, Title: "正在支付，请稍候", TitleEN: "Authorising…", Amount: t.Amount})
	resp, err := m.request(ctx, &protocol.Request{Op: protocol.OpPay, Tx: t.ID, Amount: t.Amount, Cred: &cred})
	return m.payOutcome(ctx, t, resp, err)
}

// payOutcome moves t on from a pay or query response (or its failure).
func (m *Machine) payOutcome(ctx context.Context, t *journal.Tx, resp *protocol.Response, err error) error {
	if err != nil {
		// No response (or not sent, which the link cannot always tell
		// apart from sent): the payment is in doubt.
		return m.inDoubt(ctx, t)
	}
	switch resp.Status {
	case protocol.StatusApproved:
		t.Status, t.Channel, t.Code = resp.Status, resp.Channel, ""
		if err := m.finish(ctx, t, journal.StateApproved, protocol.EntryPayment); err != nil {
			return err
		}
		m.result(true, "支付成功", "Paid", channelNote(resp.Channel), t.Amount, 0)
	case protocol.StatusDeclined:
		if resp.Code == protocol.ErrInternal.Code {
			// The authorizer failed part-way: it may already have moved
			// money (a bank debit, a ledger post). Not a decline to trust:
			// reverse it before the student pays another way.
			return m.inDoubt(ctx, t)
		}
		t.Status, t.Code = resp.Status, resp.Code
		if err := m.finish(ctx, t, journal.StateDeclined, protocol.EntryPayment); err != nil {
			return err
		}
		// The reason is shown as the authorizer worded it; the amount
		// stays up so the student can pay another way.
		why := resp.Reason()
		if why == nil {
			why = protocol.ErrInternal
		}
		if resp.MessageZH != "" {
			why = &protocol.Reason{Code: resp.Code, ZH: resp.MessageZH, EN: resp.MessageEN}
		}
		m.result(false, "支付失败", "Payment failed", why, t.Amount, StateAwait)
	case protocol.StatusPending:
		m.pollAt = m.o.Now().Add(m.o.PollInterval)
		if t.State == journal.StatePending {
			return nil // still waiting for the student's password
		}
		t.Status, t.Deadline = resp.Status, m.o.Now().Add(m.o.PayingTimeout)
		if err := m.o.Journal.Advance(ctx, t, journal.StatePending); err != nil {
			return err
		}
		m.state = StateUserPaying
		m.render()
	default:
		if t.State == journal.StatePending {
			// A query that does not know the payment yet: keep polling
			// until the deadline.
			m.pollAt = m.o.Now().Add(m.o.PollInterval)
			return nil
		}
		m.log.Warn("unexpected pay status: reversing", "tx", t.ID, "status", resp.Status)
		return m.inDoubt(ctx, t)
	}
	return nil
}

// poll queries a USERPAYING payment, or reverses it at its deadline.
func (m *Machine) poll(ctx context.Context) error {
	t := m.cur
	if !m.o.Now().Before(t.Deadline) {
		return m.startReversal(ctx, t, protocol.ErrTimeout)
	}
	resp, err := m.request(ctx, &protocol.Request{Op: protocol.OpQuery, Tx: t.ID})
	if err != nil {
		m.pollAt = m.o.Now().Add(m.o.PollInterval)
		return nil
	}
	return m.payOutcome(ctx, t, resp, nil)
}

// inDoubt records that t's outcome is unknown and reverses it.
func (m *Machine) inDoubt(ctx context.Context, t *journal.Tx) error {
	if t.State != journal.StateInDoubt {
		if err := m.o.Journal.Advance(ctx, t, journal.StateInDoubt); err != nil {
			return err
		}
	}
	return m.startReversal(ctx, t, protocol.ErrTimeout)
}

// startReversal queues t for OpReverse and tries at once. Until every
// queued reversal is acknowledged the machine offers nothing else.
func (m *Machine) startReversal(ctx context.Context, t *journal.Tx, why *protocol.Reason) error {
	m.reversal = append(m.reversal, t)
	m.revWhy = why
	m.retryAt = m.o.Now()
	m.state = StateReversing
	m.render()
	return m.retryReversals(ctx)
}

// retryReversals sends OpReverse for each queued transaction in order
// until one fails; any answer acknowledges a reversal (reversed, or
// unknown: refused forever).
func (m *Machine) retryReversals(ctx context.Context) error {
	for len(m.reversal) > 0 {
		t := m.reversal[0]
		if m.queryTx[t.ID] {
			// Recovered USERPAYING: learn its fate first; a declined
			// payment needs no reversal.
			resp, err := m.request(ctx, &protocol.Request{Op: protocol.OpQuery, Tx: t.ID})
			if err == nil {
				delete(m.queryTx, t.ID)
				if resp.Status == protocol.StatusDeclined {
					t.Status, t.Code = resp.Status, resp.Code
					if err := m.finish(ctx, t, journal.StateDeclined, protocol.EntryPayment); err != nil {
						return err
					}
					m.reversal = m.reversal[1:]
					continue
				}
			}
		}
		if t.State != journal.StateReversing {
			if err := m.o.Journal.Advance(ctx, t, journal.StateReversing); err != nil {
				return err
			}
		}
		resp, err := m.request(ctx, &protocol.Request{Op: protocol.OpReverse, Tx: t.ID})
		if err != nil {
			m.retryAt = m.o.Now().Add(m.o.RetryInterval)
			return nil
		}
		t.Status, t.Code = resp.Status, resp.Code
		if err := m.finish(ctx, t, journal.StateReversed, protocol.EntryReversal); err != nil {
			return err
		}
		m.reversal = m.reversal[1:]
	}
	if m.state != StateReversing {
		return nil // recovered reversals finished behind another screen
	}
	if m.cur != nil {
		amount := m.cur.Amount
		m.cur = nil
		m.result(false, "交易已撤销", "Transaction reversed", m.revWhy, amount, 0)
		return nil
	}
	m.home()
	m.render()
	m.showNotices()
	return nil
}

// finish writes t's final state and entry, then wakes the upload pump.
func (m *Machine) finish(ctx context.Context, t *journal.Tx, s journal.State, kind protocol.EntryKind) error {
	if err := m.o.Journal.Finish(ctx, t, s, kind); err != nil {
		return err
	}
	m.o.Link.Kick()
	m.log.Info("transaction finished", "tx", t.ID, "state", s.String(), "status", t.Status,
		"code", t.Code, "amount", t.Amount, "cred", t.CredKind, "entry", t.EntrySeq)
	return nil
}

func channelNote(ch string) *protocol.Reason {
	switch ch {
	case protocol.ChannelBalance:
		return &protocol.Reason{ZH: "余额支付", EN: "Paid from the e-wallet balance"}
	case protocol.ChannelBankCard:
		return &protocol.Reason{ZH: "银行卡支付", EN: "Paid from the bound bank card"}
	case protocol.ChannelWeChat:
		return &protocol.Reason{ZH: "微信支付", EN: "Paid with WeChat Pay"}
	}
	return nil
}

// refuse shows a local refusal on the await screen; the machine keeps
// waiting.
func (m *Machine) refuse(err error) {
	r := protocol.AsReason(err)
	m.log.Info("refused locally", "code", r.Code)
	m.prompt = r
	m.render()
}

// payReady reports whether a credential can be taken now.
func (m *Machine) payReady() bool {
	return m.state == StateAwait && m.online && len(m.reversal) == 0 && m.cfg != nil
}

func (m *Machine) onScan(ctx context.Context, s device.Scan) error {
	if m.offlineReady() {
		return m.payOffline(ctx, s.Text) // offline.go
	}
	if m.o.Mode != protocol.ModePOS || !m.payReady() {
		return nil // a late scan from a cancelled scanning session
	}
	cred, err := m.check.Scan(ctx, m.cfg, s.Text)
	if err != nil {
		var r *protocol.Reason
		if !errors.As(err, &r) {
			return err // the seen-code cache (the journal) failed
		}
		m.refuse(r)
		return nil
	}
	return m.pay(ctx, cred)
}

func (m *Machine) onTap(ctx context.Context, t device.Tap) error {
	if m.o.Mode == protocol.ModeShower {
		return m.showerTap(ctx, t)
	}
	if held, err := m.heldTap(ctx, t); err != nil || held {
		return err
	}
	if m.state == StateResult {
		m.home() // a tap after a result starts the next payment (fixed amount)
	}
	if !m.payReady() {
		if m.state == StateAwait && !m.online {
			m.prompt = protocol.ErrOffline
			m.render()
		}
		return nil
	}
	cred, err := m.check.Card(m.cfg, t.UID)
	if err != nil {
		m.refuse(err)
		return nil
	}
	return m.pay(ctx, cred)
}

func (m *Machine) onKey(ctx context.Context, k device.Key) error {
	if m.o.Mode == protocol.ModeShower {
		return m.showerKey(ctx, k)
	}
	return m.amountKey(ctx, k)
}
