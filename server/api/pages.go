package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// What the web wallet's help, shower, statement and scan-to-pay pages read.

// Support is the help desk the help pages show, from the authorizer config
// ("support"). Empty fields are not shown.
type Support struct {
	NameZH  string `json:"name_zh,omitempty"` // e.g. 一卡通服务中心
	NameEN  string `json:"name_en,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Email   string `json:"email,omitempty"`
	PlaceZH string `json:"place_zh,omitempty"` // where to go in person
	PlaceEN string `json:"place_en,omitempty"`
	HoursZH string `json:"hours_zh,omitempty"`
	HoursEN string `json:"hours_en,omitempty"`
}

// HelpInfo is the answer of GET /api/v1/help.
type HelpInfo struct {
	Support Support `json:"support"`
	// ShowerCampuses names the campuses with showers (rule 7).
	ShowerCampuses []string `json:"shower_campuses"`
	// ShowerMinimum is the balance a shower needs, in cents.
	ShowerMinimum int64 `json:"shower_minimum"`
	// CodeValiditySeconds is how long a payment code stays valid.
	CodeValiditySeconds int `json:"code_validity_seconds"`
	// VocationalCategory is the roster category that must sign 免密.
	VocationalCategory string `json:"vocational_category"`
}

// help needs no login: the activation guide is read before activating.
func (s *Server) help(w http.ResponseWriter, r *http.Request, _ uint32) (any, error) {
	h := HelpInfo{Support: s.opt.Support, ShowerMinimum: wallet.ShowerMinimum, ShowerCampuses: []string{},
		CodeValiditySeconds: int(protocol.CodeValidity / time.Second), VocationalCategory: wallet.VocationalCategory}
	for id, c := range s.svc.Config().Campuses {
		if c.Showers {
			h.ShowerCampuses = append(h.ShowerCampuses, s.svc.CampusName(id))
		}
	}
	slices.Sort(h.ShowerCampuses)
	return h, nil
}

// ShowerSession is one shower in GET /api/v1/shower.
type ShowerSession struct {
	Time         time.Time `json:"time"`
	Terminal     string    `json:"terminal"`
	TerminalName string    `json:"terminal_name,omitempty"`
	MerchantName string    `json:"merchant_name,omitempty"`
	Tx           string    `json:"tx,omitempty"`
	ML           int64     `json:"ml"`     // water metered, millilitres
	Amount       int64     `json:"amount"` // charged (held while status is "held")
	Status       string    `json:"status"`
	Code         string    `json:"code,omitempty"`
}

// ShowerInfo is the answer of GET /api/v1/shower.
type ShowerInfo struct {
	Campus           string          `json:"campus"`
	CampusName       string          `json:"campus_name"`
	Showers          bool            `json:"showers"` // the student's campus has showers
	Minimum          int64           `json:"minimum"`
	Available        int64           `json:"available"`
	WaterPasswordSet bool            `json:"water_password_set"`
	LimitPerTx       int64           `json:"limit_per_tx"`
	LimitDaily       int64           `json:"limit_daily"`
	CentsPerLitre    int64           `json:"cents_per_litre"`
	Hold             int64           `json:"hold"` // what a shower reserves at most
	Sessions         []ShowerSession `json:"sessions"`
}

// showerDays is how far back the shower history goes.
const showerDays = 90

func (s *Server) shower(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	ctx := r.Context()
	v, err := s.svc.Wallet(ctx, user)
	if err != nil {
		return nil, err
	}
	now := s.opt.Now()
	recs, err := s.svc.ShowerHistory(ctx, user, now.AddDate(0, 0, -showerDays), now.Add(time.Second))
	if err != nil {
		return nil, err
	}
	tariff := s.svc.Config().Tariff
	out := ShowerInfo{Campus: v.Campus, CampusName: s.svc.CampusName(v.Campus), Showers: s.svc.Showers(v.Campus),
		Minimum: wallet.ShowerMinimum, Available: v.Available, WaterPasswordSet: v.WaterPasswordSet,
		LimitPerTx: v.LimitPerTx, LimitDaily: v.LimitDaily, CentsPerLitre: tariff.CentsPerLitre, Hold: tariff.Hold,
		Sessions: make([]ShowerSession, 0, len(recs))}
	names := s.names(ctx)
	for _, rec := range recs {
		out.Sessions = append(out.Sessions, ShowerSession{Time: rec.Created, Terminal: rec.Terminal, TerminalName: names.terminals[rec.Terminal],
			MerchantName: names.merchants[rec.Merchant], Tx: string(rec.Tx), ML: rec.ML, Amount: rec.Amount, Status: string(rec.Status), Code: rec.Code})
	}
	return out, nil
}

// names are the merchants' and terminals' names by ID.
type names struct{ merchants, terminals map[string]string }

func (s *Server) names(ctx context.Context) names {
	n := names{merchants: s.merchantNames(ctx), terminals: map[string]string{}}
	if ts, err := s.svc.TerminalNames(ctx); err == nil {
		n.terminals = ts
	}
	return n
}

// StatementLine is one line of GET /api/v1/statement.
type StatementLine struct {
	Transaction
	TerminalName string `json:"terminal_name,omitempty"`
	BalanceAfter int64  `json:"balance_after"`
	Refunded     int64  `json:"refunded,omitempty"` // a reversal that gave money back
}

// Totals is the monthly bill: what moved, per channel, by approved lines.
type Totals struct {
	Spent    map[string]int64 `json:"spent"`    // payments, scan-to-pay and showers by channel
	TopUp    int64            `json:"top_up"`   // into the wallet from the bank card
	Withdraw int64            `json:"withdraw"` // out to the bank card
	Refunded int64            `json:"refunded"` // payments reversed and given back, and sales refunded
	Count    int              `json:"count"`    // lines that moved money
}

// StatementResponse is the answer of GET /api/v1/statement.
type StatementResponse struct {
	Month   string          `json:"month"` // YYYY-MM, Shanghai time
	Channel string          `json:"channel,omitempty"`
	Opening int64           `json:"opening"`
	Closing int64           `json:"closing"`
	Totals  Totals          `json:"totals"`
	Lines   []StatementLine `json:"lines"` // newest first
}

// StatementQuery is what ?month=YYYY-MM&channel=…&lang=… ask for.
type StatementQuery struct {
	From, To time.Time
	Month    string
	Channel  string // "" for all
	Lang     string // "zh" or "en" (CSV)
}

// ParseStatementQuery reads a statement request's query string: month
// (YYYY-MM, default the current Shanghai month, at most 10 years back and
// not in the future), channel (balance, bank_card, wechat, debt or empty) and
// lang (zh, the default, or en).
func ParseStatementQuery(q url.Values, now time.Time) (StatementQuery, error) {
	var sq StatementQuery
	for k, v := range q {
		if len(v) != 1 || (k != "month" && k != "channel" && k != "lang") {
			return sq, fmt.Errorf("statement: parameter %q: %w", k, protocol.ErrBadRequest)
		}
	}
	cur, _ := wallet.Month(now)
	sq.From = cur
	if m := q.Get("month"); m != "" {
		t, err := time.ParseInLocation("2006-01", m, wallet.Shanghai)
		if err != nil || len(m) != 7 || t.After(cur) || t.Before(cur.AddDate(-10, 0, 0)) {
			return sq, fmt.Errorf("statement: month %q: %w", m, protocol.ErrBadRequest)
		}
		sq.From = t
	}
	sq.From, sq.To = wallet.Month(sq.From)
	sq.Month = sq.From.Format("2006-01")
	switch c := q.Get("channel"); c {
	case "", protocol.ChannelBalance, protocol.ChannelBankCard, protocol.ChannelWeChat, wallet.ChannelDebt:
		sq.Channel = c
	default:
		return sq, fmt.Errorf("statement: channel %q: %w", c, protocol.ErrBadRequest)
	}
	switch l := q.Get("lang"); l {
	case "", "zh":
		sq.Lang = "zh"
	case "en":
		sq.Lang = "en"
	default:
		return sq, fmt.Errorf("statement: lang %q: %w", l, protocol.ErrBadRequest)
	}
	return sq, nil
}

// spending kinds are what the bill counts as spent.
func spending(kind string) bool {
	return kind == wallet.KindPayment || kind == wallet.KindScanPay || kind == wallet.KindShower || kind == wallet.KindOffline
}

func (s *Server) statementOf(r *http.Request, user uint32) (*StatementResponse, StatementQuery, error) {
	ctx := r.Context()
	sq, err := ParseStatementQuery(r.URL.Query(), s.opt.Now())
	if err != nil {
		return nil, sq, err
	}
	st, err := s.svc.Statement(ctx, user, sq.From, sq.To)
	if err != nil {
		return nil, sq, err
	}
	names := s.names(ctx)
	out := &StatementResponse{Month: sq.Month, Channel: sq.Channel, Opening: st.Opening, Closing: st.Closing,
		Totals: Totals{Spent: map[string]int64{}}, Lines: []StatementLine{}}
	for i := len(st.Lines) - 1; i >= 0; i-- {
		l := st.Lines[i]
		if sq.Channel != "" && l.Channel != sq.Channel {
			continue
		}
		out.Lines = append(out.Lines, StatementLine{Transaction: s.transaction(ctx, l.Record, names.merchants),
			TerminalName: names.terminals[l.Terminal], BalanceAfter: l.BalanceAfter, Refunded: l.Refunded})
		switch {
		case l.Refunded > 0:
			out.Totals.Refunded += l.Refunded
		case l.Status != protocol.StatusApproved:
			continue
		case spending(l.Kind):
			out.Totals.Spent[l.Channel] += l.Amount
		case l.Kind == wallet.KindRefund: // a back-office refund of a sale
			out.Totals.Refunded += l.Amount
		case l.Kind == wallet.KindTopUp:
			out.Totals.TopUp += l.Amount
		case l.Kind == wallet.KindWithdraw:
			out.Totals.Withdraw += l.Amount
		}
		out.Totals.Count++
	}
	return out, sq, nil
}

func (s *Server) statement(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	out, _, err := s.statementOf(r, user)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// csvBody is an answer sent as CSV instead of JSON (see answer).
type csvBody struct {
	name string
	body []byte
}

// statementCSV is the month's statement as a CSV file in the student's
// language (UTF-8 with a byte-order mark, so spreadsheet programs read the
// Chinese): the same lines and labels as the page.
func (s *Server) statementCSV(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	out, sq, err := s.statementOf(r, user)
	if err != nil {
		return nil, err
	}
	zh := sq.Lang == "zh"
	pick := func(l protocol.Label) string {
		if zh {
			return l.ZH
		}
		return l.EN
	}
	head := []string{"time", "kind", "merchant", "terminal", "channel", "amount", "status", "reason", "balance_after", "transaction"}
	if zh {
		head = []string{"时间", "类型", "商户", "终端", "渠道", "金额", "状态", "原因", "余额", "交易号"}
	}
	var buf bytes.Buffer
	buf.WriteString("\ufeff")
	cw := csv.NewWriter(&buf)
	cw.Write(head)
	for _, l := range out.Lines {
		reason := ""
		if rs := protocol.ReasonByCode(l.Code); rs != nil {
			reason = rs.EN
			if zh {
				reason = rs.ZH
			}
		} else if l.Code != "" {
			reason = l.Code
		}
		channel := ""
		if l.Channel != "" {
			channel = pick(protocol.LabelOf("channel:" + l.Channel))
		}
		term := l.TerminalName
		if term == "" {
			term = l.Terminal
		}
		cw.Write([]string{l.Time.In(wallet.Shanghai).Format("2006-01-02 15:04:05"), pick(protocol.LabelOf("kind:" + l.Kind)),
			l.MerchantName, term, channel, signedYuan(l.Kind, l.Amount), pick(protocol.LabelOf("status:" + l.Status)), reason,
			protocol.FormatCents(l.BalanceAfter), l.Tx})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("api: statement csv: %w", err)
	}
	return csvBody{name: "statement-" + sq.Month + ".csv", body: buf.Bytes()}, nil
}

// signedYuan is a line's amount as the wallet sees it: money in positive.
func signedYuan(kind string, cents int64) string {
	if kind == wallet.KindTopUp || kind == wallet.KindRefund {
		return "+" + protocol.FormatCents(cents)
	}
	return "-" + protocol.FormatCents(cents)
}

type merchantQRRequest struct {
	QR string `json:"qr"`
}

// MerchantQRInfo is the answer of POST /api/v1/merchant-qr: whom a scanned
// static QR pays.
type MerchantQRInfo struct {
	Merchant     string `json:"merchant"`
	MerchantName string `json:"merchant_name"`
	Terminal     string `json:"terminal"`
	TerminalName string `json:"terminal_name,omitempty"`
	Campus       string `json:"campus"`
	CampusName   string `json:"campus_name"`
}

func (s *Server) merchantQR(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req merchantQRRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	if req.QR == "" || len(req.QR) > 1024 {
		return nil, protocol.ErrMerchantQRInvalid
	}
	t, err := s.svc.ResolveMerchantQR(r.Context(), req.QR)
	if err != nil {
		return nil, err
	}
	return MerchantQRInfo{Merchant: t.Merchant.ID, MerchantName: t.Merchant.Name, Terminal: t.Terminal.ID,
		TerminalName: t.Terminal.Name, Campus: t.Terminal.Campus, CampusName: t.Campus}, nil
}

// writeCSV sends a csvBody as a download.
func writeCSV(w http.ResponseWriter, c csvBody) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+c.name+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
	w.WriteHeader(http.StatusOK)
	w.Write(c.body)
}
