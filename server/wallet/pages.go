package wallet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
)

// What the web wallet's own pages read: the monthly statement with the
// balance after each line, the shower history, and the merchant behind a
// scanned static QR.

// MaxStatementLines bounds one month of a student's records.
const MaxStatementLines = 2000

// Month returns the Shanghai calendar month containing t: [from, to).
func Month(t time.Time) (from, to time.Time) {
	l := t.In(Shanghai)
	from = time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, Shanghai)
	return from, from.AddDate(0, 1, 0)
}

// StatementLine is one record with the wallet balance after it.
type StatementLine struct {
	Record
	// BalanceAfter is the wallet's posted balance after the record's last
	// movement of the wallet (a refund included); for a line that moved
	// no wallet money (bank card, WeChat, declined), the balance after
	// the line before it.
	BalanceAfter int64
	// Refunded is what a reversal gave back (a "refund:" transfer of the
	// record); 0 for a reversal of a payment that never took money.
	Refunded int64
}

// Statement is a student's records created in [From, To), oldest first.
type Statement struct {
	From, To time.Time
	Opening  int64 // posted balance at From
	Closing  int64 // posted balance at To (now, for the current month)
	Lines    []StatementLine
}

// recordKeyOf returns the record key a wallet ledger transfer belongs to:
// the keys are "<step>:<record key>" ("pay:", "paycard:", "topup:",
// "withdraw:", "withdraw-undo:", "refund:", "refund-to-wallet:") and, for
// a shower, ledger.CaptureKey(holdKey(record key)).
func recordKeyOf(transferKey string) string {
	if k, ok := strings.CutPrefix(transferKey, ledger.CaptureKey(holdKey(""))); ok {
		return k
	}
	_, k, _ := strings.Cut(transferKey, ":")
	return k
}

// Statement returns user's records created in [from, to) with the
// balance after each, read back from the ledger: it walks the wallet
// account's transfers from the newest back to from.
func (s *Service) Statement(ctx context.Context, user uint32, from, to time.Time) (*Statement, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("statement %v..%v: %w", from, to, protocol.ErrBadRequest)
	}
	recs, err := s.st.RecordsBetween(ctx, user, from, to, MaxStatementLines)
	if err != nil {
		return nil, err
	}
	acct := walletAccount(user)
	b, err := s.led.Balance(ctx, acct)
	if err != nil {
		return nil, fmt.Errorf("wallet: statement of %d: %w", user, err)
	}
	after := map[string]int64{} // record key → balance after its newest transfer
	bal := b.Posted             // balance after the entry being looked at
	opening, closing := int64(0), int64(0)
	closed := false
	var before int64
walk:
	for {
		es, err := s.led.Transfers(ctx, acct, before, 500)
		if err != nil {
			return nil, fmt.Errorf("wallet: statement of %d: %w", user, err)
		}
		for _, e := range es {
			if !closed && e.Result.At.Before(to) {
				closing, closed = bal, true
			}
			if e.Result.At.Before(from) {
				opening = bal
				break walk
			}
			if k := recordKeyOf(e.Transfer.Key); k != "" {
				if _, seen := after[k]; !seen {
					after[k] = bal
				}
			}
			for _, p := range e.Postings {
				if p.Account == acct {
					bal -= p.Amount
				}
			}
			before = e.ID
		}
		if len(es) < 500 {
			opening = bal // the wallet's first transfer is inside the month
			break
		}
	}
	if !closed {
		closing = opening
	}
	st := &Statement{From: from, To: to, Opening: opening, Closing: closing, Lines: make([]StatementLine, len(recs))}
	run := opening
	for i, r := range recs {
		if a, ok := after[r.Key]; ok {
			run = a
		}
		st.Lines[i] = StatementLine{Record: r, BalanceAfter: run}
		if r.Status == protocol.StatusReversed {
			_, _, found, err := s.led.Lookup(ctx, "refund:"+r.Key)
			if err != nil {
				return nil, fmt.Errorf("wallet: statement of %d: refund of %s: %w", user, r.Key, err)
			}
			if found {
				st.Lines[i].Refunded = r.Amount
			}
		}
	}
	return st, nil
}

// ShowerHistory returns user's showers created in [from, to), newest
// first: litres metered (Record.ML), the charge (Amount once captured; the
// hold while still held) and the outcome.
func (s *Service) ShowerHistory(ctx context.Context, user uint32, from, to time.Time) ([]Record, error) {
	recs, err := s.st.RecordsBetween(ctx, user, from, to, MaxStatementLines)
	if err != nil {
		return nil, err
	}
	var out []Record
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Kind == KindShower {
			out = append(out, recs[i])
		}
	}
	return out, nil
}

// ScanTarget is what a static merchant QR names, as the student should see
// it before typing the payment password.
type ScanTarget struct {
	Merchant Merchant
	Terminal Terminal
	Campus   string // the campus's name ("云谷"), the ID if it has none
}

// ResolveMerchantQR verifies a scanned static merchant QR and names its
// merchant, terminal and campus. A code not signed by this authorizer is
// MERCHANT_QR_INVALID; a signed one for a terminal or merchant no longer
// registered (or moved to another merchant) says which.
func (s *Service) ResolveMerchantQR(ctx context.Context, qr string) (*ScanTarget, error) {
	t, err := s.qrTerminal(ctx, qr)
	if err != nil {
		return nil, err
	}
	mer, err := s.st.Merchant(ctx, t.Merchant)
	if err != nil {
		return nil, err
	}
	return &ScanTarget{Merchant: *mer, Terminal: *t, Campus: s.CampusName(t.Campus)}, nil
}

// qrTerminal verifies a static merchant QR and returns its terminal.
func (s *Service) qrTerminal(ctx context.Context, qr string) (*Terminal, error) {
	m, err := protocol.VerifyMerchantQR(protocol.Trim(qr), s.issuer)
	if err != nil {
		return nil, protocol.ErrMerchantQRInvalid
	}
	t, err := s.st.Terminal(ctx, m.Terminal)
	if err != nil {
		return nil, err
	}
	if t.Merchant != m.Merchant {
		return nil, fmt.Errorf("terminal %s moved from %s to %s: %w", t.ID, m.Merchant, t.Merchant, protocol.ErrMerchantUnknown)
	}
	return t, nil
}

// TerminalNames maps the terminals that have a name to it.
func (s *Service) TerminalNames(ctx context.Context) (map[string]string, error) {
	ts, err := s.st.Terminals(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ts))
	for _, t := range ts {
		if t.Name != "" {
			out[t.ID] = t.Name
		}
	}
	return out, nil
}

// Showers reports whether a campus has showers (rule 7: today 云谷 only).
func (s *Service) Showers(campus string) bool { return s.cfg.Campuses[campus].Showers }

// CampusName names a campus, its ID if the config gives no name.
func (s *Service) CampusName(id string) string {
	if c, ok := s.cfg.Campuses[id]; ok && c.Name != "" {
		return c.Name
	}
	return id
}

// recordML keeps the water a captured shower metered, for the history.
func (s *Service) recordML(ctx context.Context, rec *Record, ml int64) error {
	if ml <= 0 || rec.ML == ml {
		return nil
	}
	if err := s.st.SetRecordML(ctx, rec.Key, ml); err != nil {
		return err
	}
	rec.ML = ml
	return nil
}
