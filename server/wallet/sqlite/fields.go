package sqlite

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

// Personal data at rest. The bank adapter needs a bound card's full number
// (every debit and credit names it, refunds go back to the card a record
// names) and the bank's holder check at binding needs the roster's
// resident ID number and phone, so none of the three can be reduced to a
// hash or its last digits. They are kept encrypted instead (AES-256-GCM,
// a fresh nonce per value, the column's name as associated data so that a
// value cannot be moved to another column) under a key that lives outside
// the database: KeyFile in the authorizer's data folder beside the issuer
// and seal keys, mode 0600. A copy of wallet.db alone — a backup, a file
// handed to a support engineer — shows none of them; the last four digits
// of a card are kept in clear beside it (bank_card_last4) for support
// queries. Names and campus card UIDs stay in clear: the terminals and the
// app show them, and card UIDs are looked up.

// KeyFile is the field key's file name in the data folder: 32 random
// bytes, base64, one line.
const KeyFile = "wallet-fields.key"

// FieldKeySize is the length of a field key.
const FieldKeySize = 32

// encPrefix starts every encrypted value ("v1:" + base64 of nonce‖sealed).
const encPrefix = "v1:"

// Columns holding encrypted values (also their associated data).
const (
	colUserCard   = "users.bank_card"
	colUserID     = "users.id_number"
	colUserPhone  = "users.phone"
	colRecordCard = "records.bank_card"
)

// fieldCipher encrypts and decrypts personal data columns.
type fieldCipher struct {
	aead  cipher.AEAD
	check string // identifies the key without revealing it
}

func newFieldCipher(key []byte) (*fieldCipher, error) {
	if len(key) != FieldKeySize {
		return nil, fmt.Errorf("field key has %d bytes, want %d", len(key), FieldKeySize)
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
	m := hmac.New(sha256.New, key)
	m.Write([]byte("campuspay wallet fields v1 key check"))
	return &fieldCipher{aead: aead, check: hex.EncodeToString(m.Sum(nil)[:16])}, nil
}

// seal encrypts v for column col; "" stays "" (nothing bound).
func (c *fieldCipher) seal(col, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(v)+c.aead.Overhead())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return "", fmt.Errorf("wallet/sqlite: nonce: %w", err)
	}
	out := c.aead.Seal(nonce, nonce, []byte(v), []byte(col))
	return encPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// open decrypts a value of column col sealed by seal.
func (c *fieldCipher) open(col, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !strings.HasPrefix(v, encPrefix) {
		return "", fmt.Errorf("wallet/sqlite: %s holds an unencrypted value", col)
	}
	raw, err := base64.RawStdEncoding.DecodeString(v[len(encPrefix):])
	if err != nil || len(raw) < c.aead.NonceSize() {
		return "", fmt.Errorf("wallet/sqlite: %s: malformed encrypted value", col)
	}
	n := c.aead.NonceSize()
	pt, err := c.aead.Open(nil, raw[:n], raw[n:], []byte(col))
	if err != nil {
		return "", fmt.Errorf("wallet/sqlite: %s: cannot decrypt (another key?)", col)
	}
	return string(pt), nil
}

// last4 is what is kept in clear of a card number.
func last4(card string) string {
	if len(card) <= 4 {
		return card
	}
	return card[len(card)-4:]
}

// NewFieldKey makes a random field key.
func NewFieldKey() ([]byte, error) {
	k := make([]byte, FieldKeySize)
	if _, err := io.ReadFull(rand.Reader, k); err != nil {
		return nil, fmt.Errorf("wallet/sqlite: field key: %w", err)
	}
	return k, nil
}

// LoadOrCreateFieldKey reads the field key at path, creating it (mode
// 0600, never overwriting) if it does not exist.
func LoadOrCreateFieldKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := NewFieldKey()
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("wallet/sqlite: field key: %w", err)
		}
		_, werr := io.WriteString(f, base64.StdEncoding.EncodeToString(k)+"\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: write field key %s: %w", path, err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: field key: %w", err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: field key %s: %w", path, err)
	}
	return k, nil
}
