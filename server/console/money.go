package console

// The money half of the back office: sales and their refunds (finance),
// each day's settlement per merchant and channel with its CSV (finance,
// and a merchant manager for their own merchant), and the reconciliation
// with the bank's statement and WeChat's bill (finance).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"campuspay/protocol"
	"campuspay/server/operator"
	"campuspay/server/settle"
	"campuspay/server/wallet"
)

// settleRoles see a day's settlement; a merchant manager only their own.
var settleRoles = []operator.Role{operator.RoleAdmin, operator.RoleFinance, operator.RoleMerchant}

func init() {
	addRoutes(
		Route{"GET", "/sales", settleRoles, (*Console).sales},
		Route{"POST", "/refunds", finance, (*Console).refund},
		Route{"GET", "/settlement/{day}", settleRoles, (*Console).settlement},
		Route{"GET", "/settlement/{day}/csv", settleRoles, (*Console).settlementCSV},
		Route{"GET", "/reconciliation/{day}", finance, (*Console).reconciliation},
	)
}

// SaleRow is a transaction as the refund page lists it.
type SaleRow struct {
	ID         int64     `json:"id"`
	Key        string    `json:"key"` // what a refund names
	Created    time.Time `json:"created"`
	Kind       string    `json:"kind"`
	StudentNo  string    `json:"student_no,omitempty"`
	Terminal   string    `json:"terminal,omitempty"`
	Merchant   string    `json:"merchant,omitempty"`
	Tx         string    `json:"tx,omitempty"`
	Amount     int64     `json:"amount"`
	Channel    string    `json:"channel,omitempty"`
	Status     string    `json:"status"`
	Refunded   int64     `json:"refunded"`   // cents given back by refunds so far
	Refundable bool      `json:"refundable"` // an approved sale with something left
}

// salesList is one page of sales, newest first.
type salesList struct {
	Sales      []SaleRow `json:"sales"`
	NextBefore int64     `json:"next_before,omitempty"`
}

// Sales lists transactions newest first (one student's, by student number,
// or everyone's), each sale with what was refunded of it.
func (a *Actions) Sales(ctx context.Context, studentNo string, before int64, limit int) (*salesList, error) {
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	var recs []wallet.Record
	var err error
	nos := map[uint32]string{}
	if studentNo != "" {
		u, err := a.user(ctx, studentNo)
		if err != nil {
			return nil, err
		}
		nos[u.ID] = u.StudentNo
		recs, err = a.Svc.Transactions(ctx, u.ID, before, limit)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
		}
	} else if recs, err = a.Svc.AllTransactions(ctx, before, limit); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	out := &salesList{Sales: make([]SaleRow, 0, len(recs))}
	for _, r := range recs {
		row := SaleRow{ID: r.ID, Key: r.Key, Created: r.Created, Kind: r.Kind, Terminal: r.Terminal, Merchant: r.Merchant,
			Tx: string(r.Tx), Amount: r.Amount, Channel: r.Channel, Status: string(r.Status)}
		if r.UserID != 0 {
			if _, ok := nos[r.UserID]; !ok {
				if u, err := a.Store.User(ctx, r.UserID); err == nil {
					nos[r.UserID] = u.StudentNo
				}
			}
			row.StudentNo = nos[r.UserID]
		}
		if (r.Kind == wallet.KindPayment || r.Kind == wallet.KindScanPay || r.Kind == wallet.KindOffline) && r.Status == protocol.StatusApproved {
			if row.Refunded, err = a.Svc.Refunded(ctx, r.Key); err != nil {
				return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
			}
			row.Refundable = row.Refunded < r.Amount
		}
		out.Sales = append(out.Sales, row)
	}
	if len(recs) == limit {
		out.NextBefore = recs[len(recs)-1].ID
	}
	return out, nil
}

func (c *Console) sales(r *Request) (any, error) {
	q := r.URL.Query()
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	limit, _ := strconv.Atoi(q.Get("limit"))
	no := strings.TrimSpace(q.Get("student"))
	if len(no) > 64 {
		return nil, protocol.ErrSearchInvalid
	}
	if r.Op.Role == operator.RoleMerchant {
		// A merchant manager sees their own merchant's sales, and not
		// who bought: no student search, no student numbers.
		if no != "" {
			return nil, protocol.ErrForbidden
		}
		list, err := c.act.Sales(r.Context(), "", before, limit)
		if err != nil {
			return nil, err
		}
		own := list.Sales[:0]
		for _, row := range list.Sales {
			if row.Merchant == r.Op.Merchant {
				row.StudentNo, row.Refundable = "", false
				own = append(own, row)
			}
		}
		list.Sales = own
		return list, nil
	}
	return c.act.Sales(r.Context(), no, before, limit)
}

// RefundBody asks for a refund.
type RefundBody struct {
	Sale   string `json:"sale"`   // the sale's key (SaleRow.Key)
	Key    string `json:"key"`    // idempotency key: the page makes one per refund dialog
	Amount int64  `json:"amount"` // cents
	Reason string `json:"reason"`
}

// RefundView is a refund as the console shows it.
type RefundView struct {
	ID       int64  `json:"id"`
	Sale     string `json:"sale"`
	Amount   int64  `json:"amount"`
	Channel  string `json:"channel"`
	Status   string `json:"status"`
	ToWallet bool   `json:"to_wallet"` // the card or WeChat refused: paid to the balance
	Refunded int64  `json:"refunded"`  // the sale's refunds now, this one included
}

// Refund refunds part or all of a sale (wallet.Service.Refund) with a
// reason, and audits it ("sale.refund" on "sale:KEY", before and after
// the refunded total). A repeat with the same key changes nothing and
// logs nothing.
func (a *Actions) Refund(ctx context.Context, actor Actor, b RefundBody) (*RefundView, error) {
	b.Reason = strings.TrimSpace(b.Reason)
	if b.Reason == "" {
		return nil, protocol.ErrReasonRequired
	}
	if len(b.Reason) > MaxReason {
		return nil, protocol.ErrBadRequest
	}
	before, err := a.Svc.Refunded(ctx, b.Sale)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	rec, err := a.Svc.Refund(ctx, wallet.RefundRequest{Sale: b.Sale, Key: b.Key, Amount: b.Amount, Reason: b.Reason})
	if rec == nil {
		return nil, err
	}
	after, aerr := a.Svc.Refunded(ctx, b.Sale)
	if aerr != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, aerr)
	}
	_, _, _, toWallet := wallet.RefundInfo(rec)
	v := &RefundView{ID: rec.ID, Sale: b.Sale, Amount: rec.Amount, Channel: rec.Channel, Status: string(rec.Status), ToWallet: toWallet, Refunded: after}
	if after != before {
		// Audited once money is committed to go back, even if the bank's
		// answer is still awaited (the refund then finishes on its own).
		if aerr := a.audit(ctx, actor, "sale.refund", "sale:"+b.Sale, b.Reason,
			map[string]any{"refunded": before}, map[string]any{"refunded": after, "refund": v}); aerr != nil {
			return nil, aerr
		}
	}
	return v, err
}

func (c *Console) refund(r *Request) (any, error) {
	var b RefundBody
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	return c.act.Refund(r.Context(), r.Actor(), b)
}

// settlementMerchant is the merchant a request may see: a merchant
// manager their own (another is FORBIDDEN), others the one asked ("" all).
func settlementMerchant(r *Request) (string, error) {
	m := strings.TrimSpace(r.URL.Query().Get("merchant"))
	if r.Op.Role == operator.RoleMerchant {
		if m == "" {
			m = r.Op.Merchant
		}
		if err := r.Merchant(m); err != nil {
			return "", err
		}
	}
	return m, nil
}

// Settlement is a day's totals.
type Settlement struct {
	Date   string         `json:"date"`
	Totals []settle.Total `json:"totals"`
}

// Settlement returns the totals of day (YYYY-MM-DD, China time) per
// merchant and channel; merchant "" means all.
func (a *Actions) Settlement(ctx context.Context, day, merchant string) (*Settlement, error) {
	from, to, err := settle.Day(day)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrBadRequest, err)
	}
	lines, names, err := a.Svc.SettlementLines(ctx, merchant, from, to)
	if err != nil {
		if errors.Is(err, protocol.ErrMerchantUnknown) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	return &Settlement{Date: day, Totals: settle.Totals(lines, names)}, nil
}

func (c *Console) settlement(r *Request) (any, error) {
	m, err := settlementMerchant(r)
	if err != nil {
		return nil, err
	}
	return c.act.Settlement(r.Context(), r.PathValue("day"), m)
}

func (c *Console) settlementCSV(r *Request) (any, error) {
	m, err := settlementMerchant(r)
	if err != nil {
		return nil, err
	}
	s, err := c.act.Settlement(r.Context(), r.PathValue("day"), m)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := settle.WriteCSV(&b, s.Date, s.Totals); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	name := "settlement-" + s.Date
	if m != "" {
		name += "-" + m
	}
	return &File{ContentType: "text/csv; charset=utf-8", Name: name + ".csv", Body: b.Bytes()}, nil
}

// errNoParties: the authorizer has no bank gateway to reconcile with.
var errNoParties = fmt.Errorf("%w: no bank statement configured", protocol.ErrBankUnavailable)

func (c *Console) reconciliation(r *Request) (any, error) {
	if len(c.opt.Parties) == 0 {
		return nil, errNoParties
	}
	if _, _, err := settle.Day(r.PathValue("day")); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrBadRequest, err)
	}
	rep, err := settle.ReconcileDay(r.Context(), r.PathValue("day"), c.opt.Parties)
	if err != nil {
		// The statement could not be fetched: the outside is unavailable.
		return nil, fmt.Errorf("%w: %v", protocol.ErrBankUnavailable, err)
	}
	return reconciliationView(rep), nil
}

// ReconciliationView is a report as the console shows it.
type ReconciliationView struct {
	Date       string      `json:"date"`
	Mismatches int         `json:"mismatches"`
	Parties    []PartyView `json:"parties"`
}

// PartyView is the reconciliation with one party.
type PartyView struct {
	Party      string         `json:"party"`
	Ours       int            `json:"ours"`
	Theirs     int            `json:"theirs"`
	OursNet    int64          `json:"ours_net"`
	TheirsNet  int64          `json:"theirs_net"`
	Mismatches []MismatchView `json:"mismatches"`
}

// MismatchView is one mismatch.
type MismatchView struct {
	Kind   string `json:"kind"` // missing_ours, missing_theirs, amount_differs
	Key    string `json:"key"`
	Ours   int64  `json:"ours"`
	Theirs int64  `json:"theirs"`
}

func reconciliationView(rep settle.Report) ReconciliationView {
	v := ReconciliationView{Date: rep.Date, Mismatches: rep.Mismatches(), Parties: []PartyView{}}
	for _, p := range rep.Parties {
		pv := PartyView{Party: p.Party, Ours: p.Ours, Theirs: p.Theirs, OursNet: p.OursNet, TheirsNet: p.TheirsNet, Mismatches: []MismatchView{}}
		for _, m := range p.Mismatches {
			pv.Mismatches = append(pv.Mismatches, MismatchView{Kind: m.Kind.String(), Key: m.Key, Ours: m.Ours, Theirs: m.Theirs})
		}
		v.Parties = append(v.Parties, pv)
	}
	return v
}
