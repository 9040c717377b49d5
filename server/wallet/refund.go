package wallet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"campuspay/protocol"
	"campuspay/server/bank"
	"campuspay/server/ledger"
	"campuspay/server/wechat"
)

// KindRefund is a back-office refund of part or all of a sale.
const KindRefund = "refund"

// RefundRequest asks for a refund of a completed sale, back through the
// channel that paid it.
type RefundRequest struct {
	Sale   string // the sale's record key (SaleKey for a terminal sale)
	Key    string // idempotency key: 1–64 printable characters, one refund forever
	Amount int64  // cents, ≤ the sale less its earlier refunds
	Reason string // why, shown to the student with WeChat and kept in the record
}

// SaleKey is the record key of a terminal's sale.
func SaleKey(terminal string, tx protocol.TxID) string { return "T:" + terminal + ":" + string(tx) }

// refundInfo is kept in a refund record's Response.
type refundInfo struct {
	Sale   string `json:"sale"`
	Key    string `json:"key"`
	Reason string `json:"reason,omitempty"`
	// ToWallet: the card or WeChat refused the money, so it went to the
	// student's balance.
	ToWallet bool `json:"to_wallet,omitempty"`
}

// refundKey is the record key of the n-th refund of a sale: refunds of
// one sale are a chain read under the sale's lock, so "never more than
// the sale" needs no other index.
func refundKey(sale string, n int) string { return fmt.Sprintf("RF:%s:%d", sale, n) }

// saleOf returns the sale key of a refund record key.
func saleOf(refundRecKey string) string {
	k := strings.TrimPrefix(refundRecKey, "RF:")
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		return k[:i]
	}
	return k
}

func refundHash(key string) string {
	h := sha256.Sum256([]byte("refund\n" + key))
	return hex.EncodeToString(h[:])
}

// Refund refunds part or all of an approved sale (a terminal payment or a
// scan-to-pay) through its channel: the balance (a ledger transfer back),
// the bank card (the bank's refund of the original debit) or WeChat Pay
// (its refund API). An offline payment (the help desk's answer to a
// flagged one) is refunded to the balance, whatever funded it. It is idempotent by r.Key: the same key again returns
// the same refund (finishing it if it was interrupted) and moves nothing
// more; the same key with another amount is REFUND_KEY_CONFLICT. The
// refunds of a sale never exceed it (REFUND_EXCEEDS_SALE), and a reversed
// sale is refused (REFUND_SALE_REVERSED).
//
// Money goes out, so the ledger posts first (merchant → the channel's
// clearing account) and the outside call follows; a definite refusal by
// the card or WeChat sends the money to the student's balance instead. A
// refund whose outside call got no answer stays "processing" and is
// returned with BANK_UNAVAILABLE or WECHAT_UNAVAILABLE: the same call, or
// Recover, finishes it under the same keys.
func (s *Service) Refund(ctx context.Context, r RefundRequest) (*Record, error) {
	switch {
	case r.Amount <= 0 || r.Amount > protocol.MaxAmount:
		return nil, protocol.ErrRefundAmount
	case !bank.ValidKey(r.Key) || r.Sale == "" || len(r.Reason) > 256:
		return nil, protocol.ErrBadRequest
	}
	defer s.txLocks.lock(r.Sale)()
	sale, err := s.st.Record(ctx, r.Sale)
	if err != nil {
		return nil, err
	}
	if sale == nil {
		return nil, protocol.ErrRefundSaleUnknown
	}
	h := refundHash(r.Key)
	var refunded int64
	n := 0
	for ; ; n++ {
		rec, err := s.st.Record(ctx, refundKey(r.Sale, n))
		if err != nil {
			return nil, err
		}
		if rec == nil {
			break
		}
		if rec.ReqHash == h {
			if rec.Amount != r.Amount {
				return nil, protocol.ErrRefundKeyConflict
			}
			return s.refundOutcome(ctx, sale, rec)
		}
		if rec.Status != protocol.StatusDeclined {
			refunded += rec.Amount // approved, or processing: it will be
		}
	}
	// A repeat of an earlier refund was answered above, even if the sale
	// was reversed since (the reversal gave back only the rest).
	if err := refundable(sale); err != nil {
		return nil, err
	}
	if refunded+r.Amount > sale.Amount {
		return nil, protocol.ErrRefundExceedsSale
	}
	now := s.now()
	info, _ := json.Marshal(refundInfo{Sale: r.Sale, Key: r.Key, Reason: r.Reason})
	rec := &Record{Key: refundKey(r.Sale, n), Kind: KindRefund, UserID: sale.UserID, Terminal: sale.Terminal, Tx: sale.Tx,
		Merchant: sale.Merchant, Amount: r.Amount, Channel: sale.Channel, BankCode: sale.BankCode, BankCard: sale.BankCard,
		Status: StatusProcessing, ReqHash: h, Response: info, Created: now, Updated: now}
	if sale.Kind == KindOffline {
		// Funded from several sources (hold, balance, card, debt): given
		// back to the balance, from which completeRefund then repays any
		// debt.
		rec.Channel, rec.BankCode, rec.BankCard = protocol.ChannelBalance, "", ""
	}
	if err := s.st.PutRecord(ctx, rec); err != nil {
		return nil, fmt.Errorf("wallet: record refund %s: %w", rec.Key, err)
	}
	return s.refundOutcome(ctx, sale, rec)
}

// refundable says why a sale cannot be refunded, if it cannot.
func refundable(sale *Record) error {
	switch {
	case sale == nil || sale.Kind == kindTombstone:
		return protocol.ErrRefundSaleUnknown
	case sale.Kind != KindPayment && sale.Kind != KindScanPay && sale.Kind != KindOffline:
		return protocol.ErrRefundNotRefundable
	case sale.Status == protocol.StatusReversed || sale.Status == StatusReversing:
		return protocol.ErrRefundSaleReversed
	case sale.Status != protocol.StatusApproved:
		return protocol.ErrRefundNotRefundable
	}
	return nil
}

// refundOutcome finishes a refund record if it is still processing and
// returns it, or its reason when it was declined.
func (s *Service) refundOutcome(ctx context.Context, sale *Record, rec *Record) (*Record, error) {
	if rec.Status == StatusProcessing {
		if err := s.completeRefund(ctx, sale, rec); err != nil {
			return rec, err
		}
	}
	if rec.Status == protocol.StatusDeclined {
		return rec, reasonOf(rec.Code)
	}
	return rec, nil
}

// completeRefund performs the money steps of a recorded refund; repeatable.
// The caller holds the sale's lock.
func (s *Service) completeRefund(ctx context.Context, sale, rec *Record) error {
	var info refundInfo
	_ = json.Unmarshal(rec.Response, &info)
	a, m := rec.Amount, "refund "+memo(rec)
	var out func() error
	to := walletAccount(rec.UserID)
	switch rec.Channel {
	case protocol.ChannelBalance:
	case protocol.ChannelBankCard:
		to = bankAccount(rec.BankCode)
		out = func() error {
			_, err := s.bank.Refund(ctx, bankKey("rfd", rec.Key), bankKey("pay", sale.Key), rec.BankCode, rec.BankCard, a)
			return bankOutcome(err)
		}
	case protocol.ChannelWeChat:
		if s.wx == nil {
			return protocol.ErrWeChatUnavailable
		}
		to = wechatAccount
		out = func() error {
			_, err := s.wx.Refund(ctx, wechat.RefundRequest{OutTradeNo: string(sale.Tx), OutRefundNo: OutRefundNo(rec.Key),
				TotalFee: sale.Amount, RefundFee: a, Desc: info.Reason})
			switch {
			case err == nil:
				return nil
			case errors.Is(err, wechat.ErrUnavailable), errors.Is(err, wechat.ErrRejected), errors.Is(err, wechat.ErrBadRequest):
				// No answer, or our configuration: the outcome is unknown
				// or fixable, so the refund stays to be finished.
				return fmt.Errorf("%w (%v)", protocol.ErrWeChatUnavailable, err)
			}
			return fmt.Errorf("%w: %w", errRefused, err)
		}
	default:
		return fmt.Errorf("wallet: sale %s has channel %q", sale.Key, rec.Channel)
	}
	toWallet, err := s.giveBack(ctx, rec, a, to, "rfd:"+rec.Key, "rfd-to-wallet:"+rec.Key, m, out)
	if err != nil {
		return err
	}
	if toWallet {
		info.ToWallet = true
		rec.Channel = protocol.ChannelBalance
		rec.Response, _ = json.Marshal(info)
	}
	if sale.Kind == KindOffline {
		// An offline debt is repaid from the money refunded, as after a
		// top-up, before the refund is final: a crash in between is
		// finished by Recover under the same key.
		unlock := s.lockUser(rec.UserID)
		_, err := s.repayDebt(ctx, rec.UserID, fmt.Sprintf("U:%d:repay-refund:%s", rec.UserID, rec.Key))
		unlock()
		if err != nil {
			return err
		}
	}
	return s.finish(ctx, rec, protocol.StatusApproved, nil)
}

// OutRefundNo is the WeChat refund number of a refund record: WeChat
// allows 64 of [0-9A-Za-z_-|*@], so it is derived by hash.
func OutRefundNo(refundRecKey string) string {
	h := sha256.Sum256([]byte(refundRecKey))
	return "RF" + hex.EncodeToString(h[:15])
}

// errRefused marks a definite refusal by the bank or WeChat of money going
// out: nothing moved there.
var errRefused = errors.New("wallet: refused outside")

// bankOutcome sorts a bank error for giveBack.
func bankOutcome(err error) error {
	switch {
	case err == nil:
		return nil
	case bankDefinite(err):
		return fmt.Errorf("%w: %w", errRefused, err)
	}
	return mapBankErr(err)
}

// giveBack moves a cents of rec's sale from its merchant to the account
// "to" — the student's wallet, or the clearing account of the bank or
// WeChat, in which case out then pays the student outside. The ledger
// posts first (under key), so the merchant can never give back more than
// the ledger shows; when out is refused for good (errRefused) the money
// goes from the clearing account to the student's wallet (under
// fallbackKey) instead of being stuck. Every step is idempotent by its key.
// It reports whether the money went to the wallet that way.
func (s *Service) giveBack(ctx context.Context, rec *Record, a int64, to ledger.AccountID, key, fallbackKey, m string, out func() error) (bool, error) {
	if _, err := s.led.Post(ctx, ledger.Transfer{Key: key, Kind: "refund", At: s.now(), Memo: m,
		Postings: []ledger.Posting{{Account: merchantAccount(rec.Merchant), Amount: -a}, {Account: to, Amount: a}}}); err != nil {
		return false, fmt.Errorf("wallet: refund %s: %w", key, err)
	}
	if out == nil {
		return false, nil
	}
	err := out()
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, errRefused) {
		return false, err // unknown: the same keys resume
	}
	who := "card"
	if to == wechatAccount {
		who = "WeChat"
	}
	if _, err := s.led.Post(ctx, ledger.Transfer{Key: fallbackKey, Kind: "refund", At: s.now(), Memo: who + " refused the refund",
		Postings: []ledger.Posting{{Account: to, Amount: -a}, {Account: walletAccount(rec.UserID), Amount: a}}}); err != nil {
		return false, fmt.Errorf("wallet: refund %s to wallet: %w", key, err)
	}
	return true, nil
}

// refundedOf sums the refunds of sale not declined (approved or still
// processing). The caller holds the sale's lock.
func (s *Service) refundedOf(ctx context.Context, sale string) (int64, error) {
	var sum int64
	for n := 0; ; n++ {
		rec, err := s.st.Record(ctx, refundKey(sale, n))
		if err != nil {
			return 0, err
		}
		if rec == nil {
			return sum, nil
		}
		if rec.Status != protocol.StatusDeclined {
			sum += rec.Amount
		}
	}
}

// resumeRefund finishes a refund left processing (Recover).
func (s *Service) resumeRefund(ctx context.Context, rec *Record) error {
	sk := saleOf(rec.Key)
	defer s.txLocks.lock(sk)()
	cur, err := s.st.Record(ctx, rec.Key) // fresh, under the lock
	if err != nil || cur == nil || cur.Status != StatusProcessing {
		return err
	}
	sale, err := s.st.Record(ctx, sk)
	if err != nil {
		return err
	}
	if sale == nil {
		return fmt.Errorf("wallet: refund %s of a missing sale", rec.Key)
	}
	return s.completeRefund(ctx, sale, cur)
}

// RefundInfo returns what a refund record says about itself: the sale, the
// idempotency key, the reason and whether the money went to the wallet.
func RefundInfo(rec *Record) (sale, key, reason string, toWallet bool) {
	var info refundInfo
	_ = json.Unmarshal(rec.Response, &info)
	return info.Sale, info.Key, info.Reason, info.ToWallet
}

// Refunded returns what the refunds of a sale give back (approved or
// still processing), for display.
func (s *Service) Refunded(ctx context.Context, sale string) (int64, error) {
	return s.refundedOf(ctx, sale)
}
