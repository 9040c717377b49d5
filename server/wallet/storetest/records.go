package storetest

import (
	"fmt"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

func testSeenCodes(t *testing.T, f Factory) {
	s, _ := open(t, f)
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
		r := &wallet.Record{Key: tc.owner, Kind: wallet.KindPayment, Status: wallet.StatusProcessing, Amount: 5, Created: tc.now, Updated: tc.now}
		got, err := s.PutIntent(ctx, r, &wallet.CodeUse{ID: "1-2-3", Expires: exp, Now: tc.now}, nil)
		if err != nil || got != tc.want {
			t.Fatalf("PutIntent(%s, %v) = %q %v, want %q", tc.owner, tc.now, got, err, tc.want)
		}
		if got == tc.owner && r.ID == 0 {
			t.Fatalf("owner's record %s got no id", tc.owner)
		}
		// The record is written only for the code's owner.
		if stored, err := s.Record(ctx, tc.owner); err != nil || (stored != nil) != (tc.want == tc.owner || tc.owner == "a") {
			t.Fatalf("record %s after marking: %+v %v", tc.owner, stored, err)
		}
	}
	// Other codes are independent; a long-expired mark is taken over
	// whether or not it has been swept meanwhile.
	late := exp.Add(time.Hour)
	for i, id := range []string{"1-2-4", "1-2-3"} {
		r := &wallet.Record{Key: fmt.Sprint("c", i), Kind: wallet.KindPayment, Created: late, Updated: late}
		if got, err := s.PutIntent(ctx, r, &wallet.CodeUse{ID: id, Expires: late.Add(time.Minute), Now: late}, nil); err != nil || got != r.Key {
			t.Fatalf("code %s: owner %q %v", id, got, err)
		}
	}
}

func testRecords(t *testing.T, f Factory) {
	s, _ := open(t, f)
	day := time.Date(2026, 11, 30, 0, 0, 0, 0, wallet.Shanghai)
	put := func(key, kind, terminal string, amount int64, st protocol.Status, ch string, at time.Time) *wallet.Record {
		r := &wallet.Record{Key: key, Kind: kind, UserID: 7, Terminal: terminal, Amount: amount, Status: st, Channel: ch, Created: at, Updated: at}
		if err := s.PutRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := put("Q:a", wallet.KindScanPay, "pos-1", 100, protocol.StatusApproved, protocol.ChannelBalance, day)
	b := put("Q:b", wallet.KindScanPay, "pos-1", 200, wallet.StatusProcessing, protocol.ChannelBankCard, day.Add(time.Hour))
	c := put("Q:c", wallet.KindScanPay, "pos-2", 300, protocol.StatusApproved, protocol.ChannelBalance, day.Add(2*time.Hour))
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
	put("T:x", wallet.KindPayment, "pos-1", 50, protocol.StatusApproved, protocol.ChannelWeChat, day)          // not wallet-funded
	put("T:y", wallet.KindPayment, "pos-1", 70, protocol.StatusDeclined, protocol.ChannelBalance, day)         // not approved
	put("U:z", wallet.KindTopUp, "", 5000, protocol.StatusApproved, protocol.ChannelBankCard, day)             // not a payment
	put("T:w", wallet.KindPayment, "pos-1", 11, protocol.StatusApproved, protocol.ChannelBalance, day.Add(-1)) // the day before
	put("X:t", "tombstone", "pos-1", 0, protocol.StatusDeclined, "", day)                                      // not the student's business
	sum, err := s.PaidBetween(ctx, 7, day, day.AddDate(0, 0, 1))
	if err != nil || sum != 600 {
		t.Fatalf("paid %d %v", sum, err)
	}
	ps, err := s.ScanPays(ctx, "pos-1", 1)
	if err != nil || len(ps) != 1 || ps[0].Key != "Q:b" || ps[0].QRSeq != 2 {
		t.Fatalf("scan pays %+v %v", ps, err)
	}
	if ps, _ := s.ScanPays(ctx, "pos-1", 0); len(ps) != 2 || ps[0].Key != "Q:a" {
		t.Fatalf("scan pays from 0 %+v", ps)
	}
	page, err := s.Records(ctx, 7, 0, 3)
	if err != nil || len(page) != 3 || page[0].ID <= page[1].ID || page[1].ID <= page[2].ID {
		t.Fatalf("page %+v %v", page, err)
	}
	rest, _ := s.Records(ctx, 7, page[2].ID, 100)
	if len(rest)+len(page) != 7 {
		t.Fatalf("paging lost records (or showed a tombstone): %d + %d", len(page), len(rest))
	}
	if other, _ := s.Records(ctx, 8, 0, 100); len(other) != 0 {
		t.Fatalf("another user's records %+v", other)
	}
	all, err := s.AllRecords(ctx, 0, 100)
	if err != nil || len(all) != 8 || all[0].Key != "X:t" {
		t.Fatalf("all records %d %v", len(all), err)
	}
	if more, _ := s.AllRecords(ctx, all[1].ID, 100); len(more) != 6 {
		t.Fatalf("all records before %d: %d", all[1].ID, len(more))
	}
	if r, err := s.Record(ctx, "nope"); r != nil || err != nil {
		t.Fatalf("absent record %v %v", r, err)
	}
}

// Every field of a record reads back; an update keeps the key's id, its
// creation time, terminal, tx, merchant and request hash.
func testRecordUpdate(t *testing.T, f Factory) {
	s, _ := open(t, f)
	r := &wallet.Record{Key: "T:pos-1:TX1", Kind: wallet.KindPayment, UserID: 3, Terminal: "pos-1", Tx: "TX1", Merchant: "M1",
		Amount: 1250, Channel: protocol.ChannelBankCard, BankCode: "CCB", BankCard: "6217000000000000014",
		Status: wallet.StatusProcessing, ReqHash: "rh", Created: t0, Updated: t0}
	if err := s.PutRecord(ctx, r); err != nil {
		t.Fatal(err)
	}
	id := r.ID
	upd := *r
	upd.Status, upd.Code, upd.Response, upd.Updated = protocol.StatusDeclined, "LIMIT", []byte(`{"status":"declined"}`), t0.Add(time.Second)
	upd.Terminal, upd.Tx, upd.Merchant, upd.ReqHash, upd.Created = "other", "TX2", "M2", "rh2", t0.Add(time.Hour)
	if err := s.PutRecord(ctx, &upd); err != nil || upd.ID != id {
		t.Fatalf("update: id %d→%d %v", id, upd.ID, err)
	}
	got, err := s.Record(ctx, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	want := *r
	want.Status, want.Code, want.Response, want.Updated = upd.Status, upd.Code, upd.Response, upd.Updated
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("record\n got %+v\nwant %+v", *got, want)
	}
}

func testUnfinished(t *testing.T, f Factory) {
	s, _ := open(t, f)
	for i, st := range []protocol.Status{wallet.StatusProcessing, protocol.StatusApproved, protocol.StatusPending, wallet.StatusReversing,
		protocol.StatusDeclined, wallet.StatusProcessing} {
		at := t0.Add(time.Duration(10-i) * time.Second) // later records updated earlier
		r := &wallet.Record{Key: fmt.Sprint("k", i), Kind: wallet.KindPayment, UserID: 1, Status: st, Created: at, Updated: at}
		if err := s.PutRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Unfinished(ctx, t0.Add(10*time.Second), 10)
	if err != nil || len(got) != 3 || got[0].Key != "k5" || got[1].Key != "k3" || got[2].Key != "k2" {
		t.Fatalf("unfinished %+v %v", got, err)
	}
	if got, _ := s.Unfinished(ctx, t0.Add(11*time.Second), 2); len(got) != 2 || got[0].Key != "k5" {
		t.Fatalf("unfinished, limit 2: %+v", got)
	}
}

func testPaidBetween(t *testing.T, f Factory) {
	s, _ := open(t, f)
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
	if got, err := s.PaidBetween(ctx, u.ID, at.Add(time.Nanosecond), day.AddDate(0, 0, 1)); err != nil || got != 0 {
		t.Fatalf("PaidBetween after them = %d, %v", got, err)
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

// FinishRecord writes the final state over a processing record only: one
// reversed meanwhile (by another authorizer) stays reversed.
func testFinishRecord(t *testing.T, f Factory) {
	s, _ := open(t, f)
	put := func(key string, st protocol.Status) *wallet.Record {
		r := &wallet.Record{Key: key, Kind: wallet.KindPayment, UserID: 3, Terminal: "pos-1", Tx: protocol.TxID(key), Merchant: "M1",
			Amount: 1250, Channel: protocol.ChannelBalance, Status: st, ReqHash: "rh", Created: t0, Updated: t0}
		if err := s.PutRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		key     string
		stored  protocol.Status
		applied bool
		want    protocol.Status
	}{
		{"T:pos-1:A", wallet.StatusProcessing, true, protocol.StatusApproved},
		{"T:pos-1:B", protocol.StatusReversed, false, protocol.StatusReversed},
		{"T:pos-1:C", protocol.StatusApproved, false, protocol.StatusApproved},
	} {
		r := put(tc.key, tc.stored)
		fin := *r
		fin.Status, fin.Response, fin.Updated = protocol.StatusApproved, []byte(`{"status":"approved"}`), t0.Add(time.Second)
		applied, err := s.FinishRecord(ctx, &fin)
		if err != nil || applied != tc.applied {
			t.Fatalf("%s: applied %v %v, want %v", tc.key, applied, err, tc.applied)
		}
		got, err := s.Record(ctx, tc.key)
		if err != nil || got.Status != tc.want {
			t.Fatalf("%s: %+v %v, want %s", tc.key, got, err, tc.want)
		}
		if tc.applied && (string(got.Response) != string(fin.Response) || !got.Updated.Equal(fin.Updated)) {
			t.Fatalf("%s: finished as %+v", tc.key, got)
		}
	}
	if applied, err := s.FinishRecord(ctx, &wallet.Record{Key: "T:pos-1:none", Status: protocol.StatusApproved}); err != nil || applied {
		t.Fatalf("finish of no record: %v %v", applied, err)
	}
}
