package wallet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"campuspay/protocol"
)

// The card centre's operations on a student's wallet (the back office,
// server/console). Each reports whether it changed anything, so that a
// repeated request (a double click) changes nothing and says so.

// SetFrozen freezes (or unfreezes) the user's wallet: a frozen wallet
// starts no payment, hold, top-up, withdrawal or cancellation, by any
// channel (WALLET_FROZEN); what was under way before finishes.
func (s *Service) SetFrozen(ctx context.Context, id uint32, frozen bool) (changed bool, err error) {
	defer s.lockUser(id)() // a payment deciding now either sees the freeze or finished before it
	u, err := s.st.User(ctx, id)
	if err != nil {
		return false, err
	}
	if u.Frozen == frozen {
		return false, nil
	}
	if err := s.st.SetFrozen(ctx, id, frozen); err != nil {
		return false, fmt.Errorf("wallet: freeze %d: %w", id, err)
	}
	return true, nil
}

// UndoCardLost (解挂) takes the user's current card off the lost list:
// terminals accept it again from their next config.
func (s *Service) UndoCardLost(ctx context.Context, id uint32) (changed bool, err error) {
	err = s.ReportCardFound(ctx, id)
	if errors.Is(err, protocol.ErrCardNotLost) {
		return false, nil // already found: a repeat changes nothing
	}
	return err == nil, err
}

// ReportLost is ReportCardLost reporting whether the card was newly lost.
func (s *Service) ReportLost(ctx context.Context, id uint32) (changed bool, err error) {
	_, lost, err := s.cardLost(ctx, id)
	if err != nil || lost {
		return false, err
	}
	return true, s.ReportCardLost(ctx, id)
}

// ReplaceCard gives the user a new campus card: the old one (if any) is
// put on the lost list, so every terminal refuses it from its next config,
// and the new UID is bound. Replacing with the card already bound changes
// nothing.
func (s *Service) ReplaceCard(ctx context.Context, id uint32, newUID string) (oldUID string, changed bool, err error) {
	uid, ok := NormalizeCardUID(newUID)
	if !ok {
		return "", false, protocol.ErrCardUIDInvalid
	}
	if other, err := s.st.UserByCard(ctx, uid); err == nil && other.ID != id {
		return "", false, fmt.Errorf("card %s is registered to %s: %w", uid, other.StudentNo, protocol.ErrRosterCardTaken)
	} else if err != nil && !errors.Is(err, protocol.ErrCardUnknown) {
		return "", false, err
	}
	if lost, err := s.st.CardLost(ctx, uid); err != nil {
		return "", false, err
	} else if lost {
		return "", false, fmt.Errorf("card %s was reported lost: %w", uid, protocol.ErrCardLost)
	}
	err = s.updateUser(ctx, id, func(u *User) error {
		oldUID = u.CardUID
		if u.CardUID == uid {
			return errUnchanged
		}
		if u.CardUID != "" {
			if err := s.st.ReportCardLost(ctx, u.CardUID, id, s.now()); err != nil {
				return fmt.Errorf("wallet: old card lost: %w", err)
			}
		}
		u.CardUID = uid
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return oldUID, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return oldUID, true, s.changed(ctx, nil)
}

// errUnchanged stops an updateUser that has nothing to write.
var errUnchanged = errors.New("unchanged")

// Password kinds ResetPassword resets.
const (
	PasswordLogin   = "login"
	PasswordPayment = "payment"
	PasswordWater   = "water"
)

// TempPasswordDigits is the length of a temporary login password.
const TempPasswordDigits = 8

// ResetPasswordAtDesk resets one of the user's passwords after the desk checked
// their identity. The payment or water password is cleared (and its lock
// lifted): the student sets a new one in the app, which asks for no old
// one when none is set. The login password is replaced by a temporary one,
// returned to be handed to the student, who logs in with it and changes it
// (each reset makes a new one; a cleared password changes nothing twice).
func (s *Service) ResetPasswordAtDesk(ctx context.Context, id uint32, which string) (temp string, changed bool, err error) {
	switch which {
	case PasswordLogin:
		var b [TempPasswordDigits]byte
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			return "", false, fmt.Errorf("wallet: random: %w", err)
		}
		for i := range b {
			b[i] = '0' + b[i]%10
		}
		temp = string(b[:])
		h, err := s.hash(temp)
		if err != nil {
			return "", false, err
		}
		no := ""
		err = s.updateUser(ctx, id, func(u *User) error { u.LoginHash, no = h, u.StudentNo; return nil })
		if err != nil {
			return "", false, err
		}
		return temp, true, s.clearLoginFails(ctx, no)
	case PasswordPayment, PasswordWater:
		err = s.updateUser(ctx, id, func(u *User) error {
			hash, fails, until := &u.PayHash, &u.PayFails, &u.PayLockedUntil
			if which == PasswordWater {
				hash, fails, until = &u.WaterHash, &u.WaterFails, &u.WaterLockedUntil
			}
			if *hash == "" && *fails == 0 && until.IsZero() {
				return errUnchanged
			}
			*hash, *fails, *until = "", 0, time.Time{}
			return nil
		})
		if errors.Is(err, errUnchanged) {
			return "", false, nil
		}
		return "", err == nil, err
	}
	return "", false, fmt.Errorf("password %q: %w", which, protocol.ErrBadRequest)
}

// RevokeUserDevice revokes one of the user's devices, reporting whether it
// was still valid.
func (s *Service) RevokeUserDevice(ctx context.Context, id, device uint32) (changed bool, err error) {
	d, err := s.st.Device(ctx, device)
	if err != nil || d.UserID != id {
		return false, protocol.ErrNotFound
	}
	if d.Revoked {
		return false, nil
	}
	return true, s.RevokeDevice(ctx, id, device)
}

// RevokeTerminal withdraws a terminal's broker credentials: it can no
// longer log in to the broker, and the authorizer refuses its new payments
// and holds (TERMINAL_REVOKED) and its journal entries until RotateTerminal
// issues new credentials.
func (s *Service) RevokeTerminal(ctx context.Context, id string) (changed bool, err error) {
	t, err := s.st.Terminal(ctx, id)
	if err != nil {
		return false, err
	}
	if t.PasswordHash == "" {
		return false, nil
	}
	t.PasswordHash = ""
	if err := s.st.PutTerminal(ctx, t); err != nil {
		return false, fmt.Errorf("wallet: revoke terminal %s: %w", id, err)
	}
	s.hotTerminals.drop(id)
	s.authMu.Lock()
	delete(s.authOK, id)
	s.authMu.Unlock()
	return true, nil
}

// RotateTerminal issues a terminal new broker credentials (and a fresh
// static QR), as AddTerminal does for the terminal as registered, and
// returns the new password.
func (s *Service) RotateTerminal(ctx context.Context, id string) (string, error) {
	t, err := s.st.Terminal(ctx, id)
	if err != nil {
		return "", err
	}
	pw, err := s.AddTerminal(ctx, Terminal{ID: t.ID, Merchant: t.Merchant, Campus: t.Campus, Mode: t.Mode, FixedAmount: t.FixedAmount})
	if err != nil {
		return "", err
	}
	s.authMu.Lock()
	delete(s.authOK, id)
	s.authMu.Unlock()
	return pw, nil
}

// Revoked reports whether a terminal's credentials are revoked.
func (t *Terminal) Revoked() bool { return t.PasswordHash == "" }

// clearLoginFails lifts the student number's login lock (the count kept
// for the number across every address) in the store and in this
// process's memory: the desk checked who the student is. Locks of single
// client addresses run out by themselves.
func (s *Service) clearLoginFails(ctx context.Context, studentNo string) error {
	if err := s.st.ClearLoginFails(ctx, studentNo); err != nil {
		return fmt.Errorf("wallet: clear login locks: %w", err)
	}
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	for k := range s.loginLocked {
		if k == studentNo || strings.HasPrefix(k, loginPairKey(studentNo, "")) {
			delete(s.loginLocked, k)
		}
	}
	return nil
}
