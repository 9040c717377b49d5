package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// More errors. ErrInvalid covers malformed requests (empty key, zero-amount
// leg, a hold on an unconstrained account ...); ErrClosed is returned by a
// Store after Close.
var (
	ErrInvalid = errors.New("ledger: invalid request")
	ErrClosed  = errors.New("ledger: store closed")
)

// MaxAmount bounds every single amount (10¹⁵ cents = ¥10 trillion) so that
// sums over any realistic ledger cannot overflow int64.
const MaxAmount int64 = 1_000_000_000_000_000

// Bounds on a transfer's shape: legs, and bytes of its key (idempotency
// keys come from outside) and memo.
const (
	MaxLegs    = 64
	MaxKeyLen  = 200
	MaxMemoLen = 2000
)

// CaptureKey is the idempotency key of the transfer that CaptureHold posts
// for the hold with the given key. Lookup(CaptureKey(k)) finds it.
func CaptureKey(holdKey string) string { return "capture:" + holdKey }

// Validate checks a transfer's shape: a key, at least two legs, no zero or
// oversized amounts, no empty account, and a zero sum (ErrUnbalanced).
func (t Transfer) Validate() error {
	if t.Key == "" || len(t.Key) > MaxKeyLen {
		return fmt.Errorf("%w: key of %d bytes", ErrInvalid, len(t.Key))
	}
	if len(t.Memo) > MaxMemoLen {
		return fmt.Errorf("%w: transfer %q: memo of %d bytes", ErrInvalid, t.Key, len(t.Memo))
	}
	if len(t.Postings) < 2 {
		return fmt.Errorf("%w: transfer %q has %d legs, need at least 2", ErrUnbalanced, t.Key, len(t.Postings))
	}
	if len(t.Postings) > MaxLegs {
		return fmt.Errorf("%w: transfer %q has %d legs, at most %d", ErrInvalid, t.Key, len(t.Postings), MaxLegs)
	}
	var sum int64
	for i, p := range t.Postings {
		if err := p.Account.Validate(); err != nil {
			return fmt.Errorf("transfer %q leg %d: %w", t.Key, i, err)
		}
		if p.Amount == 0 || p.Amount > MaxAmount || p.Amount < -MaxAmount {
			return fmt.Errorf("%w: transfer %q leg %d: amount %d out of range", ErrInvalid, t.Key, i, p.Amount)
		}
		sum += p.Amount // cannot overflow: ≤ MaxLegs × MaxAmount
	}
	if sum != 0 {
		return fmt.Errorf("%w: transfer %q sums to %d", ErrUnbalanced, t.Key, sum)
	}
	return nil
}

// Validate checks that an account ID is usable: non-empty, printable, no
// surrounding spaces, at most 128 bytes.
func (a AccountID) Validate() error {
	s := string(a)
	if s == "" || len(s) > 128 || strings.TrimSpace(s) != s {
		return fmt.Errorf("%w: account %q", ErrInvalid, s)
	}
	if strings.HasPrefix(s, "wallet:") && !a.Constrained() {
		return fmt.Errorf("%w: wallet account without an id", ErrInvalid)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: account %q has a control character", ErrInvalid, s)
		}
	}
	return nil
}

// Validate checks a hold request: a key, a constrained account, an amount
// in (0, MaxAmount] and an expiry.
func (h Hold) Validate() error {
	switch {
	case h.Key == "" || len(h.Key) > MaxKeyLen:
		return fmt.Errorf("%w: hold key of %d bytes", ErrInvalid, len(h.Key))
	case len(h.Memo) > MaxMemoLen:
		return fmt.Errorf("%w: hold %q: memo of %d bytes", ErrInvalid, h.Key, len(h.Memo))
	case !h.Account.Constrained():
		return fmt.Errorf("%w: hold %q on unconstrained account %q", ErrInvalid, h.Key, h.Account)
	case h.Amount <= 0 || h.Amount > MaxAmount:
		return fmt.Errorf("%w: hold %q amount %d out of range", ErrInvalid, h.Key, h.Amount)
	case h.Expires.IsZero():
		return fmt.Errorf("%w: hold %q has no expiry", ErrInvalid, h.Key)
	}
	return h.Account.Validate()
}

// ContentHash identifies what a transfer does with money: its kind and its
// postings, independent of leg order. Memo and At are deliberately left
// out, so that a retry that re-stamps the time or re-words the memo is still
// recognised as the same transfer; a retry that moves different money under
// the same key is an ErrKeyConflict.
func (t Transfer) ContentHash() [32]byte {
	legs := slices.Clone(t.Postings)
	slices.SortFunc(legs, func(a, b Posting) int {
		if c := strings.Compare(string(a.Account), string(b.Account)); c != 0 {
			return c
		}
		switch {
		case a.Amount < b.Amount:
			return -1
		case a.Amount > b.Amount:
			return 1
		}
		return 0
	})
	h := sha256.New()
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(t.Kind)
	for _, p := range legs {
		write(string(p.Account))
		binary.BigEndian.PutUint64(n[:], uint64(p.Amount))
		h.Write(n[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// String names a hold state for messages and logs.
func (s HoldState) String() string {
	switch s {
	case HoldActive:
		return "active"
	case HoldCaptured:
		return "captured"
	case HoldVoided:
		return "voided"
	case HoldExpired:
		return "expired"
	}
	return fmt.Sprintf("HoldState(%d)", int(s))
}
