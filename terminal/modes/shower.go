package modes

import (
	"context"
	"fmt"
	"time"

	"campuspay/protocol"
	"campuspay/terminal/device"
	"campuspay/terminal/journal"
)

// shower: account number + Func + water password + Enter (or a card tap,
// then the water password) → the password is sealed to the authorizer →
// OpHold → Held (durable) → ValveOpen (durable, with the meter's start
// count) → valve opened → metering (values persisted as they change) →
// the valve closes on Stop, a card tap, idle or when the cost reaches the
// hold → Closing (durable, final values) → OpCapture → Captured with its
// journal entry. Once the valve is open the shower runs to its end
// whatever the link does; an uncaptured shower is settled by its entry.

const (
	maxAccountKeys  = 20
	maxPasswordKeys = 12
)

func (m *Machine) showerKey(ctx context.Context, k device.Key) error {
	switch m.state {
	case StateResult:
		m.home()
		if !(k >= '0' && k <= '9') {
			m.render()
			return nil
		}
	case StateShowering:
		if k == device.KeyStop || k == device.KeyCancel {
			return m.closeShower(ctx, "stop")
		}
		return nil
	case StateIdle, StatePassword:
	default:
		return nil
	}
	if !m.online {
		m.render() // a shower cannot start offline: the hold needs the authorizer
		return nil
	}
	digit := k >= '0' && k <= '9'
	switch {
	case k == device.KeyCancel:
		m.home()
	case k == device.KeyBackspace:
		if m.state == StatePassword {
			if len(m.secret) > 0 {
				m.secret[len(m.secret)-1] = 0
				m.secret = m.secret[:len(m.secret)-1]
			} else if m.card == "" {
				m.state = StateIdle
			}
		} else if m.input != "" {
			m.input = m.input[:len(m.input)-1]
		}
	case k == device.KeyFunc || k == device.KeyEnter && m.state == StateIdle:
		if m.state == StateIdle && m.input != "" {
			m.state = StatePassword
		}
	case k == device.KeyEnter:
		if len(m.secret) == 0 {
			return nil
		}
		return m.startShower(ctx)
	case digit && m.state == StateIdle:
		if len(m.input) < maxAccountKeys {
			m.input += string(rune(k))
		}
	case digit && m.state == StatePassword:
		if len(m.secret) < maxPasswordKeys {
			m.secret = append(m.secret, byte(k))
		}
	default:
		return nil
	}
	m.prompt = nil
	m.render()
	return nil
}

func (m *Machine) showerTap(ctx context.Context, t device.Tap) error {
	switch m.state {
	case StateShowering:
		return m.closeShower(ctx, "card")
	case StateResult:
		m.home()
	case StateIdle:
	default:
		return nil
	}
	if !m.online || m.cfg == nil {
		m.render()
		return nil
	}
	cred, err := m.check.Card(m.cfg, t.UID)
	if err != nil {
		m.refuse(err)
		return nil
	}
	m.card, m.input, m.state, m.prompt = cred.Text, "", StatePassword, nil
	m.render()
	return nil
}

func (m *Machine) wipeSecret() {
	for i := range m.secret {
		m.secret[i] = 0
	}
	m.secret = m.secret[:0]
}

func (m *Machine) startShower(ctx context.Context) error {
	if m.cfg == nil || m.cfg.Tariff == nil || m.cfg.Tariff.PulsesPerLitre <= 0 {
		m.wipeSecret()
		m.result(false, "无法使用淋浴", "Shower unavailable", protocol.ErrShowerNotEnabled, 0, 0)
		return nil
	}
	key, err := sealKey(m.cfg)
	if err != nil {
		m.wipeSecret()
		m.log.Error("shower", "err", err)
		m.result(false, "无法使用淋浴", "Shower unavailable", protocol.ErrInternal, 0, 0)
		return nil
	}
	cred := protocol.Credential{Kind: protocol.CredAccount, Text: m.input}
	if m.card != "" {
		cred = protocol.Credential{Kind: protocol.CredCard, Text: m.card}
	}
	t, err := m.newTx(journal.FlowShower, 0, cred.Kind)
	if err != nil {
		return err
	}
	if err := m.o.Journal.Create(ctx, t); err != nil {
		return err
	}
	sealed, err := protocol.SealSecret(key, t.ID, string(m.secret), m.o.Rand)
	m.wipeSecret()
	if err != nil {
		if err := m.o.Journal.Advance(ctx, t, journal.StateAbandoned); err != nil {
			return err
		}
		m.log.Error("seal", "err", err)
		m.result(false, "无法使用淋浴", "Shower unavailable", protocol.ErrInternal, 0, 0)
		return nil
	}
	if err := m.o.Journal.Advance(ctx, t, journal.StateHoldRequested); err != nil {
		return err
	}
	m.cur, m.state = t, StateAuthorising
	m.show(device.Screen{Kind: device.ScreenWorking, Title: "正在验证，请稍候", TitleEN: "Checking…"})
	resp, err := m.request(ctx, &protocol.Request{Op: protocol.OpHold, Tx: t.ID, Cred: &cred, Secret: sealed})
	if err != nil {
		return m.inDoubt(ctx, t)
	}
	switch resp.Status {
	case protocol.StatusHeld:
		t.Status, t.Hold = resp.Status, resp.Hold
		if t.Hold <= 0 {
			t.Hold = m.cfg.Tariff.Hold
		}
		if err := m.o.Journal.Advance(ctx, t, journal.StateHeld); err != nil {
			return err
		}
		return m.openValve(ctx, t)
	case protocol.StatusDeclined:
		t.Status, t.Code = resp.Status, resp.Code
		if err := m.finish(ctx, t, journal.StateDeclined, protocol.EntryShower); err != nil {
			return err
		}
		why := resp.Reason()
		if resp.MessageZH != "" {
			why = &protocol.Reason{Code: resp.Code, ZH: resp.MessageZH, EN: resp.MessageEN}
		}
		m.result(false, "无法使用淋浴", "Shower refused", why, 0, 0)
		return nil
	}
	m.log.Warn("unexpected hold status: reversing", "tx", t.ID, "status", resp.Status)
	return m.inDoubt(ctx, t)
}

// openValve makes ValveOpen (with the meter's start count) durable, then
// opens the valve.
func (m *Machine) openValve(ctx context.Context, t *journal.Tx) error {
	m.cur = t
	p0, err := m.o.Devices.Meter.Pulses()
	if err != nil {
		m.log.Error("flow meter before opening", "err", err)
		return m.settle(ctx, t, "meter")
	}
	t.Pulses0 = p0
	if err := m.o.Journal.Advance(ctx, t, journal.StateValveOpen); err != nil {
		return err
	}
	if err := m.o.Devices.Valve.Open(); err != nil {
		m.log.Error("valve open", "err", err)
		return m.closeShower(ctx, "valve")
	}
	now := m.o.Now()
	m.state, m.lastFlowAt, m.meterFails = StateShowering, now, 0
	m.meterAt = now.Add(m.o.MeterInterval)
	m.render()
	return nil
}

// meter reads the flow meter, persists changed values and closes the
// valve at the hold, after the idle timeout or after repeated read errors.
func (m *Machine) meter(ctx context.Context) error {
	t := m.cur
	now := m.o.Now()
	m.meterAt = now.Add(m.o.MeterInterval)
	p, err := m.o.Devices.Meter.Pulses()
	if err != nil {
		m.meterFails++
		m.log.Warn("flow meter", "err", err, "failures", m.meterFails)
		if m.meterFails >= meterFailLimit {
			return m.closeShower(ctx, "meter")
		}
		return nil
	}
	m.meterFails = 0
	if m.measure(t, p) {
		m.lastFlowAt = now
		if t.State == journal.StateValveOpen {
			err = m.o.Journal.Advance(ctx, t, journal.StateMetering)
		} else {
			err = m.o.Journal.Meter(ctx, t)
		}
		if err != nil {
			return err
		}
	}
	switch {
	case t.Cost >= t.Hold:
		return m.closeShower(ctx, "hold")
	case now.Sub(m.lastFlowAt) >= m.idleTimeout():
		return m.closeShower(ctx, "idle")
	}
	m.render()
	return nil
}

// measure updates t from counter p; it reports whether anything changed.
// The counter wraps at 2^32. A counter that goes backwards (the meter was
// reset, e.g. a power blip on the RS-485 bus) re-bases Pulses0 so that the
// water already metered is kept and only new pulses count: the charge
// never decreases, and a reset never looks like four billion pulses.
func (m *Machine) measure(t *journal.Tx, p uint32) bool {
	expected := t.Pulses0 + uint32(t.Pulses)
	if int32(p-expected) < 0 {
		t.Pulses0 = p - uint32(t.Pulses)
		return true // persist the new base
	}
	d := int64(p - t.Pulses0)
	if d <= t.Pulses {
		return false
	}
	tf := m.cfg.Tariff
	t.Pulses = d
	t.ML = d * 1000 / tf.PulsesPerLitre
	t.Cost = min(t.ML*tf.CentsPerLitre/1000, t.Hold)
	return true
}

func (m *Machine) idleTimeout() time.Duration {
	if m.cfg != nil && m.cfg.Tariff != nil && m.cfg.Tariff.IdleTimeoutS > 0 {
		return time.Duration(m.cfg.Tariff.IdleTimeoutS) * time.Second
	}
	return DefaultIdleTimeout
}

// closeShower closes the valve (halting it if the close fails), takes a
// last meter reading and settles.
func (m *Machine) closeShower(ctx context.Context, why string) error {
	t := m.cur
	if err := m.o.Devices.Valve.Close(); err != nil {
		m.log.Error("valve close failed: halting", "err", err)
		if herr := m.o.Devices.Valve.Halt(); herr != nil {
			m.log.Error("valve halt", "err", herr)
		}
	}
	if t.State == journal.StateValveOpen || t.State == journal.StateMetering {
		if p, err := m.o.Devices.Meter.Pulses(); err == nil {
			m.measure(t, p)
		}
	}
	m.log.Info("shower closing", "tx", t.ID, "why", why, "ml", t.ML, "cost", t.Cost)
	return m.settle(ctx, t, why)
}

// settle makes the final values durable (Closing), asks for the capture
// and writes the shower's journal entry, which captures it later if the
// request did not.
func (m *Machine) settle(ctx context.Context, t *journal.Tx, why string) error {
	t.Amount = min(t.Cost, t.Hold)
	if err := m.o.Journal.Advance(ctx, t, journal.StateClosing); err != nil {
		return err
	}
	t.Status, t.Code = protocol.StatusApproved, ""
	resp, err := m.request(ctx, &protocol.Request{Op: protocol.OpCapture, Tx: t.ID, Amount: t.Amount, ML: t.ML})
	if err == nil && resp.Status == protocol.StatusDeclined {
		t.Status, t.Code = resp.Status, resp.Code
	}
	if err := m.finish(ctx, t, journal.StateCaptured, protocol.EntryShower); err != nil {
		return err
	}
	note := &protocol.Reason{ZH: fmt.Sprintf("用水 %.1f 升", float64(t.ML)/1000), EN: fmt.Sprintf("%.1f litres", float64(t.ML)/1000)}
	if why == "valve" || why == "meter" {
		note = &protocol.Reason{ZH: "设备故障，已结束用水", EN: "Device fault: the shower was stopped"}
	}
	m.result(true, "淋浴结束", "Shower finished", note, t.Amount, 0)
	return nil
}
