package console_test

import (
	"bytes"
	"fmt"
	"image/png"
	"strings"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/console"
	"campuspay/server/operator"
	"campuspay/server/wallet/wallettest"
	"campuspay/server/web/qrscan"
)

type studentOutcome struct {
	Outcome console.Outcome
	Student struct {
		Wallet struct {
			Frozen          bool
			CardUID         string `json:"card_uid"`
			PaymentPassword bool   `json:"payment_password_set"`
			WaterPassword   bool   `json:"water_password_set"`
			Balance, Held   int64
			BankCard        string `json:"bank_card"`
			LimitPerTx      int64  `json:"limit_per_tx"`
		}
		Phone    string
		IDNumber string `json:"id_number"`
		Devices  []struct {
			ID      uint32
			Revoked bool
		}
		Cards []struct {
			UID           string
			Current, Lost bool
		}
		Transactions []struct{ Kind string }
	}
}

// TestStudentActions runs every desk action over HTTP: each asks for a
// reason, repeats (a double click) change nothing and log nothing, each
// change is audited with before and after, and the effect is real.
func TestStudentActions(t *testing.T) {
	r := newRig(t, console.Options{})
	s := r.env.AddStudent(wallettest.Options{BankBalance: 500_00, TopUp: 100_00, PasswordFree: true})
	r.addOperator("zhang.desk", operator.RoleHelpdesk, "", false)
	c := r.login("zhang.desk")
	base := "/students/" + s.No

	// The page.
	var page struct{ Student struct{} }
	_ = page
	var p studentOutcome
	if st := c.do("GET", base, nil, &p.Student); st != 200 {
		t.Fatalf("page: %d", st)
	}
	w := p.Student.Wallet
	if w.Balance != 100_00 || w.CardUID != s.CardUID || !strings.Contains(w.BankCard, "*") || p.Student.Phone == s.Phone ||
		!strings.HasSuffix(p.Student.Phone, s.Phone[7:]) || len(p.Student.Devices) != 1 || len(p.Student.Cards) != 1 || len(p.Student.Transactions) == 0 {
		t.Fatalf("student page %+v", p.Student)
	}
	c.want(404, "USER_UNKNOWN", "GET", "/students/nobody", nil)

	tests := []struct {
		name   string
		path   string
		body   map[string]any
		action string
		check  func(o studentOutcome) bool
	}{
		{"freeze", "/freeze", nil, "wallet.freeze", func(o studentOutcome) bool { return o.Student.Wallet.Frozen }},
		{"unfreeze", "/unfreeze", nil, "wallet.unfreeze", func(o studentOutcome) bool { return !o.Student.Wallet.Frozen }},
		{"card lost", "/card/lost", nil, "card.lost", func(o studentOutcome) bool { return o.Student.Cards[0].Lost }},
		{"card found", "/card/found", nil, "card.found", func(o studentOutcome) bool { return !o.Student.Cards[0].Lost }},
		{"payment password", "/password-reset", map[string]any{"which": "payment"}, "password.reset.payment",
			func(o studentOutcome) bool { return !o.Student.Wallet.PaymentPassword }},
		{"water password", "/password-reset", map[string]any{"which": "water"}, "password.reset.water",
			func(o studentOutcome) bool { return !o.Student.Wallet.WaterPassword }},
		{"device", fmt.Sprintf("/devices/%d/revoke", p.Student.Devices[0].ID), nil, "device.revoke",
			func(o studentOutcome) bool { return o.Student.Devices[0].Revoked }},
		{"replace card", "/card/replace", map[string]any{"uid": "04cafe0001"}, "card.replace",
			func(o studentOutcome) bool {
				return o.Student.Wallet.CardUID == "04CAFE0001" && len(o.Student.Cards) == 2 && o.Student.Cards[1].UID == s.CardUID && o.Student.Cards[1].Lost
			}},
	}
	for _, tc := range tests {
		body := map[string]any{}
		for k, v := range tc.body {
			body[k] = v
		}
		c.want(400, "REASON_REQUIRED", "POST", base+tc.path, body)
		body["reason"] = "本人持学生证办理 " + tc.name
		for i, want := range []bool{true, false} { // the second is a double click
			var o studentOutcome
			if st := c.do("POST", base+tc.path, body, &o); st != 200 || o.Outcome.Changed != want || !tc.check(o) {
				t.Fatalf("%s #%d: %d %+v", tc.name, i, st, o)
			}
		}
		es := r.audit(operator.AuditQuery{Action: tc.action, Target: "user:" + s.No})
		if len(es) != 1 || es[0].Name != "zhang.desk" || es[0].Reason != body["reason"] || string(es[0].Before) == string(es[0].After) {
			t.Fatalf("%s audit: %+v", tc.name, es)
		}
	}
	// The old card is refused at the terminals, the new one pays.
	pay := func(uid string) *protocol.Response {
		return r.env.Svc.HandleRequest(ctx, &protocol.Request{V: 1, Op: protocol.OpPay, Tx: r.env.TxID(), Terminal: wallettest.CardBox,
			At: r.env.Clock.Now(), Amount: 3_50, Cred: &protocol.Credential{Kind: protocol.CredCard, Text: uid}})
	}
	if resp := pay(s.CardUID); resp.Code != protocol.ErrCardLost.Code {
		t.Fatalf("old card: %+v", resp)
	}
	if resp := pay("04CAFE0001"); resp.Status != protocol.StatusApproved {
		t.Fatalf("new card: %+v", resp)
	}
	// A login reset gives a temporary password that logs in.
	var o studentOutcome
	if st := c.do("POST", base+"/password-reset", map[string]any{"which": "login", "reason": "忘记密码，核验身份证"}, &o); st != 200 || len(o.Outcome.TempPassword) != 8 {
		t.Fatalf("login reset: %d %+v", st, o.Outcome)
	}
	if _, err := r.env.Svc.Login(ctx, s.No, o.Outcome.TempPassword); err != nil {
		t.Fatalf("temporary password: %v", err)
	}
	if es := r.audit(operator.AuditQuery{Action: "password.reset.login"}); len(es) != 1 || strings.Contains(string(es[0].After), o.Outcome.TempPassword) {
		t.Fatalf("login reset audit %+v", es)
	}
	// Bad input: each a clear error, nothing changed.
	for _, tc := range []struct {
		path, code string
		status     int
		body       map[string]any
	}{
		{"/card/replace", "CARD_UID_INVALID", 400, map[string]any{"uid": "<script>", "reason": "x"}},
		{"/password-reset", "BAD_REQUEST", 400, map[string]any{"which": "pin", "reason": "x"}},
		{"/devices/999/revoke", "NOT_FOUND", 404, map[string]any{"reason": "x"}},
		{"/devices/abc/revoke", "NOT_FOUND", 404, map[string]any{"reason": "x"}},
		{"/freeze", "REASON_REQUIRED", 400, map[string]any{"reason": strings.Repeat("长", 501)}},
		{"/freeze", "BAD_REQUEST", 400, map[string]any{"reason": "x", "frozen": false}},
	} {
		c.want(tc.status, tc.code, "POST", base+tc.path, tc.body)
	}
	c.want(404, "USER_UNKNOWN", "POST", "/students/2099999/freeze", map[string]any{"reason": "x"})
}

func TestSearchStudents(t *testing.T) {
	r := newRig(t, console.Options{})
	a := r.env.AddStudent(wallettest.Options{Inactive: true})
	b := r.env.AddStudent(wallettest.Options{Inactive: true})
	r.addOperator("li.fin", operator.RoleFinance, "", false)
	c := r.login("li.fin")
	find := func(q string) string {
		t.Helper()
		var res struct{ Students []console.StudentRow }
		if st := c.do("GET", "/students?q="+q, nil, &res); st != 200 {
			t.Fatalf("search %q: %d", q, st)
		}
		var nos []string
		for _, s := range res.Students {
			if strings.Contains(s.Phone, a.Phone) {
				t.Fatalf("phone not masked: %+v", s)
			}
			nos = append(nos, s.StudentNo)
		}
		return strings.Join(nos, ",")
	}
	both := a.No + "," + b.No
	for q, want := range map[string]string{
		a.No:                       a.No,
		"2026":                     both,
		"%E5%AD%A6%E7%94%9F":       both, // 学生
		a.Phone:                    a.No,
		strings.ToLower(b.CardUID): b.No,
		"%25":                      "", // %
		"_":                        "",
		"%27%20OR%201%3D1%20--":    "", // ' OR 1=1 --
		"%3Cscript%3E":             "",
	} {
		if got := find(q); got != want {
			t.Errorf("search %q: %q, want %q", q, got, want)
		}
	}
	c.want(400, "SEARCH_INVALID", "GET", "/students?q=", nil)
	c.want(400, "SEARCH_INVALID", "GET", "/students?q="+strings.Repeat("x", 65), nil)
	c.want(400, "SEARCH_INVALID", "GET", "/students?q=%FF%FE", nil)
}

// TestMerchantBound: a merchant manager sees and acts on their own
// merchant's terminals only.
func TestMerchantBound(t *testing.T) {
	r := newRig(t, console.Options{})
	r.addOperator("canteen", operator.RoleMerchant, wallettest.Merchant, false)
	c := r.login("canteen")
	var fleet struct{ Terminals []console.TerminalRow }
	if st := c.do("GET", "/terminals", nil, &fleet); st != 200 || len(fleet.Terminals) != 3 {
		t.Fatalf("own fleet: %d %+v", st, fleet)
	}
	for _, tr := range fleet.Terminals {
		if tr.Merchant != wallettest.Merchant {
			t.Fatalf("another merchant's terminal listed: %+v", tr)
		}
	}
	var ms struct{ Merchants []struct{ ID string } }
	if c.do("GET", "/merchants", nil, &ms); len(ms.Merchants) != 1 || ms.Merchants[0].ID != wallettest.Merchant {
		t.Fatalf("merchants %+v", ms)
	}
	// Another merchant's terminal, or one that does not exist: the same 403.
	for _, id := range []string{wallettest.ShowerMain, "no-such"} {
		c.want(403, "FORBIDDEN", "POST", "/terminals/"+id+"/revoke", map[string]any{"reason": "stolen"})
		c.want(403, "FORBIDDEN", "GET", "/terminals/"+id+"/placard.png", nil)
	}
	if !r.env.Svc.AuthenticateTerminal(ctx, wallettest.ShowerMain, r.env.TerminalPasswords[wallettest.ShowerMain]) {
		t.Fatal("the other merchant's terminal was revoked")
	}
	var o console.Outcome
	if st := c.do("POST", "/terminals/"+wallettest.POS+"/revoke", map[string]any{"reason": "box stolen at night"}, &o); st != 200 || !o.Changed {
		t.Fatalf("revoke own: %d %+v", st, o)
	}
	if r.env.Svc.AuthenticateTerminal(ctx, wallettest.POS, r.env.TerminalPasswords[wallettest.POS]) {
		t.Fatal("revoked terminal authenticates")
	}
	c.want(403, "FORBIDDEN", "POST", "/terminals/"+wallettest.POS+"/rotate", map[string]any{"reason": "x"})
	c.want(403, "FORBIDDEN", "GET", "/students?q=2026", nil)
	c.want(403, "FORBIDDEN", "GET", "/audit", nil)
}

func TestFleetAndTerminals(t *testing.T) {
	r := newRig(t, console.Options{})
	r.addOperator("boss", operator.RoleAdmin, "", false)
	c := r.login("boss")
	seen := r.env.Clock.Now().Add(-time.Minute)
	r.c.SetFleet(func() []console.TerminalLink {
		return []console.TerminalLink{
			{Terminal: wallettest.POS, Online: true, Seen: seen, Software: "terminald 1.2", JournalDepth: 3, ConfigRevision: 7},
			{Terminal: wallettest.CardBox, Online: false, Seen: seen, JournalDepth: -1},
		}
	})
	var fleet struct{ Terminals []console.TerminalRow }
	if st := c.do("GET", "/terminals", nil, &fleet); st != 200 || len(fleet.Terminals) != 4 {
		t.Fatalf("fleet: %d %+v", st, fleet)
	}
	byID := map[string]console.TerminalRow{}
	for _, tr := range fleet.Terminals {
		byID[tr.ID] = tr
	}
	pos, card, shower := byID[wallettest.POS], byID[wallettest.CardBox], byID[wallettest.Shower]
	if pos.Link != "online" || !pos.LastSeen.Equal(seen) || pos.Software != "terminald 1.2" || pos.JournalDepth == nil || *pos.JournalDepth != 3 ||
		pos.ConfigRevision != 7 || pos.MerchantName != "云谷食堂" || pos.Mode != protocol.ModePOS || pos.Campus != wallettest.Campus {
		t.Fatalf("pos row %+v", pos)
	}
	if card.Link != "offline" || card.JournalDepth != nil || shower.Link != "never" || card.FixedAmount != 350 {
		t.Fatalf("card %+v shower %+v", card, shower)
	}
	// Add a merchant and a terminal; rotate its credentials.
	var o console.Outcome
	if st := c.do("POST", "/merchants", map[string]any{"id": "M-SHOP", "name": "云谷超市", "campus": wallettest.Campus}, &o); st != 200 || !o.Changed {
		t.Fatalf("add merchant: %d %+v", st, o)
	}
	if c.do("POST", "/merchants", map[string]any{"id": "M-SHOP", "name": "云谷超市", "campus": wallettest.Campus}, &o); o.Changed {
		t.Fatal("the same merchant again changed something")
	}
	c.want(400, "BAD_REQUEST", "POST", "/merchants", map[string]any{"id": "M-X", "name": "x", "campus": "mars"})
	if st := c.do("POST", "/terminals", map[string]any{"id": "T-SHOP-1", "merchant": "M-SHOP", "mode": "pos"}, &o); st != 200 || o.Password == "" {
		t.Fatalf("add terminal: %d %+v", st, o)
	}
	c.want(400, "BAD_REQUEST", "POST", "/terminals", map[string]any{"id": "T-SHOP-1", "merchant": "M-SHOP", "mode": "pos"})
	if !r.env.Svc.AuthenticateTerminal(ctx, "T-SHOP-1", o.Password) {
		t.Fatal("new terminal's password")
	}
	first := o.Password
	if st := c.do("POST", "/terminals/T-SHOP-1/rotate", map[string]any{"reason": "password written on the box"}, &o); st != 200 || o.Password == first {
		t.Fatalf("rotate: %d", st)
	}
	if r.env.Svc.AuthenticateTerminal(ctx, "T-SHOP-1", first) || !r.env.Svc.AuthenticateTerminal(ctx, "T-SHOP-1", o.Password) {
		t.Fatal("rotation")
	}
	for _, a := range []string{"merchant.put", "terminal.add", "terminal.rotate"} {
		if es := r.audit(operator.AuditQuery{Action: a}); len(es) != 1 || strings.Contains(string(es[0].After), o.Password) {
			t.Fatalf("%s audit %+v", a, es)
		}
	}
}

// TestPlacard renders a till's placard: A5 at 300 dpi, and its QR reads
// back (the project's decoder) as the till's static merchant QR.
func TestPlacard(t *testing.T) {
	r := newRig(t, console.Options{})
	r.addOperator("canteen", operator.RoleMerchant, wallettest.Merchant, false)
	c := r.login("canteen")
	st, body := c.raw("GET", "/terminals/"+wallettest.POS+"/placard.png", nil, nil)
	if st != 200 {
		t.Fatalf("placard: %d %s", st, body)
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != console.PlacardWidth || b.Dy() != console.PlacardHeight {
		t.Fatalf("size %v", b)
	}
	if !bytes.Contains(body[:64], []byte("pHYs")) {
		t.Fatal("no print resolution in the PNG")
	}
	got, err := qrscan.DecodeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := r.env.Svc.TerminalConfig(ctx, wallettest.POS)
	if got != cfg.MerchantQR {
		t.Fatalf("placard QR %q, want %q", got, cfg.MerchantQR)
	}
	saveArtifact(t, "placard-"+wallettest.POS+".png", body)
}

func TestRosterUpload(t *testing.T) {
	r := newRig(t, console.Options{})
	r.addOperator("zhang.desk", operator.RoleHelpdesk, "", false)
	c := r.login("zhang.desk")
	id := wallettest.IDNumber
	csv := "学号,姓名,身份证号,手机号,类别,校区,卡号,初始密码\n" +
		"20270001,张三," + id("11010520000101001") + ",13800000001,本科生,yungu,CB0001,pw1\n" +
		"20270002,李四,110105200001010020,13800000002,本科生,yungu,CB0002,pw2\n" + // bad check digit
		"20270003,王五," + id("11010520000101003") + ",13800000003,本科生\n" + // short
		"20270004,赵六," + id("11010520000101004") + ",13800000004,本科生,云谷,,pw4\n"
	var job struct{ ID string }
	if st := c.do("POST", "/roster?name=2027.csv", []byte(csv), &job); st != 200 || job.ID == "" {
		t.Fatalf("upload: %d", st)
	}
	var p console.RosterJob
	deadline := time.Now().Add(60 * time.Second) // a bound on a loaded machine, not a measurement
	for !p.Finished {
		if time.Now().After(deadline) {
			t.Fatalf("import not finished: %+v", p)
		}
		if st := c.do("GET", "/roster/"+job.ID, nil, &p); st != 200 {
			t.Fatalf("progress: %d", st)
		}
	}
	if p.Lines != 4 || p.Total != 3 || p.Done != 3 || p.New != 2 || len(p.Errors) != 2 {
		t.Fatalf("job %+v", p)
	}
	lines := map[int]console.RosterLine{}
	for _, e := range p.Errors {
		lines[e.Line] = e
	}
	if lines[3].Code != "ID_NUMBER_INVALID" || lines[3].ZH == "" || lines[4].Code != "ROSTER_COLUMNS" || !strings.Contains(lines[4].ZH, "列数") {
		t.Fatalf("errors %+v", p.Errors)
	}
	if es := r.audit(operator.AuditQuery{Action: "roster.import"}); len(es) != 1 || es[0].Target != "roster:2027.csv" {
		t.Fatalf("audit %+v", es)
	}
	c.want(404, "NOT_FOUND", "GET", "/roster/nope", nil)
	c.want(400, "UPLOAD_INVALID", "POST", "/roster", []byte(""))
}
