package modes

import (
	"context"
	"errors"
	"fmt"

	"campuspay/protocol"
	"campuspay/terminal/journal"
)

// Recover resolves what a previous run left unfinished. Call it once,
// before Run:
//
//   - the shower valve is closed first, whatever the journal says (and
//     halted if closing fails, which leaves the machine in StateFault);
//   - Created (never sent) → Abandoned;
//   - Sent, HoldRequested, InDoubt, Reversing → reversed by ID (OpReverse,
//     retried until acknowledged; nothing else is offered meanwhile);
//   - Pending (USERPAYING) → queried, then reversed unless declined: the
//     cashier never saw an approval, so the sale did not happen;
//   - Held, ValveOpen, Metering, Closing → settled from the last durable
//     meter values: Closing then Captured with a shower entry, which
//     captures the hold when it reaches the authorizer.
//
// Unacknowledged journal entries need nothing here: the link's pump
// uploads every pending entry when it connects.
func (m *Machine) Recover(ctx context.Context) error {
	if v := m.o.Devices.Valve; v != nil {
		if err := m.safeValve(); err != nil {
			m.fault(err)
			return err
		}
	}
	txs, err := m.o.Journal.Unfinished(ctx)
	if err != nil {
		m.fault(err)
		return err
	}
	for _, t := range txs {
		m.log.Info("recovering", "tx", t.ID, "state", t.State.String())
		if err := m.recoverTx(ctx, t); err != nil {
			m.fault(err)
			return err
		}
	}
	if len(m.reversal) > 0 {
		m.revWhy = protocol.ErrTimeout
		m.retryAt = m.o.Now()
		m.state = StateReversing
	}
	m.render()
	m.publish()
	return nil
}

func (m *Machine) recoverTx(ctx context.Context, t *journal.Tx) error {
	switch t.State {
	case journal.StateCreated:
		return m.o.Journal.Advance(ctx, t, journal.StateAbandoned)
	case journal.StateSent, journal.StateHoldRequested:
		if err := m.o.Journal.Advance(ctx, t, journal.StateInDoubt); err != nil {
			return err
		}
		m.reversal = append(m.reversal, t)
	case journal.StateInDoubt, journal.StateReversing:
		m.reversal = append(m.reversal, t)
	case journal.StatePending:
		m.queryTx[t.ID] = true
		m.reversal = append(m.reversal, t)
	case journal.StateHeld, journal.StateValveOpen, journal.StateMetering, journal.StateClosing:
		if t.State != journal.StateClosing {
			t.Amount = min(t.Cost, t.Hold)
			if err := m.o.Journal.Advance(ctx, t, journal.StateClosing); err != nil {
				return err
			}
		}
		t.Status, t.Code = protocol.StatusApproved, ""
		return m.finish(ctx, t, journal.StateCaptured, protocol.EntryShower)
	default:
		return fmt.Errorf("modes: recover %s: unexpected state %v", t.ID, t.State)
	}
	return nil
}

// safeValve closes the valve and checks it closed; failing that it halts
// it (which refuses later opens).
func (m *Machine) safeValve() error {
	v := m.o.Devices.Valve
	err := v.Close()
	if err == nil {
		var open bool
		open, err = v.IsOpen()
		if err == nil && open {
			err = errors.New("valve reports open after close")
		}
	}
	if err == nil {
		return nil
	}
	m.log.Error("valve did not close at start-up: halting", "err", err)
	if herr := v.Halt(); herr != nil {
		return fmt.Errorf("modes: valve cannot be closed: %w", herr)
	}
	return fmt.Errorf("modes: valve halted at start-up: %w", err)
}
