// Package wallet holds the rules of the campus e-wallet (DESIGN §2) and the
// operations that terminals, the app's HTTP API and the admin CLI call. It
// does no I/O of its own: state lives behind Store (wallet/sqlite), money
// behind ledger.Store, and the outside world behind bank.Client and WeChat.
// Every refusal is a *protocol.Reason, so terminals and the app show its
// Chinese and English messages as they are.
//
// # Serialisation
//
// A Service is the only writer of its Store (one authorizer process per
// SQLite file). Operations on one terminal transaction are serialised by a
// per-transaction lock, and operations that read and then spend one wallet
// by a per-user lock (always taken after the transaction lock, never the
// other way round). The ledger refuses negative wallet balances on its own,
// so a bug in this serialisation can at worst refuse a payment, never
// overdraw a wallet.
//
// # Crash consistency: the order of steps
//
// A money-moving operation touches three systems that cannot commit
// together: this package's Store, the bank (or WeChat Pay), and the ledger.
// Every external movement carries an idempotency key derived from the
// operation's own key (terminal + transaction ID, or the API's
// Idempotency-Key), so any step may be repeated. The order is:
//
//  1. Record the intent (status "processing", the channel chosen, the
//     amount) durably in the Store before moving any money. A retry with
//     the same key finds it and resumes with the same channel instead of
//     deciding afresh — otherwise a retry after a crash could pay from the
//     balance once and from the bank card again.
//  2. Move money outside first when money comes in from outside (bank
//     debit for a card-funded payment or a top-up; WeChat micropay), then
//     post the ledger transfer under the derived key. A crash between the
//     two leaves a debit the ledger does not show yet; the retry repeats
//     the debit (the bank returns the original receipt) and posts.
//     When money goes out (withdrawal, refund to a card) the ledger posts
//     first, so the wallet can never pay out more than it holds, and the
//     bank credit follows; a definite bank refusal posts a compensating
//     transfer.
//  3. Record the final response. A retry before that step redoes steps 1–2,
//     which move nothing twice.
//
// A bank that gives no definite answer to a card-funded payment (timeout,
// 5xx) leaves the payment pending: the terminal is answered StatusPending
// (code BANK_UNAVAILABLE), its OpQuery repeats the debit under the same key
// until the outcome is known, and its OpReverse at the deadline returns the
// money if the debit happened (WeChat micropay semantics, DESIGN §4). A
// reversal of a card payment whose debit is in doubt repeats the debit
// under its key and then credits it back: the bank's idempotency is the
// only way to learn whether it happened.
//
// Declines are recorded as the transaction's answer (a retry gets the same
// one), except ErrInternal — our own storage or ledger trouble — which is
// never recorded: the record keeps its state and the retry resumes it.
//
// # Reversal
//
// OpReverse of an approved payment refunds it through its channel (ledger
// transfer back to the wallet; bank credit — or, if the card refuses it,
// the wallet balance; WeChat reverse); of a transaction never seen it
// records a tombstone so that a later OpPay with that ID is refused with
// ErrTxReversed; repeated, it answers the same. Reversal and payment of
// one transaction are serialised by its lock. A refund with a step outside
// (bank credit, WeChat reverse) is first marked "reversing", so that if
// that step gets no answer, Recover finishes it even when the terminal
// never asks again. Transactions left processing or pending (a crash, an
// outage, a client that never came back) are settled by Recover as well.
//
// # Cancellation
//
// Cancel refuses (TX_IN_PROGRESS) while any of the user's records is
// processing, pending or reversing, and (HOLDS_PENDING) while a hold is
// active; new intents are recorded under the user lock after checking the
// wallet is active, so none can start beside it. Its withdrawal has its
// own record namespace ("U:<id>:cancel:<reopens>:<attempt>"), out of reach
// of the app's Idempotency-Key; a declined attempt is final and the next
// Cancel makes a new one. As a second line, a payment, scan-pay or top-up
// resumed (by its terminal, its client or Recover) for a wallet no longer
// active is settled as a reversal — what was taken is given back — and
// declined, and a shower intent places no hold. Money can still land in a
// cancelled wallet (a balance payment reversed later): Withdraw accepts a
// cancelled wallet, so it never stays stuck.
package wallet

import (
	"context"
	"crypto/ed25519"
	"strings"
	"time"

	"campuspay/protocol"
	"campuspay/server/ledger"
)

// State of a wallet; persisted, so the numbers are explicit.
type State int

const (
	StateInactive  State = 1 // never activated: no bank card bound yet
	StateActive    State = 2
	StateCancelled State = 3 // 注销: nothing pays until re-opened
)

func (s State) String() string {
	switch s {
	case StateInactive:
		return "inactive"
	case StateActive:
		return "active"
	case StateCancelled:
		return "cancelled"
	}
	return "unknown"
}

// Limits of the rules (DESIGN §2).
const (
	MaxReopens      = 3    // rule 2: the 4th re-open is refused
	MaxUnbinds      = 3    // rule 3: per user, ever
	ShowerMinimum   = 1500 // rule 7: ¥15.00 of balance before a shower
	PasswordTries   = 5    // rule 13: wrong tries before the lock
	passwordDigits  = 6
	maxStudentNoLen = 32
)

// User is one student (or staff member) and their wallet.
type User struct {
	ID uint32 // numeric, carried in device certificates
	// Version counts the changes to the student's row and devices, where
	// the store keeps it (SQLite; 0 elsewhere): PayerCheck.
	Version   int64
	StudentNo string // account number typed on shower keypads
	Name      string
	IDNumber  string // 18-digit resident ID
	Phone     string
	Category  string // e.g. 中专生
	Campus    string
	CardUID   string // upper-case hex; "" when none

	LoginHash string // bcrypt of the app login password

	State        State
	Reopens      int
	Unbinds      int
	BankCode     string // "" when no card is bound
	BankCard     string
	PasswordFree bool
	WeChatOpenID string

	PayHash        string // bcrypt; "" when unset
	PayFails       int
	PayLockedUntil time.Time

	WaterHash        string
	WaterFails       int
	WaterLockedUntil time.Time

	LimitPerTx int64 // cents
	LimitDaily int64 // cents

	// Frozen by the card centre: nothing pays, by any channel, until
	// unfrozen (WALLET_FROZEN). Written only by Store.SetFrozen, never by
	// UpdateUser, so a concurrent update cannot undo a freeze.
	Frozen bool
}

// Device is a phone holding a device key with a certificate we issued.
type Device struct {
	ID      uint32
	UserID  uint32
	Key     ed25519.PublicKey
	Created time.Time
	Expires time.Time
	Revoked bool
	// RevokedAt is when it was first revoked; zero when it is not, or when
	// it was revoked before the time was kept (schema 10 / 0010).
	RevokedAt time.Time
}

// LostCard is a campus card reported lost (挂失): refused at every terminal.
type LostCard struct {
	UID    string
	UserID uint32
	At     time.Time
}

// Merchant receives payments.
type Merchant struct {
	ID     string
	Name   string
	Campus string
}

// Terminal is a box at a merchant.
type Terminal struct {
	ID           string
	Merchant     string
	Campus       string
	Mode         protocol.Mode
	FixedAmount  int64  // card mode; 0 = keyed
	PasswordHash string // bcrypt of the broker password
	MerchantQR   string // static QR payload (protocol.IssueMerchantQR)
	Name         string // the window or till as students know it ("二楼3号窗口"); "" shows the ID
	Created      time.Time
}

// TerminalInfo is what the MQTT layer needs to know about each terminal.
type TerminalInfo struct {
	ID       string
	Merchant string
	Campus   string
	Mode     protocol.Mode
}

// Record kinds.
const (
	KindPayment  = "payment"  // a terminal payment
	KindShower   = "shower"   // a shower hold and its capture
	KindScanPay  = "scan_pay" // app scan-to-pay of a static merchant QR
	KindTopUp    = "top_up"
	KindWithdraw = "withdraw"
)

// Record statuses beyond protocol.Status.
const (
	StatusProcessing protocol.Status = "processing" // intent recorded, money may be moving
	StatusReversing  protocol.Status = "reversing"  // reversal of an approved payment under way (bank or WeChat step pending)
)

// Record is one transaction as the wallet sees it: the idempotency record of
// a terminal request or API call and the line in the student's details.
type Record struct {
	ID       int64  // store-assigned, increasing
	Key      string // unique: "T:<terminal>:<tx>", "Q:<user>:<idem>", ...
	Kind     string
	UserID   uint32
	Terminal string
	Tx       protocol.TxID
	Merchant string
	Amount   int64
	Channel  string
	BankCode string // bank_card channel: the card charged (refunds go back to it)
	BankCard string
	Status   protocol.Status
	Code     string // reason code when declined
	ReqHash  string // content of the originating request, for ErrTxConflict
	Response []byte // the response given, replayed on a retry
	QRSeq    uint64 // scan-to-pay: per-terminal cursor (assigned on insert)
	ML       int64  // shower: water metered, in millilitres (SetRecordML; PutRecord leaves it)
	Created  time.Time
	Updated  time.Time

	// use is the payment code this record spends, marked used in the
	// same write as the record's intent (not stored with the record).
	use *CodeUse
	// limit is the daily limit the intent is checked against in the same
	// write (not stored either).
	limit *DailyLimit
	// moveBy is when money may last start moving for this request (its
	// deadline less DeadlineMargin, server clock); zero without one.
	moveBy time.Time
	// unchecked: a new payment whose key was not looked up before it was
	// tried (Service.firstTry, Service.askEarlier); found is then the
	// record of a retry's first try, found since, which pay answers from.
	unchecked bool
	found     *Record
	// payer is the student version the payment was decided on, when
	// decided on a cached student (payerCache); stale is set when its
	// write found the student changed since (ErrPayerChanged).
	payer *PayerCheck
	stale bool
}

// CodeUse is a payment code's single-use mark (DESIGN §2 rule 8): the
// code with this ID is used by the record that holds it until Expires.
type CodeUse struct {
	ID      string
	Expires time.Time
	Now     time.Time // the mark of an earlier owner past its expiry is taken over
}

// DailyLimit is the daily limit a payment's intent is checked against in
// the intent's own write: what PaidBetween counts in [From, To) plus the
// payment's amount must not exceed Max. Checked in the write, not before
// it, so that two payments of one student at once — on two authorizers
// too — cannot both pass on the same total.
type DailyLimit struct {
	From, To time.Time
	Max      int64
}

// Store is the wallet's durable state. Every method is atomic and durable
// when it returns.
type Store interface {
	// Users.
	UpsertRosterUser(ctx context.Context, u *User) (created bool, err error) // by StudentNo; keeps wallet state and passwords of an existing user
	User(ctx context.Context, id uint32) (*User, error)                      // protocol.ErrUserUnknown if none
	// Payer is User and, in the same read, whether device is one of the
	// user's and not revoked: a code payment's one read of both.
	Payer(ctx context.Context, id, device uint32) (u *User, deviceOK bool, err error)
	UserByStudentNo(ctx context.Context, no string) (*User, error)
	UserByCard(ctx context.Context, uid string) (*User, error)
	UserByOpenID(ctx context.Context, openID string) (*User, error)
	UpdateUser(ctx context.Context, u *User) error

	// Devices and lost cards.
	AddDevice(ctx context.Context, d *Device) error // assigns d.ID
	Device(ctx context.Context, id uint32) (*Device, error)
	Devices(ctx context.Context, user uint32) ([]Device, error)          // the user's, revoked included, by ID
	RevokeDevice(ctx context.Context, id uint32, at time.Time) error     // revoked at at; a device revoked already keeps its first time
	RevokedDevices(ctx context.Context, now time.Time) ([]uint32, error) // revoked and not yet expired
	ReportCardLost(ctx context.Context, uid string, user uint32, at time.Time) error
	ClearCardLost(ctx context.Context, uid string) error // 解挂: the card pays again; absent is no error
	CardLost(ctx context.Context, uid string) (bool, error)
	LostCards(ctx context.Context) ([]string, error)

	// Merchants and terminals.
	PutMerchant(ctx context.Context, m *Merchant) error
	Merchant(ctx context.Context, id string) (*Merchant, error) // protocol.ErrMerchantUnknown
	Merchants(ctx context.Context) ([]Merchant, error)
	PutTerminal(ctx context.Context, t *Terminal) error
	Terminal(ctx context.Context, id string) (*Terminal, error) // protocol.ErrTerminalUnknown
	Terminals(ctx context.Context) ([]Terminal, error)

	// PutIntent puts a payment's intent r in one atomic write with its
	// checks. With lim, it first refuses with protocol.ErrLimitDaily,
	// writing nothing, when the daily total plus r.Amount exceeds lim.Max
	// (on PostgreSQL under the user's row lock). With c (seen codes:
	// single use across campus), it records that the code c.ID is used by
	// r.Key until c.Expires unless another record owns it and its mark has
	// not expired; only when r.Key owns it is r put: a payment's code is
	// spent exactly when its intent is recorded. It returns the owner of
	// the code (r.Key without c); r is not written for another one.
	PutIntent(ctx context.Context, r *Record, c *CodeUse, lim *DailyLimit) (owner string, err error)

	// Records.
	Record(ctx context.Context, key string) (*Record, error) // nil, nil when absent
	PutRecord(ctx context.Context, r *Record) error          // insert or update by Key; assigns ID (and QRSeq for an approved scan_pay)
	// FinishRecord writes r's final state (amount, channel, status, code,
	// response, updated) only if the stored record r.Key is still
	// processing, and reports whether it did: the last write of a payment
	// answered before it (HandleRequestFirst) never overwrites what another
	// authorizer did with the payment meanwhile (a reversal).
	FinishRecord(ctx context.Context, r *Record) (bool, error)
	Records(ctx context.Context, user uint32, beforeID int64, limit int) ([]Record, error)
	AllRecords(ctx context.Context, beforeID int64, limit int) ([]Record, error)
	// RecordsBetween lists user's visible records created in [from, to),
	// oldest first, at most limit.
	RecordsBetween(ctx context.Context, user uint32, from, to time.Time, limit int) ([]Record, error)
	// SetRecordML sets the water metered by the shower record key (no
	// other column changes); protocol.ErrHoldUnknown if there is none.
	SetRecordML(ctx context.Context, key string, ml int64) error
	ScanPays(ctx context.Context, terminal string, after uint64) ([]Record, error)
	// Unfinished lists records still processing, pending or reversing, last updated
	// before the given time, oldest first.
	Unfinished(ctx context.Context, before time.Time, limit int) ([]Record, error)
	// PaidBetween sums what the daily limit counts of user's records
	// created in [from, to): wallet-funded (balance and bank card) payments
	// approved, processing or pending, active shower holds at the hold, and
	// offline payments settled or being settled (KindOffline, approved or
	// processing, whatever funded them: created is the till's time).
	PaidBetween(ctx context.Context, user uint32, from, to time.Time) (int64, error)
	// Unsettled lists user's records still processing, pending or
	// reversing (money may still move), oldest first.
	Unsettled(ctx context.Context, user uint32) ([]Record, error)
	// ClearWeChat unlinks openID from user if it is still linked to it,
	// touching nothing else of the user.
	ClearWeChat(ctx context.Context, user uint32, openID string) error

	// Journal entries applied, by (terminal, seq): the content hash of the
	// first application, "" if none.
	JournalEntry(ctx context.Context, terminal string, seq uint64) (string, error)
	PutJournalEntry(ctx context.Context, terminal string, seq uint64, tx protocol.TxID, hash string, at time.Time) error

	// Offline allowances (allowance.go).
	AllowanceStore
	// Back office (server/console). SearchUsers finds at most limit users
	// whose student number starts with text, whose card UID or phone is
	// text, or whose name contains it, by student number; text is matched
	// literally (no wildcards).
	SearchUsers(ctx context.Context, text string, limit int) ([]User, error)
	SetFrozen(ctx context.Context, user uint32, frozen bool) error
	UserLostCards(ctx context.Context, user uint32) ([]LostCard, error)

	// Revision of the terminal configurations: bumped on every change.
	BumpRevision(ctx context.Context) (uint64, error)
	Revision(ctx context.Context) (uint64, error)

	// Login lockouts by throttled key (a student number, or a number and
	// a client address): shared by every authorizer on the store and kept
	// across restarts (login.go). LoginFails returns the rows of those
	// keys that exist. UpdateLoginFail reads key's row (Key set, the rest
	// zero when none), lets f change it and stores it, atomically against
	// every other writer of that key, in any process; f must only compute.
	// ClearLoginFails deletes keys' rows. PruneLoginFails deletes the rows
	// not locked at now whose last failure is before lastBefore.
	LoginFails(ctx context.Context, keys ...string) ([]LoginFail, error)
	UpdateLoginFail(ctx context.Context, key string, f func(*LoginFail)) (LoginFail, error)
	ClearLoginFails(ctx context.Context, keys ...string) error
	PruneLoginFails(ctx context.Context, now, lastBefore time.Time) (int, error)

	Close() error
}

// PaymentStore is implemented by a Store that keeps the ledger in its own
// database (wallet/sqlite with the ledger inside it): a balance payment is
// then one transaction and one fsync, with nothing to recover after a
// crash — it is all there or not at all.
type PaymentStore interface {
	// PutPayment writes, in one transaction, what PutIntent writes (with
	// its checks and its answer), the transfer t, and r in its final state
	// (approved). Once t is posted, in that transaction, it calls answer
	// (if not nil) with the payer's available balance after t: answer sets
	// r's final state (its Response), which is written next. answer runs
	// on the store's one writer, inside its batch: it must be short and
	// must not panic or call the store. It returns the code's owner; for
	// another one, nothing is written. protocol.ErrLimitDaily or
	// ledger.ErrInsufficient: nothing is written; nor when ctx has ended by
	// the time the writer reaches the payment (ctx's error). It never
	// writes over a record: if r's key is recorded already, nothing is
	// written and the error is ErrRecordExists (answer may have been
	// called: the record's write, which finds it, comes last).
	// With payer (not nil), the payment is written only if the student
	// is still at payer.Version, checked first: ErrPayerChanged if not.
	PutPayment(ctx context.Context, r *Record, c *CodeUse, lim *DailyLimit, payer *PayerCheck, t ledger.Transfer, answer func(available int64)) (owner string, err error)
	// PaysInto reports whether l is the ledger PutPayment posts to.
	PaysInto(l ledger.Store) bool
}

// PayerCheck is the version of the paying student (User.Version) that a
// payment was decided on, read before (by an earlier payment):
// PutPayment writes it only if the student, and their devices, have not
// changed since.
type PayerCheck struct {
	UserID  uint32
	Version int64
}

// LoginFail is the failed-login count of one throttled key.
type LoginFail struct {
	Key   string
	Fails int       // wrong passwords in a row
	Last  time.Time // the last one
	Until time.Time // locked until; zero when it never locked
}

// APIResponse is an HTTP response stored for an Idempotency-Key of the app
// API (kept by the wallet store beside the records it produced).
type APIResponse struct {
	Hash   string // the route and body it answered
	Status int
	Body   []byte
}

// LikeEscape escapes s for a SQL LIKE pattern with ESCAPE '\': a search
// for "50%" or "a_b" matches those characters, not wildcards.
func LikeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
