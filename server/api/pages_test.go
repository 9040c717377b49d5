package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/api"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

var bg = context.Background()

// pagesSetup is setup with a support contact configured and the canteen
// till named, and a student with ¥50.00 in the wallet.
func pagesSetup(t *testing.T) (*wallettest.Env, *client, *wallettest.Student) {
	t.Helper()
	e := wallettest.New(t)
	support := api.Support{NameZH: "一卡通服务中心", NameEN: "Card Centre", Phone: "0571-12345678", HoursZH: "工作日", HoursEN: "Weekdays"}
	srv := httptest.NewServer(api.New(e.Svc, e.Store, api.Options{Now: e.Clock.Now, Support: support}))
	t.Cleanup(srv.Close)
	if _, err := e.Svc.AddTerminal(bg, wallet.Terminal{ID: wallettest.POS, Merchant: wallettest.Merchant, Mode: protocol.ModePOS, Name: "二楼3号窗口"}); err != nil {
		t.Fatal(err)
	}
	s := e.AddStudent(wallettest.Options{BankBalance: 500_00, TopUp: 50_00})
	c := &client{t: t, base: srv.URL}
	m := c.want(200, "", "POST", "/api/v1/session", map[string]string{"student_no": s.No, "password": s.Password}, nil)
	c.token = m["token"].(string)
	return e, c, s
}

func decode[T any](t *testing.T, m map[string]any) T {
	t.Helper()
	raw, _ := json.Marshal(m)
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHelpAPI(t *testing.T) {
	_, c, _ := pagesSetup(t)
	anon := &client{t: t, base: c.base}
	h := decode[api.HelpInfo](t, anon.want(200, "", "GET", "/api/v1/help", nil, nil))
	if h.Support.Phone != "0571-12345678" || h.Support.NameZH != "一卡通服务中心" || h.ShowerMinimum != 15_00 ||
		h.CodeValiditySeconds != 60 || h.VocationalCategory != "中专生" || len(h.ShowerCampuses) != 1 || h.ShowerCampuses[0] != "云谷" {
		t.Fatalf("help %+v", h)
	}
}

func TestShowerAPI(t *testing.T) {
	e, c, s := pagesSetup(t)
	other := e.AddStudent(wallettest.Options{Campus: wallettest.CampusNoBath})
	tx := e.TxID()
	sealed, err := protocol.SealSecret(e.Keys.SealPub, tx, s.WaterPW, nil)
	if err != nil {
		t.Fatal(err)
	}
	hold := e.Svc.HandleRequest(bg, &protocol.Request{V: 1, Op: protocol.OpHold, Tx: tx, Terminal: wallettest.Shower,
		Cred: &protocol.Credential{Kind: protocol.CredAccount, Text: s.No}, Secret: sealed})
	if hold.Status != protocol.StatusHeld {
		t.Fatalf("hold %+v", hold)
	}
	e.Clock.Advance(10 * time.Minute)
	if r := e.Svc.HandleRequest(bg, &protocol.Request{V: 1, Op: protocol.OpCapture, Tx: tx, Terminal: wallettest.Shower, Amount: 7_30, ML: 73_000}); r.Status != protocol.StatusApproved {
		t.Fatalf("capture %+v", r)
	}
	sh := decode[api.ShowerInfo](t, c.want(200, "", "GET", "/api/v1/shower", nil, nil))
	if !sh.Showers || sh.CampusName != "云谷" || sh.Minimum != 15_00 || sh.Available != 50_00-7_30 || !sh.WaterPasswordSet ||
		sh.LimitPerTx != e.Config.DefaultLimitPerTx || sh.Hold != e.Config.Tariff.Hold || len(sh.Sessions) != 1 {
		t.Fatalf("shower page %+v", sh)
	}
	if got := sh.Sessions[0]; got.ML != 73_000 || got.Amount != 7_30 || got.Status != "approved" || got.Tx != string(tx) || got.MerchantName != "云谷食堂" {
		t.Fatalf("session %+v", got)
	}

	// A student of a campus without showers is told so.
	m := c.want(200, "", "POST", "/api/v1/session", map[string]string{"student_no": other.No, "password": other.Password}, nil)
	oc := &client{t: t, base: c.base, token: m["token"].(string)}
	if sh := decode[api.ShowerInfo](t, oc.want(200, "", "GET", "/api/v1/shower", nil, nil)); sh.Showers || len(sh.Sessions) != 0 {
		t.Fatalf("other campus %+v", sh)
	}
}

// TestStatementAPI: a month of a balance payment, a card-funded one, a
// reversed one and a declined one, with the balance after each line, the
// monthly bill, the channel filter and the CSV export in both languages.
func TestStatementAPI(t *testing.T) {
	e, c, s := pagesSetup(t)
	pay := func(amount int64) (protocol.TxID, *protocol.Response) {
		e.Clock.Advance(time.Minute)
		tx := e.TxID()
		return tx, e.Svc.HandleRequest(bg, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: tx, Terminal: wallettest.POS, At: e.Clock.Now(),
			Amount: amount, Cred: &protocol.Credential{Kind: protocol.CredCode, Text: e.PayCode(s)}})
	}
	if _, r := pay(12_50); r.Status != protocol.StatusApproved || r.Channel != protocol.ChannelBalance {
		t.Fatalf("pay %+v", r)
	}
	if _, r := pay(40_00); r.Status != protocol.StatusApproved || r.Channel != protocol.ChannelBankCard { // over the ¥37.50 left
		t.Fatalf("pay by card %+v", r)
	}
	rtx, r := pay(5_00)
	if r.Status != protocol.StatusApproved {
		t.Fatalf("pay %+v", r)
	}
	e.Clock.Advance(time.Minute)
	if r := e.Svc.HandleRequest(bg, &protocol.Request{V: 1, Op: protocol.OpReverse, Tx: rtx, Terminal: wallettest.POS}); r.Status != protocol.StatusReversed {
		t.Fatalf("reverse %+v", r)
	}
	if _, r := pay(600_00); r.Status != protocol.StatusDeclined || r.Code != protocol.ErrLimitPerTx.Code {
		t.Fatalf("over the limit %+v", r)
	}

	st := decode[api.StatementResponse](t, c.want(200, "", "GET", "/api/v1/statement", nil, nil))
	type want struct {
		kind, status, channel, code string
		amount, after               int64
	}
	wants := []want{ // newest first
		{wallet.KindPayment, "declined", "", protocol.ErrLimitPerTx.Code, 600_00, 37_50},
		{wallet.KindPayment, "reversed", protocol.ChannelBalance, "", 5_00, 37_50},
		{wallet.KindPayment, "approved", protocol.ChannelBankCard, "", 40_00, 37_50},
		{wallet.KindPayment, "approved", protocol.ChannelBalance, "", 12_50, 37_50},
		{wallet.KindTopUp, "approved", protocol.ChannelBankCard, "", 50_00, 50_00},
	}
	if st.Month != "2026-11" || st.Opening != 0 || st.Closing != 37_50 || len(st.Lines) != len(wants) {
		t.Fatalf("statement %+v", st)
	}
	for i, w := range wants {
		l := st.Lines[i]
		if l.Kind != w.kind || l.Status != w.status || l.Channel != w.channel || l.Code != w.code || l.Amount != w.amount || l.BalanceAfter != w.after {
			t.Errorf("line %d: %+v, want %+v", i, l, w)
		}
	}
	if st.Lines[1].Refunded != 5_00 || st.Lines[2].Refunded != 0 {
		t.Errorf("refunds %d %d", st.Lines[1].Refunded, st.Lines[2].Refunded)
	}
	if l := st.Lines[3]; l.TerminalName != "二楼3号窗口" || l.MerchantName != "云谷食堂" {
		t.Errorf("names %+v", l)
	}
	tot := st.Totals
	if tot.Spent[protocol.ChannelBalance] != 12_50 || tot.Spent[protocol.ChannelBankCard] != 40_00 || tot.TopUp != 50_00 || tot.Refunded != 5_00 || tot.Count != 4 {
		t.Fatalf("totals %+v", tot)
	}

	for _, tc := range []struct {
		query string
		lines int
	}{
		{"?channel=bank_card", 2}, // the top-up came from the card too
		{"?channel=balance", 2},
		{"?channel=wechat", 0},
		{"?month=2026-10", 0},
		{"?month=2026-11&channel=balance", 2},
	} {
		st := decode[api.StatementResponse](t, c.want(200, "", "GET", "/api/v1/statement"+tc.query, nil, nil))
		if len(st.Lines) != tc.lines {
			t.Errorf("%s: %d lines, want %d", tc.query, len(st.Lines), tc.lines)
		}
	}
	for _, q := range []string{"?month=2026-12", "?month=11-2026", "?channel=cash", "?lang=fr", "?month=2026-11&month=2026-10", "?x=1"} {
		c.want(400, "BAD_REQUEST", "GET", "/api/v1/statement"+q, nil, nil)
	}

	for _, tc := range []struct {
		lang, header, declined, reversed, balance string
	}{
		{"zh", "时间", protocol.ErrLimitPerTx.ZH, "已撤销并退款", "余额"},
		{"en", "time", protocol.ErrLimitPerTx.EN, "Reversed and refunded", "Balance"},
	} {
		_, _, raw := c.do("GET", "/api/v1/statement.csv?lang="+tc.lang, nil, nil)
		if !bytes.HasPrefix(raw, []byte("\ufeff")) {
			t.Fatalf("%s: no byte-order mark: %q", tc.lang, raw)
		}
		rows, err := csv.NewReader(bytes.NewReader(raw[3:])).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.lang, err, raw)
		}
		if len(rows) != 1+len(wants) || rows[0][0] != tc.header {
			t.Fatalf("%s: rows %q", tc.lang, rows)
		}
		if rows[1][7] != tc.declined || rows[2][6] != tc.reversed || rows[4][4] != tc.balance || rows[4][5] != "-12.50" ||
			rows[4][8] != "37.50" || rows[4][3] != "二楼3号窗口" || rows[5][5] != "+50.00" {
			t.Errorf("%s: rows %q", tc.lang, rows)
		}
	}
}

func TestMerchantQRAPI(t *testing.T) {
	e, c, _ := pagesSetup(t)
	term, err := e.Store.Terminal(bg, wallettest.POS)
	if err != nil {
		t.Fatal(err)
	}
	got := decode[api.MerchantQRInfo](t, c.want(200, "", "POST", "/api/v1/merchant-qr", map[string]string{"qr": term.MerchantQR}, nil))
	if got != (api.MerchantQRInfo{Merchant: wallettest.Merchant, MerchantName: "云谷食堂", Terminal: wallettest.POS, TerminalName: "二楼3号窗口",
		Campus: wallettest.Campus, CampusName: "云谷"}) {
		t.Fatalf("resolved %+v", got)
	}
	issue := func(merchant, terminal string) string {
		qr, err := protocol.IssueMerchantQR(protocol.MerchantQR{KeyID: e.Keys.IssuerID, Issued: e.Clock.Now(), Merchant: merchant,
			Terminal: terminal, Campus: wallettest.Campus}, e.Keys.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		return qr
	}
	for _, tc := range []struct {
		name, qr, code string
		status         int
	}{
		{"not a merchant QR", "hello", protocol.ErrMerchantQRInvalid.Code, 422},
		{"tampered", tamper(term.MerchantQR), protocol.ErrMerchantQRInvalid.Code, 422},
		{"empty", "", protocol.ErrMerchantQRInvalid.Code, 422},
		{"terminal not registered", issue(wallettest.Merchant, "T-GONE"), protocol.ErrTerminalUnknown.Code, 422},
		{"terminal of another merchant", issue("M002", wallettest.POS), protocol.ErrMerchantUnknown.Code, 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.want(tc.status, tc.code, "POST", "/api/v1/merchant-qr", map[string]string{"qr": tc.qr}, nil)
		})
	}
}

func FuzzParseStatementQuery(f *testing.F) {
	for _, s := range []string{"", "month=2026-11", "month=2026-11&channel=balance&lang=en", "month=2026-13", "month=1999-01",
		"channel=x", "month=2026-1", "month=+2026-11", "lang=zh&lang=en", "a=b", "month=２０２６-11"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		sq, err := api.ParseStatementQuery(q, now)
		if err != nil {
			if protocol.AsReason(err) != protocol.ErrBadRequest {
				t.Fatalf("%q: %v is not BAD_REQUEST", raw, err)
			}
			return
		}
		// A month in range, whole, in Shanghai time, named as asked.
		from := sq.From.In(wallet.Shanghai)
		if from.Day() != 1 || from.Hour() != 0 || !sq.To.Equal(from.AddDate(0, 1, 0)) || sq.From.After(now) ||
			sq.Month != from.Format("2006-01") || (q.Get("month") != "" && q.Get("month") != sq.Month) || !strings.Contains("zh en", sq.Lang) {
			t.Fatalf("%q: %+v", raw, sq)
		}
	})
}

// tamper changes one character inside a signed text's signature. (Setting
// its last two characters to "00" changed nothing when the signature's
// last byte was already 0, about one signature in sixteen.)
func tamper(s string) string {
	i := len(s) - 4
	c := byte('0')
	if s[i] == c {
		c = '1'
	}
	return s[:i] + string(c) + s[i+1:]
}
