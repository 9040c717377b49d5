package wallet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	"campuspay/server/settle"
)

// settlePage is how many ledger entries one read of an account takes.
const settlePage = 500

// entriesBetween lists the transfers of account with business time in
// [from, to), newest first: the ledger lists newest first by ID, so the
// walk stops at the first page reaching before from.
func (s *Service) entriesBetween(ctx context.Context, a ledger.AccountID, from, to time.Time) ([]ledger.Entry, error) {
	var out []ledger.Entry
	before := int64(0)
	for {
		es, err := s.led.Transfers(ctx, a, before, settlePage)
		if err != nil {
			return nil, fmt.Errorf("wallet: transfers of %s: %w", a, err)
		}
		older := false
		for _, e := range es {
			at := e.Transfer.At
			if at.Before(from) {
				older = true
				continue
			}
			if at.Before(to) {
				out = append(out, e)
			}
		}
		// Times are the posting authorizer's clock, so a few may be out of
		// ID order: one page past the day's start settles it.
		if len(es) < settlePage || older {
			return out, nil
		}
		before = es[len(es)-1].ID
	}
}

// posting returns the amount account a takes in e.
func posting(e ledger.Entry, a ledger.AccountID) int64 {
	var sum int64
	for _, p := range e.Postings {
		if p.Account == a {
			sum += p.Amount
		}
	}
	return sum
}

// channelOf names the channel of a merchant's transfer by the other leg.
func channelOf(e ledger.Entry, merchant ledger.AccountID) string {
	for _, p := range e.Postings {
		switch a := string(p.Account); {
		case p.Account == merchant:
		case strings.HasPrefix(a, "wallet:"):
			return protocol.ChannelBalance
		case strings.HasPrefix(a, "bank:"):
			return protocol.ChannelBankCard
		case p.Account == wechatAccount:
			return protocol.ChannelWeChat
		case strings.HasPrefix(a, "debt:"):
			return "debt" // an offline overspend neither the balance nor the card covered
		}
	}
	return "other"
}

// SettlementLines lists every movement of the merchants' money in [from,
// to) from the ledger: sales (payments, shower captures) and what was
// given back (reversals, refunds), by channel. merchant "" means every
// merchant.
func (s *Service) SettlementLines(ctx context.Context, merchant string, from, to time.Time) ([]settle.Line, map[string]string, error) {
	ms, err := s.st.Merchants(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("wallet: merchants: %w", err)
	}
	names := map[string]string{}
	var lines []settle.Line
	for _, m := range ms {
		if merchant != "" && m.ID != merchant {
			continue
		}
		names[m.ID] = m.Name
		acct := merchantAccount(m.ID)
		es, err := s.entriesBetween(ctx, acct, from, to)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range es {
			if a := posting(e, acct); a != 0 {
				lines = append(lines, settle.Line{Merchant: m.ID, Channel: channelOf(e, acct), Amount: a, At: e.Transfer.At})
			}
		}
	}
	if merchant != "" && len(names) == 0 {
		return nil, nil, protocol.ErrMerchantUnknown
	}
	return lines, names, nil
}

// bankKeyPrefixes maps the ledger's key prefixes of transfers with a bank
// to the prefix of the bank movement's key (bankKey) that goes with them;
// a compensating transfer shares its movement's key, so the two net out.
var bankKeyPrefixes = []struct{ ledger, bank string }{
	{"paycard:", "pay"}, {"offcard:", "off"}, {"topup:", "tu"}, {"withdraw-undo:", "wd"}, {"withdraw:", "wd"},
	{"refund-to-wallet:", "rf"}, {"refund:", "rf"}, {"rfd-to-wallet:", "rfd"}, {"rfd:", "rfd"},
}

// BankMovements lists our movements with the banks in [from, to), from the
// ledger's bank clearing accounts, keyed as the bank knows them.
func (s *Service) BankMovements(ctx context.Context, from, to time.Time) ([]settle.Movement, error) {
	var out []settle.Movement
	codes := append([]string(nil), s.cfg.SupportedBanks...)
	sort.Strings(codes)
	for _, code := range codes {
		acct := bankAccount(code)
		es, err := s.entriesBetween(ctx, acct, from, to)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			key := "ledger:" + e.Transfer.Key // not a movement we know how to name
			for _, p := range bankKeyPrefixes {
				if rest, ok := strings.CutPrefix(e.Transfer.Key, p.ledger); ok {
					key = bankKey(p.bank, rest)
					break
				}
			}
			out = append(out, settle.Movement{Key: key, Amount: -posting(e, acct), At: e.Transfer.At})
		}
	}
	return out, nil
}

// WeChatMovements lists our movements with WeChat Pay in [from, to), from
// the ledger's WeChat clearing account, keyed as WeChat's bill names them.
func (s *Service) WeChatMovements(ctx context.Context, from, to time.Time) ([]settle.Movement, error) {
	es, err := s.entriesBetween(ctx, wechatAccount, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]settle.Movement, 0, len(es))
	for _, e := range es {
		k, key := e.Transfer.Key, "ledger:"+e.Transfer.Key
		switch {
		case strings.HasPrefix(k, "rfd-to-wallet:"):
			key = settle.WeChatRefundKey(OutRefundNo(strings.TrimPrefix(k, "rfd-to-wallet:")))
		case strings.HasPrefix(k, "rfd:"):
			key = settle.WeChatRefundKey(OutRefundNo(strings.TrimPrefix(k, "rfd:")))
		case strings.HasPrefix(k, "pay:"), strings.HasPrefix(k, "refund:"):
			pre, rk, _ := strings.Cut(k, ":")
			rec, err := s.st.Record(ctx, rk)
			if err != nil {
				return nil, fmt.Errorf("wallet: record of %s: %w", k, err)
			}
			if rec != nil && pre == "pay" {
				key = settle.WeChatPayKey(string(rec.Tx))
			} else if rec != nil {
				key = settle.WeChatReverseKey(string(rec.Tx))
			}
		}
		out = append(out, settle.Movement{Key: key, Amount: -posting(e, wechatAccount), At: e.Transfer.At})
	}
	return out, nil
}
