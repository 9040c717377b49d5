package wallet_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
	"campuspay/server/wallet"
	"campuspay/server/wallet/wallettest"
)

// POS2 is a second canteen till for the offline sequences.
const pos2 = "pos-2"

// offlineEnv is a back end with a second POS at the canteen.
func offlineEnv(t *testing.T) *wallettest.Env {
	e := wallettest.New(t)
	if _, err := e.Svc.AddTerminal(ctx, wallet.Terminal{ID: pos2, Merchant: wallettest.Merchant, Mode: protocol.ModePOS}); err != nil {
		t.Fatal(err)
	}
	return e
}

func deviceOf(t *testing.T, s *wallettest.Student) uint32 {
	c, err := protocol.ParseCertificate(s.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return c.DeviceID
}

// allow asks for an allowance and switches the student's phone to the
// certificate that carries it.
func allow(t *testing.T, e *wallettest.Env, s *wallettest.Student, amount int64) *wallet.AllowanceGrant {
	t.Helper()
	g, err := e.Svc.RequestAllowance(ctx, s.ID, deviceOf(t, s), amount)
	if err != nil {
		t.Fatalf("allowance: %v", err)
	}
	s.Cert = g.Certificate
	return g
}

// offlineEntry is the journal entry of a code a terminal accepted offline.
type offlineTill struct {
	e        *wallettest.Env
	terminal string
	seq      uint64
}

func (p *offlineTill) accept(code string, amount int64) *protocol.JournalEntry {
	p.seq++
	return &protocol.JournalEntry{V: 1, Terminal: p.terminal, Seq: p.seq, Tx: p.e.TxID(), Kind: protocol.EntryOffline,
		Status: protocol.StatusApproved, Amount: amount, CredKind: protocol.CredCode, Cred: code, At: p.e.Clock.Now()}
}

func applyOK(t *testing.T, svc *wallet.Service, e *protocol.JournalEntry) {
	t.Helper()
	ack := svc.ApplyJournal(ctx, e)
	if ack == nil || !ack.OK {
		t.Fatalf("entry %d at %s: ack %+v", e.Seq, e.Terminal, ack)
	}
}

func applyRefused(t *testing.T, svc *wallet.Service, e *protocol.JournalEntry, want *protocol.Reason) {
	t.Helper()
	ack := svc.ApplyJournal(ctx, e)
	if ack == nil || ack.OK || ack.Code != want.Code {
		t.Fatalf("entry %d: ack %+v, want refused %s", e.Seq, ack, want.Code)
	}
}

func walletBalance(t *testing.T, e *wallettest.Env, s *wallettest.Student) ledger.Balance {
	b, err := e.Ledger.Balance(ctx, ledger.AccountID(fmt.Sprintf("wallet:%d", s.ID)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func offlineRecords(t *testing.T, e *wallettest.Env, s *wallettest.Student) []wallet.Record {
	recs, err := e.Svc.Transactions(ctx, s.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []wallet.Record
	for _, r := range recs {
		if r.Kind == wallet.KindOffline {
			out = append(out, r)
		}
	}
	return out
}

func wantBalance(t *testing.T, e *wallettest.Env, s *wallettest.Student, posted, held int64) {
	t.Helper()
	if b := walletBalance(t, e, s); b.Posted != posted || b.Held != held {
		t.Fatalf("wallet posted %d held %d, want %d %d", b.Posted, b.Held, posted, held)
	}
}

// An allowance is a hold on the wallet and a version 2 certificate; the
// tills' configs carry the offline policy, the shower's does not.
func TestOfflineAllowanceIssued(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 100_00})
	g := allow(t, e, s, 30_00)
	c, err := protocol.ParseCertificate(g.Certificate)
	if err != nil || c.Allowance == nil || c.Allowance.Amount != 30_00 || !c.Allowance.Offline || c.Version() != 2 {
		t.Fatalf("certificate %+v %v", c, err)
	}
	a := g.Allowance
	if a == nil || a.ID != c.Allowance.ID || a.Held != 30_00 || !a.ValidUntil.Equal(e.Clock.Now().Add(24*time.Hour)) || g.Debt != 0 {
		t.Fatalf("view %+v %+v", g.OfflineView, a)
	}
	wantBalance(t, e, s, 100_00, 30_00)
	cfg, err := e.Svc.TerminalConfig(ctx, wallettest.POS)
	if err != nil || cfg.Offline == nil || cfg.Offline.MaxPerHour != 3 {
		t.Fatalf("pos config offline %+v %v", cfg.Offline, err)
	}
	if cfg, _ := e.Svc.TerminalConfig(ctx, wallettest.Shower); cfg.Offline != nil {
		t.Fatal("a shower accepts offline codes")
	}
	// Refusals: above the campus maximum, more than the balance.
	if _, err := e.Svc.RequestAllowance(ctx, s.ID, deviceOf(t, s), 30_01); err != protocol.ErrOfflineAmount {
		t.Fatalf("above the maximum: %v", err)
	}
	poor := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 10_00})
	if _, err := e.Svc.RequestAllowance(ctx, poor.ID, deviceOf(t, poor), 20_00); err != protocol.ErrBalanceLow {
		t.Fatalf("more than the balance: %v", err)
	}
	if _, err := e.Svc.RequestAllowance(ctx, poor.ID, deviceOf(t, s), 5_00); err != protocol.ErrOfflineNoDevice {
		t.Fatalf("another student's device: %v", err)
	}
	e.Check()
}

// Used offline at one till, settled from the allowance's hold; the rest
// stays held; a duplicate upload (same entry, and the same transaction
// under another number) is charged once; the payment is in the details
// with its channel and the offline mark.
func TestOfflineOneTerminalSettled(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	allow(t, e, s, 30_00)
	till := &offlineTill{e: e, terminal: wallettest.POS}
	e1 := till.accept(e.PayCode(s), 12_50)
	e.Clock.Advance(time.Minute)
	e2 := till.accept(e.PayCode(s), 10_00)
	e.Clock.Advance(time.Hour) // the network comes back
	applyOK(t, e.Svc, e1)
	applyOK(t, e.Svc, e2)
	wantBalance(t, e, s, 27_50, 7_50)
	applyOK(t, e.Svc, e1) // the same entry again
	dup := *e2
	dup.Seq = 9 // the same transaction under another number
	applyOK(t, e.Svc, &dup)
	wantBalance(t, e, s, 27_50, 7_50)
	recs := offlineRecords(t, e, s)
	if len(recs) != 2 {
		t.Fatalf("%d offline records", len(recs))
	}
	for _, r := range recs {
		fromHold, _, _, debt, ok := wallet.OfflinePlanOf(&r)
		if r.Status != protocol.StatusApproved || r.Channel != protocol.ChannelBalance || !ok || fromHold != r.Amount || debt != 0 {
			t.Fatalf("record %+v", r)
		}
	}
	v, err := e.Svc.OfflineStatus(ctx, s.ID)
	if err != nil || v.Allowance == nil || v.Allowance.Held != 7_50 {
		t.Fatalf("status %+v %v", v, err)
	}
	e.Check()
}

// The risk bound: one allowance spent in full at two offline tills. The
// second settlement takes what the hold has left, then the balance, then
// the rest from the bound card: the overspend (at most the allowance per
// extra till) is recovered from the bank.
func TestOfflineTwoTerminalsOverspendFromCard(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 40_00})
	allow(t, e, s, 30_00)
	a := &offlineTill{e: e, terminal: wallettest.POS}
	b := &offlineTill{e: e, terminal: pos2}
	ea := a.accept(e.PayCode(s), 25_00)
	eb := b.accept(e.PayCode(s), 25_00)
	e.Clock.Advance(30 * time.Minute)
	applyOK(t, e.Svc, ea)
	wantBalance(t, e, s, 15_00, 5_00)
	applyOK(t, e.Svc, eb)
	wantBalance(t, e, s, 0, 0)
	if got := e.BankBalance(s); got != 100_00-40_00-10_00 {
		t.Fatalf("bank %d: want the ¥10.00 not covered taken from the card", got)
	}
	recs := offlineRecords(t, e, s)
	var card int64
	for _, r := range recs {
		_, _, fromCard, debt, _ := wallet.OfflinePlanOf(&r)
		card += fromCard
		if debt != 0 {
			t.Fatalf("debt %d", debt)
		}
	}
	if card != 10_00 {
		t.Fatalf("from the card %d", card)
	}
	e.Check()
}

// Nothing covers it: the card refuses (frozen). The merchant is paid; the
// student owes the rest, sees it, cannot get a new allowance until it is
// repaid.
func TestOfflineDebtRecorded(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00})
	allow(t, e, s, 30_00)
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, true); err != nil {
		t.Fatal(err)
	}
	a := &offlineTill{e: e, terminal: wallettest.POS}
	b := &offlineTill{e: e, terminal: pos2}
	ea, eb := a.accept(e.PayCode(s), 30_00), b.accept(e.PayCode(s), 20_00)
	applyOK(t, e.Svc, ea)
	applyOK(t, e.Svc, eb)
	wantBalance(t, e, s, 0, 0)
	v, err := e.Svc.OfflineStatus(ctx, s.ID)
	if err != nil || v.Debt != 20_00 || v.Allowance == nil {
		t.Fatalf("status %+v %v", v, err)
	}
	m, _ := e.Ledger.Balance(ctx, "merchant:"+wallettest.Merchant)
	if m.Posted != 50_00 {
		t.Fatalf("merchant paid %d", m.Posted)
	}
	if _, err := e.Svc.RequestAllowance(ctx, s.ID, deviceOf(t, s), 10_00); err != protocol.ErrOfflineDebt {
		t.Fatalf("allowance with a debt: %v", err)
	}
	recs := offlineRecords(t, e, s)
	if !slices.ContainsFunc(recs, func(r wallet.Record) bool { return r.Channel == wallet.ChannelDebt && r.Amount == 20_00 }) {
		t.Fatalf("records %+v", recs)
	}
	// Repaid from a top-up (twice under one key: once).
	if err := e.Bank.SetFrozen(s.BankCode, s.BankCard, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.TopUp(ctx, s.ID, "after-debt", 25_00); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if v, err = e.Svc.RepayDebt(ctx, s.ID, "k1"); err != nil || v.Debt != 0 {
			t.Fatalf("repay %+v %v", v, err)
		}
	}
	wantBalance(t, e, s, 5_00, 0)
	if _, err := e.Svc.RequestAllowance(ctx, s.ID, deviceOf(t, s), 5_00); err != nil {
		t.Fatalf("allowance after repaying: %v", err)
	}
	e.Check()
}

// Refused at settlement: a code accepted after its allowance ended, an
// altered certificate, another device's certificate, an allowance the
// authorizer never issued for that device.
func TestOfflineSettlementRefusals(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	other := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	g := allow(t, e, s, 30_00)
	till := &offlineTill{e: e, terminal: wallettest.POS}
	good := e.PayCode(s)
	raw, _ := protocol.Base45Decode(good[len(protocol.CodePrefix):])
	raw[7+50+3] ^= 0x01 // allowance amount
	altered := protocol.CodePrefix + protocol.Base45Encode(raw)
	stolen, err := protocol.MakeCode(s.Cert, other.DeviceKey, protocol.PurposePay, e.Clock.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	applyRefused(t, e.Svc, till.accept(altered, 1_00), protocol.ErrCodeBadCertSig)
	applyRefused(t, e.Svc, till.accept(stolen, 1_00), protocol.ErrCodeBadSig)
	applyRefused(t, e.Svc, till.accept(good, 30_01), protocol.ErrOfflineExceeded)
	e.Clock.Set(g.Allowance.ValidUntil.Add(-30 * time.Second))
	late := e.PayCode(s)
	e.Clock.Set(g.Allowance.ValidUntil)
	applyRefused(t, e.Svc, till.accept(late, 1_00), protocol.ErrOfflineExpired)
	// The shower box cannot take codes at all.
	shower := &offlineTill{e: e, terminal: wallettest.Shower}
	applyRefused(t, e.Svc, shower.accept(late, 1_00), protocol.ErrUnsupportedOp)
	wantBalance(t, e, s, 50_00, 30_00)
	e.Check()
}

// A revoked phone and a released allowance are in every till's next
// config, and CheckOffline refuses them there.
func TestOfflineRevocationInConfig(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	allow(t, e, s, 20_00)
	code, err := protocol.VerifyCode(e.PayCode(s), e.Svc.IssuerKeys(), e.Clock.Now(), protocol.PurposePay)
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.Svc.ReleaseAllowance(ctx, s.ID)
	if err != nil || g.Allowance != nil {
		t.Fatalf("release %+v %v", g, err)
	}
	if c, _ := protocol.ParseCertificate(g.Certificate); c.Allowance != nil || c.Version() != 1 {
		t.Fatalf("certificate after release: %+v", c)
	}
	wantBalance(t, e, s, 50_00, 0)
	cfg, err := e.Svc.TerminalConfig(ctx, wallettest.POS)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.CheckOffline(code, cfg.Offline, cfg.RevokedDevices, e.Clock.Now(), 1_00, protocol.OfflineSpend{}); err != protocol.ErrOfflineRevoked {
		t.Fatalf("released allowance: %v", err)
	}
	if err := e.Svc.RevokeDevice(ctx, s.ID, deviceOf(t, s)); err != nil {
		t.Fatal(err)
	}
	cfg, _ = e.Svc.TerminalConfig(ctx, wallettest.POS)
	if err := protocol.CheckOffline(code, cfg.Offline, cfg.RevokedDevices, e.Clock.Now(), 1_00, protocol.OfflineSpend{}); err != protocol.ErrDeviceRevoked {
		t.Fatalf("revoked device: %v", err)
	}
	// A released allowance still settles what was accepted before the tills
	// knew (from the balance now: its hold is gone).
	till := &offlineTill{e: e, terminal: pos2}
	applyOK(t, e.Svc, till.accept(e.PayCode(s), 5_00))
	wantBalance(t, e, s, 45_00, 0)
	e.Check()
}

// A crash after the money moved but before the entry was marked applied,
// and a bank that does not answer: the terminal uploads again and the
// payment is charged once.
func TestOfflineDuplicateUploadAfterCrash(t *testing.T) {
	e := offlineEnv(t)
	svc, cl, cs := crashy(t, e)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 30_00})
	g, err := svc.RequestAllowance(ctx, s.ID, deviceOf(t, s), 20_00)
	if err != nil {
		t.Fatal(err)
	}
	s.Cert = g.Certificate
	till := &offlineTill{e: e, terminal: wallettest.POS}
	a, b := till.accept(e.PayCode(s), 20_00), till.accept(e.PayCode(s), 15_00)
	cs.status = protocol.StatusApproved // dies before the settlement's final record
	if ack := svc.ApplyJournal(ctx, a); ack != nil {
		t.Fatalf("ack %+v after a crash", ack)
	}
	applyOK(t, svc, a)
	wantBalance(t, e, s, 10_00, 0)
	// b: the hold is spent, ¥10.00 from the balance, ¥5.00 from the card.
	// The balance post dies once, then the bank is unavailable once.
	cl.prefix = "offline:"
	if ack := svc.ApplyJournal(ctx, b); ack != nil {
		t.Fatalf("ack %+v after a crash", ack)
	}
	e.Bank.FailNext(2, 503)
	if ack := svc.ApplyJournal(ctx, b); ack != nil {
		t.Fatalf("ack %+v with the bank down", ack)
	}
	applyOK(t, svc, b)
	applyOK(t, svc, b)
	wantBalance(t, e, s, 0, 0)
	if got := e.BankBalance(s); got != 100_00-30_00-5_00 {
		t.Fatalf("bank %d", got)
	}
	m, _ := e.Ledger.Balance(ctx, "merchant:"+wallettest.Merchant)
	if m.Posted != 35_00 {
		t.Fatalf("merchant %d", m.Posted)
	}
	e.Check()
}

// A screenshot of one code accepted by two offline tills: each till's
// seen-code cache cannot know of the other; settlement charges both (the
// risk bound covers it) and marks the second CODE_ALREADY_USED, flagged
// code_replayed.
func TestOfflineReplayAcrossTerminals(t *testing.T) {
	e := offlineEnv(t)
	s := e.AddStudent(wallettest.Options{BankBalance: 100_00, TopUp: 50_00})
	allow(t, e, s, 30_00)
	code := e.PayCode(s)
	a := &offlineTill{e: e, terminal: wallettest.POS}
	b := &offlineTill{e: e, terminal: pos2}
	applyOK(t, e.Svc, a.accept(code, 8_00))
	applyOK(t, e.Svc, b.accept(code, 8_00))
	wantBalance(t, e, s, 34_00, 14_00)
	var marked int
	for _, r := range offlineRecords(t, e, s) {
		if r.Code == protocol.ErrCodeUsed.Code {
			marked++
		}
	}
	if marked != 1 {
		t.Fatalf("%d records marked as a replay, want 1", marked)
	}
	// The second settled is flagged code_replayed, the first is not.
	if got := flagsByTerminal(t, e, s); len(got[wallettest.POS]) != 0 || !slices.Equal(got[pos2], []string{wallet.FlagCodeReplayed}) {
		t.Fatalf("flags %v", got)
	}
	e.Check()
}
