package wallet

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode"

	"campuspay/protocol"
)

// The student's account and security (issue 15): the payment password
// that confirms sensitive actions, recovery of forgotten passwords through
// the bank's reserved-phone check, the login password, devices, 解挂, the
// WeChat unlink and what a cancellation ends.

// FieldError is a refusal about one field of what the student entered,
// so the app can point at it.
type FieldError struct {
	Field string // the request's JSON name, e.g. "phone"
	Err   error  // a *protocol.Reason
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap makes errors.Is and protocol.AsReason see the reason.
func (e *FieldError) Unwrap() error { return e.Err }

// onField wraps err (if any) as a refusal about field.
func onField(field string, err error) error {
	if err == nil {
		return nil
	}
	return &FieldError{Field: field, Err: err}
}

// ConfirmPassword checks the payment password that confirms a sensitive
// action (unbind, card lost and found, withdraw, 免密 on or off, cancel),
// with the payments' count of wrong tries and their lock (rule 13): a
// phone left unlocked is not enough to empty or close the wallet.
func (s *Service) ConfirmPassword(ctx context.Context, id uint32, password string) error {
	defer s.lockUser(id)()
	u, err := s.st.User(ctx, id)
	if err != nil {
		return err
	}
	return s.checkSecret(ctx, u, false, password)
}

// Limits above which a login password is refused.
const (
	loginPasswordMin = 8
	loginPasswordMax = 64
)

// validLoginPassword: 8–64 characters with a letter and a digit.
func validLoginPassword(pw string) bool {
	n, letter, digit := 0, false, false
	for _, r := range pw {
		n++
		letter = letter || unicode.IsLetter(r)
		digit = digit || unicode.IsDigit(r)
		if unicode.IsControl(r) {
			return false
		}
	}
	return n >= loginPasswordMin && n <= loginPasswordMax && letter && digit
}

// ChangeLoginPassword replaces the app login password after checking the
// current one against the login lockout (a wrong one counts like a wrong
// login; LOGIN_PASSWORD_WRONG, or LOGIN_LOCKED).
func (s *Service) ChangeLoginPassword(ctx context.Context, id uint32, old, pw string) error {
	if !validLoginPassword(pw) {
		return onField("password", protocol.ErrLoginPasswordWeak)
	}
	u, err := s.st.User(ctx, id)
	if err != nil {
		return err
	}
	if _, err := s.Login(ctx, u.StudentNo, old); errors.Is(err, protocol.ErrLoginFailed) {
		return onField("old_password", protocol.ErrLoginPasswordWrong)
	} else if err != nil {
		return err
	}
	h, err := s.hash(pw)
	if err != nil {
		return err
	}
	return s.updateUser(ctx, id, func(u *User) error {
		u.LoginHash = h
		return nil
	})
}

// ResetCode is the answer to a reset request: where the bank texted the
// code and until when it is good.
type ResetCode struct {
	OTPID   string    `json:"otp_id"`
	Phone   string    `json:"phone"` // masked
	Expires time.Time `json:"expires"`
}

// resetPurpose is what the bank's SMS says the code is for.
func resetPurpose(water bool) string {
	if water {
		return "重置用水密码 water password reset"
	}
	return "重置支付密码 payment password reset"
}

// SendResetCode asks the bank of the bound card to text a one-time code
// to the phone it keeps for the card: knowing the code proves the student
// again when the payment (water=false) or water password is forgotten.
func (s *Service) SendResetCode(ctx context.Context, id uint32, water bool) (*ResetCode, error) {
	u, err := s.st.User(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.BankCard == "" {
		return nil, protocol.ErrNoBankCard
	}
	o, err := s.bank.SendOTP(ctx, u.BankCode, u.BankCard, resetPurpose(water))
	if err != nil {
		return nil, mapBankErr(err)
	}
	return &ResetCode{OTPID: o.ID, Phone: o.Phone, Expires: o.Expires}, nil
}

// ResetPassword sets a new payment (water=false) or water password once
// the bank accepts the code it texted (good once, for minutes, a few
// tries: the bank keeps those bounds). The password's wrong-try count and
// lock are cleared: the student has proven who they are.
func (s *Service) ResetPassword(ctx context.Context, id uint32, water bool, otpID, code, pw string) error {
	if !validPassword(pw) {
		return onField("password", protocol.ErrPasswordWeak)
	}
	if otpID == "" || code == "" || len(otpID) > 64 || len(code) > 16 {
		return onField("code", protocol.ErrOTPWrong)
	}
	h, err := s.hash(pw)
	if err != nil {
		return err
	}
	return s.updateUser(ctx, id, func(u *User) error {
		if u.BankCard == "" {
			return protocol.ErrNoBankCard
		}
		if err := s.bank.CheckOTP(ctx, u.BankCode, u.BankCard, otpID, code); err != nil {
			return onField("code", mapBankErr(err))
		}
		if water {
			u.WaterHash, u.WaterFails, u.WaterLockedUntil = h, 0, time.Time{}
		} else {
			u.PayHash, u.PayFails, u.PayLockedUntil = h, 0, time.Time{}
		}
		return nil
	})
}

// DeviceView is one of the student's phones as the device list shows it.
type DeviceView struct {
	ID      uint32    `json:"device_id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Revoked bool      `json:"revoked"`
}

// Devices lists the student's phones, newest first, so a lost one can be
// revoked from another.
func (s *Service) Devices(ctx context.Context, id uint32) ([]DeviceView, error) {
	ds, err := s.st.Devices(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("wallet: devices of %d: %w", id, err)
	}
	out := make([]DeviceView, 0, len(ds))
	for i := len(ds) - 1; i >= 0; i-- {
		d := ds[i]
		out = append(out, DeviceView{ID: d.ID, Created: d.Created, Expires: d.Expires, Revoked: d.Revoked})
	}
	return out, nil
}

// ReportCardFound undoes a card-lost report (解挂): taps with the card pay
// again from every terminal's next configuration.
func (s *Service) ReportCardFound(ctx context.Context, id uint32) error {
	uid, lost, err := s.cardLost(ctx, id)
	if err != nil {
		return err
	}
	if !lost {
		return protocol.ErrCardNotLost
	}
	if err := s.st.ClearCardLost(ctx, uid); err != nil {
		return fmt.Errorf("wallet: card found: %w", err)
	}
	return s.changed(ctx, nil)
}

// UnlinkWeChat ends the WeChat authentication (校园e码通): WeChat payment
// codes no longer pay for this student.
func (s *Service) UnlinkWeChat(ctx context.Context, id uint32) error {
	return s.updateUser(ctx, id, func(u *User) error {
		if u.WeChatOpenID == "" {
			return protocol.ErrWeChatNotLinkedYet
		}
		u.WeChatOpenID = ""
		return nil
	})
}

// CancelEffects is what cancelling the wallet would do now, shown before
// the student confirms.
type CancelEffects struct {
	Withdraw     int64  `json:"withdraw"`            // cents to the bound card
	Held         int64  `json:"held"`                // cents in holds: cancelling waits for them
	BankCode     string `json:"bank_code,omitempty"` // where the balance goes
	BankCard     string `json:"bank_card,omitempty"` // masked
	PasswordFree bool   `json:"password_free"`       // the contract ends
	WeChat       bool   `json:"wechat"`              // the WeChat link ends
	ReopensLeft  int    `json:"reopens_left"`        // after this cancellation is undone by a re-open
}

// CancelPreview says what Cancel would end for the student.
func (s *Service) CancelPreview(ctx context.Context, id uint32) (*CancelEffects, error) {
	u, err := s.st.User(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := active(u); err != nil {
		return nil, err
	}
	b, err := s.led.Balance(ctx, walletAccount(id))
	if err != nil {
		return nil, fmt.Errorf("wallet: cancel preview %d: %w", id, err)
	}
	return &CancelEffects{Withdraw: b.Posted, Held: b.Held, BankCode: u.BankCode, BankCard: maskCard(u.BankCard),
		PasswordFree: u.PasswordFree, WeChat: u.WeChatOpenID != "", ReopensLeft: max(0, MaxReopens-u.Reopens)}, nil
}

// faceUser answers a face credential (reserved, DESIGN §2 rule 4): the
// reader's match names a student, whose 免密 contract would gate it as it
// gates card taps; today every face payment is refused FACE_NOT_SUPPORTED.
func (s *Service) faceUser(ctx context.Context, text string) error {
	u, err := s.st.UserByStudentNo(ctx, text)
	if err != nil {
		return err
	}
	if err := active(u); err != nil {
		return err
	}
	if !u.PasswordFree {
		return protocol.ErrPasswordFreeMissing
	}
	return protocol.ErrFaceNotSupported
}
