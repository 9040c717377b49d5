package modes

import (
	"context"
	"strings"

	"campuspay/protocol"
	"campuspay/terminal/device"
)

// pos: the cashier keys the amount (digits, '.', Backspace, Enter,
// Cancel); the student then shows a wallet or WeChat code or taps a card.
// Card mode with a keyed amount uses the same keys.

const maxAmountKeys = 9 // "999999.99"

// amountKey handles a key in pos and card modes.
func (m *Machine) amountKey(ctx context.Context, k device.Key) error {
	switch m.state {
	case StateResult:
		m.home()
		if !isAmountKey(k) {
			m.render()
			return nil
		}
	case StateNotices:
		if k == device.KeyEnter || k == device.KeyCancel {
			m.lines = nil
			m.leaveNotices()
		}
		return nil
	case StateUserPaying:
		if k == device.KeyCancel {
			// Not yet authorised: the cashier may give up; the payment is
			// reversed so that a later password on the phone cannot charge.
			return m.startReversal(ctx, m.cur, protocol.ErrCancelled)
		}
		return nil
	case StateIdle, StateAmount, StateAwait:
	default:
		return nil
	}
	if m.fixedAmount() > 0 {
		return nil // nothing to key on a fixed-amount card box
	}
	switch {
	case k == device.KeyCancel:
		m.home()
	case k == device.KeyBackspace:
		if m.state == StateAwait {
			m.state = StateAmount // back to editing the amount
		} else if m.input != "" {
			m.input = m.input[:len(m.input)-1]
		}
		if m.input == "" {
			m.state = StateIdle
		}
		m.amount, m.prompt = keyedCents(m.input), nil
	case k == device.KeyEnter:
		if m.state != StateAmount {
			return nil
		}
		c, err := protocol.ParseYuan(m.input)
		if err != nil {
			m.prompt = protocol.ErrAmountInvalid
			break
		}
		m.amount, m.state, m.prompt = c, StateAwait, nil
	case isAmountKey(k):
		if m.state == StateAwait {
			return nil // the amount is set; Backspace to change it
		}
		if !amountAppend(m.input, byte(k)) {
			return nil
		}
		m.input += string(rune(k))
		m.state, m.amount, m.prompt = StateAmount, keyedCents(m.input), nil
	default:
		return nil
	}
	m.render()
	return nil
}

func isAmountKey(k device.Key) bool { return k >= '0' && k <= '9' || k == '.' }

// amountAppend reports whether c may follow s in a keyed yuan amount.
func amountAppend(s string, c byte) bool {
	if len(s) >= maxAmountKeys {
		return false
	}
	whole, frac, dot := strings.Cut(s, ".")
	switch {
	case c == '.':
		return !dot
	case dot:
		return len(frac) < 2
	default:
		return whole != "0" // no leading zeros
	}
}

// keyedCents is the amount shown while keying (0 while not valid yet).
func keyedCents(s string) int64 {
	c, err := protocol.ParseYuan(s)
	if err != nil {
		return 0
	}
	return c
}
