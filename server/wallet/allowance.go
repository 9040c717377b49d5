package wallet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
)

// Offline allowances (issue 17, protocol README §8). While online, the app
// asks for an allowance for one of the student's devices; the authorizer
// places a hold on the wallet for it (so what is spent offline is
// pre-funded from the balance) and re-issues the device certificate
// (version 2) with the allowance inside. Terminals that cannot reach the
// authorizer accept codes under it within its amount per terminal, journal
// them, and upload them on reconnection; settlement (offline.go) captures
// each against the allowance's hold, then the balance, then the bound card,
// and records a debt for what none covers.

// OfflineConfig is the operator's choice about offline payments.
type OfflineConfig struct {
	Disabled   bool          // the off switch: no allowances, no offline policy in configs
	Max        int64         // cents; the campus maximum of an allowance (default ¥30)
	Default    int64         // cents; what the app offers (default Max)
	Validity   time.Duration // how long an allowance is valid (default 24 h)
	MaxPerHour int           // velocity cap: payments per allowance per terminal per hour (default 3)
	// MaxIssued: at most this many allowances per student whose validity
	// has not ended (default 3), released and replaced ones included. It
	// bounds the risk: a released allowance's certificate stays valid on
	// terminals that have not had the new revocation list.
	MaxIssued int
	// ExcludeMerchants: merchants whose terminals accept no offline codes.
	ExcludeMerchants []string
}

func (c OfflineConfig) withDefaults() OfflineConfig {
	if c.Max <= 0 {
		c.Max = 30_00
	}
	if c.Default <= 0 || c.Default > c.Max {
		c.Default = c.Max
	}
	if c.Validity <= 0 {
		c.Validity = 24 * time.Hour
	}
	if c.MaxPerHour <= 0 {
		c.MaxPerHour = 3
	}
	if c.MaxIssued <= 0 {
		c.MaxIssued = 3
	}
	return c
}

// AllowanceState is persisted: the numbers are explicit.
type AllowanceState int

const (
	AllowanceActive   AllowanceState = 1
	AllowanceReleased AllowanceState = 2 // turned off: hold released, id revoked in terminal configs
	AllowanceReplaced AllowanceState = 3 // a newer allowance replaced it (released the same way)
)

func (s AllowanceState) String() string {
	switch s {
	case AllowanceActive:
		return "active"
	case AllowanceReleased:
		return "released"
	case AllowanceReplaced:
		return "replaced"
	}
	return "unknown"
}

// Allowance is one offline allowance of a device.
type Allowance struct {
	ID         uint32 // store-assigned; carried in the certificate
	UserID     uint32
	DeviceID   uint32
	Amount     int64 // cents
	ValidUntil time.Time
	State      AllowanceState
	Created    time.Time
	Updated    time.Time
}

// AllowanceStore keeps the allowances (part of Store).
type AllowanceStore interface {
	// PutAllowance inserts a (assigning a.ID) when a.ID is 0, else
	// updates its state and time.
	PutAllowance(ctx context.Context, a *Allowance) error
	// Allowance returns one allowance, or protocol.ErrNotFound.
	Allowance(ctx context.Context, id uint32) (*Allowance, error)
	// Allowances lists user's allowances valid until after the given
	// time, newest first.
	Allowances(ctx context.Context, user uint32, after time.Time) ([]Allowance, error)
	// RevokedAllowances lists the allowances released or replaced whose
	// validity has not ended at now, ascending.
	RevokedAllowances(ctx context.Context, now time.Time) ([]uint32, error)
}

// KindOffline is the record kind of a code payment accepted offline and
// settled from the terminal's journal.
const KindOffline = "offline"

// ChannelDebt is the channel of an offline payment nothing covered in
// full: the uncovered part is a debt the student repays (RepayDebt).
const ChannelDebt = "debt"

// debtAccount is the ledger account of what a student owes for offline
// payments: negative while a debt is outstanding. Not a wallet, so it may
// go below zero; the merchant is paid from it in full.
func debtAccount(id uint32) ledger.AccountID { return ledger.AccountID(fmt.Sprintf("debt:%d", id)) }

func allowanceHoldKey(id uint32, n int) string { return fmt.Sprintf("allowance:%d:%d", id, n) }

// OfflineView is what the app shows about offline payments.
type OfflineView struct {
	Enabled   bool           `json:"enabled"`
	Max       int64          `json:"max"`
	Default   int64          `json:"default"`
	Allowance *AllowanceView `json:"allowance,omitempty"`
	Debt      int64          `json:"debt"` // cents owed
}

// AllowanceView is the student's active allowance.
type AllowanceView struct {
	ID         uint32    `json:"id"`
	DeviceID   uint32    `json:"device_id"`
	Amount     int64     `json:"amount"`
	Held       int64     `json:"held"` // what its hold still reserves
	ValidUntil time.Time `json:"valid_until"`
}

// OfflineStatus returns the student's allowance, its hold and any debt.
func (s *Service) OfflineStatus(ctx context.Context, id uint32) (*OfflineView, error) {
	defer s.lockUser(id)()
	return s.offlineView(ctx, id)
}

// offlineView is OfflineStatus for a caller holding the user lock.
func (s *Service) offlineView(ctx context.Context, id uint32) (*OfflineView, error) {
	if _, err := s.st.User(ctx, id); err != nil {
		return nil, err
	}
	c := s.offline()
	v := &OfflineView{Enabled: !c.Disabled, Max: c.Max, Default: c.Default}
	debt, err := s.debt(ctx, id)
	if err != nil {
		return nil, err
	}
	v.Debt = debt
	a, err := s.activeAllowance(ctx, id)
	if err != nil || a == nil {
		return v, err
	}
	_, hi, err := s.allowanceHold(ctx, a)
	if err != nil {
		return nil, err
	}
	v.Allowance = &AllowanceView{ID: a.ID, DeviceID: a.DeviceID, Amount: a.Amount, Held: hi.Amount, ValidUntil: a.ValidUntil}
	return v, nil
}

// AllowanceGrant is the answer to a new allowance: the view and the
// device's re-issued certificate carrying it.
type AllowanceGrant struct {
	*OfflineView
	Certificate []byte `json:"certificate"`
	Expires     int64  `json:"expires"` // the certificate's, Unix seconds
}

// RequestAllowance places a hold of amount cents on the wallet and
// returns the device's certificate re-issued with the allowance. An
// active allowance of the student's is replaced (its hold released).
func (s *Service) RequestAllowance(ctx context.Context, id, device uint32, amount int64) (*AllowanceGrant, error) {
	c := s.offline()
	if c.Disabled {
		return nil, protocol.ErrOfflineDisabled
	}
	if amount <= 0 || amount > c.Max {
		return nil, protocol.ErrOfflineAmount
	}
	defer s.lockUser(id)()
	u, err := s.st.User(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := active(u); err != nil {
		return nil, err
	}
	d, err := s.st.Device(ctx, device)
	now := s.now()
	switch {
	case errors.Is(err, protocol.ErrNotFound), err == nil && d.UserID != id:
		return nil, protocol.ErrOfflineNoDevice
	case err != nil:
		return nil, err
	case d.Revoked || !now.Before(d.Expires):
		return nil, protocol.ErrDeviceRevoked
	}
	if debt, err := s.debt(ctx, id); err != nil {
		return nil, err
	} else if debt > 0 {
		return nil, protocol.ErrOfflineDebt
	}
	list, err := s.st.Allowances(ctx, id, now)
	if err != nil {
		return nil, fmt.Errorf("wallet: allowances of %d: %w", id, err)
	}
	if len(list) >= c.MaxIssued {
		return nil, protocol.ErrOfflineLimit
	}
	b, err := s.led.Balance(ctx, walletAccount(id))
	if err != nil {
		return nil, fmt.Errorf("wallet: balance of %d: %w", id, err)
	}
	var replaced bool
	for i := range list {
		if list[i].State == AllowanceActive {
			if err := s.endAllowance(ctx, &list[i], AllowanceReplaced); err != nil {
				return nil, err
			}
			replaced = true
		}
	}
	if replaced {
		if b, err = s.led.Balance(ctx, walletAccount(id)); err != nil {
			return nil, fmt.Errorf("wallet: balance of %d: %w", id, err)
		}
	}
	if b.Available < amount {
		if replaced {
			s.changed(ctx, nil) // the replaced one's id is revoked
		}
		return nil, protocol.ErrBalanceLow
	}
	a := &Allowance{UserID: id, DeviceID: device, Amount: amount, ValidUntil: now.Add(c.Validity).Truncate(time.Second),
		State: AllowanceActive, Created: now, Updated: now}
	if err := s.st.PutAllowance(ctx, a); err != nil {
		return nil, fmt.Errorf("wallet: put allowance: %w", err)
	}
	_, err = s.led.PlaceHold(ctx, ledger.Hold{Key: allowanceHoldKey(a.ID, 1), Account: walletAccount(id), Amount: amount,
		Expires: a.ValidUntil.Add(s.cfg.HoldTTL), Memo: fmt.Sprintf("offline allowance %d device %d", a.ID, device), At: now})
	if err != nil {
		// No certificate was issued for it: ending it costs nothing.
		if perr := s.endAllowance(ctx, a, AllowanceReleased); perr != nil {
			return nil, perr
		}
		if errors.Is(err, ledger.ErrInsufficient) {
			return nil, protocol.ErrBalanceLow
		}
		return nil, fmt.Errorf("wallet: allowance hold: %w", err)
	}
	cert, err := protocol.IssueCertificate(protocol.Certificate{KeyID: s.keys.IssuerID, UserID: id, DeviceID: device,
		DeviceKey: d.Key, Expires: d.Expires, Allowance: &protocol.Allowance{ID: a.ID, Amount: amount, ValidUntil: a.ValidUntil, Offline: true}}, s.keys.Issuer)
	if err != nil {
		return nil, fmt.Errorf("wallet: issue certificate: %w", err)
	}
	if replaced {
		if err := s.changed(ctx, nil); err != nil {
			return nil, err
		}
	}
	v, err := s.offlineView(ctx, id)
	if err != nil {
		return nil, err
	}
	return &AllowanceGrant{OfflineView: v, Certificate: cert, Expires: d.Expires.Unix()}, nil
}

// ReleaseAllowance turns the student's allowance off: its hold is
// released and its id goes into every terminal's revocation list until
// its validity ends. It returns the device's certificate re-issued without
// an allowance (nil when there was none).
func (s *Service) ReleaseAllowance(ctx context.Context, id uint32) (*AllowanceGrant, error) {
	defer s.lockUser(id)()
	a, err := s.activeAllowance(ctx, id)
	if err != nil {
		return nil, err
	}
	g := &AllowanceGrant{}
	if a != nil {
		if err := s.endAllowance(ctx, a, AllowanceReleased); err != nil {
			return nil, err
		}
		if d, err := s.st.Device(ctx, a.DeviceID); err == nil {
			if g.Certificate, err = protocol.IssueCertificate(protocol.Certificate{KeyID: s.keys.IssuerID, UserID: id, DeviceID: d.ID,
				DeviceKey: d.Key, Expires: d.Expires}, s.keys.Issuer); err != nil {
				return nil, fmt.Errorf("wallet: issue certificate: %w", err)
			}
			g.Expires = d.Expires.Unix()
		}
		if err := s.changed(ctx, nil); err != nil {
			return nil, err
		}
	}
	if g.OfflineView, err = s.offlineView(ctx, id); err != nil {
		return nil, err
	}
	return g, nil
}

// endAllowance releases a's hold and records its new state. The caller
// holds the user lock.
func (s *Service) endAllowance(ctx context.Context, a *Allowance, st AllowanceState) error {
	a.State, a.Updated = st, s.now()
	if err := s.st.PutAllowance(ctx, a); err != nil {
		return fmt.Errorf("wallet: end allowance %d: %w", a.ID, err)
	}
	key, _, err := s.allowanceHold(ctx, a)
	if err != nil || key == "" {
		return err
	}
	if _, err := s.led.VoidHold(ctx, key, s.now()); err != nil && !errors.Is(err, ledger.ErrHoldClosed) {
		return fmt.Errorf("wallet: release allowance %d: %w", a.ID, err)
	}
	return nil
}

// activeAllowance returns the student's active allowance still valid, or nil.
func (s *Service) activeAllowance(ctx context.Context, id uint32) (*Allowance, error) {
	list, err := s.st.Allowances(ctx, id, s.now())
	if err != nil {
		return nil, fmt.Errorf("wallet: allowances of %d: %w", id, err)
	}
	for i := range list {
		if list[i].State == AllowanceActive {
			return &list[i], nil
		}
	}
	return nil, nil
}

// allowanceHold returns the active hold of a's chain ("" when none). An
// allowance's hold is captured once per offline payment, which releases
// the rest (ledger holds capture once), so each capture is followed by a
// hold of the remainder under the next number. A crash between the two
// is repaired here: a captured link without its successor gets it (while
// the allowance is active and the wallet has the money; less if it has
// less). The caller holds the user lock.
func (s *Service) allowanceHold(ctx context.Context, a *Allowance) (string, ledger.HoldInfo, error) {
	for n := 1; ; n++ {
		key := allowanceHoldKey(a.ID, n)
		hi, err := s.led.GetHold(ctx, key)
		if errors.Is(err, ledger.ErrHoldNotFound) {
			return "", ledger.HoldInfo{}, nil
		} else if err != nil {
			return "", ledger.HoldInfo{}, fmt.Errorf("wallet: allowance hold %s: %w", key, err)
		}
		switch hi.State {
		case ledger.HoldActive:
			return key, hi, nil
		case ledger.HoldCaptured:
		default: // voided or expired: the chain ends
			return "", ledger.HoldInfo{}, nil
		}
		rest := hi.Amount - hi.Captured
		next := allowanceHoldKey(a.ID, n+1)
		if _, err := s.led.GetHold(ctx, next); err == nil {
			continue
		} else if !errors.Is(err, ledger.ErrHoldNotFound) {
			return "", ledger.HoldInfo{}, fmt.Errorf("wallet: allowance hold %s: %w", next, err)
		}
		if rest <= 0 || a.State != AllowanceActive {
			return "", ledger.HoldInfo{}, nil
		}
		b, err := s.led.Balance(ctx, walletAccount(a.UserID))
		if err != nil {
			return "", ledger.HoldInfo{}, fmt.Errorf("wallet: balance: %w", err)
		}
		if rest = min(rest, b.Available); rest <= 0 {
			return "", ledger.HoldInfo{}, nil
		}
		now := s.now()
		_, err = s.led.PlaceHold(ctx, ledger.Hold{Key: next, Account: walletAccount(a.UserID), Amount: rest,
			Expires: hi.Expires, Memo: fmt.Sprintf("offline allowance %d remainder", a.ID), At: now})
		if err != nil && !errors.Is(err, ledger.ErrInsufficient) {
			return "", ledger.HoldInfo{}, fmt.Errorf("wallet: allowance hold %s: %w", next, err)
		} else if err != nil {
			return "", ledger.HoldInfo{}, nil
		}
	}
}

// offlinePolicy is the offline part of a terminal's config: none when
// offline payments are off, for showers and for excluded merchants.
func (s *Service) offlinePolicy(ctx context.Context, t *Terminal, now time.Time) (*protocol.OfflinePolicy, error) {
	c := s.offline()
	if c.Disabled || t.Mode == protocol.ModeShower {
		return nil, nil
	}
	for _, m := range c.ExcludeMerchants {
		if m == t.Merchant {
			return nil, nil
		}
	}
	revoked, err := s.st.RevokedAllowances(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("wallet: revoked allowances: %w", err)
	}
	return &protocol.OfflinePolicy{MaxPerHour: c.MaxPerHour, RevokedAllowances: revoked}, nil
}

func (s *Service) offline() OfflineConfig { return s.cfg.Offline.withDefaults() }
