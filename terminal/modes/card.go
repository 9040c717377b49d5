package modes

import (
	"context"
	"strings"

	"campuspay/protocol"
	"campuspay/terminal/device"
)

// card: a card-tap box. With Config.FixedAmount set it waits for a tap
// for that amount at all times; without, the cashier keys the amount as
// in pos (amountKey) and the student taps. Taps are handled by onTap.
//
// One presentation of a card pays at most once, also across a restart
// (a kill -9 with the student's card still on the reader). During a run
// the reader driver reports a card held on it once. Across a restart it
// depends on what the driver knows (device.Presentation):
//
//   - PresentationHeld (the card was already in the field at the
//     driver's first poll: PN532, RDM6300) never pays;
//   - PresentationNew (the card entered the field while the driver
//     watched) pays: the student took it off and tapped again;
//   - PresentationUnknown (ASCII-line readers): for RetapInterval after
//     the start, the first tap of a card whose last tap in the journal
//     came before the start and less than RetapInterval ago does not
//     pay — it may be the card that stayed on the reader. Past that, or
//     at the card's next tap, it pays.
//
// Such a tap pays nothing, starts no transaction and shows
// ErrCardStillThere on the ready screen: "the card is still on the
// reader; to pay again, take it off and tap again". The next
// presentation — the card taken off and tapped again — pays as usual.
// The shower box needs no such rule: a tap there only asks for the water
// password.

// ErrCardStillThere is shown for a tap that is not a new presentation.
var ErrCardStillThere = protocol.ErrCardNotRemoved

// heldTap reports whether t is not a new presentation of its card (see
// above), showing ErrCardStillThere if so. It fails only if the journal
// does.
func (m *Machine) heldTap(ctx context.Context, t device.Tap) (bool, error) {
	var held bool
	switch t.Presentation {
	case device.PresentationHeld:
		held = true
	case device.PresentationUnknown:
		var err error
		if held, err = m.tappedBeforeStart(ctx, strings.ToUpper(strings.TrimSpace(t.UID))); err != nil {
			return false, err
		}
	}
	if !held {
		return false, nil
	}
	m.log.Info("card tap not paid: the card has not left the reader", "source", t.Source, "presentation", int(t.Presentation))
	switch m.state {
	case StateIdle, StateAmount, StateAwait:
		m.prompt = ErrCardStillThere
		m.render()
	}
	return true, nil
}

// tappedBeforeStart reports whether uid's first tap since the start
// comes less than RetapInterval after its last tap before the start.
func (m *Machine) tappedBeforeStart(ctx context.Context, uid string) (bool, error) {
	now := m.o.Now()
	if m.tapped == nil || !now.Before(m.started.Add(m.o.RetapInterval)) {
		m.tapped = nil // past the window: no tap before the start is that recent
		return false, nil
	}
	if m.tapped[uid] {
		return false, nil
	}
	m.tapped[uid] = true
	last, ok, err := m.o.Journal.LastTap(ctx, uid)
	if err != nil {
		return false, err
	}
	return ok && last.At.Before(m.started) && now.Sub(last.At) < m.o.RetapInterval, nil
}

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
