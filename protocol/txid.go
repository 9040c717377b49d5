package protocol

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// TxID is a terminal-generated transaction ID and the idempotency key of
// every request about that transaction: a retry with the same ID never
// charges twice, and a reversal names the transaction by it.
//
// It is 128 bits: 48 bits of Unix milliseconds then 80 random bits, written
// as 26 characters of Crockford base32 (the ULID layout), so IDs sort by
// creation time as strings and are unique without coordination.
type TxID string

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

var crockfordIndex [256]int8

func init() {
	for i := range crockfordIndex {
		crockfordIndex[i] = -1
	}
	for i := 0; i < len(crockford); i++ {
		crockfordIndex[crockford[i]] = int8(i)
	}
}

// NewTxID makes an ID for time t with 80 bits read from rand (pass
// crypto/rand.Reader in production, a seeded reader in tests).
func NewTxID(t time.Time, rand io.Reader) (TxID, error) {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	if t.UnixMilli() < 0 || ms >= 1<<48 {
		return "", fmt.Errorf("protocol: txid: time %v out of range", t)
	}
	binary.BigEndian.PutUint16(b[0:], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(ms))
	if _, err := io.ReadFull(rand, b[6:]); err != nil {
		return "", fmt.Errorf("protocol: txid: random: %w", err)
	}
	return TxID(encode128(b)), nil
}

// ParseTxID validates s as a TxID.
func ParseTxID(s string) (TxID, error) {
	if len(s) != 26 || crockfordIndex[s[0]] < 0 || crockfordIndex[s[0]] > 7 {
		return "", fmt.Errorf("protocol: txid %q: %w", s, ErrBadRequest)
	}
	for i := 0; i < len(s); i++ {
		if crockfordIndex[s[i]] < 0 {
			return "", fmt.Errorf("protocol: txid %q: %w", s, ErrBadRequest)
		}
	}
	return TxID(s), nil
}

// Time returns the millisecond time the ID was made at (zero if invalid).
func (id TxID) Time() time.Time {
	if len(id) != 26 {
		return time.Time{}
	}
	var ms uint64
	for i := 0; i < 10; i++ { // first 10 chars = 50 bits, top 2 are zero
		v := crockfordIndex[id[i]]
		if v < 0 {
			return time.Time{}
		}
		ms = ms<<5 | uint64(v)
	}
	return time.UnixMilli(int64(ms)).UTC()
}

func encode128(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	out := make([]byte, 26)
	// 130 bits of output for 128 bits of input: the first char holds 3 bits.
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out)
}
