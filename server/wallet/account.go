package wallet

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"campuspay/protocol"
	"campuspay/server/bank"
	"campuspay/server/ledger"
)

// View is a wallet as the app shows it.
type View struct {
	UserID       uint32 `json:"user_id"`
	StudentNo    string `json:"student_no"`
	Name         string `json:"name"`
	Category     string `json:"category"`
	Campus       string `json:"campus"`
	State        string `json:"state"`
	Balance      int64  `json:"balance"`   // cents posted
	Held         int64  `json:"held"`      // cents reserved by shower holds
	Available    int64  `json:"available"` // Balance - Held
	BankCode     string `json:"bank_code,omitempty"`
	BankCard     string `json:"bank_card,omitempty"` // masked
	PasswordFree bool   `json:"password_free"`
	// PasswordFreeWarning: a vocational student (中专生) pays by card daily
	// and needs the password-free contract (rule 4).
	PasswordFreeWarning bool   `json:"password_free_warning"`
	PaymentPasswordSet  bool   `json:"payment_password_set"`
	WaterPasswordSet    bool   `json:"water_password_set"`
	LimitPerTx          int64  `json:"limit_per_tx"`
	LimitDaily          int64  `json:"limit_daily"`
	WeChatLinked        bool   `json:"wechat_linked"`
	Reopens             int    `json:"reopens"`
	Unbinds             int    `json:"unbinds"`
	CardUID             string `json:"card_uid,omitempty"`
	CardLost            bool   `json:"card_lost"` // reported lost; 解挂 undoes it
	// Frozen by the card centre: nothing pays until it is unfrozen.
	Frozen bool `json:"frozen"`
}

// VocationalCategory is the roster category whose students pay by card daily.
const VocationalCategory = "中专生"

// Wallet returns the user's wallet view.
func (s *Service) Wallet(ctx context.Context, id uint32) (*View, error) {
	u, err := s.st.User(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := s.led.Balance(ctx, walletAccount(id))
	if err != nil {
		return nil, fmt.Errorf("wallet: balance of %d: %w", id, err)
	}
	lost := false
	if u.CardUID != "" {
		if lost, err = s.st.CardLost(ctx, u.CardUID); err != nil {
			return nil, fmt.Errorf("wallet: card of %d: %w", id, err)
		}
	}
	return &View{
		UserID: u.ID, StudentNo: u.StudentNo, Name: u.Name, Category: u.Category, Campus: u.Campus,
		State: u.State.String(), Balance: b.Posted, Held: b.Held, Available: b.Available,
		BankCode: u.BankCode, BankCard: maskCard(u.BankCard), PasswordFree: u.PasswordFree,
		PasswordFreeWarning: u.Category == VocationalCategory && !u.PasswordFree,
		PaymentPasswordSet:  u.PayHash != "", WaterPasswordSet: u.WaterHash != "",
		LimitPerTx: u.LimitPerTx, LimitDaily: u.LimitDaily, WeChatLinked: u.WeChatOpenID != "",
		Reopens: u.Reopens, Unbinds: u.Unbinds, CardUID: u.CardUID, CardLost: lost, Frozen: u.Frozen,
	}, nil
}

func maskCard(n string) string {
	if len(n) <= 8 {
		return n
	}
	return n[:4] + strings.Repeat("*", len(n)-8) + n[len(n)-4:]
}

// BindRequest is what the student enters to bind a card. Name, IDNumber
// and Phone default to the roster's when empty; Name and IDNumber, when
// given, must be the roster's (the ID number's X in either case).
type BindRequest struct {
	BankCode   string `json:"bank_code"`
	CardNumber string `json:"card_number"`
	Name       string `json:"name,omitempty"`
	IDNumber   string `json:"id_number,omitempty"`
	Phone      string `json:"phone,omitempty"`
}

// updateUser runs change on user id's record under the user's lock and
// saves the record if change succeeds; an error from change saves nothing.
func (s *Service) updateUser(ctx context.Context, id uint32, change func(u *User) error) error {
	defer s.lockUser(id)()
	u, err := s.st.User(ctx, id)
	if err != nil {
		return err
	}
	if err := change(u); err != nil {
		return err
	}
	return s.st.UpdateUser(ctx, u)
}

// BindCard binds a bank card after the bank confirms the holder; the first
// binding activates the wallet (rule 1).
func (s *Service) BindCard(ctx context.Context, id uint32, r BindRequest) error {
	return s.updateUser(ctx, id, func(u *User) error {
		switch {
		case u.State == StateCancelled:
			return protocol.ErrWalletCancelled
		case u.BankCard != "":
			return protocol.ErrCardAlreadyBound
		}
		name, idNo := strings.TrimSpace(r.Name), strings.ToUpper(strings.TrimSpace(r.IDNumber)) // the check character X in either case
		h := bank.Holder{BankCode: r.BankCode, CardNumber: NormalizeCardNumber(r.CardNumber), Name: u.Name, IDNumber: u.IDNumber, Phone: r.Phone}
		if h.Phone == "" {
			h.Phone = u.Phone
		}
		// Each refusal names the field that differs, so the app points at it.
		switch {
		case !ValidCardNumber(h.CardNumber):
			return onField("card_number", protocol.ErrCardNumberInvalid)
		case idNo != "" && !ValidIDNumber(idNo):
			return onField("id_number", protocol.ErrIDNumberInvalid)
		case !ValidPhone(h.Phone):
			return onField("phone", protocol.ErrPhoneInvalid)
		case !s.banks[h.BankCode]:
			return onField("bank_code", protocol.ErrBankUnsupported)
		// The wallet is the student's: the card must be theirs, whatever
		// the bank would accept. The phone may differ from the roster's
		// (students change numbers); the bank checks it.
		case name != "" && name != u.Name:
			return onField("name", protocol.ErrHolderNotStudent)
		case idNo != "" && !strings.EqualFold(idNo, u.IDNumber):
			return onField("id_number", protocol.ErrHolderNotStudent)
		}
		if err := s.bank.Verify(ctx, h); err != nil {
			return onField(bankField(err), mapBankErr(err))
		}
		u.BankCode, u.BankCard = h.BankCode, h.CardNumber
		if u.State == StateInactive {
			u.State = StateActive
		}
		return nil
	})
}

// bankField is the field of the binding form a bank refusal is about.
func bankField(err error) string {
	var mm *bank.MismatchError
	switch {
	case errors.As(err, &mm):
		return mm.Field // the bank's names are the request's: name, id_number, phone
	case errors.Is(err, bank.ErrUnknownCard), errors.Is(err, bank.ErrInvalidCardNumber), errors.Is(err, bank.ErrDeclined):
		return "card_number"
	case errors.Is(err, bank.ErrUnsupportedBank):
		return "bank_code"
	}
	return ""
}

// UnbindCard unbinds the bound card (rule 3: at most MaxUnbinds times ever).
func (s *Service) UnbindCard(ctx context.Context, id uint32) error {
	return s.updateUser(ctx, id, func(u *User) error {
		switch {
		case u.State == StateCancelled:
			return protocol.ErrWalletCancelled
		case u.BankCard == "":
			return protocol.ErrNoBankCard
		case u.Unbinds >= MaxUnbinds:
			return protocol.ErrUnbindLimit
		}
		u.Unbinds++
		u.BankCode, u.BankCard = "", ""
		return nil
	})
}

// Cancel cancels (注销) the wallet: the balance goes back to the bound card
// first; pending holds and transactions still in progress refuse it (rule
// 2), so that no money is on its way into a wallet being closed.
//
// Money can still land in a cancelled wallet afterwards (a balance payment
// reversed later, a refund the card refused): Withdraw accepts a cancelled
// wallet, so the student can take it out to the bound card.
func (s *Service) Cancel(ctx context.Context, id uint32) error {
	return s.updateUser(ctx, id, func(u *User) error {
		if err := payable(u); err != nil {
			return err
		}
		// The cancellation's withdrawals live in their own record
		// namespace (the app's Idempotency-Key cannot reach it), one
		// attempt each: a declined attempt is final, so the next
		// cancellation tries again under a new attempt.
		attempt := 0
		for ; ; attempt++ {
			rec, err := s.st.Record(ctx, cancelKey(id, u.Reopens, attempt))
			if err != nil {
				return err
			}
			if rec == nil {
				break
			}
			if rec.Status == StatusProcessing { // an earlier cancellation's, in doubt
				if _, err := s.completeWithdraw(ctx, rec); err != nil {
					return err
				}
			}
		}
		unsettled, err := s.st.Unsettled(ctx, id)
		if err != nil {
			return fmt.Errorf("wallet: cancel %d: %w", id, err)
		}
		if len(unsettled) > 0 {
			return protocol.ErrTxInProgress
		}
		b, err := s.led.Balance(ctx, walletAccount(id))
		if err != nil {
			return fmt.Errorf("wallet: cancel %d: %w", id, err)
		}
		if b.Held > 0 {
			return protocol.ErrHoldsPending
		}
		// An offline debt is paid from the balance first (the key names
		// the debt and the balance, so a later attempt in another state
		// repays again); what the balance cannot cover keeps the wallet
		// open.
		if owed, err := s.debt(ctx, id); err != nil {
			return err
		} else if owed > 0 {
			if _, err := s.repayDebt(ctx, id, fmt.Sprintf("U:%d:repay-cancel:%d:%d:%d", id, u.Reopens, owed, b.Available)); err != nil {
				return err
			}
			if owed, err = s.debt(ctx, id); err != nil {
				return err
			} else if owed > 0 {
				return protocol.ErrOfflineDebt
			}
			if b, err = s.led.Balance(ctx, walletAccount(id)); err != nil {
				return fmt.Errorf("wallet: cancel %d: %w", id, err)
			}
		}
		if b.Posted > 0 {
			if u.BankCard == "" {
				return protocol.ErrNoBankCard
			}
			if _, err := s.withdrawLocked(ctx, u, cancelKey(id, u.Reopens, attempt), b.Posted); err != nil {
				return err
			}
		}
		// What cancelling ends (CancelPreview shows it first): the
		// password-free contract and the WeChat link.
		u.State = StateCancelled
		u.PasswordFree = false
		u.WeChatOpenID = ""
		return nil
	})
}

// cancelKey is the record key of a cancellation's withdrawal: per
// re-open cycle and attempt, apart from the app's withdrawals.
func cancelKey(id uint32, reopens, attempt int) string {
	return fmt.Sprintf("U:%d:cancel:%d:%d", id, reopens, attempt)
}

// Reopen re-activates a cancelled wallet (rule 2: at most MaxReopens times).
func (s *Service) Reopen(ctx context.Context, id uint32) error {
	return s.updateUser(ctx, id, func(u *User) error {
		switch {
		case u.State == StateActive:
			return protocol.ErrWalletActive
		case u.State != StateCancelled:
			return protocol.ErrWalletNotActive
		case u.Reopens >= MaxReopens:
			return protocol.ErrReopenLimit
		}
		u.Reopens++
		u.State = StateActive
		if u.BankCard == "" {
			u.State = StateInactive // activation needs a card again
		}
		return nil
	})
}

// SetPasswordFree signs (on=true) or ends the password-free contract (rule 4).
func (s *Service) SetPasswordFree(ctx context.Context, id uint32, on bool) error {
	return s.updateUser(ctx, id, func(u *User) error {
		if err := active(u); err != nil {
			return err
		}
		if on && u.PasswordFree {
			return protocol.ErrPasswordFreeSigned
		}
		if !on && !u.PasswordFree {
			return protocol.ErrPasswordFreeMissing
		}
		u.PasswordFree = on
		return nil
	})
}

// SetLimits sets the user's per-transaction and daily limits (cents).
func (s *Service) SetLimits(ctx context.Context, id uint32, perTx, daily int64) error {
	if err := checkAmount(perTx); err != nil {
		return err
	}
	if err := checkAmount(daily); err != nil {
		return err
	}
	if perTx > daily {
		return onField("per_transaction", protocol.ErrLimitsOrder) // a single payment above the day's total could never pay
	}
	return s.updateUser(ctx, id, func(u *User) error {
		u.LimitPerTx, u.LimitDaily = perTx, daily
		return nil
	})
}

// SetPassword sets the payment (water=false) or water password. When one is
// already set, old must be right (it counts towards the lock).
func (s *Service) SetPassword(ctx context.Context, id uint32, water bool, old, pw string) error {
	if !validPassword(pw) {
		return protocol.ErrPasswordWeak
	}
	return s.updateUser(ctx, id, func(u *User) error {
		set := u.PayHash != ""
		if water {
			set = u.WaterHash != ""
		}
		if set {
			if err := s.checkSecret(ctx, u, water, old); err != nil {
				return err
			}
		}
		h, err := s.hash(pw)
		if err != nil {
			return err
		}
		if water {
			u.WaterHash, u.WaterFails, u.WaterLockedUntil = h, 0, time.Time{}
		} else {
			u.PayHash, u.PayFails, u.PayLockedUntil = h, 0, time.Time{}
		}
		return nil
	})
}

// TopUp moves amount from the bound card into the wallet (rule 5). key makes
// it idempotent: the same key again returns the same record and moves nothing.
func (s *Service) TopUp(ctx context.Context, id uint32, key string, amount int64) (*Record, error) {
	if err := checkAmount(amount); err != nil {
		return nil, err
	}
	defer s.lockUser(id)()
	rk := fmt.Sprintf("U:%d:topup:%s", id, key)
	rec, err := s.st.Record(ctx, rk)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		if rec.Amount != amount {
			return nil, protocol.ErrTxConflict
		}
		switch rec.Status {
		case protocol.StatusDeclined:
			return nil, reasonOf(rec.Code)
		case StatusProcessing:
		default:
			return rec, nil
		}
	} else {
		u, err := s.st.User(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := payable(u); err != nil {
			return nil, err
		}
		if u.BankCard == "" {
			return nil, protocol.ErrNoBankCard
		}
		now := s.now()
		rec = &Record{Key: rk, Kind: KindTopUp, UserID: id, Amount: amount, Channel: protocol.ChannelBankCard,
			BankCode: u.BankCode, BankCard: u.BankCard, Status: StatusProcessing, Created: now, Updated: now}
		if err := s.st.PutRecord(ctx, rec); err != nil {
			return nil, err
		}
	}
	return s.completeTopUp(ctx, rec)
}

// completeTopUp performs the money steps of a recorded top-up; repeatable.
// The caller holds the user lock.
func (s *Service) completeTopUp(ctx context.Context, rec *Record) (*Record, error) {
	u, err := s.st.User(ctx, rec.UserID)
	if err != nil {
		return nil, err
	}
	if err := active(u); err != nil {
		return nil, s.undoTopUp(ctx, rec, err)
	}
	if _, err := s.bank.Debit(ctx, bankKey("tu", rec.Key), rec.BankCode, rec.BankCard, rec.Amount); err != nil {
		if bankDefinite(err) {
			return nil, s.finish(ctx, rec, protocol.StatusDeclined, topUpBankErr(err))
		}
		return nil, mapBankErr(err) // outcome unknown: the same key resumes
	}
	if _, err := s.led.Post(ctx, ledger.Transfer{Key: "topup:" + rec.Key, Kind: "topup", At: s.now(),
		Memo:     "top-up from " + rec.BankCode + " " + maskCard(rec.BankCard),
		Postings: []ledger.Posting{{Account: bankAccount(rec.BankCode), Amount: -rec.Amount}, {Account: walletAccount(rec.UserID), Amount: rec.Amount}}}); err != nil {
		return nil, fmt.Errorf("wallet: post top-up %s: %w", rec.Key, err)
	}
	return rec, s.finishTopUp(ctx, rec)
}

// Withdraw moves amount from the wallet to the bound card (rule 5). A
// cancelled wallet may withdraw too: money that landed in it after the
// cancellation (a reversed payment) must not be stuck.
func (s *Service) Withdraw(ctx context.Context, id uint32, key string, amount int64) (*Record, error) {
	if err := checkAmount(amount); err != nil {
		return nil, err
	}
	defer s.lockUser(id)()
	u, err := s.st.User(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := active(u); err != nil && u.State != StateCancelled {
		return nil, err
	}
	if u.Frozen {
		return nil, protocol.ErrWalletFrozen
	}
	return s.withdrawLocked(ctx, u, fmt.Sprintf("U:%d:withdraw:%s", u.ID, key), amount)
}

// withdrawLocked withdraws under record key rk: it posts the ledger first
// (so the wallet never pays out more than it holds), then credits the
// card; a definite refusal by the bank posts the compensating transfer.
func (s *Service) withdrawLocked(ctx context.Context, u *User, rk string, amount int64) (*Record, error) {
	rec, err := s.st.Record(ctx, rk)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		if rec.Amount != amount {
			return nil, protocol.ErrTxConflict
		}
		if rec.Status != StatusProcessing {
			if rec.Status == protocol.StatusDeclined {
				return nil, reasonOf(rec.Code)
			}
			return rec, nil
		}
	} else {
		if u.BankCard == "" {
			return nil, protocol.ErrNoBankCard
		}
		now := s.now()
		rec = &Record{Key: rk, Kind: KindWithdraw, UserID: u.ID, Amount: amount, Channel: protocol.ChannelBankCard,
			BankCode: u.BankCode, BankCard: u.BankCard, Status: StatusProcessing, Created: now, Updated: now}
		if err := s.st.PutRecord(ctx, rec); err != nil {
			return nil, err
		}
	}
	return s.completeWithdraw(ctx, rec)
}

// undoTopUp settles a top-up still in doubt whose wallet is no longer
// active (cancelled meanwhile): the money must not land in it. If the
// ledger already shows the top-up, it stands (a cancelled wallet can
// withdraw). Otherwise whether the card was debited is learnt by repeating
// the debit under its key (the bank's idempotency is the only way to know)
// and the debit is credited back; the top-up is declined with why.
func (s *Service) undoTopUp(ctx context.Context, rec *Record, why error) error {
	if _, _, found, err := s.led.Lookup(ctx, "topup:"+rec.Key); err != nil {
		return fmt.Errorf("wallet: lookup %s: %w", rec.Key, err)
	} else if found {
		return s.finishTopUp(ctx, rec)
	}
	if _, err := s.bank.Debit(ctx, bankKey("tu", rec.Key), rec.BankCode, rec.BankCard, rec.Amount); err != nil {
		if bankDefinite(err) {
			return s.finish(ctx, rec, protocol.StatusDeclined, why) // nothing was taken
		}
		return mapBankErr(err) // unknown: the same key resumes
	}
	if _, err := s.bank.Credit(ctx, bankKey("tu-undo", rec.Key), rec.BankCode, rec.BankCard, rec.Amount); err != nil {
		if !bankDefinite(err) {
			return mapBankErr(err)
		}
		// The card refuses the money back: it goes into the wallet, where
		// a cancelled wallet can still withdraw it.
		if _, err := s.led.Post(ctx, ledger.Transfer{Key: "topup:" + rec.Key, Kind: "topup", At: s.now(),
			Memo:     "top-up from " + rec.BankCode + " " + maskCard(rec.BankCard) + " (card refused it back)",
			Postings: []ledger.Posting{{Account: bankAccount(rec.BankCode), Amount: -rec.Amount}, {Account: walletAccount(rec.UserID), Amount: rec.Amount}}}); err != nil {
			return fmt.Errorf("wallet: post top-up %s: %w", rec.Key, err)
		}
		return s.finishTopUp(ctx, rec)
	}
	return s.finish(ctx, rec, protocol.StatusDeclined, why)
}

// completeWithdraw performs the money steps of a recorded withdrawal;
// repeatable.
func (s *Service) completeWithdraw(ctx context.Context, rec *Record) (*Record, error) {
	rk, amount := rec.Key, rec.Amount
	_, err := s.led.Post(ctx, ledger.Transfer{Key: "withdraw:" + rk, Kind: "withdraw", At: s.now(),
		Memo:     "withdraw to " + rec.BankCode + " " + maskCard(rec.BankCard),
		Postings: []ledger.Posting{{Account: walletAccount(rec.UserID), Amount: -amount}, {Account: bankAccount(rec.BankCode), Amount: amount}}})
	if errors.Is(err, ledger.ErrInsufficient) {
		return nil, s.finish(ctx, rec, protocol.StatusDeclined, protocol.ErrBalanceLow)
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: post withdrawal %s: %w", rk, err)
	}
	if _, err := s.bank.Credit(ctx, bankKey("wd", rk), rec.BankCode, rec.BankCard, amount); err != nil {
		if !bankDefinite(err) {
			return nil, mapBankErr(err) // unknown: the same key resumes
		}
		if _, perr := s.led.Post(ctx, ledger.Transfer{Key: "withdraw-undo:" + rk, Kind: "refund", At: s.now(),
			Memo:     "withdrawal refused by the bank",
			Postings: []ledger.Posting{{Account: bankAccount(rec.BankCode), Amount: -amount}, {Account: walletAccount(rec.UserID), Amount: amount}}}); perr != nil {
			return nil, fmt.Errorf("wallet: undo withdrawal %s: %w", rk, perr)
		}
		return nil, s.finish(ctx, rec, protocol.StatusDeclined, mapBankErr(err))
	}
	return rec, s.finish(ctx, rec, protocol.StatusApproved, nil)
}

// finish records a final status; with a reason it returns that reason.
func (s *Service) finish(ctx context.Context, rec *Record, st protocol.Status, why error) error {
	rec.Status, rec.Updated = st, s.now()
	if why != nil {
		rec.Code = protocol.AsReason(why).Code
	}
	if err := s.st.PutRecord(ctx, rec); err != nil {
		return fmt.Errorf("wallet: record %s: %w", rec.Key, err)
	}
	return why
}

// reasonOf returns the reason with code, or ErrInternal.
func reasonOf(code string) error {
	if r := protocol.ReasonByCode(code); r != nil {
		return r
	}
	return protocol.ErrInternal
}

// bankKey derives a bank idempotency key (≤ 64 printable characters) from
// a record key.
func bankKey(prefix, recordKey string) string {
	h := sha256.Sum256([]byte(recordKey))
	return prefix + "-" + hex.EncodeToString(h[:20])
}

// payable is active for a new payment, hold, top-up, withdrawal or
// cancellation: a wallet frozen by the card centre starts none
// (WALLET_FROZEN). What was under way before the freeze is finished by
// the active checks of the resume paths.
func payable(u *User) error {
	if err := active(u); err != nil {
		return err
	}
	if u.Frozen {
		return protocol.ErrWalletFrozen
	}
	return nil
}

func active(u *User) error {
	switch u.State {
	case StateActive:
		return nil
	case StateCancelled:
		return protocol.ErrWalletCancelled
	}
	return protocol.ErrWalletNotActive
}

// DeviceCert is a device registration's answer.
type DeviceCert struct {
	DeviceID    uint32 `json:"device_id"`
	Certificate []byte `json:"certificate"`
	Expires     int64  `json:"expires"` // Unix seconds
}

// RegisterDevice issues a certificate for a phone's Ed25519 public key.
func (s *Service) RegisterDevice(ctx context.Context, id uint32, pub []byte) (*DeviceCert, error) {
	if err := protocol.CheckDeviceKey(pub); err != nil {
		return nil, err
	}
	// No codes for a wallet that cannot pay: a code shown at a till would
	// only be refused there.
	if u, err := s.st.User(ctx, id); err != nil {
		return nil, err
	} else if err := active(u); err != nil {
		return nil, err
	}
	now := s.now()
	d := &Device{UserID: id, Key: ed25519.PublicKey(append([]byte(nil), pub...)), Created: now,
		Expires: now.Add(s.cfg.CertValidity).Truncate(1e9)}
	if err := s.st.AddDevice(ctx, d); err != nil {
		return nil, fmt.Errorf("wallet: add device: %w", err)
	}
	cert, err := protocol.IssueCertificate(protocol.Certificate{KeyID: s.keys.IssuerID, UserID: id, DeviceID: d.ID,
		DeviceKey: d.Key, Expires: d.Expires}, s.keys.Issuer)
	if err != nil {
		return nil, fmt.Errorf("wallet: issue certificate: %w", err)
	}
	return &DeviceCert{DeviceID: d.ID, Certificate: cert, Expires: d.Expires.Unix()}, nil
}

// RevokeDevice revokes a phone's certificate (lost phone): effective at
// once here and in every terminal's next config.
func (s *Service) RevokeDevice(ctx context.Context, id, device uint32) error {
	d, err := s.st.Device(ctx, device)
	if err != nil || d.UserID != id {
		return protocol.ErrNotFound
	}
	if d.Revoked {
		return nil
	}
	if err := s.st.RevokeDevice(ctx, device, s.now()); err != nil {
		return fmt.Errorf("wallet: revoke device %d: %w", device, err)
	}
	return s.changed(ctx, nil)
}

// cardLost returns the user's campus card and whether it is reported lost.
func (s *Service) cardLost(ctx context.Context, id uint32) (string, bool, error) {
	u, err := s.st.User(ctx, id)
	if err != nil {
		return "", false, err
	}
	if u.CardUID == "" {
		return "", false, protocol.ErrCardUnknown
	}
	lost, err := s.st.CardLost(ctx, u.CardUID)
	return u.CardUID, lost, err
}

// ReportCardLost marks the user's campus card lost.
func (s *Service) ReportCardLost(ctx context.Context, id uint32) error {
	uid, lost, err := s.cardLost(ctx, id)
	if err != nil || lost {
		return err
	}
	if err := s.st.ReportCardLost(ctx, uid, id, s.now()); err != nil {
		return fmt.Errorf("wallet: report card lost: %w", err)
	}
	return s.changed(ctx, nil)
}

// LinkWeChat links the student's WeChat identity (mini-program login code);
// refused until the wallet is active (rule 10).
func (s *Service) LinkWeChat(ctx context.Context, id uint32, jsCode string) error {
	if s.wx == nil {
		return protocol.ErrWeChatUnavailable
	}
	return s.updateUser(ctx, id, func(u *User) error {
		if u.State != StateActive {
			return protocol.ErrWeChatNeedsWallet
		}
		openID, err := s.wx.Code2Session(ctx, jsCode)
		if err != nil {
			return wechatErr(err)
		}
		if other, err := s.st.UserByOpenID(ctx, openID); err == nil && other.ID != id {
			// One WeChat identity pays for one student. Only the openid is
			// cleared: other is not locked, so its copy may be stale.
			if err := s.st.ClearWeChat(ctx, other.ID, openID); err != nil {
				return err
			}
		}
		u.WeChatOpenID = openID
		return nil
	})
}

// Transactions lists the user's transaction details, newest first.
func (s *Service) Transactions(ctx context.Context, id uint32, beforeID int64, limit int) ([]Record, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	return s.st.Records(ctx, id, beforeID, limit)
}

// AllTransactions lists every record, newest first (admin).
func (s *Service) AllTransactions(ctx context.Context, beforeID int64, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 50
	}
	return s.st.AllRecords(ctx, beforeID, limit)
}
