package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/sqlite"
)

var ctx = context.Background()

func open(t *testing.T) (*sqlite.Store, string) {
	p := filepath.Join(t.TempDir(), "wallet.db")
	s, err := sqlite.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

func TestUsersSurviveReopen(t *testing.T) {
	s, p := open(t)
	u := &wallet.User{StudentNo: "1", Name: "张三", IDNumber: "x", Phone: "y", Campus: "yungu", CardUID: "AB01", LoginHash: "h1",
		State: wallet.StateInactive, LimitPerTx: 1, LimitDaily: 2}
	created, err := s.UpsertRosterUser(ctx, u)
	if err != nil || !created || u.ID == 0 {
		t.Fatalf("create %v %v %+v", created, err, u)
	}
	u.State, u.BankCode, u.PasswordFree, u.PayLockedUntil = wallet.StateActive, "CCB", true, time.Unix(100, 5).UTC()
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// A re-import updates roster fields and keeps the wallet.
	again := &wallet.User{StudentNo: "1", Name: "张三丰", IDNumber: "x", Phone: "y", Campus: "yungu", CardUID: "AB02", LoginHash: "h2",
		State: wallet.StateInactive, LimitPerTx: 1, LimitDaily: 2}
	created, err = s.UpsertRosterUser(ctx, again)
	if err != nil || created || again.ID != u.ID || again.State != wallet.StateActive || again.LoginHash != "h1" || again.Name != "张三丰" {
		t.Fatalf("re-import %v %v %+v", created, err, again)
	}
	s.Close()
	s2, err := sqlite.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.UserByCard(ctx, "AB02")
	if err != nil || !got.PasswordFree || !got.PayLockedUntil.Equal(u.PayLockedUntil) || got.BankCode != "CCB" {
		t.Fatalf("after reopen %+v %v", got, err)
	}
	if _, err := s2.UserByCard(ctx, "AB01"); !errors.Is(err, protocol.ErrCardUnknown) {
		t.Fatalf("old card: %v", err)
	}
	if _, err := s2.User(ctx, 999); !errors.Is(err, protocol.ErrUserUnknown) {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestSeenCodes(t *testing.T) {
	s, _ := open(t)
	t0 := time.Unix(1_800_000_000, 0)
	exp := t0.Add(80 * time.Second)
	for _, tc := range []struct {
		owner string
		now   time.Time
		want  string
	}{
		{"a", t0, "a"},
		{"a", t0.Add(time.Second), "a"}, // the same transaction again
		{"b", t0.Add(time.Second), "a"}, // another one: used
		{"b", exp, "a"},                 // kept until its expiry
		{"b", exp.Add(time.Nanosecond), "b"},
	} {
		r := &wallet.Record{Key: tc.owner, Kind: wallet.KindPayment, Status: wallet.StatusProcessing, Created: tc.now}
		got, err := s.PutRecordUsingCode(ctx, r, wallet.CodeUse{ID: "1-2-3", Expires: exp, Now: tc.now})
		if err != nil || got != tc.want {
			t.Fatalf("PutRecordUsingCode(%s, %v) = %q %v, want %q", tc.owner, tc.now, got, err, tc.want)
		}
		// The record is written only for the code's owner.
		if stored, err := s.Record(ctx, tc.owner); err != nil || (stored != nil) != (tc.want == tc.owner || tc.owner == "a") {
			t.Fatalf("record %s after marking: %+v %v", tc.owner, stored, err)
		}
	}
}

func TestRecordsAndCursor(t *testing.T) {
	s, _ := open(t)
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, wallet.Shanghai)
	put := func(key, kind, terminal string, amount int64, st protocol.Status, ch string, at time.Time) *wallet.Record {
		r := &wallet.Record{Key: key, Kind: kind, UserID: 7, Terminal: terminal, Amount: amount, Status: st, Channel: ch, Created: at, Updated: at}
		if err := s.PutRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := put("Q:a", wallet.KindScanPay, "pos-1", 100, protocol.StatusApproved, protocol.ChannelBalance, t0)
	b := put("Q:b", wallet.KindScanPay, "pos-1", 200, wallet.StatusProcessing, protocol.ChannelBankCard, t0.Add(time.Hour))
	c := put("Q:c", wallet.KindScanPay, "pos-2", 300, protocol.StatusApproved, protocol.ChannelBalance, t0.Add(2*time.Hour))
	if a.QRSeq != 1 || b.QRSeq != 0 || c.QRSeq != 1 {
		t.Fatalf("cursors %d %d %d", a.QRSeq, b.QRSeq, c.QRSeq)
	}
	b.Status = protocol.StatusApproved
	if err := s.PutRecord(ctx, b); err != nil || b.QRSeq != 2 {
		t.Fatalf("cursor on approval %d %v", b.QRSeq, err)
	}
	if err := s.PutRecord(ctx, b); err != nil || b.QRSeq != 2 {
		t.Fatalf("cursor changed on update %d %v", b.QRSeq, err)
	}
	put("T:x", wallet.KindPayment, "pos-1", 50, protocol.StatusApproved, protocol.ChannelWeChat, t0)          // not wallet-funded
	put("T:y", wallet.KindPayment, "pos-1", 70, protocol.StatusDeclined, protocol.ChannelBalance, t0)         // not approved
	put("U:z", wallet.KindTopUp, "", 5000, protocol.StatusApproved, protocol.ChannelBankCard, t0)             // not a payment
	put("T:w", wallet.KindPayment, "pos-1", 11, protocol.StatusApproved, protocol.ChannelBalance, t0.Add(-1)) // the day before
	sum, err := s.PaidBetween(ctx, 7, t0, t0.AddDate(0, 0, 1))
	if err != nil || sum != 600 {
		t.Fatalf("paid %d %v", sum, err)
	}
	ps, err := s.ScanPays(ctx, "pos-1", 1)
	if err != nil || len(ps) != 1 || ps[0].Key != "Q:b" {
		t.Fatalf("scan pays %+v %v", ps, err)
	}
	page, err := s.Records(ctx, 7, 0, 3)
	if err != nil || len(page) != 3 || page[0].ID <= page[1].ID {
		t.Fatalf("page %+v %v", page, err)
	}
	rest, _ := s.Records(ctx, 7, page[2].ID, 100)
	if len(rest)+len(page) != 7 {
		t.Fatalf("paging lost records: %d + %d", len(page), len(rest))
	}
	if r, err := s.Record(ctx, "nope"); r != nil || err != nil {
		t.Fatalf("absent record %v %v", r, err)
	}
}

func TestRevisionAndJournal(t *testing.T) {
	s, _ := open(t)
	if v, _ := s.Revision(ctx); v != 0 {
		t.Fatalf("revision %d", v)
	}
	for i := uint64(1); i <= 3; i++ {
		if v, err := s.BumpRevision(ctx); err != nil || v != i {
			t.Fatalf("bump %d %v", v, err)
		}
	}
	if h, _ := s.JournalEntry(ctx, "t", 1); h != "" {
		t.Fatal("journal entry before any")
	}
	s.PutJournalEntry(ctx, "t", 1, "TX", "h1", time.Now())
	s.PutJournalEntry(ctx, "t", 1, "TX", "h2", time.Now())
	if h, _ := s.JournalEntry(ctx, "t", 1); h != "h1" {
		t.Fatalf("journal hash %q", h)
	}
}

// Concurrent writes share transactions (group commit) and still see each
// other: one owner per code, unique increasing cursors, and a failing write
// does not take its batch down.
func TestGroupCommit(t *testing.T) {
	s, _ := open(t)
	now := time.Unix(1_800_000_000, 0)
	const n = 64
	owners := make([]string, n)
	seqs := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owners[i], _ = s.PutRecordUsingCode(ctx, &wallet.Record{Key: fmt.Sprint("owner-", i), Kind: wallet.KindPayment, Created: now},
				wallet.CodeUse{ID: "same-code", Expires: now.Add(time.Minute), Now: now})
			r := &wallet.Record{Key: fmt.Sprint("Q:", i), Kind: wallet.KindScanPay, Terminal: "pos-1", Amount: 1, Status: protocol.StatusApproved, Created: now}
			if err := s.PutRecord(ctx, r); err != nil {
				t.Error(err)
			}
			seqs[i] = r.QRSeq
			// A write that fails (foreign key: no such merchant) fails alone.
			errs[i] = s.PutTerminal(ctx, &wallet.Terminal{ID: fmt.Sprint("t", i), Merchant: "nobody", Mode: protocol.ModePOS})
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i := 0; i < n; i++ {
		if owners[i] != owners[0] {
			t.Fatalf("code owners differ: %q %q", owners[0], owners[i])
		}
		if seqs[i] < 1 || seqs[i] > n || seen[seqs[i]] {
			t.Fatalf("cursor %d repeated or out of range", seqs[i])
		}
		seen[seqs[i]] = true
		if errs[i] == nil {
			t.Fatal("a terminal of an unknown merchant was stored")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMerchant(ctx, &wallet.Merchant{ID: "m"}); !errors.Is(err, sqlite.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestPaidBetweenUnsettledClearWeChat(t *testing.T) {
	s, _ := open(t)
	u := &wallet.User{StudentNo: "1", Name: "张三", IDNumber: "x", Phone: "y", Campus: "yungu", LoginHash: "h",
		State: wallet.StateActive, LimitPerTx: 1, LimitDaily: 2, WeChatOpenID: "o1"}
	if _, err := s.UpsertRosterUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	u.WeChatOpenID, u.LimitDaily = "o1", 7
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	at := day.Add(10 * time.Hour)
	for i, r := range []wallet.Record{
		{Kind: wallet.KindPayment, Channel: protocol.ChannelBalance, Status: protocol.StatusApproved, Amount: 1},       // counted
		{Kind: wallet.KindPayment, Channel: protocol.ChannelBankCard, Status: protocol.StatusPending, Amount: 10},      // counted, unsettled
		{Kind: wallet.KindScanPay, Channel: protocol.ChannelBalance, Status: wallet.StatusProcessing, Amount: 100},     // counted, unsettled
		{Kind: wallet.KindShower, Channel: protocol.ChannelBalance, Status: protocol.StatusHeld, Amount: 1000},         // counted at the hold
		{Kind: wallet.KindShower, Channel: protocol.ChannelBalance, Status: protocol.StatusVoided, Amount: 0},          // not
		{Kind: wallet.KindPayment, Channel: protocol.ChannelWeChat, Status: protocol.StatusPending, Amount: 10000},     // not counted, unsettled
		{Kind: wallet.KindPayment, Channel: protocol.ChannelBalance, Status: protocol.StatusDeclined, Amount: 100000},  // not
		{Kind: wallet.KindPayment, Channel: protocol.ChannelBankCard, Status: wallet.StatusReversing, Amount: 1000000}, // not counted, unsettled
		{Kind: wallet.KindTopUp, Channel: protocol.ChannelBankCard, Status: protocol.StatusApproved, Amount: 10000000}, // not
	} {
		r.Key, r.UserID, r.Created, r.Updated = fmt.Sprintf("k%d", i), u.ID, at, at
		if err := s.PutRecord(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.PaidBetween(ctx, u.ID, day, day.AddDate(0, 0, 1)); err != nil || got != 1111 {
		t.Fatalf("PaidBetween = %d, %v; want 1111", got, err)
	}
	if got, err := s.Unsettled(ctx, u.ID); err != nil || len(got) != 4 || got[0].Key != "k1" {
		t.Fatalf("Unsettled = %+v, %v", got, err)
	}
	if got, err := s.Unsettled(ctx, u.ID+1); err != nil || len(got) != 0 {
		t.Fatalf("Unsettled of another user = %+v, %v", got, err)
	}
	// Clears only the named openid, and nothing else of the user.
	if err := s.ClearWeChat(ctx, u.ID, "o2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(ctx, u.ID); got.WeChatOpenID != "o1" {
		t.Fatalf("openid %q after clearing another", got.WeChatOpenID)
	}
	if err := s.ClearWeChat(ctx, u.ID, "o1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(ctx, u.ID); got.WeChatOpenID != "" || got.LimitDaily != 7 {
		t.Fatalf("after clearing: %+v", got)
	}
}

// Expired marks are swept (at most once a second), so the table does not
// grow with every payment ever made.
func TestSeenCodesSwept(t *testing.T) {
	s, path := open(t)
	t0 := time.Unix(1_800_000_000, 0)
	for i := 0; i < 5; i++ {
		r := &wallet.Record{Key: fmt.Sprint("k", i), Kind: wallet.KindPayment, Created: t0}
		if _, err := s.PutRecordUsingCode(ctx, r, wallet.CodeUse{ID: fmt.Sprint("c", i), Expires: t0.Add(time.Minute), Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	later := t0.Add(2 * time.Minute)
	r := &wallet.Record{Key: "late", Kind: wallet.KindPayment, Created: later}
	if _, err := s.PutRecordUsingCode(ctx, r, wallet.CodeUse{ID: "c-late", Expires: later.Add(time.Minute), Now: later}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM seen_codes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d seen codes kept in %s, want 1 (the live one)", n, path)
	}
}
