package modes

import "campuspay/protocol"

// card: a card-tap box. With Config.FixedAmount set it waits for a tap
// for that amount at all times; without, the cashier keys the amount as
// in pos (amountKey) and the student taps. Taps are handled by onTap.

// fixedAmount returns the card box's fixed amount, or 0 when keyed.
func (m *Machine) fixedAmount() int64 {
	if m.o.Mode != protocol.ModeCard || m.cfg == nil || !protocol.ValidAmount(m.cfg.FixedAmount) {
		return 0
	}
	return m.cfg.FixedAmount
}

// home resets the per-customer fields and returns to the mode's ready
// state: awaiting a tap for a fixed-amount card box, otherwise idle.
func (m *Machine) home() {
	m.input, m.prompt, m.cur, m.card, m.amount, m.afterRes = "", nil, nil, "", 0, 0
	m.wipeSecret()
	m.state = StateIdle
	if a := m.fixedAmount(); a > 0 {
		m.state, m.amount = StateAwait, a
	}
}

// leaveNotices returns from the notices screen to where the cashier was.
func (m *Machine) leaveNotices() {
	switch m.afterRes {
	case StateAmount, StateAwait:
		m.state = m.afterRes
	default:
		m.home()
	}
	m.afterRes = 0
	m.render()
}
