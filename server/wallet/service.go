package wallet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"campuspay/protocol"
	"campuspay/server/bank"
	"campuspay/server/ledger"
	"campuspay/server/wechat"
)

// Shanghai is the zone of the calendar day of daily limits. China keeps no
// daylight saving time, so a fixed zone is exact and needs no tz database.
var Shanghai = time.FixedZone("CST", 8*3600)

// Campus is one campus of the school.
type Campus struct {
	Name    string `json:"name"`
	Showers bool   `json:"showers"`
}

// Config holds the operator's choices.
type Config struct {
	Campuses          map[string]Campus // id → campus; e.g. "yungu" 云谷 with showers
	SupportedBanks    []string          // bank codes accepted for binding (CCB 建设银行 and others)
	DefaultLimitPerTx int64             // cents; a new user's per-transaction limit
	DefaultLimitDaily int64             // cents; a new user's daily limit
	BcryptCost        int               // default bcrypt.DefaultCost; tests use bcrypt.MinCost
	PasswordLock      time.Duration     // cool-down after PasswordTries wrong tries; default 15 min
	CertValidity      time.Duration     // device certificates; default 30 days
	// HoldTTL: shower holds expire after this; default 72 h. It must be
	// the longest a shower box may stay offline: a shower that ended
	// offline is settled from the box's journal by capturing its hold,
	// and a hold that expired first can no longer be captured (the
	// journal entry is refused HOLD_UNKNOWN and the water is not charged).
	HoldTTL       time.Duration
	Tariff        protocol.Tariff // shower tariff (Hold ≥ ShowerMinimum)
	AuthTimeoutMS int             // carried in terminal configs
	Offline       OfflineConfig   // offline allowances (allowance.go)
}

// Keys are the authorizer's secrets.
type Keys struct {
	IssuerID byte
	Issuer   ed25519.PrivateKey // signs device certificates and merchant QRs
	SealPub  *[32]byte          // terminals seal keypad secrets to it
	SealPriv *[32]byte
}

// Deps are the Service's collaborators.
type Deps struct {
	Store  Store
	Ledger ledger.Store
	Bank   bank.Client
	WeChat wechat.Client // may be nil: WeChat payments are then unavailable
	Now    func() time.Time
	Rand   io.Reader
}

// Service applies the wallet rules. It is safe for concurrent use.
type Service struct {
	cfg    Config
	keys   Keys
	issuer protocol.IssuerKeys
	st     Store
	led    ledger.Store
	bank   bank.Client
	wx     wechat.Client
	now    func() time.Time
	rand   io.Reader
	banks  map[string]bool

	txLocks   keyedMutex
	payers    payerCache
	userLocks keyedMutex

	// The money path's hot state (hot.go): rows read on every payment,
	// device certificates whose issuer signature already verified, and
	// the batch that concurrent payments' code signatures are checked in.
	hotTerminals hotCache[string, *Terminal]
	codes        *protocol.Verifier

	authMu sync.Mutex
	authOK map[string][32]byte // terminal → SHA-256(hash, password) last verified

	loginMu       sync.Mutex
	loginLocked   map[string]time.Time // login locks seen: key → until (login.go's pre-filter)
	loginPruned   time.Time            // when this process last pruned the store's login counts
	maxLoginFails int                  // bound of loginLocked; 0: the default (tests lower it)
	loginLocks    keyedMutex           // one password check at a time per student number (login.go)

	hookMu         sync.Mutex
	configChanged  func(terminals []string)
	noticeAdded    func(terminal string)
	dummyLoginHash []byte
}

// New makes a Service.
func New(cfg Config, keys Keys, d Deps) (*Service, error) {
	if d.Store == nil || d.Ledger == nil || d.Bank == nil {
		return nil, errors.New("wallet: Store, Ledger and Bank are required")
	}
	if len(keys.Issuer) != ed25519.PrivateKeySize || keys.SealPub == nil || keys.SealPriv == nil {
		return nil, errors.New("wallet: issuer and seal keys are required")
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.PasswordLock <= 0 {
		cfg.PasswordLock = 15 * time.Minute
	}
	if cfg.CertValidity <= 0 {
		cfg.CertValidity = 30 * 24 * time.Hour
	}
	if cfg.HoldTTL <= 0 {
		cfg.HoldTTL = 72 * time.Hour
	}
	if cfg.Tariff.Hold < ShowerMinimum {
		cfg.Tariff.Hold = ShowerMinimum
	}
	if cfg.DefaultLimitPerTx <= 0 {
		cfg.DefaultLimitPerTx = 500_00
	}
	if cfg.DefaultLimitDaily <= 0 {
		cfg.DefaultLimitDaily = 1000_00
	}
	if cfg.AuthTimeoutMS <= 0 {
		cfg.AuthTimeoutMS = 10_000 // terminals wait this long without a configured value
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Reader
	}
	s := &Service{
		cfg: cfg, keys: keys, st: d.Store, led: d.Ledger, bank: d.Bank, wx: d.WeChat,
		now: d.Now, rand: d.Rand, banks: map[string]bool{},
		issuer: protocol.IssuerKeys{keys.IssuerID: keys.Issuer.Public().(ed25519.PublicKey)},
		codes:  &protocol.Verifier{Certs: protocol.NewCertCache(100_000), Sigs: &protocol.SigBatch{Rand: d.Rand}},
	}
	for _, b := range cfg.SupportedBanks {
		s.banks[b] = true
	}
	// Compared against when the student number is unknown, so a login
	// takes as long either way.
	h, err := bcrypt.GenerateFromPassword([]byte("not-a-password"), cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("wallet: bcrypt cost %d: %w", cfg.BcryptCost, err)
	}
	s.dummyLoginHash = h
	return s, nil
}

// Config returns the configuration in use (with defaults filled in).
func (s *Service) Config() Config { return s.cfg }

// IssuerKeys returns the public issuer keys.
func (s *Service) IssuerKeys() protocol.IssuerKeys { return s.issuer }

// OnConfigChanged registers f, called after a change that affects terminal
// configurations (revoked device, lost card, terminal added) with the IDs
// of the terminals concerned (nil = all). The MQTT layer re-publishes their
// retained configs. f must not block.
func (s *Service) OnConfigChanged(f func(terminals []string)) {
	s.hookMu.Lock()
	s.configChanged = f
	s.hookMu.Unlock()
}

// OnNotice registers f, called after a scan-to-pay payment to a terminal's
// static QR, so the MQTT layer can push it (Notices gives the payments).
// f must not block.
func (s *Service) OnNotice(f func(terminal string)) {
	s.hookMu.Lock()
	s.noticeAdded = f
	s.hookMu.Unlock()
}

func (s *Service) changed(ctx context.Context, terminals []string) error {
	if _, err := s.st.BumpRevision(ctx); err != nil {
		return fmt.Errorf("wallet: bump config revision: %w", err)
	}
	s.hookMu.Lock()
	f := s.configChanged
	s.hookMu.Unlock()
	if f != nil {
		f(terminals)
	}
	return nil
}

func (s *Service) notice(terminal string) {
	s.hookMu.Lock()
	f := s.noticeAdded
	s.hookMu.Unlock()
	if f != nil {
		f(terminal)
	}
}

// CheckLedger verifies the ledger's invariants.
func (s *Service) CheckLedger(ctx context.Context) (ledger.Report, error) {
	r, err := s.led.Check(ctx)
	if err != nil {
		return r, fmt.Errorf("wallet: ledger check: %w", err)
	}
	return r, nil
}

// OpenHolds counts the shower holds still open and the cents they reserve.
func (s *Service) OpenHolds(ctx context.Context) (int, int64, error) {
	return s.led.ActiveHolds(ctx)
}

// ExpireHolds releases shower holds past their expiry; the serve loop calls it.
func (s *Service) ExpireHolds(ctx context.Context) (int, error) {
	return s.led.ExpireHolds(ctx, s.now())
}

// hash makes a bcrypt hash of a secret at the configured cost.
func (s *Service) hash(secret string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(secret), s.cfg.BcryptCost)
	if err != nil {
		return "", fmt.Errorf("wallet: hash: %w", err)
	}
	return string(h), nil
}

// checkSecret verifies secret against one of the user's locked passwords
// (payment or water), counting failures and locking after PasswordTries.
// The caller holds the user lock and u is fresh; u is saved on a change.
func (s *Service) checkSecret(ctx context.Context, u *User, water bool, secret string) error {
	hash, fails, until := &u.PayHash, &u.PayFails, &u.PayLockedUntil
	unset, wrong, locked := protocol.ErrPaymentPasswordUnset, protocol.ErrPaymentPasswordWrong, protocol.ErrPaymentPasswordLocked
	if water {
		hash, fails, until = &u.WaterHash, &u.WaterFails, &u.WaterLockedUntil
		unset, wrong, locked = protocol.ErrWaterPasswordUnset, protocol.ErrWaterPasswordWrong, protocol.ErrWaterPasswordLocked
	}
	if *hash == "" {
		return unset
	}
	now := s.now()
	if now.Before(*until) {
		return locked
	}
	if bcrypt.CompareHashAndPassword([]byte(*hash), []byte(secret)) != nil {
		*fails++
		err := error(wrong)
		if *fails >= PasswordTries {
			*fails = 0
			*until = now.Add(s.cfg.PasswordLock)
			err = locked
		}
		if uerr := s.st.UpdateUser(ctx, u); uerr != nil {
			return fmt.Errorf("wallet: count wrong password: %w", uerr)
		}
		return err
	}
	if *fails != 0 || !until.IsZero() {
		*fails, *until = 0, time.Time{}
		if err := s.st.UpdateUser(ctx, u); err != nil {
			return fmt.Errorf("wallet: reset password tries: %w", err)
		}
	}
	return nil
}

// keyedMutex serialises work per key.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

func (s *Service) lockUser(id uint32) func() { return s.userLocks.lock(fmt.Sprint(id)) }

// walletAccount is the ledger account of a user's wallet.
func walletAccount(id uint32) ledger.AccountID { return ledger.AccountID(fmt.Sprintf("wallet:%d", id)) }

// bankAccount is the ledger clearing account of a bank.
func bankAccount(code string) ledger.AccountID { return ledger.AccountID("bank:" + code) }

func merchantAccount(id string) ledger.AccountID { return ledger.AccountID("merchant:" + id) }

const wechatAccount ledger.AccountID = "wechat"

// mapBankErr turns a bank error into the reason the student sees.
func mapBankErr(err error) error {
	var mm *bank.MismatchError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &mm):
		switch mm.Field {
		case bank.FieldName:
			return protocol.ErrBankNameMismatch
		case bank.FieldIDNumber:
			return protocol.ErrBankIDMismatch
		default:
			return protocol.ErrBankPhoneMismatch
		}
	case errors.Is(err, bank.ErrUnknownCard):
		return protocol.ErrBankUnknownCard
	case errors.Is(err, bank.ErrUnsupportedBank):
		return protocol.ErrBankUnsupported
	case errors.Is(err, bank.ErrInvalidCardNumber):
		return protocol.ErrCardNumberInvalid
	case errors.Is(err, bank.ErrInsufficientFunds), errors.Is(err, bank.ErrDeclined):
		return protocol.ErrBankDeclined
	case errors.Is(err, bank.ErrOTPWrong):
		return protocol.ErrOTPWrong
	case errors.Is(err, bank.ErrOTPExpired), errors.Is(err, bank.ErrUnknownOTP):
		return protocol.ErrOTPExpired
	case errors.Is(err, bank.ErrOTPUsed):
		return protocol.ErrOTPUsed
	case errors.Is(err, bank.ErrOTPLocked):
		return protocol.ErrOTPLocked
	case errors.Is(err, bank.ErrOTPTooSoon):
		return protocol.ErrOTPTooSoon
	}
	return fmt.Errorf("%w (%v)", protocol.ErrBankUnavailable, err)
}

// bankDefinite reports whether a bank error is a definite refusal (no money moved).
func bankDefinite(err error) bool {
	return err != nil && !errors.Is(err, bank.ErrUnavailable) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, bank.ErrUnauthorized)
}

// newKey makes a random key for operations without a caller-given one.
func (s *Service) newKey() string {
	var b [12]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		panic(fmt.Sprintf("wallet: random: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
