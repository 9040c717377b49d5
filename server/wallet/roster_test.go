package wallet_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// Issue 13 item 10, at the wallet: duplicates within one roster are
// refused on every entry involved; outcomes are new, updated or unchanged;
// the campus may be given by name; each refusal is a reason with Chinese
// and English messages.
func TestImportRoster(t *testing.T) {
	e := wallettest.New(t)
	id := wallettest.IDNumber
	entry := func(no string, n int, campus, card string) wallet.RosterEntry {
		return wallet.RosterEntry{StudentNo: no, Name: fmt.Sprintf("学生%d", n), IDNumber: id(fmt.Sprintf("11010520000101%03d", n)),
			Phone: fmt.Sprintf("138%08d", n), Campus: campus, CardUID: card, Password: "pw", Line: n + 1}
	}
	type result struct {
		o   wallet.ImportOutcome
		err error
	}
	run := func(entries []wallet.RosterEntry) []result {
		out := make([]result, len(entries))
		if err := e.Svc.ImportRoster(ctx, entries, func(i int, o wallet.ImportOutcome, err error) { out[i] = result{o, err} }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	roster := []wallet.RosterEntry{
		entry("3001", 1, "yungu", "DA01"),
		entry("3002", 2, "云谷", "DA02"),
		entry("3001", 3, "yungu", "DA03"),
		entry("3004", 4, "主校区", "da05"),
		entry("3005", 5, "main", "DA05"),
		entry("3006", 6, "火星", ""),
		entry("30 07", 7, "main", ""),
		entry("3008", 8, "main", "XYZ"),
	}
	got := run(roster)
	want := []struct {
		o      wallet.ImportOutcome
		reason *protocol.Reason
		detail string
	}{
		{0, protocol.ErrRosterDuplicate, "student number 3001 also on line 4"},
		{wallet.ImportNew, nil, ""},
		{0, protocol.ErrRosterDuplicate, "学号 3001 也在第 2 行"},
		{0, protocol.ErrRosterDuplicate, "card DA05 also on line 6"},
		{0, protocol.ErrRosterDuplicate, "card DA05 also on line 5"},
		{0, protocol.ErrRosterCampus, `"火星"`},
		{0, protocol.ErrRosterStudentNo, `"30 07"`},
		{0, protocol.ErrRosterCardUID, `"XYZ"`},
	}
	for i, w := range want {
		g := got[i]
		if g.o != w.o || (w.reason == nil) != (g.err == nil) || (w.reason != nil && (!errors.Is(g.err, w.reason) || !strings.Contains(g.err.Error(), w.detail))) {
			t.Errorf("entry %d (%s): %v %v, want %v %v %q", i, roster[i].StudentNo, g.o, g.err, w.o, w.reason, w.detail)
		}
		if w.reason != nil && (w.reason.ZH == "" || w.reason.EN == "") {
			t.Errorf("reason %s lacks a message", w.reason.Code)
		}
	}
	if _, err := e.Store.UserByStudentNo(ctx, "3001"); !errors.Is(err, protocol.ErrUserUnknown) {
		t.Fatalf("a duplicated number was imported: %v", err)
	}
	if u, err := e.Store.UserByStudentNo(ctx, "3002"); err != nil || u.Campus != wallettest.Campus {
		t.Fatalf("campus by name: %+v %v", u, err)
	}
	// Again: unchanged; a changed phone: updated; a new one: new.
	second := []wallet.RosterEntry{entry("3002", 2, "yungu", "DA02"), entry("3009", 9, "main", "")}
	second[0].IDNumber = strings.ToLower(second[0].IDNumber) // the check X in either case
	for i, r := range run(second) {
		if w := []wallet.ImportOutcome{wallet.ImportUnchanged, wallet.ImportNew}[i]; r.o != w || r.err != nil {
			t.Errorf("re-import %d: %v %v, want %v", i, r.o, r.err, w)
		}
	}
	second[0].Phone = "13900000002"
	if r := run(second[:1]); r[0].o != wallet.ImportUpdated || r[0].err != nil {
		t.Errorf("changed phone: %v %v", r[0].o, r[0].err)
	}
}
