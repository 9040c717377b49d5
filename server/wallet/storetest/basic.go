package storetest

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

func newUser(no string) *wallet.User {
	return &wallet.User{StudentNo: no, Name: "张三", IDNumber: "11010520000101001X", Phone: "13800000001", Category: "本科",
		Campus: "yungu", CardUID: "C" + no, LoginHash: "h-" + no, State: wallet.StateInactive, LimitPerTx: 500_00, LimitDaily: 1000_00}
}

func addUser(t *testing.T, s Store, no string) *wallet.User {
	t.Helper()
	u := newUser(no)
	if _, err := s.UpsertRosterUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func testUsers(t *testing.T, f Factory) {
	s, again := open(t, f)
	u := &wallet.User{StudentNo: "1", Name: "张三", IDNumber: "x", Phone: "y", Campus: "yungu", CardUID: "AB01", LoginHash: "h1",
		State: wallet.StateInactive, LimitPerTx: 1, LimitDaily: 2}
	created, err := s.UpsertRosterUser(ctx, u)
	if err != nil || !created || u.ID == 0 {
		t.Fatalf("create %v %v %+v", created, err, u)
	}
	u.State, u.BankCode, u.BankCard, u.PasswordFree = wallet.StateActive, "CCB", "6217000000000000014", true
	u.Reopens, u.Unbinds, u.PayHash, u.PayFails, u.PayLockedUntil = 1, 2, "ph", 3, time.Unix(100, 5).UTC()
	u.WaterHash, u.WaterFails, u.WaterLockedUntil, u.WeChatOpenID = "wh", 4, time.Unix(200, 7).UTC(), "oid-1"
	u.LimitPerTx, u.LimitDaily = 11, 22
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// A re-import updates roster fields and keeps the wallet.
	again1 := &wallet.User{StudentNo: "1", Name: "张三丰", IDNumber: "x2", Phone: "y2", Campus: "yungu", CardUID: "AB02", LoginHash: "h2",
		State: wallet.StateInactive, LimitPerTx: 1, LimitDaily: 2}
	created, err = s.UpsertRosterUser(ctx, again1)
	if err != nil || created || again1.ID != u.ID || again1.State != wallet.StateActive || again1.LoginHash != "h1" ||
		again1.Name != "张三丰" || again1.IDNumber != "x2" || again1.BankCard != u.BankCard {
		t.Fatalf("re-import %v %v %+v", created, err, again1)
	}
	s.Close()
	s2 := again(t)
	got, err := s2.UserByCard(ctx, "AB02")
	if err != nil {
		t.Fatal(err)
	}
	want := *u
	want.Name, want.IDNumber, want.Phone, want.CardUID = "张三丰", "x2", "y2", "AB02"
	want.Version = got.Version // the store's count of changes, where it keeps one: sqlite's own test
	if *got != want {
		t.Fatalf("after reopen\n got %+v\nwant %+v", got, want)
	}
	if _, err := s2.UserByCard(ctx, "AB01"); !errors.Is(err, protocol.ErrCardUnknown) {
		t.Fatalf("old card: %v", err)
	}
	if _, err := s2.User(ctx, 999); !errors.Is(err, protocol.ErrUserUnknown) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := s2.UserByStudentNo(ctx, "nobody"); !errors.Is(err, protocol.ErrUserUnknown) {
		t.Fatalf("unknown student: %v", err)
	}
}

func testLookups(t *testing.T, f Factory) {
	s, _ := open(t, f)
	a, b := addUser(t, s, "2024001"), addUser(t, s, "2024002")
	if a.ID == b.ID {
		t.Fatal("two users, one id")
	}
	b.CardUID = ""
	b.WeChatOpenID = "oB"
	if err := s.UpdateUser(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what string
		get  func() (*wallet.User, error)
		want uint32
		err  error
	}{
		{"by id", func() (*wallet.User, error) { return s.User(ctx, a.ID) }, a.ID, nil},
		{"by student no", func() (*wallet.User, error) { return s.UserByStudentNo(ctx, "2024002") }, b.ID, nil},
		{"by card", func() (*wallet.User, error) { return s.UserByCard(ctx, "C2024001") }, a.ID, nil},
		{"by empty card", func() (*wallet.User, error) { return s.UserByCard(ctx, "") }, 0, protocol.ErrCardUnknown},
		{"by openid", func() (*wallet.User, error) { return s.UserByOpenID(ctx, "oB") }, b.ID, nil},
		{"by empty openid", func() (*wallet.User, error) { return s.UserByOpenID(ctx, "") }, 0, protocol.ErrUserUnknown},
		{"by unknown openid", func() (*wallet.User, error) { return s.UserByOpenID(ctx, "oX") }, 0, protocol.ErrUserUnknown},
	} {
		u, err := tc.get()
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.what, err, tc.err)
			}
			continue
		}
		if err != nil || u.ID != tc.want {
			t.Errorf("%s: %+v %v, want user %d", tc.what, u, err, tc.want)
		}
	}
}

// Personal data reads back as written, whatever it holds.
func testPersonalData(t *testing.T, f Factory) {
	s, _ := open(t, f)
	u := addUser(t, s, "p1")
	for _, card := range []string{"6217000000000000014", "", "62"} {
		u.BankCard, u.IDNumber, u.Phone = card, "ID-"+card, "P-"+card
		if err := s.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		got, err := s.User(ctx, u.ID)
		if err != nil || got.BankCard != card || got.IDNumber != "ID-"+card || got.Phone != "P-"+card {
			t.Fatalf("card %q: %+v %v", card, got, err)
		}
		r := &wallet.Record{Key: "k" + card, Kind: wallet.KindTopUp, UserID: u.ID, BankCode: "CCB", BankCard: card,
			Status: protocol.StatusApproved, Created: t0, Updated: t0}
		if err := s.PutRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Record(ctx, r.Key); err != nil || got.BankCard != card {
			t.Fatalf("record card %q: %+v %v", card, got, err)
		}
	}
}

// A record put again under its key without its ID (read from elsewhere,
// or a retry that never saw it) updates that row: same ID, new state, and
// what identifies the request (terminal, transaction, request hash,
// created) unchanged.
func testRecordPutAgainByKey(t *testing.T, f Factory) {
	s, _ := open(t, f)
	u := addUser(t, s, "rk")
	first := &wallet.Record{Key: "pay:T:T1:tx-rk", Kind: wallet.KindPayment, UserID: u.ID, Terminal: "T1", Tx: "tx-rk",
		Merchant: "M1", Amount: 500, ReqHash: "h1", Status: wallet.StatusProcessing, Created: t0, Updated: t0}
	if err := s.PutRecord(ctx, first); err != nil || first.ID == 0 {
		t.Fatalf("first put: id %d, %v", first.ID, err)
	}
	again := &wallet.Record{Key: first.Key, Kind: wallet.KindPayment, UserID: u.ID, Terminal: "T2", Tx: "tx-other",
		Merchant: "M1", Amount: 450, Channel: protocol.ChannelBalance, ReqHash: "h2", Status: protocol.StatusApproved,
		Response: []byte(`{"status":"approved"}`), Created: t0.Add(time.Hour), Updated: t0.Add(time.Minute)}
	if err := s.PutRecord(ctx, again); err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID {
		t.Fatalf("put again by key: id %d, the row's is %d", again.ID, first.ID)
	}
	got, err := s.Record(ctx, first.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != first.ID || got.Status != protocol.StatusApproved || got.Amount != 450 || got.Channel != protocol.ChannelBalance ||
		string(got.Response) != `{"status":"approved"}` || !got.Updated.Equal(t0.Add(time.Minute)) {
		t.Fatalf("state not updated: %+v", got)
	}
	if got.Terminal != "T1" || got.Tx != "tx-rk" || got.ReqHash != "h1" || !got.Created.Equal(t0) {
		t.Fatalf("identity of the request changed: %+v", got)
	}
}

func testDevices(t *testing.T, f Factory) {
	s, _ := open(t, f)
	u := addUser(t, s, "d1")
	pub, _, _ := ed25519.GenerateKey(nil)
	d1 := &wallet.Device{UserID: u.ID, Key: pub, Created: t0, Expires: t0.Add(24 * time.Hour)}
	d2 := &wallet.Device{UserID: u.ID, Key: pub, Created: t0, Expires: t0.Add(time.Hour)}
	for _, d := range []*wallet.Device{d1, d2} {
		if err := s.AddDevice(ctx, d); err != nil || d.ID == 0 {
			t.Fatalf("add device %+v %v", d, err)
		}
	}
	if d1.ID == d2.ID {
		t.Fatal("two devices, one id")
	}
	got, err := s.Device(ctx, d1.ID)
	if err != nil || got.UserID != u.ID || !bytes.Equal(got.Key, pub) || !got.Created.Equal(t0) || !got.Expires.Equal(d1.Expires) || got.Revoked || !got.RevokedAt.IsZero() {
		t.Fatalf("device %+v %v", got, err)
	}
	if _, err := s.Device(ctx, 9999); !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("unknown device: %v", err)
	}
	if rs, err := s.RevokedDevices(ctx, t0); err != nil || len(rs) != 0 {
		t.Fatalf("revoked before any: %v %v", rs, err)
	}
	// A code payment's read: the user, and whether the device is theirs
	// and live.
	other := addUser(t, s, "d2")
	for _, c := range []struct {
		user, device uint32
		ok           bool
	}{{u.ID, d1.ID, true}, {u.ID, d2.ID, true}, {u.ID, 9999, false}, {other.ID, d1.ID, false}} {
		if got, ok, err := s.Payer(ctx, c.user, c.device); err != nil || got.ID != c.user || got.StudentNo == "" || ok != c.ok {
			t.Fatalf("payer %d with device %d: %+v %v %v (want ok %v)", c.user, c.device, got, ok, err, c.ok)
		}
	}
	if _, _, err := s.Payer(ctx, other.ID+1000, d1.ID); !errors.Is(err, protocol.ErrUserUnknown) {
		t.Fatalf("payer unknown: %v", err)
	}
	// The time of the revocation is kept; revoking again keeps the first.
	revokedAt := t0.Add(90 * time.Minute)
	for i, d := range []*wallet.Device{d1, d2, d1} {
		if err := s.RevokeDevice(ctx, d.ID, revokedAt.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Device(ctx, d1.ID); !got.Revoked || !got.RevokedAt.Equal(revokedAt) {
		t.Fatalf("revoked %v at %v, want at %v", got.Revoked, got.RevokedAt, revokedAt)
	}
	if _, ok, err := s.Payer(ctx, u.ID, d1.ID); err != nil || ok {
		t.Fatalf("payer with a revoked device: ok %v, %v", ok, err)
	}
	// Listed only until the certificate expires.
	if rs, err := s.RevokedDevices(ctx, t0); err != nil || len(rs) != 2 || rs[0] > rs[1] {
		t.Fatalf("revoked %v %v", rs, err)
	}
	if rs, err := s.RevokedDevices(ctx, t0.Add(2*time.Hour)); err != nil || len(rs) != 1 || rs[0] != d1.ID {
		t.Fatalf("revoked later %v %v", rs, err)
	}
	// The user's own list: every device, revoked ones included, by ID.
	ds, err := s.Devices(ctx, u.ID)
	if err != nil || len(ds) != 2 || ds[0].ID != d1.ID || ds[1].ID != d2.ID || !ds[0].Revoked || !ds[1].Revoked ||
		ds[0].UserID != u.ID || !bytes.Equal(ds[0].Key, pub) || !ds[0].Created.Equal(t0) || !ds[1].Expires.Equal(d2.Expires) ||
		!ds[0].RevokedAt.Equal(revokedAt) || !ds[1].RevokedAt.Equal(revokedAt.Add(time.Minute)) {
		t.Fatalf("devices of the user: %+v %v", ds, err)
	}
	if ds, err := s.Devices(ctx, u.ID+1000); err != nil || len(ds) != 0 {
		t.Fatalf("devices of nobody: %+v %v", ds, err)
	}
}

func testLostCards(t *testing.T, f Factory) {
	s, _ := open(t, f)
	if lost, err := s.CardLost(ctx, "C1"); err != nil || lost {
		t.Fatalf("lost before report: %v %v", lost, err)
	}
	for _, uid := range []string{"C2", "C1", "C2"} { // a second report is a no-op
		if err := s.ReportCardLost(ctx, uid, 7, t0); err != nil {
			t.Fatal(err)
		}
	}
	if lost, err := s.CardLost(ctx, "C1"); err != nil || !lost {
		t.Fatalf("lost: %v %v", lost, err)
	}
	if cs, err := s.LostCards(ctx); err != nil || fmt.Sprint(cs) != "[C1 C2]" {
		t.Fatalf("lost cards %v %v", cs, err)
	}
	// 解挂: found again, the card pays; clearing twice is no error.
	for range 2 {
		if err := s.ClearCardLost(ctx, "C1"); err != nil {
			t.Fatal(err)
		}
	}
	if lost, err := s.CardLost(ctx, "C1"); err != nil || lost {
		t.Fatalf("lost after clearing: %v %v", lost, err)
	}
	if cs, err := s.LostCards(ctx); err != nil || fmt.Sprint(cs) != "[C2]" {
		t.Fatalf("lost cards after clearing %v %v", cs, err)
	}
}

func testMerchants(t *testing.T, f Factory) {
	s, _ := open(t, f)
	if _, err := s.Merchant(ctx, "M1"); !errors.Is(err, protocol.ErrMerchantUnknown) {
		t.Fatalf("unknown merchant: %v", err)
	}
	if _, err := s.Terminal(ctx, "T1"); !errors.Is(err, protocol.ErrTerminalUnknown) {
		t.Fatalf("unknown terminal: %v", err)
	}
	for _, m := range []wallet.Merchant{{ID: "M2", Name: "超市", Campus: "main"}, {ID: "M1", Name: "一食堂", Campus: "yungu"}, {ID: "M2", Name: "超市二", Campus: "main"}} {
		if err := s.PutMerchant(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := s.Merchant(ctx, "M2"); err != nil || m.Name != "超市二" {
		t.Fatalf("merchant %+v %v", m, err)
	}
	if ms, err := s.Merchants(ctx); err != nil || len(ms) != 2 || ms[0].ID != "M1" || ms[1] != (wallet.Merchant{ID: "M2", Name: "超市二", Campus: "main"}) {
		t.Fatalf("merchants %+v %v", ms, err)
	}
	t1 := wallet.Terminal{ID: "T1", Merchant: "M1", Campus: "yungu", Mode: protocol.ModeCard, FixedAmount: 150, PasswordHash: "ph",
		MerchantQR: "QR1", Created: t0}
	if err := s.PutTerminal(ctx, &t1); err != nil {
		t.Fatal(err)
	}
	t1.Mode, t1.PasswordHash = protocol.ModePOS, "ph2"
	if err := s.PutTerminal(ctx, &t1); err != nil {
		t.Fatal(err)
	}
	if err := s.PutTerminal(ctx, &wallet.Terminal{ID: "T0", Merchant: "M2", Mode: protocol.ModeShower, Created: t0}); err != nil {
		t.Fatal(err)
	}
	// A terminal of an unknown merchant is refused.
	if err := s.PutTerminal(ctx, &wallet.Terminal{ID: "T9", Merchant: "nobody", Mode: protocol.ModePOS}); err == nil {
		t.Fatal("a terminal of an unknown merchant was stored")
	}
	if got, err := s.Terminal(ctx, "T1"); err != nil || *got != t1 {
		t.Fatalf("terminal %+v %v", got, err)
	}
	if ts, err := s.Terminals(ctx); err != nil || len(ts) != 2 || ts[0].ID != "T0" || ts[1] != t1 {
		t.Fatalf("terminals %+v %v", ts, err)
	}
}

func testRevision(t *testing.T, f Factory) {
	s, _ := open(t, f)
	if v, err := s.Revision(ctx); err != nil || v != 0 {
		t.Fatalf("revision %d %v", v, err)
	}
	for i := uint64(1); i <= 3; i++ {
		if v, err := s.BumpRevision(ctx); err != nil || v != i {
			t.Fatalf("bump %d %v", v, err)
		}
	}
	if v, err := s.Revision(ctx); err != nil || v != 3 {
		t.Fatalf("revision %d %v", v, err)
	}
	if h, err := s.JournalEntry(ctx, "t", 1); err != nil || h != "" {
		t.Fatalf("journal entry before any: %q %v", h, err)
	}
	for _, h := range []string{"h1", "h2"} { // the first application stays
		if err := s.PutJournalEntry(ctx, "t", 1, "TX", h, t0); err != nil {
			t.Fatal(err)
		}
	}
	if h, _ := s.JournalEntry(ctx, "t", 1); h != "h1" {
		t.Fatalf("journal hash %q", h)
	}
	if h, _ := s.JournalEntry(ctx, "u", 1); h != "" {
		t.Fatalf("another terminal's entry %q", h)
	}
}

func testAPIResponses(t *testing.T, f Factory) {
	s, _ := open(t, f)
	if r, err := s.APIResponse(ctx, 1, "k"); r != nil || err != nil {
		t.Fatalf("absent %+v %v", r, err)
	}
	first := wallet.APIResponse{Hash: "h1", Status: 200, Body: []byte(`{"ok":true}`)}
	if err := s.PutAPIResponse(ctx, 1, "k", first, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIResponse(ctx, 1, "k", wallet.APIResponse{Hash: "h2", Status: 500, Body: []byte("x")}, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAPIResponse(ctx, 2, "k", wallet.APIResponse{Hash: "h3", Status: 402, Body: []byte{}}, t0); err != nil {
		t.Fatal(err)
	}
	if r, err := s.APIResponse(ctx, 1, "k"); err != nil || r.Hash != "h1" || r.Status != 200 || string(r.Body) != string(first.Body) {
		t.Fatalf("first stays: %+v %v", r, err)
	}
	if r, err := s.APIResponse(ctx, 2, "k"); err != nil || r.Hash != "h3" || r.Status != 402 || len(r.Body) != 0 {
		t.Fatalf("another user's key: %+v %v", r, err)
	}
}

// Sessions live until they expire or are deleted, survive a reopen (a
// restart logs nobody out) and are swept when a new one is stored.
func testSessions(t *testing.T, f Factory) {
	s, reopen := open(t, f)
	exp := t0.Add(time.Hour)
	if err := s.PutSession(ctx, "h-a", 7, exp, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSession(ctx, "h-b", 8, t0.Add(time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	s = reopen(t)
	for _, tc := range []struct {
		hash string
		at   time.Time
		user uint32
		ok   bool
	}{
		{"h-a", t0, 7, true},
		{"h-a", exp.Add(-time.Nanosecond), 7, true},
		{"h-a", exp, 0, false}, // expired at its expiry
		{"h-b", t0.Add(30 * time.Second), 8, true},
		{"nope", t0, 0, false},
	} {
		if u, ok, err := s.Session(ctx, tc.hash, tc.at); err != nil || ok != tc.ok || u != tc.user {
			t.Fatalf("session %s at %v: %d %v %v; want %d %v", tc.hash, tc.at, u, ok, err, tc.user, tc.ok)
		}
	}
	if err := s.DeleteSession(ctx, "h-a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "h-a"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if _, ok, _ := s.Session(ctx, "h-a", t0); ok {
		t.Fatal("deleted session still valid")
	}
	// A new session sweeps the expired ones: h-b is gone even for a clock
	// that goes back.
	if err := s.PutSession(ctx, "h-c", 9, t0.Add(2*time.Hour), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Session(ctx, "h-b", t0); ok {
		t.Fatal("expired session not swept")
	}
	if u, ok, err := s.Session(ctx, "h-c", t0.Add(time.Hour)); err != nil || !ok || u != 9 {
		t.Fatalf("new session: %d %v %v", u, ok, err)
	}

	// Log out everywhere: every session of the user but the one kept.
	at := t0.Add(time.Hour)
	for _, h := range []string{"u1", "u2", "u3"} {
		if err := s.PutSession(ctx, h, 20, at.Add(time.Hour), at); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteUserSessions(ctx, 20, "u2"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hash string
		ok   bool
	}{{"u1", false}, {"u2", true}, {"u3", false}, {"h-c", true}} {
		if _, ok, err := s.Session(ctx, tc.hash, at); err != nil || ok != tc.ok {
			t.Fatalf("after logging user 20 out elsewhere: %s %v %v", tc.hash, ok, err)
		}
	}
	if err := s.DeleteUserSessions(ctx, 20, ""); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.Session(ctx, "u2", at); ok {
		t.Fatal("log out everywhere kept a session")
	}
}
