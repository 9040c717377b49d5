package sqlite

import "campuspay/server/wallet/fieldcrypt"

// Personal data at rest: bank card numbers, resident ID numbers and phones
// are encrypted by fieldcrypt (shared with wallet/postgres) under a key
// kept outside the database (KeyFile in the data folder, mode 0600).

// KeyFile is the field key's file name in the data folder.
const KeyFile = fieldcrypt.KeyFile

// FieldKeySize is the length of a field key.
const FieldKeySize = fieldcrypt.KeySize

// encPrefix starts every encrypted value.
const encPrefix = fieldcrypt.Prefix

// Columns holding encrypted values (also their associated data).
const (
	colUserCard   = fieldcrypt.ColUserCard
	colUserID     = fieldcrypt.ColUserID
	colUserPhone  = fieldcrypt.ColUserPhone
	colRecordCard = fieldcrypt.ColRecordCard
)

// fieldCipher encrypts and decrypts personal data columns.
type fieldCipher = fieldcrypt.Cipher

func newFieldCipher(key []byte) (*fieldCipher, error) { return fieldcrypt.New(key) }

// last4 is what is kept in clear of a card number.
func last4(card string) string { return fieldcrypt.Last4(card) }

// NewFieldKey makes a random field key.
func NewFieldKey() ([]byte, error) { return fieldcrypt.NewKey() }

// LoadOrCreateFieldKey reads the field key at path, creating it (mode
// 0600, never overwriting) if it does not exist.
func LoadOrCreateFieldKey(path string) ([]byte, error) { return fieldcrypt.LoadOrCreateKey(path) }
