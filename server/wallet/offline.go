package wallet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"campuspay/protocol"
	"campuspay/server/bank"
	"campuspay/server/ledger"
)

// Settlement of offline payments (issue 17). A terminal that accepted a
// code offline uploads it as an offline journal entry; the authorizer
// verifies the code and its allowance again (at the entry's time, the
// terminal's corrected clock when it accepted) and charges the student:
// first the allowance's hold, then the balance, then the whole rest from
// the bound bank card; what none of them covers is recorded as a debt
// (ledger account debt:<user>) and the merchant is paid in full either
// way — the terminal handed the goods over.
//
// The settlement is one record ("O:<terminal>:<tx>", kind offline) whose
// plan (how much from each source) is written before any money moves, so
// that a retry after a crash, a duplicate upload or Recover resumes the
// same plan; every money step is idempotent by a key derived from the
// record's. A code settled twice (a screenshot accepted by two offline
// terminals, or used online and shown again offline within its validity)
// is charged both times — the student's device signed it and the risk
// bound covers it — and the later record is marked CODE_ALREADY_USED and
// flagged code_replayed for the back office; a code made after its
// device's revocation is flagged after_revoke (offlineflags.go).

// offlinePlan is how one offline payment is funded; stored as the
// record's Response.
type offlinePlan struct {
	Allowance   uint32 `json:"allowance"`
	Hold        string `json:"hold,omitempty"` // the allowance hold captured
	FromHold    int64  `json:"from_hold"`
	FromBalance int64  `json:"from_balance"`
	FromCard    int64  `json:"from_card"`
	Debt        int64  `json:"debt"`
	Replay      bool   `json:"replay,omitempty"` // the code was used before: settled under another record, or online
	// Flags for the back office (offlineflags.go): after_revoke, code_replayed.
	Flags []string `json:"flags,omitempty"`
}

func (p *offlinePlan) channel() string {
	switch {
	case p.Debt > 0:
		return ChannelDebt
	case p.FromCard > 0:
		return protocol.ChannelBankCard
	}
	return protocol.ChannelBalance
}

// OfflinePlanOf reads the funding of a settled offline record: what came
// from the allowance hold, the balance, the bank card and what became debt.
func OfflinePlanOf(r *Record) (fromHold, fromBalance, fromCard, debt int64, ok bool) {
	var p offlinePlan
	if r.Kind != KindOffline || json.Unmarshal(r.Response, &p) != nil {
		return 0, 0, 0, 0, false
	}
	return p.FromHold, p.FromBalance, p.FromCard, p.Debt, true
}

func offlineKey(terminal string, tx protocol.TxID) string { return "O:" + terminal + ":" + string(tx) }

// settleOffline settles one offline journal entry. It returns the reason
// an entry is refused for good, or retry when it cannot be settled now
// (storage, the bank): the terminal sends it again.
func (s *Service) settleOffline(ctx context.Context, t *Terminal, e *protocol.JournalEntry) (why *protocol.Reason, retry bool) {
	key := offlineKey(t.ID, e.Tx)
	defer s.txLocks.lock(key)()
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\n%d", e.Cred, e.Amount)))
	h := hex.EncodeToString(sum[:])
	rec, err := s.st.Record(ctx, key)
	if err != nil {
		return nil, true
	}
	if rec != nil {
		switch {
		case rec.Kind != KindOffline || rec.ReqHash != h:
			return protocol.ErrTxConflict, false
		case rec.Status == protocol.StatusApproved:
			return nil, false // a duplicate upload: charged once
		}
		return s.resumeOffline(ctx, rec)
	}
	code, al, err := s.checkOffline(ctx, t, e)
	if err != nil {
		if r := protocol.AsReason(err); r != protocol.ErrInternal {
			return r, false
		}
		return nil, true
	}
	defer s.lockUser(al.UserID)()
	u, err := s.st.User(ctx, al.UserID)
	if err != nil {
		return nil, true
	}
	now := s.now()
	p, err := s.planOffline(ctx, u, al, e.Amount, false)
	if err != nil {
		return nil, true
	}
	if p.Flags, err = s.offlineFlags(ctx, code, e); err != nil {
		return nil, true
	}
	rec = &Record{Key: key, Kind: KindOffline, UserID: u.ID, Terminal: t.ID, Tx: e.Tx, Merchant: t.Merchant,
		Amount: e.Amount, ReqHash: h, Status: StatusProcessing, Created: e.At, Updated: now}
	if p.FromCard > 0 {
		rec.BankCode, rec.BankCard = u.BankCode, u.BankCard
	}
	if slices.Contains(p.Flags, FlagCodeReplayed) { // used online before
		p.Replay, rec.Code = true, protocol.ErrCodeUsed.Code
	}
	setPlan(rec, p)
	// The mark outlives any settlement: an allowance's entries arrive at
	// most HoldTTL after its end.
	use := CodeUse{ID: code.ID(), Expires: al.ValidUntil.Add(s.cfg.HoldTTL), Now: now}
	owner, err := s.st.PutIntent(ctx, rec, &use, nil)
	if err != nil {
		return nil, true
	}
	if owner != key { // settled before under another record
		p.Replay, rec.Code = true, protocol.ErrCodeUsed.Code
		p.Flags = addFlag(p.Flags, FlagCodeReplayed)
		setPlan(rec, p)
		if err := s.st.PutRecord(ctx, rec); err != nil {
			return nil, true
		}
	}
	return s.runOffline(ctx, u, al, rec, p)
}

// checkOffline verifies an offline entry's code and allowance as of the
// entry's time.
func (s *Service) checkOffline(ctx context.Context, t *Terminal, e *protocol.JournalEntry) (*protocol.Code, *Allowance, error) {
	if t.Mode == protocol.ModeShower {
		return nil, nil, protocol.ErrUnsupportedOp
	}
	if e.At.After(s.now().Add(protocol.MaxClockSkew)) {
		return nil, nil, protocol.ErrRequestTime
	}
	c, err := protocol.VerifyCodeWith(e.Cred, s.issuer, e.At, protocol.PurposePay, s.codes)
	if err != nil {
		return nil, nil, err
	}
	a := c.Cert.Allowance
	switch {
	case a == nil || !a.Offline:
		return nil, nil, protocol.ErrOfflineNotAllowed
	case !e.At.Before(a.ValidUntil):
		return nil, nil, protocol.ErrOfflineExpired
	case e.Amount > a.Amount:
		return nil, nil, protocol.ErrOfflineExceeded
	}
	al, err := s.st.Allowance(ctx, a.ID)
	if errors.Is(err, protocol.ErrNotFound) {
		return nil, nil, protocol.ErrOfflineInvalid
	} else if err != nil {
		return nil, nil, fmt.Errorf("wallet: allowance %d: %w", a.ID, err)
	}
	if al.UserID != c.Cert.UserID || al.DeviceID != c.Cert.DeviceID || al.Amount != a.Amount || !al.ValidUntil.Equal(a.ValidUntil) {
		return nil, nil, protocol.ErrOfflineInvalid
	}
	return c, al, nil
}

// planOffline decides how amount is funded: the allowance's hold (unless
// noHold), the balance, then the rest from the bound card, else debt. The
// caller holds the user lock.
func (s *Service) planOffline(ctx context.Context, u *User, al *Allowance, amount int64, noHold bool) (offlinePlan, error) {
	p := offlinePlan{Allowance: al.ID}
	rest := amount
	if !noHold {
		key, hi, err := s.allowanceHold(ctx, al)
		if err != nil {
			return p, err
		}
		if key != "" {
			p.Hold, p.FromHold = key, min(rest, hi.Amount)
			rest -= p.FromHold
		}
	}
	if rest > 0 {
		b, err := s.led.Balance(ctx, walletAccount(u.ID))
		if err != nil {
			return p, fmt.Errorf("wallet: balance: %w", err)
		}
		p.FromBalance = min(rest, max(0, b.Available))
		rest -= p.FromBalance
	}
	if rest > 0 && u.BankCard != "" {
		p.FromCard = rest
	} else {
		p.Debt = rest
	}
	return p, nil
}

func setPlan(rec *Record, p offlinePlan) {
	rec.Response, _ = json.Marshal(p)
	rec.Channel = p.channel()
}

// resumeOffline continues a settlement left processing (a crash, the bank).
func (s *Service) resumeOffline(ctx context.Context, rec *Record) (*protocol.Reason, bool) {
	var p offlinePlan
	if err := json.Unmarshal(rec.Response, &p); err != nil {
		return nil, true
	}
	al, err := s.st.Allowance(ctx, p.Allowance)
	if err != nil {
		return nil, true
	}
	defer s.lockUser(rec.UserID)()
	u, err := s.st.User(ctx, rec.UserID)
	if err != nil {
		return nil, true
	}
	if cur, err := s.st.Record(ctx, rec.Key); err != nil || cur == nil {
		return nil, true
	} else if cur.Status == protocol.StatusApproved {
		return nil, false
	}
	return s.runOffline(ctx, u, al, rec, p)
}

// runOffline performs the plan's money steps, each idempotent by its key;
// a source that turns out not to cover its part passes it down (hold →
// balance → card → debt) with the plan saved first. The caller holds the
// user lock.
func (s *Service) runOffline(ctx context.Context, u *User, al *Allowance, rec *Record, p offlinePlan) (*protocol.Reason, bool) {
	now := s.now()
	m := merchantAccount(rec.Merchant)
	save := func() bool {
		setPlan(rec, p)
		rec.Updated = s.now()
		return s.st.PutRecord(ctx, rec) == nil
	}
	if p.FromHold > 0 {
		_, _, err := s.led.CaptureHold(ctx, p.Hold, p.FromHold, m, "offline "+memo(rec), now)
		switch {
		case errors.Is(err, ledger.ErrHoldClosed), errors.Is(err, ledger.ErrHoldNotFound), errors.Is(err, ledger.ErrOverCapture):
			// The hold ended before this capture (it expired, or the
			// allowance was released, between the plan and a retry):
			// nothing moved yet, so the payment is planned again without it.
			np, err := s.planOffline(ctx, u, al, rec.Amount, true)
			if err != nil {
				return nil, true
			}
			np.Replay, np.Flags = p.Replay, p.Flags
			if p = np; !save() {
				return nil, true
			}
		case err != nil:
			return nil, true
		default:
			if _, _, err := s.allowanceHold(ctx, al); err != nil { // the remainder's hold
				return nil, true
			}
		}
	}
	if p.FromBalance > 0 {
		_, err := s.led.Post(ctx, ledger.Transfer{Key: "offline:" + rec.Key, Kind: "payment", At: now, Memo: memo(rec),
			Postings: []ledger.Posting{{Account: walletAccount(u.ID), Amount: -p.FromBalance}, {Account: m, Amount: p.FromBalance}}})
		switch {
		case errors.Is(err, ledger.ErrInsufficient):
			if u.BankCard != "" {
				p.FromCard += p.FromBalance
				rec.BankCode, rec.BankCard = u.BankCode, u.BankCard
			} else {
				p.Debt += p.FromBalance
			}
			if p.FromBalance = 0; !save() {
				return nil, true
			}
		case err != nil:
			return nil, true
		}
	}
	if p.FromCard > 0 {
		_, err := s.bank.Debit(ctx, bankKey("off", rec.Key), rec.BankCode, rec.BankCard, p.FromCard)
		switch {
		case err == nil:
			if _, err := s.led.Post(ctx, ledger.Transfer{Key: "offcard:" + rec.Key, Kind: "payment", At: now, Memo: memo(rec),
				Postings: []ledger.Posting{{Account: bankAccount(rec.BankCode), Amount: -p.FromCard}, {Account: m, Amount: p.FromCard}}}); err != nil {
				return nil, true
			}
		case errors.Is(err, bank.ErrInsufficientFunds) || bankDefinite(err):
			p.Debt += p.FromCard
			if p.FromCard = 0; !save() {
				return nil, true
			}
		default:
			return nil, true // the bank did not answer: the same debit key next time
		}
	}
	if p.Debt > 0 {
		if _, err := s.led.Post(ctx, ledger.Transfer{Key: "offdebt:" + rec.Key, Kind: "payment", At: now, Memo: "debt " + memo(rec),
			Postings: []ledger.Posting{{Account: debtAccount(u.ID), Amount: -p.Debt}, {Account: m, Amount: p.Debt}}}); err != nil {
			return nil, true
		}
	}
	rec.Status = protocol.StatusApproved
	if !save() {
		return nil, true
	}
	return nil, false
}

// recoverOffline finishes an offline settlement Recover found unfinished.
func (s *Service) recoverOffline(ctx context.Context, rec *Record) error {
	defer s.txLocks.lock(rec.Key)()
	if why, retry := s.resumeOffline(ctx, rec); retry {
		return fmt.Errorf("wallet: offline settlement %s: %w", rec.Key, protocol.ErrBankUnavailable)
	} else if why != nil {
		return why
	}
	return nil
}
