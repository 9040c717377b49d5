// Package wallettest builds a whole authorizer back end for tests: real
// SQLite files (wallet state with the ledger inside, or the two files of a
// first-release data folder), the hwsim bank and WeChat Pay
// simulators over real HTTP, fresh keys and an injected clock. The wallet,
// api and cmd/authorizer tests share it.
package wallettest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	banksim "campuspay/hwsim/bank"
	wechatsim "campuspay/hwsim/wechat"
	"campuspay/protocol"
	"campuspay/server/bank"
	"campuspay/server/ledger"
	"campuspay/server/ledger/ledgertest"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/settle"
	"campuspay/server/wallet"
	walletsqlite "campuspay/server/wallet/sqlite"
	"campuspay/server/wechat"
)

// T0 is the clock's start: 2026-11-30 10:00 in Shanghai.
var T0 = time.Date(2026, 11, 30, 10, 0, 0, 0, wallet.Shanghai)

// Clock is an injected clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Set sets the clock.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// Test identifiers.
const (
	Campus       = "yungu" // showers enabled
	CampusNoBath = "main"
	Merchant     = "M001"
	POS          = "pos-1"
	CardBox      = "card-1"
	Shower       = "shower-1"
	ShowerMain   = "shower-main" // on a campus without showers
	BankSecret   = "bank-secret"
	BankClient   = "authorizer"
	WeChatApp    = "wxapp"
	WeChatMch    = "1900000001"
	WeChatKey    = "wechat-api-key"
	WeChatMini   = "mini-secret"
)

// Env is a running back end.
type Env struct {
	T       testing.TB
	Dir     string
	Clock   *Clock
	Bank    *banksim.Sim
	WeChat  *wechatsim.Sim
	Ledger  ledger.Store
	Store   *walletsqlite.Store
	Svc     *wallet.Service
	Keys    wallet.Keys
	Config  wallet.Config
	Deps    wallet.Deps
	BankURL string
	WxURL   string

	// Passwords of the test terminals' broker credentials.
	TerminalPasswords map[string]string

	nextStudent int
}

// DefaultConfig is the test configuration (low bcrypt cost).
func DefaultConfig() wallet.Config {
	return wallet.Config{
		Campuses: map[string]wallet.Campus{
			Campus:       {Name: "云谷", Showers: true},
			CampusNoBath: {Name: "主校区"},
		},
		SupportedBanks:    []string{"CCB", "ICBC", "ABC", "BOC"},
		DefaultLimitPerTx: 500_00,
		DefaultLimitDaily: 1000_00,
		BcryptCost:        bcrypt.MinCost,
		PasswordLock:      15 * time.Minute,
		Tariff:            protocol.Tariff{CentsPerLitre: 10, PulsesPerLitre: 450, Hold: 2000, IdleTimeoutS: 60},
		AuthTimeoutMS:     5000,
	}
}

// NewKeys makes fresh issuer and seal keys.
func NewKeys(t testing.TB) wallet.Keys {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, spriv, err := protocol.NewSealKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return wallet.Keys{IssuerID: 1, Issuer: priv, SealPub: pub, SealPriv: spriv}
}

// Sims starts the bank and WeChat simulators on loopback.
func Sims(t testing.TB, clock *Clock) (*banksim.Sim, string, *wechatsim.Sim, string) {
	bs, err := banksim.New(banksim.Config{Clients: map[string]string{BankClient: BankSecret}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	burl, err := bs.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	ws := wechatsim.New(wechatsim.Config{AppID: WeChatApp, MchID: WeChatMch, APIKey: WeChatKey, MiniSecret: WeChatMini, Now: clock.Now})
	wurl, err := ws.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return bs, burl, ws, wurl
}

// Clients makes the bank and WeChat adapters for the simulators.
func Clients(t testing.TB, clock *Clock, burl, wurl string) (bank.Client, wechat.Client) {
	bc, err := bank.NewHTTPClient(bank.HTTPConfig{BaseURL: burl, ClientID: BankClient, Secret: BankSecret,
		Attempts: 2, Backoff: time.Millisecond, Timeout: 5 * time.Second, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	wc, err := wechat.NewHTTPClient(wechat.Config{PayURL: wurl, AppID: WeChatApp, MchID: WeChatMch, APIKey: WeChatKey,
		MiniSecret: WeChatMini, Attempts: 2, Backoff: time.Millisecond, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return bc, wc
}

// New starts a back end with merchants and terminals registered, its
// ledger inside wallet.db as a data folder of this release has it (a
// balance payment is one transaction: wallet.PaymentStore).
func New(t testing.TB) *Env { return newEnv(t, false) }

// NewTwoFiles is New with the ledger in ledger.db beside wallet.db, as in
// a data folder from the first release: a balance payment is three
// commits (intent, transfer, record).
func NewTwoFiles(t testing.TB) *Env { return newEnv(t, true) }

func newEnv(t testing.TB, twoFiles bool) *Env {
	t.Helper()
	e := &Env{T: t, Dir: t.TempDir(), Clock: &Clock{t: T0}, Config: DefaultConfig(), TerminalPasswords: map[string]string{}}
	e.Bank, e.BankURL, e.WeChat, e.WxURL = Sims(t, e.Clock)
	bc, wc := Clients(t, e.Clock, e.BankURL, e.WxURL)
	var err error
	if e.Store, err = walletsqlite.Open(filepath.Join(e.Dir, "wallet.db")); err != nil {
		t.Fatal(err)
	}
	if twoFiles {
		e.Ledger, err = ledgersqlite.Open(filepath.Join(e.Dir, "ledger.db"), ledgersqlite.Options{})
	} else {
		e.Ledger, err = e.Store.OpenLedger(ledgersqlite.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ledgertest.RequireOK(t, e.Ledger)
		e.Ledger.Close()
		e.Store.Close()
	})
	e.Keys = NewKeys(t)
	e.Deps = wallet.Deps{Store: e.Store, Ledger: e.Ledger, Bank: bc, WeChat: wc, Now: e.Clock.Now}
	if e.Svc, err = wallet.New(e.Config, e.Keys, e.Deps); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, m := range []wallet.Merchant{{ID: Merchant, Name: "云谷食堂", Campus: Campus}, {ID: "M002", Name: "主校区浴室", Campus: CampusNoBath}} {
		if err := e.Svc.AddMerchant(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, tm := range []wallet.Terminal{
		{ID: POS, Merchant: Merchant, Mode: protocol.ModePOS},
		{ID: CardBox, Merchant: Merchant, Mode: protocol.ModeCard, FixedAmount: 350},
		{ID: Shower, Merchant: Merchant, Mode: protocol.ModeShower},
		{ID: ShowerMain, Merchant: "M002", Mode: protocol.ModeShower},
	} {
		pw, err := e.Svc.AddTerminal(ctx, tm)
		if err != nil {
			t.Fatal(err)
		}
		e.TerminalPasswords[tm.ID] = pw
	}
	return e
}

// IDNumber completes a 17-digit prefix with its GB 11643 check character.
func IDNumber(prefix17 string) string {
	w := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += int(prefix17[i]-'0') * w[i]
	}
	return prefix17 + string("10X98765432"[sum%11])
}

// Student is a test student with a matching bank account.
type Student struct {
	ID        uint32
	No        string
	Name      string
	IDNumber  string
	Phone     string
	CardUID   string
	BankCode  string
	BankCard  string
	Password  string // login password
	PayPW     string
	WaterPW   string
	OpenID    string
	DeviceKey ed25519.PrivateKey
	Cert      []byte
	codeSeq   uint16
}

// Options for a test student.
type Options struct {
	Category     string
	Campus       string
	BankBalance  int64 // cents at the bank
	Inactive     bool  // leave the wallet unactivated
	TopUp        int64 // cents moved into the wallet
	PasswordFree bool
}

// AddStudent imports a student, opens a bank account for them and, unless
// o.Inactive, binds the card (activating the wallet), sets the passwords,
// registers a device and tops up.
func (e *Env) AddStudent(o Options) *Student {
	t := e.T
	t.Helper()
	ctx := context.Background()
	e.nextStudent++
	n := e.nextStudent
	s := &Student{
		No: fmt.Sprintf("2026%04d", n), Name: fmt.Sprintf("学生%d", n),
		IDNumber: IDNumber(fmt.Sprintf("11010520000101%03d", n)), Phone: fmt.Sprintf("138%08d", n),
		CardUID: fmt.Sprintf("CA%06X", n), BankCode: "CCB", BankCard: banksim.LuhnComplete(fmt.Sprintf("621700%09d", n)),
		Password: "login-pw", PayPW: "135790", WaterPW: "246802", OpenID: fmt.Sprintf("openid-%d", n),
	}
	if o.Campus == "" {
		o.Campus = Campus
	}
	if _, err := e.Svc.ImportStudent(ctx, wallet.RosterEntry{StudentNo: s.No, Name: s.Name, IDNumber: s.IDNumber, Phone: s.Phone,
		Category: o.Category, Campus: o.Campus, CardUID: s.CardUID, Password: s.Password}); err != nil {
		t.Fatal(err)
	}
	u, err := e.Store.UserByStudentNo(ctx, s.No)
	if err != nil {
		t.Fatal(err)
	}
	s.ID = u.ID
	if err := e.Bank.AddAccount(banksim.Account{BankCode: s.BankCode, CardNumber: s.BankCard, Name: s.Name,
		IDNumber: s.IDNumber, Phone: s.Phone, Balance: o.BankBalance}); err != nil {
		t.Fatal(err)
	}
	if err := e.WeChat.CreateUser(wechatsim.User{OpenID: s.OpenID, Balance: 1000_00}); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.DeviceKey = priv
	if o.Inactive {
		// The service certifies no phone for a wallet that cannot pay; the
		// certificate is issued here, as for a phone certified while the
		// wallet was active, so tests can show its codes are refused.
		d := &wallet.Device{UserID: s.ID, Key: pub, Created: e.Clock.Now(), Expires: e.Clock.Now().Add(24 * time.Hour).Truncate(time.Second)}
		if err := e.Store.AddDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		if s.Cert, err = protocol.IssueCertificate(protocol.Certificate{KeyID: e.Keys.IssuerID, UserID: s.ID, DeviceID: d.ID,
			DeviceKey: pub, Expires: d.Expires}, e.Keys.Issuer); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if err := e.Svc.BindCard(ctx, s.ID, wallet.BindRequest{BankCode: s.BankCode, CardNumber: s.BankCard}); err != nil {
		t.Fatal(err)
	}
	dc, err := e.Svc.RegisterDevice(ctx, s.ID, pub)
	if err != nil {
		t.Fatal(err)
	}
	s.Cert = dc.Certificate
	if err := e.Svc.SetPassword(ctx, s.ID, false, "", s.PayPW); err != nil {
		t.Fatal(err)
	}
	if err := e.Svc.SetPassword(ctx, s.ID, true, "", s.WaterPW); err != nil {
		t.Fatal(err)
	}
	if o.PasswordFree {
		if err := e.Svc.SetPasswordFree(ctx, s.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	if o.TopUp > 0 {
		if _, err := e.Svc.TopUp(ctx, s.ID, fmt.Sprintf("init-%d", n), o.TopUp); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// PayCode makes a fresh payment code for s at the clock's time.
func (e *Env) PayCode(s *Student) string {
	return e.code(s, protocol.PurposePay)
}

// IdentityCode makes an identity code for s.
func (e *Env) IdentityCode(s *Student) string {
	return e.code(s, protocol.PurposeIdentity)
}

func (e *Env) code(s *Student, p protocol.Purpose) string {
	s.codeSeq++
	c, err := protocol.MakeCode(s.Cert, s.DeviceKey, p, e.Clock.Now(), s.codeSeq)
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// TxID makes a fresh transaction ID.
func (e *Env) TxID() protocol.TxID {
	id, err := protocol.NewTxID(e.Clock.Now(), rand.Reader)
	if err != nil {
		e.T.Fatal(err)
	}
	return id
}

// Balance returns the wallet's available balance.
func (e *Env) Balance(s *Student) int64 {
	b, err := e.Ledger.Balance(context.Background(), ledger.AccountID(fmt.Sprintf("wallet:%d", s.ID)))
	if err != nil {
		e.T.Fatal(err)
	}
	return b.Available
}

// BankBalance returns the student's balance at the bank.
func (e *Env) BankBalance(s *Student) int64 {
	b, _ := e.Bank.Balance(s.BankCode, s.BankCard)
	return b
}

// Check fails the test if the ledger's invariants do not hold.
func (e *Env) Check() {
	e.T.Helper()
	ledgertest.RequireOK(e.T, e.Ledger)
}

// ReconcileParties reconciles the wallet with the bank and WeChat
// simulators through the adapters' statement downloads.
func (e *Env) ReconcileParties() []settle.Party {
	return []settle.Party{
		settle.BankParty(e.Svc.BankMovements, e.Deps.Bank.(settle.StatementSource)),
		settle.WeChatParty(e.Svc.WeChatMovements, e.Deps.WeChat.(settle.BillSource)),
	}
}
