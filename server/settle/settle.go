// Package settle closes a day's books: each merchant's totals per channel
// (balance, bank card, WeChat) from the ledger's lines, written as CSV,
// and the reconciliation of the campus's own record of its money
// movements with the bank's statement and WeChat Pay's bill, listing every
// mismatch — missing on our side, missing on theirs, amount differs —
// rather than only comparing totals.
//
// It is pure logic: the wallet service supplies our side (from the
// ledger), the bank and WeChat adapters supply theirs; a day is a calendar
// day in China time (UTC+8, no daylight saving).
package settle

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"campuspay/protocol"
	"campuspay/server/bank"
	"campuspay/server/wechat"
)

// China is the zone of a settlement day.
var China = time.FixedZone("CST", 8*3600)

// Day returns the bounds [from, to) of date (YYYY-MM-DD) in China time.
func Day(date string) (from, to time.Time, err error) {
	from, err = time.ParseInLocation(time.DateOnly, date, China)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("settle: date %q: want YYYY-MM-DD", date)
	}
	return from, from.AddDate(0, 0, 1), nil
}

// Line is one movement of a merchant's money: a sale (Amount > 0) or a
// refund or reversal (Amount < 0), by the channel that paid it.
type Line struct {
	Merchant string
	Channel  string // protocol.ChannelBalance, ChannelBankCard, ChannelWeChat
	Amount   int64  // cents
	At       time.Time
}

// Total is one merchant's day on one channel.
type Total struct {
	Merchant     string
	MerchantName string
	Channel      string
	Sales        int   // count
	SalesAmount  int64 // cents
	Refunds      int   // count (refunds and reversals)
	RefundAmount int64 // cents, positive
	Net          int64 // SalesAmount - RefundAmount
}

// Totals sums lines per merchant and channel, sorted by merchant then
// channel; names maps merchant IDs to names (may be nil).
func Totals(lines []Line, names map[string]string) []Total {
	type k struct{ m, c string }
	by := map[k]*Total{}
	for _, l := range lines {
		t := by[k{l.Merchant, l.Channel}]
		if t == nil {
			t = &Total{Merchant: l.Merchant, MerchantName: names[l.Merchant], Channel: l.Channel}
			by[k{l.Merchant, l.Channel}] = t
		}
		if l.Amount >= 0 {
			t.Sales++
			t.SalesAmount += l.Amount
		} else {
			t.Refunds++
			t.RefundAmount -= l.Amount
		}
		t.Net += l.Amount
	}
	out := make([]Total, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Merchant != out[j].Merchant {
			return out[i].Merchant < out[j].Merchant
		}
		return out[i].Channel < out[j].Channel
	})
	return out
}

// CSVHeader is the settlement CSV's first line.
var CSVHeader = []string{"date", "merchant", "merchant_name", "channel", "sales", "sales_amount", "refunds", "refund_amount", "net"}

// WriteCSV writes the day's totals, amounts in yuan with two decimals.
func WriteCSV(w io.Writer, date string, totals []Total) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	for _, t := range totals {
		cw.Write([]string{date, t.Merchant, t.MerchantName, t.Channel, strconv.Itoa(t.Sales), protocol.FormatCents(t.SalesAmount),
			strconv.Itoa(t.Refunds), protocol.FormatCents(t.RefundAmount), Yuan(t.Net)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("settle: csv: %w", err)
	}
	return nil
}

// Yuan writes signed cents as yuan with two decimals ("-12.50").
func Yuan(c int64) string {
	if c < 0 {
		return "-" + protocol.FormatCents(-c)
	}
	return protocol.FormatCents(c)
}

// Movement is one money movement with an outside party (the bank, WeChat
// Pay) as one side records it, under the key both sides know.
type Movement struct {
	Key    string
	Amount int64 // cents into the campus: a card debit or WeChat payment positive, a credit or refund negative
	At     time.Time
}

// MismatchKind says how the two sides disagree; the numbers are stable
// (they appear in exported reports).
type MismatchKind int

const (
	MissingTheirs MismatchKind = 1 // we recorded it, the statement does not show it
	MissingOurs   MismatchKind = 2 // the statement shows it, we have no record
	AmountDiffers MismatchKind = 3
)

func (k MismatchKind) String() string {
	switch k {
	case MissingTheirs:
		return "missing_theirs"
	case MissingOurs:
		return "missing_ours"
	case AmountDiffers:
		return "amount_differs"
	}
	return "unknown"
}

// Mismatch is one disagreement.
type Mismatch struct {
	Kind   MismatchKind
	Key    string
	Ours   int64 // net cents by our record (0 when missing ours)
	Theirs int64 // net cents by the statement (0 when missing theirs)
}

// Reconcile compares two sides key by key. Each side's movements under
// one key are netted first, so a movement we posted and compensated (a
// refund the card refused, which went to the wallet instead) expects
// nothing at the bank. The result is sorted by key.
func Reconcile(ours, theirs []Movement) []Mismatch {
	net := func(ms []Movement) map[string]int64 {
		m := map[string]int64{}
		for _, x := range ms {
			m[x.Key] += x.Amount
		}
		return m
	}
	o, t := net(ours), net(theirs)
	var out []Mismatch
	for k, a := range o {
		b, ok := t[k]
		switch {
		case !ok && a != 0:
			out = append(out, Mismatch{Kind: MissingTheirs, Key: k, Ours: a})
		case ok && a != b:
			out = append(out, Mismatch{Kind: AmountDiffers, Key: k, Ours: a, Theirs: b})
		}
	}
	for k, b := range t {
		if _, ok := o[k]; !ok {
			out = append(out, Mismatch{Kind: MissingOurs, Key: k, Theirs: b})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// FromBankStatement turns the bank's statement into movements.
func FromBankStatement(st *bank.Statement) []Movement {
	out := make([]Movement, 0, len(st.Entries))
	for _, e := range st.Entries {
		out = append(out, Movement{Key: e.Key, Amount: e.Signed(), At: e.Time})
	}
	return out
}

// WeChat movement keys: a payment and a reversal by out_trade_no, a
// refund by out_refund_no. Our side (the wallet) uses the same.
func WeChatPayKey(outTradeNo string) string     { return "pay:" + outTradeNo }
func WeChatReverseKey(outTradeNo string) string { return "reverse:" + outTradeNo }
func WeChatRefundKey(outRefundNo string) string { return "refund:" + outRefundNo }

// FromWeChatBill turns WeChat Pay's bill into movements.
func FromWeChatBill(b *wechat.Bill) []Movement {
	out := make([]Movement, 0, len(b.Rows))
	for _, r := range b.Rows {
		switch r.State {
		case wechat.BillSuccess:
			out = append(out, Movement{Key: WeChatPayKey(r.OutTradeNo), Amount: r.Fee, At: r.Time})
		case wechat.BillRevoked:
			out = append(out, Movement{Key: WeChatReverseKey(r.OutTradeNo), Amount: -r.Fee, At: r.Time})
		case wechat.BillRefund:
			out = append(out, Movement{Key: WeChatRefundKey(r.OutRefundNo), Amount: -r.RefundFee, At: r.Time})
		}
	}
	return out
}

// Party is one outside side of the reconciliation.
type Party struct {
	Name string // "bank", "wechat"
	// Ours lists our movements with the party in [from, to).
	Ours func(ctx context.Context, from, to time.Time) ([]Movement, error)
	// Theirs downloads and converts the party's statement of date.
	Theirs func(ctx context.Context, date string) ([]Movement, error)
}

// PartyReport is the reconciliation with one party.
type PartyReport struct {
	Party        string
	Ours, Theirs int   // movements on each side
	OursNet      int64 // cents
	TheirsNet    int64
	Mismatches   []Mismatch
}

// Report is a day's reconciliation.
type Report struct {
	Date    string
	Parties []PartyReport
}

// Mismatches counts the mismatches over all parties.
func (r Report) Mismatches() int {
	n := 0
	for _, p := range r.Parties {
		n += len(p.Mismatches)
	}
	return n
}

// ReconcileDay reconciles date with every party.
func ReconcileDay(ctx context.Context, date string, parties []Party) (Report, error) {
	from, to, err := Day(date)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Date: date}
	for _, p := range parties {
		ours, err := p.Ours(ctx, from, to)
		if err != nil {
			return Report{}, fmt.Errorf("settle: our %s movements: %w", p.Name, err)
		}
		theirs, err := p.Theirs(ctx, date)
		if err != nil {
			return Report{}, fmt.Errorf("settle: %s statement: %w", p.Name, err)
		}
		pr := PartyReport{Party: p.Name, Ours: len(ours), Theirs: len(theirs), Mismatches: Reconcile(ours, theirs)}
		for _, m := range ours {
			pr.OursNet += m.Amount
		}
		for _, m := range theirs {
			pr.TheirsNet += m.Amount
		}
		rep.Parties = append(rep.Parties, pr)
	}
	return rep, nil
}

// WriteMismatchesCSV writes a report's mismatches, one line each.
func WriteMismatchesCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"date", "party", "kind", "key", "ours", "theirs"})
	for _, p := range r.Parties {
		for _, m := range p.Mismatches {
			cw.Write([]string{r.Date, p.Party, m.Kind.String(), m.Key, Yuan(m.Ours), Yuan(m.Theirs)})
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("settle: csv: %w", err)
	}
	return nil
}

// Movements lists one side's movements of [from, to).
type Movements func(ctx context.Context, from, to time.Time) ([]Movement, error)

// StatementSource downloads the bank's statement (bank.HTTPClient).
type StatementSource interface {
	Statement(ctx context.Context, date string) (*bank.Statement, error)
}

// BillSource downloads WeChat Pay's bill (wechat.HTTPClient).
type BillSource interface {
	DownloadBill(ctx context.Context, date string) (*wechat.Bill, error)
}

// BankParty reconciles ours with the bank's statements.
func BankParty(ours Movements, src StatementSource) Party {
	return Party{Name: "bank", Ours: ours, Theirs: func(ctx context.Context, date string) ([]Movement, error) {
		st, err := src.Statement(ctx, date)
		if err != nil {
			return nil, err
		}
		return FromBankStatement(st), nil
	}}
}

// WeChatParty reconciles ours with WeChat Pay's bills.
func WeChatParty(ours Movements, src BillSource) Party {
	return Party{Name: "wechat", Ours: ours, Theirs: func(ctx context.Context, date string) ([]Movement, error) {
		b, err := src.DownloadBill(ctx, date)
		if err != nil {
			return nil, err
		}
		return FromWeChatBill(b), nil
	}}
}
