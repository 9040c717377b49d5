package wallet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"campuspay/protocol"
)

// RecoverAfter is how long a transaction may stay processing or pending
// before Recover settles it: well past a terminal's authorisation deadline
// and its polling of a pending payment.
const RecoverAfter = 10 * time.Minute

// Recover settles transactions left unfinished longer than olderThan — by
// a crash, a bank or WeChat outage, or a client that never came back. The
// serve loop calls it at start and then periodically.
//
//   - A top-up or withdrawal the student asked for is completed (its steps
//     are repeated under their keys, so nothing happens twice).
//   - A scan-to-pay payment the student confirmed with the password is
//     completed and noticed to its terminal.
//   - A terminal payment still in doubt is reversed: its terminal gave up on
//     it long ago (and reverses it itself when it can), so completing it
//     would charge for goods not handed over. A balance payment whose
//     transfer is posted is not in doubt: the transfer is its commit point
//     (HandleRequestFirst may have answered it approved before its record's
//     final write), so it is completed as approved; a terminal that got no
//     answer reverses it itself.
//   - A reversal whose refund is still owed (the bank or WeChat did not
//     answer) is finished.
//   - A shower hold never confirmed to the terminal is voided.
//   - A back-office refund whose bank or WeChat step got no answer is
//     finished under the same keys.
//
// Each record that stays unfinished (the bank still unavailable) is tried
// again next time. It returns how many records it settled.
func (s *Service) Recover(ctx context.Context, olderThan time.Duration) (int, error) {
	recs, err := s.st.Unfinished(ctx, s.now().Add(-olderThan), 500)
	if err != nil {
		return 0, fmt.Errorf("wallet: recover: %w", err)
	}
	var errs []error
	n := 0
	for i := range recs {
		rec := &recs[i]
		if err := s.recoverOne(ctx, rec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rec.Key, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (s *Service) recoverOne(ctx context.Context, rec *Record) error {
	switch rec.Kind {
	case KindPayment, KindShower:
		if done, err := s.recoverApproved(ctx, rec); done || err != nil {
			return err
		}
		op := protocol.OpReverse
		if rec.Kind == KindShower {
			op = protocol.OpVoid
		}
		r := s.HandleRequest(ctx, &protocol.Request{V: protocol.Version, Op: op, Tx: rec.Tx, Terminal: rec.Terminal})
		if r.Status != protocol.StatusReversed && r.Status != protocol.StatusVoided {
			return r.Reason()
		}
		return nil
	case KindRefund: // under the sale's lock, not the user's
		return s.resumeRefund(ctx, rec)
	case KindOffline: // owed for goods handed over: completed, never reversed
		return s.recoverOffline(ctx, rec)
	}
	defer s.lockUser(rec.UserID)()
	cur, err := s.st.Record(ctx, rec.Key) // fresh, under the lock
	if err != nil || cur == nil {
		return err
	}
	if cur.Status != StatusProcessing && cur.Status != protocol.StatusPending {
		return nil // finished meanwhile
	}
	switch cur.Kind {
	case KindTopUp:
		_, err = s.completeTopUp(ctx, cur)
	case KindWithdraw:
		_, err = s.completeWithdraw(ctx, cur)
	case KindScanPay:
		var u *User
		if u, err = s.st.User(ctx, cur.UserID); err != nil {
			return err
		}
		if werr := active(u); werr != nil { // cancelled meanwhile: give back, decline
			if err := s.settleClosed(ctx, cur); err != nil {
				return err
			}
			if err := s.finish(ctx, cur, protocol.StatusDeclined, werr); err != werr {
				return err
			}
			return nil // settled as declined
		}
		if _, _, err = s.fund(ctx, u, cur); errors.Is(err, errPending) {
			return protocol.ErrBankUnavailable
		}
		if err != nil {
			if protocol.AsReason(err) == protocol.ErrInternal {
				return err
			}
			return s.finish(ctx, cur, protocol.StatusDeclined, err)
		}
		if err = s.finish(ctx, cur, protocol.StatusApproved, nil); err == nil {
			s.notice(cur.Terminal)
		}
	default:
		return fmt.Errorf("unknown kind %q", cur.Kind)
	}
	var r *protocol.Reason
	if errors.As(err, &r) && r != protocol.ErrBankUnavailable && r != protocol.ErrInternal {
		return nil // settled as declined
	}
	return err
}

// recoverApproved completes a processing balance payment whose ledger
// transfer is posted, as the terminal's query would; done is false when
// rec is not one.
func (s *Service) recoverApproved(ctx context.Context, rec *Record) (done bool, err error) {
	if rec.Kind != KindPayment || rec.Status != StatusProcessing || rec.Channel != protocol.ChannelBalance {
		return false, nil
	}
	for _, k := range []struct {
		key  string
		want bool
	}{
		{"pay:" + rec.Key, true},
		// A reversal that refunded it but crashed before its record:
		// finished as the reversal it was.
		{"refund:" + rec.Key, false},
	} {
		if _, _, posted, err := s.led.Lookup(ctx, k.key); err != nil {
			return false, fmt.Errorf("wallet: lookup %s: %w", k.key, err)
		} else if posted != k.want {
			return false, nil
		}
	}
	r := s.HandleRequest(ctx, &protocol.Request{V: protocol.Version, Op: protocol.OpQuery, Tx: rec.Tx, Terminal: rec.Terminal})
	if r.Code == protocol.ErrInternal.Code {
		return true, r.Reason() // still processing: tried again next time
	}
	switch r.Status {
	case protocol.StatusApproved, protocol.StatusReversed, protocol.StatusDeclined:
		return true, nil // finished: approved, or settled as a reversal for a wallet closed meanwhile
	}
	if why := r.Reason(); why != nil {
		return true, why
	}
	return true, fmt.Errorf("wallet: recover %s: still %s", rec.Key, r.Status)
}
