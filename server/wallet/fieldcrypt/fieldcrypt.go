// Package fieldcrypt encrypts the wallet's personal data columns, the same
// way in every wallet store (wallet/sqlite, wallet/postgres).
//
// The bank adapter needs a bound card's full number (every debit and
// credit names it, refunds go back to the card a record names) and the
// bank's holder check at binding needs the roster's resident ID number and
// phone, so none of the three can be reduced to a hash or its last digits.
// They are kept encrypted instead (AES-256-GCM, a fresh nonce per value,
// the column's name as associated data so that a value cannot be moved to
// another column) under a key that lives outside the database: KeyFile in
// the authorizer's data folder beside the issuer and seal keys, mode 0600.
// A copy of the database alone — a backup, a dump handed to a support
// engineer — shows none of them; the last four digits of a card are kept
// in clear beside it (bank_card_last4) for support queries. Names and
// campus card UIDs stay in clear: the terminals and the app show them, and
// card UIDs are looked up.
package fieldcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// KeyFile is the field key's file name in the data folder: 32 random
// bytes, base64, one line.
const KeyFile = "wallet-fields.key"

// KeySize is the length of a field key.
const KeySize = 32

// Prefix starts every encrypted value ("v1:" + base64 of nonce‖sealed).
const Prefix = "v1:"

// Columns holding encrypted values (also their associated data).
const (
	ColUserCard   = "users.bank_card"
	ColUserID     = "users.id_number"
	ColUserPhone  = "users.phone"
	ColRecordCard = "records.bank_card"
	// ColOperatorTOTP is a back-office operator's TOTP secret.
	ColOperatorTOTP = "operators.totp_secret"
)

// Cipher encrypts and decrypts personal data columns.
type Cipher struct {
	aead  cipher.AEAD
	check string
	index []byte // HMAC key of the blind indexes (Index)
}

// New makes the cipher of key (KeySize bytes).
func New(key []byte) (*Cipher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("field key has %d bytes, want %d", len(key), KeySize)
	}
	ek, err := hkdf.Key(sha256.New, key, nil, "campuspay wallet fields v1 aes-gcm", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(ek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	ik, err := hkdf.Key(sha256.New, key, nil, "campuspay wallet fields v1 blind index", 32)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("campuspay wallet fields v1 key check"))
	return &Cipher{aead: aead, check: hex.EncodeToString(m.Sum(nil)[:16]), index: ik}, nil
}

// Index is the blind index of v in column col: a keyed hash that finds a
// row by the exact value (the back office searches students by phone)
// while the database, without the key, learns nothing but equality. ""
// stays "".
func (c *Cipher) Index(col, v string) string {
	if v == "" {
		return ""
	}
	m := hmac.New(sha256.New, c.index)
	m.Write([]byte(col))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Check identifies the key without revealing it: a store records it and
// refuses to open under another key.
func (c *Cipher) Check() string { return c.check }

// Seal encrypts v for column col; "" stays "" (nothing bound).
func (c *Cipher) Seal(col, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(v)+c.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return "", fmt.Errorf("fieldcrypt: nonce: %w", err)
	}
	out := c.aead.Seal(nonce, nonce, []byte(v), []byte(col))
	return Prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// SealClear encrypts a value stored in clear; one already encrypted stays.
func (c *Cipher) SealClear(col, v string) (string, error) {
	if strings.HasPrefix(v, Prefix) {
		return v, nil
	}
	return c.Seal(col, v)
}

// Open decrypts a value of column col made by Seal.
func (c *Cipher) Open(col, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !strings.HasPrefix(v, Prefix) {
		return "", fmt.Errorf("fieldcrypt: %s holds an unencrypted value", col)
	}
	raw, err := base64.RawStdEncoding.DecodeString(v[len(Prefix):])
	if err != nil || len(raw) < c.aead.NonceSize() {
		return "", fmt.Errorf("fieldcrypt: %s: malformed encrypted value", col)
	}
	n := c.aead.NonceSize()
	pt, err := c.aead.Open(nil, raw[:n], raw[n:], []byte(col))
	if err != nil {
		return "", fmt.Errorf("fieldcrypt: %s: cannot decrypt (another key?)", col)
	}
	return string(pt), nil
}

// Last4 is what is kept in clear of a card number.
func Last4(card string) string {
	if len(card) <= 4 {
		return card
	}
	return card[len(card)-4:]
}

// NewKey makes a random field key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		return nil, fmt.Errorf("fieldcrypt: new key: %w", err)
	}
	return k, nil
}

// LoadOrCreateKey reads the field key at path, creating it (mode 0600,
// never overwriting) if it does not exist.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := NewKey()
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("fieldcrypt: key: %w", err)
		}
		_, werr := io.WriteString(f, base64.StdEncoding.EncodeToString(k)+"\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("fieldcrypt: write key %s: %w", path, err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: key %s: %w", path, err)
	}
	return k, nil
}
