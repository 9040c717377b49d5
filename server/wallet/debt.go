package wallet

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"campuspay/protocol"
	"campuspay/server/ledger"
)

// Offline debt (issue 17): what settlement could not take from the
// allowance's hold, the balance or the bound card is owed on the ledger
// account debt:<user>. It is repaid from the balance — by the student
// (RepayDebt) and automatically after every top-up — and each repayment
// is a record (kind debt_repay), a line of the student's details.

// KindDebtRepay is the record of an offline debt repaid from the balance.
const KindDebtRepay = "debt_repay"

// Debt returns what the student owes for offline payments.
func (s *Service) Debt(ctx context.Context, id uint32) (int64, error) { return s.debt(ctx, id) }

// debt returns what the student owes for offline payments.
func (s *Service) debt(ctx context.Context, id uint32) (int64, error) {
	b, err := s.led.Balance(ctx, debtAccount(id))
	if err != nil {
		return 0, fmt.Errorf("wallet: debt of %d: %w", id, err)
	}
	return max(0, -b.Posted), nil
}

// RepayDebt pays what the balance covers of the student's offline debt;
// key makes it idempotent (the same key again moves nothing).
func (s *Service) RepayDebt(ctx context.Context, id uint32, key string) (*OfflineView, error) {
	defer s.lockUser(id)()
	owed, err := s.debt(ctx, id)
	if err != nil {
		return nil, err
	}
	rec, err := s.repayDebt(ctx, id, fmt.Sprintf("U:%d:repay:%s", id, key))
	if err != nil {
		return nil, err
	}
	if rec == nil && owed > 0 {
		return nil, protocol.ErrBalanceLow
	}
	return s.offlineView(ctx, id)
}

// finishTopUp records a top-up whose money is in the wallet approved,
// after repaying the debt from it: a crash in between leaves the top-up
// processing, and Recover (or the client's retry) finishes both; a top-up
// answered already repays nothing again. The caller holds the user lock.
func (s *Service) finishTopUp(ctx context.Context, rec *Record) error {
	if err := s.repayAfterTopUp(ctx, rec); err != nil {
		return err
	}
	return s.finish(ctx, rec, protocol.StatusApproved, nil)
}

// repayAfterTopUp repays the debt from the money a top-up brought, under a
// key derived from the top-up's record key ("U:<id>:topup:<idem>" →
// "U:<id>:repay-topup:<idem>", apart from the app's "U:<id>:repay:…").
func (s *Service) repayAfterTopUp(ctx context.Context, topUp *Record) error {
	idem, ok := strings.CutPrefix(topUp.Key, fmt.Sprintf("U:%d:topup:", topUp.UserID))
	if !ok {
		return fmt.Errorf("wallet: top-up key %q", topUp.Key)
	}
	_, err := s.repayDebt(ctx, topUp.UserID, fmt.Sprintf("U:%d:repay-topup:%s", topUp.UserID, idem))
	return err
}

// repayDebt takes what the balance covers of the student's debt, once per
// record key rk: the ledger transfer "repay:<rk>" moves the money, then
// the record rk (approved) shows it. A repeat finds the record, or the
// transfer of a repayment interrupted before its record (which it then
// writes), and moves nothing. It returns nil when nothing was owed or the
// balance had nothing to give. The caller holds the user lock.
func (s *Service) repayDebt(ctx context.Context, id uint32, rk string) (*Record, error) {
	rec, err := s.st.Record(ctx, rk)
	if err != nil || rec != nil {
		return rec, err
	}
	tkey := "repay:" + rk
	t, res, found, err := s.led.Lookup(ctx, tkey)
	if err != nil {
		return nil, fmt.Errorf("wallet: lookup %s: %w", tkey, err)
	}
	var amount int64
	at := s.now()
	if found {
		amount, at = posting(ledger.Entry{Transfer: t, Result: res}, debtAccount(id)), res.At
	} else {
		owed, err := s.debt(ctx, id)
		if err != nil || owed <= 0 {
			return nil, err
		}
		b, err := s.led.Balance(ctx, walletAccount(id))
		if err != nil {
			return nil, fmt.Errorf("wallet: balance of %d: %w", id, err)
		}
		if amount = min(owed, b.Available); amount <= 0 {
			return nil, nil
		}
		_, err = s.led.Post(ctx, ledger.Transfer{Key: tkey, Kind: KindDebtRepay, At: at, Memo: "offline debt repaid",
			Postings: []ledger.Posting{{Account: walletAccount(id), Amount: -amount}, {Account: debtAccount(id), Amount: amount}}})
		if errors.Is(err, ledger.ErrInsufficient) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("wallet: repay debt of %d: %w", id, err)
		}
	}
	rec = &Record{Key: rk, Kind: KindDebtRepay, UserID: id, Amount: amount, Channel: protocol.ChannelBalance,
		Status: protocol.StatusApproved, Created: at, Updated: s.now()}
	if err := s.st.PutRecord(ctx, rec); err != nil {
		return nil, fmt.Errorf("wallet: record %s: %w", rk, err)
	}
	return rec, nil
}
