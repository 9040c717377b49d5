package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"campuspay/server/operator"
	"campuspay/server/wallet"
)

func testBackOfficeUsers(t *testing.T, f Factory) {
	s, again := open(t, f)
	for i, x := range []struct{ no, name, phone, card string }{
		{"2024001", "李娜", "13800000001", "04A1B2C3"},
		{"2024002", "王50%_强", "13800000002", "04A1B2C4"},
		{"2024010", "Zhang Wei", "13900000003", ""},
		{"2025001", "李雷", "13800000004", "04A1B2C5"},
	} {
		u := newUser(x.no)
		u.Name, u.Phone, u.CardUID = x.name, x.phone, x.card
		if _, err := s.UpsertRosterUser(ctx, u); err != nil {
			t.Fatalf("user %d: %v", i, err)
		}
	}
	tests := []struct {
		text  string
		limit int
		want  string // student numbers found, in order
	}{
		{"2024001", 10, "[2024001]"},
		{"202400", 10, "[2024001 2024002]"},
		{"2024", 2, "[2024001 2024002]"},
		{"李", 10, "[2024001 2025001]"},
		{"zhang", 10, "[2024010]"},
		{"04a1b2c4", 10, "[2024002]"},
		{"04A1B2C5", 10, "[2025001]"},
		{"13900000003", 10, "[2024010]"},
		{"1390000000", 10, "[]"}, // a phone only matches exactly
		{"50%", 10, "[2024002]"},
		{"%", 10, "[2024002]"}, // literally, not a wildcard
		{"%%", 10, "[]"},
		{"_", 10, "[2024002]"},
		{`\`, 10, "[]"},
		{"' OR 1=1 --", 10, "[]"},
	}
	for _, tc := range tests {
		us, err := s.SearchUsers(ctx, tc.text, tc.limit)
		if err != nil {
			t.Fatalf("search %q: %v", tc.text, err)
		}
		var got []string
		for _, u := range us {
			got = append(got, u.StudentNo)
		}
		if fmt.Sprint(got) != tc.want {
			t.Errorf("search %q: %v, want %s", tc.text, got, tc.want)
		}
	}
	// A phone changed by UpdateUser is found by its new number only.
	u, _ := s.UserByStudentNo(ctx, "2024001")
	u.Phone = "13700000009"
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if us, _ := s.SearchUsers(ctx, "13700000009", 5); len(us) != 1 || us[0].ID != u.ID {
		t.Fatalf("new phone: %v", us)
	}
	if us, _ := s.SearchUsers(ctx, "13800000001", 5); len(us) != 0 {
		t.Fatalf("old phone still found: %v", us)
	}

	// Frozen: only SetFrozen writes it, so a stale copy saved later does
	// not unfreeze.
	stale, _ := s.User(ctx, u.ID)
	if stale.Frozen {
		t.Fatal("frozen on arrival")
	}
	if err := s.SetFrozen(ctx, u.ID, true); err != nil {
		t.Fatal(err)
	}
	stale.PayFails = 1
	if err := s.UpdateUser(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(ctx, u.ID); !got.Frozen || got.PayFails != 1 {
		t.Fatalf("after freeze and update: frozen %v fails %d", got.Frozen, got.PayFails)
	}

	// Lost cards by user, and 解挂.
	for _, c := range []struct {
		uid string
		at  time.Time
	}{{"04A1B2C3", t0}, {"OLD1", t0.Add(-time.Hour)}} {
		if err := s.ReportCardLost(ctx, c.uid, u.ID, c.at); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.ReportCardLost(ctx, "OTHER", u.ID+1, t0); err != nil {
		t.Fatal(err)
	}
	lc, err := s.UserLostCards(ctx, u.ID)
	if err != nil || len(lc) != 2 || lc[0].UID != "OLD1" || !lc[1].At.Equal(t0) || lc[1].UserID != u.ID {
		t.Fatalf("lost cards of user: %+v %v", lc, err)
	}
	for range 2 { // undoing twice is no error
		if err := s.ClearCardLost(ctx, "04A1B2C3"); err != nil {
			t.Fatal(err)
		}
	}
	if lost, _ := s.CardLost(ctx, "04A1B2C3"); lost {
		t.Fatal("still lost after 解挂")
	}

	// Devices by user.
	for range 2 {
		if err := s.AddDevice(ctx, &wallet.Device{UserID: u.ID, Key: bytes.Repeat([]byte{7}, 32), Created: t0, Expires: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.Devices(ctx, u.ID)
	if err != nil || len(ds) != 2 || ds[0].ID >= ds[1].ID || !ds[0].Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("devices %+v %v", ds, err)
	}
	if err := s.RevokeDevice(ctx, ds[1].ID, t0); err != nil {
		t.Fatal(err)
	}
	if ds, _ := s.Devices(ctx, u.ID); !ds[1].Revoked || ds[0].Revoked {
		t.Fatalf("revoked flags %+v", ds)
	}
	if ds, err := s.Devices(ctx, u.ID+100); err != nil || len(ds) != 0 {
		t.Fatalf("devices of nobody %v %v", ds, err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := again(t)
	if got, _ := s2.User(ctx, u.ID); !got.Frozen {
		t.Fatal("freeze lost at reopen")
	}
	if err := s2.SetFrozen(ctx, u.ID, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.User(ctx, u.ID); got.Frozen {
		t.Fatal("still frozen")
	}
}

func testOperators(t *testing.T, f Factory) {
	s, again := open(t, f)
	if _, err := s.OperatorByName(ctx, "nobody"); !errors.Is(err, operator.ErrUnknown) {
		t.Fatalf("unknown: %v", err)
	}
	a := &operator.Operator{Name: "zhang.desk", Role: operator.RoleHelpdesk, PasswordHash: "h1", Created: t0,
		TOTPSecret: []byte("12345678901234567890")}
	m := &operator.Operator{Name: "canteen-boss", Role: operator.RoleMerchant, Merchant: "M-CANTEEN", PasswordHash: "h2", Created: t0}
	for _, o := range []*operator.Operator{a, m} {
		if err := s.AddOperator(ctx, o); err != nil || o.ID == 0 {
			t.Fatalf("add %s: %v", o.Name, err)
		}
	}
	if err := s.AddOperator(ctx, &operator.Operator{Name: "zhang.desk", Role: operator.RoleAdmin, PasswordHash: "x", Created: t0}); !errors.Is(err, operator.ErrNameTaken) {
		t.Fatalf("same name again: %v", err)
	}
	got, err := s.OperatorByName(ctx, "zhang.desk")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("by name %+v %v, want %+v", got, err, a)
	}
	a.Role, a.PasswordHash, a.TOTPSecret, a.TOTPLast, a.Disabled = operator.RoleAdmin, "h3", nil, 99, true
	if err := s.UpdateOperator(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = again(t)
	if got, err := s.Operator(ctx, a.ID); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("after update %+v %v, want %+v", got, err, a)
	}
	if _, err := s.Operator(ctx, 9999); !errors.Is(err, operator.ErrUnknown) {
		t.Fatalf("unknown id: %v", err)
	}
	all, err := s.Operators(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "canteen-boss" || all[0].Merchant != "M-CANTEEN" || all[1].Name != "zhang.desk" {
		t.Fatalf("operators %+v %v", all, err)
	}
}

func testOperatorSessions(t *testing.T, f Factory) {
	s, _ := open(t, f)
	put := func(tok string, op int64, exp time.Time) {
		t.Helper()
		if err := s.PutOperatorSession(ctx, operator.Session{TokenHash: tok, Operator: op, Created: t0, Expires: exp}, t0); err != nil {
			t.Fatal(err)
		}
	}
	put("a", 1, t0.Add(time.Hour))
	put("b", 1, t0.Add(time.Hour))
	put("c", 2, t0.Add(time.Minute))
	got, err := s.OperatorSession(ctx, "a", t0)
	if err != nil || got == nil || got.Operator != 1 || !got.Created.Equal(t0) || !got.Expires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("session %+v %v", got, err)
	}
	if got, err := s.OperatorSession(ctx, "c", t0.Add(time.Minute)); err != nil || got != nil {
		t.Fatalf("expired session %+v %v", got, err)
	}
	if got, err := s.OperatorSession(ctx, "zz", t0); err != nil || got != nil {
		t.Fatalf("unknown session %+v %v", got, err)
	}
	if err := s.DeleteOperatorSession(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.OperatorSession(ctx, "a", t0); got != nil {
		t.Fatal("session alive after logout")
	}
	put("d", 1, t0.Add(time.Hour))
	if err := s.DeleteOperatorSessions(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"b", "d"} {
		if got, _ := s.OperatorSession(ctx, tok, t0); got != nil {
			t.Fatalf("session %s of operator 1 alive", tok)
		}
	}
}

func testAuditLog(t *testing.T, f Factory) {
	s, again := open(t, f)
	entries := []operator.AuditEntry{
		{Operator: 1, Name: "zhang.desk", Role: "helpdesk", Action: "wallet.freeze", Target: "user:2024001", Reason: "本人挂失手机",
			Before: json.RawMessage(`{"frozen":false}`), After: json.RawMessage(`{"frozen":true}`), Remote: "127.0.0.1"},
		{Operator: 1, Name: "zhang.desk", Role: "helpdesk", Action: "wallet.unfreeze", Target: "user:2024001", Reason: "找回 50%_done"},
		{Operator: 0, Name: "mallory", Action: "login.fail", Target: "operator:mallory", Remote: "10.0.0.9"},
		{Operator: 2, Name: "li.fin", Role: "finance", Action: "card.lost", Target: "user:2024002", Reason: "desk"},
	}
	for i := range entries {
		entries[i].At = t0.Add(time.Duration(i) * time.Minute)
		if err := s.AppendAudit(ctx, &entries[i]); err != nil || entries[i].ID == 0 {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = again(t)
	ids := func(q operator.AuditQuery) string {
		t.Helper()
		es, err := s.AuditLog(ctx, q)
		if err != nil {
			t.Fatalf("%+v: %v", q, err)
		}
		var out []int
		for _, e := range es {
			for i := range entries {
				if entries[i].ID == e.ID {
					out = append(out, i)
				}
			}
		}
		return fmt.Sprint(out)
	}
	tests := []struct {
		q    operator.AuditQuery
		want string // indexes into entries, newest first
	}{
		{operator.AuditQuery{}, "[3 2 1 0]"},
		{operator.AuditQuery{Limit: 2}, "[3 2]"},
		{operator.AuditQuery{BeforeID: entries[2].ID}, "[1 0]"},
		{operator.AuditQuery{Operator: "zhang.desk"}, "[1 0]"},
		{operator.AuditQuery{Action: "wallet."}, "[1 0]"},
		{operator.AuditQuery{Action: "wallet.freeze"}, "[0]"},
		{operator.AuditQuery{Action: "wallet"}, "[]"},
		{operator.AuditQuery{Target: "user:2024001"}, "[1 0]"},
		{operator.AuditQuery{Text: "挂失"}, "[0]"},
		{operator.AuditQuery{Text: "MALLORY"}, "[2]"},
		{operator.AuditQuery{Text: "50%_"}, "[1]"},
		{operator.AuditQuery{Text: "%"}, "[1]"},
		{operator.AuditQuery{Text: "' OR 1=1 --"}, "[]"},
		{operator.AuditQuery{Text: "2024002", Operator: "li.fin"}, "[3]"},
	}
	for _, tc := range tests {
		if got := ids(tc.q); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.q, got, tc.want)
		}
	}
	es, err := s.AuditLog(ctx, operator.AuditQuery{Target: "user:2024001", Action: "wallet.freeze"})
	if err != nil || len(es) != 1 {
		t.Fatalf("one entry: %v %v", es, err)
	}
	e := es[0]
	var before, after map[string]bool
	if json.Unmarshal(e.Before, &before) != nil || json.Unmarshal(e.After, &after) != nil || before["frozen"] || !after["frozen"] {
		t.Fatalf("before/after %s %s", e.Before, e.After)
	}
	if !e.At.Equal(t0) || e.Name != "zhang.desk" || e.Role != "helpdesk" || e.Reason != "本人挂失手机" || e.Remote != "127.0.0.1" || e.Operator != 1 {
		t.Fatalf("entry %+v", e)
	}
	es, _ = s.AuditLog(ctx, operator.AuditQuery{Action: "login.fail"})
	if len(es) != 1 || string(es[0].Before) != "null" || string(es[0].After) != "null" {
		t.Fatalf("entry without states: %+v", es)
	}
}
