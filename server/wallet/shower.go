package wallet

import (
	"context"
	"errors"
	"fmt"

	"campuspay/protocol"
	"campuspay/server/ledger"
)

func holdKey(recKey string) string { return "shower:" + recKey }

// hold answers OpHold: verify the student (card or account number) and the
// sealed water password, require ¥15.00 of balance and place a hold (rule 7).
//
// Limits apply to showers too (a shower is wallet-funded): the hold is the
// tariff's hold capped by the balance, the per-transaction limit and what
// is left of the daily limit; a cap below ShowerMinimum refuses the shower
// with the limit's reason.
func (s *Service) hold(ctx context.Context, t *Terminal, req *protocol.Request, key string, rec *Record) *protocol.Response {
	h := requestHash(req)
	if rec != nil {
		switch {
		case rec.Kind == kindTombstone:
			return tombstoned()
		case rec.Kind != KindShower || rec.ReqHash != h:
			return declined(protocol.ErrTxConflict)
		}
		return s.replay(ctx, t, rec)
	}
	now := s.now()
	rec = &Record{Key: key, Kind: KindShower, Terminal: t.ID, Tx: req.Tx, Merchant: t.Merchant, ReqHash: h,
		Channel: protocol.ChannelBalance, Created: now, Updated: now}
	if c, ok := s.cfg.Campuses[t.Campus]; !ok || !c.Showers || t.Mode != protocol.ModeShower {
		return s.save(ctx, rec, declined(protocol.ErrShowerNotEnabled))
	}
	var u *User
	var err error
	switch req.Cred.Kind {
	case protocol.CredCard:
		u, err = s.cardUser(ctx, req.Cred.Text)
	case protocol.CredAccount:
		u, err = s.st.UserByStudentNo(ctx, req.Cred.Text)
		if errors.Is(err, protocol.ErrUserUnknown) {
			err = protocol.ErrWaterPasswordWrong // do not tell which account numbers exist
		}
	default:
		err = protocol.ErrUnsupportedOp
	}
	if err != nil {
		return s.save(ctx, rec, declined(err))
	}
	rec.UserID = u.ID
	secret, err := protocol.OpenSecret(s.keys.SealPub, s.keys.SealPriv, req.Tx, req.Secret)
	if err != nil {
		secret = "" // unreadable: counts as a wrong password below
	}
	defer s.lockUser(u.ID)()
	if u, err = s.st.User(ctx, u.ID); err != nil {
		return declined(err)
	}
	if err := payable(u); err != nil {
		return s.save(ctx, rec, declined(err))
	}
	if err := s.checkSecret(ctx, u, true, secret); err != nil {
		return s.save(ctx, rec, declined(err))
	}
	b, err := s.led.Balance(ctx, walletAccount(u.ID))
	if err != nil {
		return declined(err)
	}
	if b.Available < ShowerMinimum {
		return s.save(ctx, rec, declined(protocol.ErrShowerBalanceLow))
	}
	amount := min(s.cfg.Tariff.Hold, b.Available)
	if u.LimitPerTx < ShowerMinimum {
		return s.save(ctx, rec, declined(protocol.ErrLimitPerTx))
	}
	amount = min(amount, u.LimitPerTx)
	from, to := day(now)
	spent, err := s.st.PaidBetween(ctx, u.ID, from, to)
	if err != nil {
		return declined(err)
	}
	if u.LimitDaily-spent < ShowerMinimum {
		return s.save(ctx, rec, declined(protocol.ErrLimitDaily))
	}
	amount = min(amount, u.LimitDaily-spent)
	rec.Amount, rec.Status, rec.Channel = amount, StatusProcessing, protocol.ChannelBalance
	// The total is read again in the intent's write: a payment of the same
	// student elsewhere meanwhile makes it refuse rather than pass the limit.
	if _, err := s.st.PutIntent(ctx, rec, nil, &DailyLimit{From: from, To: to, Max: u.LimitDaily}); errors.Is(err, protocol.ErrLimitDaily) {
		rec.Status, rec.Channel = "", ""
		return s.save(ctx, rec, declined(err))
	} else if err != nil {
		return declined(err)
	}
	return s.placeHold(ctx, u, rec)
}

// placeHold places the hold of a recorded shower intent and answers; the
// caller holds the user lock. Repeatable: PlaceHold is idempotent by key.
func (s *Service) placeHold(ctx context.Context, u *User, rec *Record) *protocol.Response {
	now := s.now()
	hi, err := s.led.PlaceHold(ctx, ledger.Hold{Key: holdKey(rec.Key), Account: walletAccount(u.ID), Amount: rec.Amount,
		Expires: now.Add(s.cfg.HoldTTL), Memo: memo(rec), At: now})
	if errors.Is(err, ledger.ErrInsufficient) {
		return s.save(ctx, rec, declined(protocol.ErrShowerBalanceLow))
	}
	if err != nil {
		return declined(fmt.Errorf("wallet: place hold %s: %w", rec.Key, err))
	}
	r := &protocol.Response{Status: protocol.StatusHeld, Hold: hi.Amount, Channel: protocol.ChannelBalance, User: MaskName(u.Name)}
	if b, err := s.led.Balance(ctx, walletAccount(u.ID)); err == nil {
		r.Balance = &b.Available
	}
	rec.Amount = hi.Amount
	return s.save(ctx, rec, r)
}

// capture answers OpCapture: charge amount (capped at the hold) and release
// the rest; 0 voids. Repeating the same capture returns it; a different
// amount after a capture is ErrTxConflict.
func (s *Service) capture(ctx context.Context, t *Terminal, rec *Record, amount, ml int64) *protocol.Response {
	if rec == nil || rec.Kind != KindShower {
		if rec != nil && rec.Kind == kindTombstone {
			return tombstoned()
		}
		return declined(protocol.ErrHoldUnknown)
	}
	if amount == 0 {
		return s.void(ctx, rec)
	}
	hi, err := s.led.GetHold(ctx, holdKey(rec.Key))
	if errors.Is(err, ledger.ErrHoldNotFound) {
		if rec.Status == protocol.StatusDeclined {
			return s.replay(ctx, t, rec)
		}
		return declined(protocol.ErrHoldUnknown)
	} else if err != nil {
		return declined(err)
	}
	amount = min(amount, hi.Amount)
	switch hi.State {
	case ledger.HoldCaptured:
		if hi.Captured != amount {
			return declined(protocol.ErrTxConflict)
		}
	case ledger.HoldVoided, ledger.HoldExpired:
		return declined(protocol.ErrHoldUnknown)
	}
	hi, _, err = s.led.CaptureHold(ctx, holdKey(rec.Key), amount, merchantAccount(rec.Merchant),
		fmt.Sprintf("shower merchant=%s terminal=%s ml=%d", rec.Merchant, rec.Terminal, ml), s.now())
	if errors.Is(err, ledger.ErrHoldClosed) || errors.Is(err, ledger.ErrOverCapture) {
		return declined(protocol.ErrTxConflict)
	} else if err != nil {
		return declined(fmt.Errorf("wallet: capture %s: %w", rec.Key, err))
	}
	if err := s.recordML(ctx, rec, ml); err != nil {
		return declined(err) // not recorded: the terminal's retry captures again (same amount) and records it
	}
	r := &protocol.Response{Status: protocol.StatusApproved, Amount: hi.Captured, Channel: protocol.ChannelBalance, Hold: hi.Amount}
	if b, err := s.led.Balance(ctx, walletAccount(rec.UserID)); err == nil {
		r.Balance = &b.Available
	}
	return s.save(ctx, rec, r)
}

// void answers OpVoid: release the hold without charge.
func (s *Service) void(ctx context.Context, rec *Record) *protocol.Response {
	if rec == nil || rec.Kind != KindShower {
		if rec != nil && rec.Kind == kindTombstone {
			return tombstoned()
		}
		return declined(protocol.ErrHoldUnknown)
	}
	hi, err := s.led.GetHold(ctx, holdKey(rec.Key))
	if errors.Is(err, ledger.ErrHoldNotFound) {
		// Never placed: nothing to release. A declined hold keeps its
		// answer and reason; only an intent that never got its hold
		// (a crash before it) becomes voided.
		if rec.Status != StatusProcessing && rec.Status != protocol.StatusPending {
			return s.replay(ctx, nil, rec)
		}
		rec.Amount = 0
		return s.save(ctx, rec, &protocol.Response{Status: protocol.StatusVoided})
	} else if err != nil {
		return declined(err)
	}
	switch hi.State {
	case ledger.HoldCaptured:
		return declined(protocol.ErrTxConflict)
	case ledger.HoldActive:
		if _, err := s.led.VoidHold(ctx, holdKey(rec.Key), s.now()); err != nil && !errors.Is(err, ledger.ErrHoldClosed) {
			return declined(fmt.Errorf("wallet: void %s: %w", rec.Key, err))
		}
	}
	r := &protocol.Response{Status: protocol.StatusVoided, Hold: hi.Amount}
	if b, err := s.led.Balance(ctx, walletAccount(rec.UserID)); err == nil {
		r.Balance = &b.Available
	}
	rec.Amount = 0
	out := s.save(ctx, rec, r)
	return out
}
