// Package ledger is the authorizer's double-entry ledger. Every money
// movement is one Transfer of balanced Postings (they sum to zero), keyed by
// an idempotency key: posting the same key again returns the original result
// and moves no money. Holds are pending transfers that reserve part of an
// account's balance until they are captured (fully or partly), voided or
// expire. Amounts are integer cents (分).
//
// The rules of the wallet (who may pay, with which funds) live in package
// wallet; this package only guarantees that money is conserved, that
// constrained accounts never go negative, and that nothing is applied twice.
// Storage is behind Store; ledger/sqlite is the default implementation and
// ledger/postgres the one for several authorizers. What the two share lives
// here: the group-commit queue (Batcher), the invariants Check verifies
// (Checker) and the listing of schema migrations (Migrations).
//
// # Accounts and signs
//
// An account is a name ("wallet:1001", "bank:CCB", "merchant:M001",
// "wechat", "fees"); it exists from its first posting. A positive posting
// increases the account's balance, so money always flows from the accounts
// with negative legs to those with positive legs:
//
//	top-up ¥20 from the bound card:  bank:CCB −2000, wallet:1001 +2000
//	canteen payment ¥12.50:          wallet:1001 −1250, merchant:M001 +1250
//	withdrawal ¥5:                   wallet:1001 −500, bank:CCB +500
//
// A clearing account such as bank:CCB is therefore negative while the bank
// owes the campus money (students topped up more than they withdrew); the
// sum over all accounts is always exactly zero. Wallets (Constrained) can
// never go below zero; a transfer that would take one below zero, or below
// its held amount, fails with ErrInsufficient and moves nothing.
//
// # Holds
//
// A hold reserves money on a wallet without moving it: the balance
// (Balance.Posted) is unchanged, Balance.Held grows, Balance.Available
// (Posted − Held) shrinks, and no payment or other hold can take the
// reserved money. CaptureHold posts the real transfer (key CaptureKey(hold))
// for at most the held amount and releases the rest in the same atomic step;
// VoidHold releases it all; ExpireHolds releases holds past their expiry.
// A hold's final state is recorded and never changes again.
//
// # Idempotency
//
// Keys come from the edge (terminal transaction IDs, API Idempotency-Keys).
// A repeat of a key with the same money content (kind and postings, in any
// leg order) returns the original Result with Duplicate set; the memo and
// time of a retry are ignored. The same key with different money content is
// ErrKeyConflict. A request that failed (ErrInsufficient, ...) does not use
// up its key.
//
// # Durability and group commit
//
// A Store call returns only after its effect is durable. Stores may commit
// many concurrent calls in one storage transaction (ledger/sqlite does: one
// fsync for a whole queue of payments, which is what lets a lunch rush
// exceed the disk's sync rate), but each call succeeds or fails on its own
// and sees the effects of the calls committed before it.
//
// Check recomputes every invariant from the stored postings and holds;
// ledgertest.RequireOK runs it at the end of tests that move money.
package ledger

import (
	"context"
	"errors"
	"time"
)

// AccountID names an account, "kind:id" — e.g. "wallet:1001",
// "bank:CCB" (clearing with a bank), "merchant:M001", "wechat" (WeChat Pay
// clearing), "fees". Wallet accounts are constrained: their balance, and
// their available balance (balance minus active holds), never go below zero.
// External clearing accounts may go negative (money owed to/by the outside).
type AccountID string

// Posting is one leg of a transfer: a signed amount in cents on one account.
// Positive increases the account's balance.
type Posting struct {
	Account AccountID `json:"account"`
	Amount  int64     `json:"amount"`
}

// Transfer is one balanced money movement.
type Transfer struct {
	Key      string    // idempotency key (terminal transaction ID or API Idempotency-Key); unique
	Kind     string    // "topup", "withdraw", "payment", "refund", "capture", ...
	Postings []Posting // sum must be zero; at least two legs
	Memo     string    // free text shown in transaction details (merchant, terminal, channel ...)
	At       time.Time // business time (set by the caller from its injected clock)
}

// Result is what a Post (or a repeated Post with the same key) returns.
type Result struct {
	ID        int64 // ledger-assigned, increasing
	Key       string
	Duplicate bool      // true when the key had already been applied: no money moved this time
	At        time.Time // time of the original application
}

// Hold reserves Amount on a constrained account for a later capture.
type Hold struct {
	Key     string    // idempotency key of the hold (e.g. the shower transaction ID)
	Account AccountID // the account whose available balance is reduced
	Amount  int64     // cents reserved
	Expires time.Time // after this, ExpireHolds releases it
	Memo    string
	At      time.Time
}

// HoldState is persisted: numbers are explicit.
type HoldState int

const (
	HoldActive   HoldState = 1
	HoldCaptured HoldState = 2
	HoldVoided   HoldState = 3
	HoldExpired  HoldState = 4
)

// HoldInfo is a hold as stored.
type HoldInfo struct {
	Hold
	State    HoldState
	Captured int64 // cents captured (≤ Amount) when State == HoldCaptured
}

// Balance of one account.
type Balance struct {
	Account   AccountID
	Posted    int64 // sum of all postings
	Held      int64 // sum of active holds
	Available int64 // Posted - Held
}

// Errors. Callers map them to wallet reason codes.
var (
	ErrUnbalanced   = errors.New("ledger: postings do not sum to zero")
	ErrInsufficient = errors.New("ledger: insufficient available balance")
	ErrKeyConflict  = errors.New("ledger: idempotency key reused with different content")
	ErrHoldNotFound = errors.New("ledger: hold not found")
	ErrHoldClosed   = errors.New("ledger: hold already captured, voided or expired")
	ErrOverCapture  = errors.New("ledger: capture exceeds hold")
)

// Store is the ledger's storage. Every method is atomic and durable when it
// returns; concurrent calls may be committed together in one storage
// transaction (group commit) but each succeeds or fails on its own.
type Store interface {
	// Post applies t atomically: fails with ErrInsufficient (and moves
	// nothing) if any constrained account's available balance would go
	// negative. Idempotent by t.Key.
	Post(ctx context.Context, t Transfer) (Result, error)
	// PlaceHold reserves h.Amount; ErrInsufficient if not available.
	// Idempotent by h.Key: a repeat with the same account and amount
	// returns the hold as it is now (in any state); otherwise
	// ErrKeyConflict.
	PlaceHold(ctx context.Context, h Hold) (HoldInfo, error)
	// CaptureHold posts a transfer of amount (≤ hold) from the hold's account
	// to the given counter-account and releases the rest. Idempotent: a
	// repeated capture of a captured hold with the same amount returns it.
	// The transfer's key is CaptureKey(holdKey), its kind "capture". A
	// capture of 0 voids the hold (zero Result). A different amount after a
	// capture, or any capture of a voided or expired hold, is ErrHoldClosed;
	// the same amount to another account is ErrKeyConflict. An active hold
	// past its Expires can still be captured until ExpireHolds has run.
	CaptureHold(ctx context.Context, holdKey string, amount int64, to AccountID, memo string, at time.Time) (HoldInfo, Result, error)
	// VoidHold releases a hold without moving money. Idempotent; voiding
	// an expired hold returns it unchanged; a captured one is ErrHoldClosed.
	VoidHold(ctx context.Context, holdKey string, at time.Time) (HoldInfo, error)
	// ExpireHolds releases every active hold whose Expires ≤ now; returns how many.
	ExpireHolds(ctx context.Context, now time.Time) (int, error)
	// GetHold returns a hold, or ErrHoldNotFound.
	GetHold(ctx context.Context, holdKey string) (HoldInfo, error)
	// ActiveHolds counts the holds still active (placed, neither captured,
	// voided nor expired) and the cents they reserve.
	ActiveHolds(ctx context.Context) (n int, held int64, err error)
	// Balance of an account; zero for an account never posted to.
	Balance(ctx context.Context, a AccountID) (Balance, error)
	// Lookup returns the transfer applied under key, or found=false.
	Lookup(ctx context.Context, key string) (t Transfer, r Result, found bool, err error)
	// Transfers lists transfers touching account, newest first, before the
	// given ledger ID (0 = from the newest), at most limit.
	Transfers(ctx context.Context, a AccountID, beforeID int64, limit int) ([]Entry, error)
	// Check verifies the invariants over the whole store.
	Check(ctx context.Context) (Report, error)
	Close() error
}

// Entry is a stored transfer with its result, for listings. Key and At
// exist on both halves (and are equal), so name the half: e.Transfer.Key,
// e.Result.At; ID, Kind, Postings and Memo are unambiguous.
type Entry struct {
	Transfer
	Result
}

// Report is the outcome of Check. OK is true when Problems is empty.
type Report struct {
	Transfers int
	Postings  int
	Accounts  int
	Holds     int
	Sum       int64    // sum of all postings: must be 0
	Problems  []string // one line per violated invariant
}

// OK reports whether every invariant held.
func (r Report) OK() bool { return len(r.Problems) == 0 && r.Sum == 0 }

// Constrained reports whether an account may never go below zero.
func (a AccountID) Constrained() bool {
	return len(a) > 7 && a[:7] == "wallet:"
}
