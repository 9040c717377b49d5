package protocol

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Offline payment codes (issue 17). While the phone is online the
// authorizer places a hold on the wallet for an allowance and re-issues
// the device certificate (version 2) with the allowance inside it, signed
// by the issuer: a terminal that cannot reach the authorizer verifies a
// code made under that certificate with the issuer keys of its retained
// config and accepts it while the allowance's spend at this terminal stays
// within the amount (and within the velocity cap). The terminal journals
// the code; the authorizer settles it on upload (README §8).

// AllowanceOffline is the flag bit of an allowance that may be spent
// offline. The other bits are reserved and must be zero.
const AllowanceOffline byte = 0x01

// Allowance is the offline allowance a version 2 certificate carries.
type Allowance struct {
	ID         uint32    // assigned by the authorizer; revocation is by ID
	Amount     int64     // cents; at most this much may be spent per terminal
	ValidUntil time.Time // second precision; not valid at or after it
	Offline    bool      // flag bit 0: may be spent offline
}

func (a *Allowance) check() error {
	vu := a.ValidUntil.Unix()
	switch {
	case a.ID == 0:
		return fmt.Errorf("allowance id 0")
	case !ValidAmount(a.Amount):
		return fmt.Errorf("allowance amount %d", a.Amount)
	case vu <= 0 || vu > 0xFFFFFFFF:
		return fmt.Errorf("allowance valid until %v out of range", a.ValidUntil)
	}
	return nil
}

// put writes the 13 bytes of the allowance.
func (a *Allowance) put(b []byte) {
	binary.BigEndian.PutUint32(b[0:], a.ID)
	binary.BigEndian.PutUint32(b[4:], uint32(a.Amount))
	binary.BigEndian.PutUint32(b[8:], uint32(a.ValidUntil.Unix()))
	if a.Offline {
		b[12] = AllowanceOffline
	}
}

func parseAllowance(b []byte) (*Allowance, error) {
	a := &Allowance{
		ID:         binary.BigEndian.Uint32(b[0:]),
		Amount:     int64(binary.BigEndian.Uint32(b[4:])),
		ValidUntil: time.Unix(int64(binary.BigEndian.Uint32(b[8:])), 0).UTC(),
		Offline:    b[12]&AllowanceOffline != 0,
	}
	if b[12]&^AllowanceOffline != 0 || a.check() != nil {
		return nil, ErrCodeMalformed
	}
	return a, nil
}

// OfflinePolicy is what a terminal's retained config says about offline
// codes. A config without one (offline payments off on the campus, a
// shower, a merchant the campus excludes) accepts none.
type OfflinePolicy struct {
	// MaxPerHour caps the payments one allowance may make at one terminal
	// in any hour (the velocity cap).
	MaxPerHour int `json:"max_per_hour"`
	// RevokedAllowances are allowances turned off before their end.
	RevokedAllowances []uint32 `json:"revoked_allowances,omitempty"`
}

// Validate checks a policy from a config.
func (p *OfflinePolicy) Validate() error {
	if p.MaxPerHour <= 0 || p.MaxPerHour > 1000 {
		return fmt.Errorf("offline: max_per_hour %d", p.MaxPerHour)
	}
	return nil
}

// OfflineSpend is what a terminal already accepted offline under one
// allowance: the cents in all and the payments within the last hour.
type OfflineSpend struct {
	Total    int64
	LastHour int
}

// CheckOffline decides whether a verified pay code (Code.Verify passed at
// now, on the terminal's corrected clock) may pay amount offline at a
// terminal under policy p, given the devices the config revokes and what
// the terminal already accepted under the code's allowance. The order of
// the checks, each its own reason, is pinned by the tests:
//
//	no policy                               ErrOffline
//	revoked device                          ErrDeviceRevoked
//	no allowance, or its offline flag clear ErrOfflineNotAllowed
//	allowance revoked                       ErrOfflineRevoked
//	now ≥ valid until                       ErrOfflineExpired
//	spend + amount > allowance amount       ErrOfflineExceeded
//	payments in the last hour ≥ cap         ErrOfflineVelocity
func CheckOffline(c *Code, p *OfflinePolicy, revokedDevices []uint32, now time.Time, amount int64, spent OfflineSpend) error {
	a := c.Cert.Allowance
	switch {
	case p == nil:
		return ErrOffline
	case slices.Contains(revokedDevices, c.Cert.DeviceID):
		return ErrDeviceRevoked
	case a == nil || !a.Offline:
		return ErrOfflineNotAllowed
	case slices.Contains(p.RevokedAllowances, a.ID):
		return ErrOfflineRevoked
	case !now.Before(a.ValidUntil):
		return ErrOfflineExpired
	case !ValidAmount(amount) || spent.Total+amount > a.Amount:
		return ErrOfflineExceeded
	case spent.LastHour >= p.MaxPerHour:
		return ErrOfflineVelocity
	}
	return nil
}
