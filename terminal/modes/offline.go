package modes

import (
	"context"
	"errors"
	"strings"

	"campuspay/protocol"
	"campuspay/terminal/journal"
	"campuspay/terminal/precheck"
)

// Offline payment codes (issue 17, protocol README §8). When the box
// cannot reach the authorizer, a POS still takes a campus payment code
// whose certificate carries an offline allowance: verified with the issuer
// keys and revocation lists of the retained config on the corrected clock,
// accepted while the allowance's spend at this terminal stays within its
// amount and its payments here within the config's hourly cap, journalled
// (with the code) before the display says so, and uploaded for settlement
// when the link returns. Anything else scanned offline is refused with its
// reason; the static merchant QR stays on the display.
//
// The clock: the corrected clock is trusted only once a server time was
// observed since this process started (a live config or a response). A
// box that boots (or restarts its daemon) while offline has no trusted
// time — without a battery clock its wall clock may be anywhere — and
// refuses offline codes with OFFLINE_NO_CLOCK until the link returns.

// offlineReady reports whether an offline code can be taken now.
func (m *Machine) offlineReady() bool {
	return m.o.Mode == protocol.ModePOS && m.state == StateAwait && !m.online && len(m.reversal) == 0 &&
		m.cfg != nil && m.cfg.Offline != nil
}

// offlineNote is what the result screen says of an offline payment.
var offlineNote = &protocol.Reason{ZH: "离线支付", EN: "offline"}

// payOffline takes a scanned text offline.
func (m *Machine) payOffline(ctx context.Context, text string) error {
	s := strings.TrimSpace(text)
	if k := protocol.Classify(s); k != protocol.KindPayCode {
		if k == protocol.KindIdentity {
			m.refuse(protocol.ErrIdentityCode)
		} else {
			m.refuse(protocol.ErrOfflineNotAllowed)
		}
		return nil
	}
	if !m.clockSet {
		m.refuse(protocol.ErrOfflineNoClock)
		return nil
	}
	keys, err := precheck.IssuerKeys(m.cfg)
	if err != nil {
		m.refuse(protocol.ErrCodeUnknownIssuer)
		return nil
	}
	now := m.clock.Now()
	code, err := protocol.VerifyCode(s, keys, now, protocol.PurposePay)
	if err != nil {
		m.refuse(err)
		return nil
	}
	a := code.Cert.Allowance
	t, err := m.newTx(journal.FlowPay, m.amount, protocol.CredCode)
	if err != nil {
		return err
	}
	check := func(spent protocol.OfflineSpend) error {
		return protocol.CheckOffline(code, m.cfg.Offline, m.cfg.RevokedDevices, now, m.amount, spent)
	}
	// The cheap refusals first, before the code is marked seen.
	if a == nil {
		return m.offlineRefused(check(protocol.OfflineSpend{}))
	}
	spent, err := m.o.Journal.OfflineSpend(ctx, a.ID, now)
	if err != nil {
		return err
	}
	if err := check(spent); err != nil {
		return m.offlineRefused(err)
	}
	fresh, err := m.o.Journal.SeeCode(ctx, code.ID(), code.Time.Add(protocol.CodeValidity+2*protocol.MaxClockSkew))
	if err != nil {
		return err
	}
	if !fresh {
		return m.offlineRefused(protocol.ErrCodeUsed)
	}
	err = m.o.Journal.AcceptOffline(ctx, t, journal.Offline{Allowance: a.ID, Device: code.Cert.DeviceID, Code: s, At: now}, check)
	var r *protocol.Reason
	if errors.As(err, &r) {
		return m.offlineRefused(r)
	} else if err != nil {
		return err
	}
	m.o.Link.Kick()
	m.log.Info("accepted offline", "tx", t.ID, "amount", t.Amount, "allowance", a.ID, "device", code.Cert.DeviceID, "entry", t.EntrySeq)
	m.result(true, "支付成功", "Paid", offlineNote, t.Amount, 0)
	return nil
}

func (m *Machine) offlineRefused(err error) error {
	m.refuse(err)
	return nil
}
