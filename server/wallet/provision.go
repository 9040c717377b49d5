package wallet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"

	"campuspay/protocol"
)

// Load-test provisioning: `authorizer provision` sets up thousands of
// synthetic students in seconds for `hwsim load`. Each student goes through
// the same rules as a real one — roster validation, a card binding the
// bank confirms (which activates the wallet), a device registration with a
// certificate signed by the issuer key, a top-up debited from the card and
// posted to the ledger — so the ledger check holds and the money path
// under load is the production one. Only one thing is cut short: every
// load student shares one app login password, hashed once (HashPassword)
// instead of one bcrypt per student, which alone would take minutes.

// LoadStudent is one synthetic student for a load test.
type LoadStudent struct {
	Roster     RosterEntry       // Password is ignored: the login hash is shared
	Card       BindRequest       // the card to bind; the bank confirms it as in BindCard
	TopUp      int64             // cents moved from the card into the wallet (0: none)
	LimitPerTx int64             // cents; 0 keeps the configured default
	LimitDaily int64             // cents; 0 keeps the configured default
	DeviceKey  ed25519.PublicKey // the phone's device key to certify
}

// ProvisionedStudent is what ProvisionStudent set up.
type ProvisionedStudent struct {
	UserID uint32
	Device *DeviceCert
}

// HashPassword hashes a login password at the configured bcrypt cost, once
// for all the load students that share it.
func (s *Service) HashPassword(password string) (string, error) {
	if password == "" || len(password) > 72 {
		return "", fmt.Errorf("login password: %w", protocol.ErrPasswordWeak)
	}
	return s.hash(password)
}

// ProvisionStudent imports st (validated as ImportStudent does) with the
// shared loginHash, binds its card (activating the wallet), sets its
// limits, tops it up under the idempotency key "provision" and registers
// its device. Running it again for the same student registers a new
// device and moves no more money. It is safe to call concurrently for
// different students: the stores group their commits.
func (s *Service) ProvisionStudent(ctx context.Context, st LoadStudent, loginHash string) (*ProvisionedStudent, error) {
	e := st.Roster
	e.StudentNo, e.Name = strings.TrimSpace(e.StudentNo), strings.TrimSpace(e.Name)
	switch {
	case !validStudentNo(e.StudentNo):
		return nil, fmt.Errorf("student number %q: %w", e.StudentNo, protocol.ErrBadRequest)
	case e.Name == "" || len(e.Name) > 64:
		return nil, fmt.Errorf("name %q: %w", e.Name, protocol.ErrBadRequest)
	case !ValidIDNumber(e.IDNumber):
		return nil, protocol.ErrIDNumberInvalid
	case !ValidPhone(e.Phone):
		return nil, protocol.ErrPhoneInvalid
	case loginHash == "":
		return nil, fmt.Errorf("login hash: %w", protocol.ErrPasswordWeak)
	}
	if _, ok := s.cfg.Campuses[e.Campus]; !ok {
		return nil, fmt.Errorf("campus %q is not configured: %w", e.Campus, protocol.ErrBadRequest)
	}
	uid := ""
	if e.CardUID != "" {
		var ok bool
		if uid, ok = NormalizeCardUID(e.CardUID); !ok {
			return nil, fmt.Errorf("card UID %q: %w", e.CardUID, protocol.ErrBadRequest)
		}
	}
	perTx, daily := st.LimitPerTx, st.LimitDaily
	if perTx == 0 {
		perTx = s.cfg.DefaultLimitPerTx
	}
	if daily == 0 {
		daily = s.cfg.DefaultLimitDaily
	}
	u := &User{StudentNo: e.StudentNo, Name: e.Name, IDNumber: e.IDNumber, Phone: e.Phone, Category: e.Category,
		Campus: e.Campus, CardUID: uid, State: StateInactive, LoginHash: loginHash, LimitPerTx: perTx, LimitDaily: daily}
	if _, err := s.st.UpsertRosterUser(ctx, u); err != nil {
		return nil, fmt.Errorf("wallet: provision %s: %w", e.StudentNo, err)
	}
	if u.LimitPerTx != perTx || u.LimitDaily != daily { // an existing user: limits are kept by the upsert
		if err := s.SetLimits(ctx, u.ID, perTx, daily); err != nil {
			return nil, fmt.Errorf("wallet: provision %s: limits: %w", e.StudentNo, err)
		}
	}
	if u.State == StateInactive {
		if err := s.BindCard(ctx, u.ID, st.Card); err != nil {
			return nil, fmt.Errorf("wallet: provision %s: bind card: %w", e.StudentNo, err)
		}
	}
	if st.TopUp > 0 {
		if _, err := s.TopUp(ctx, u.ID, "provision", st.TopUp); err != nil {
			return nil, fmt.Errorf("wallet: provision %s: top-up: %w", e.StudentNo, err)
		}
	}
	dc, err := s.RegisterDevice(ctx, u.ID, st.DeviceKey)
	if err != nil {
		return nil, fmt.Errorf("wallet: provision %s: device: %w", e.StudentNo, err)
	}
	return &ProvisionedStudent{UserID: u.ID, Device: dc}, nil
}
