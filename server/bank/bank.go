// Package bank is the wallet's view of the card-issuing banks: holder
// verification when a card is bound (DESIGN §2 rule 1), and debits and credits
// of the bound card for top-up, withdrawal and card-funded payments (rules 5, 6).
//
// Client is the interface the wallet service uses; HTTPClient is the adapter
// that speaks the bank gateway's JSON-over-HTTP protocol described below. The
// simulator in campuspay/hwsim/bank implements the same protocol.
//
// Which banks the campus supports is the wallet's configuration, not the
// bank's: the gateway answers ErrUnsupportedBank only for bank codes it does
// not route at all.
//
// # Protocol (version 1)
//
// All requests are POST with a JSON body (Content-Type: application/json) to
//
//	POST /v1/verify  {"bank_code":"CCB","card_number":"6217...","name":"张三","id_number":"1101...","phone":"138..."}
//	POST /v1/debit   {"key":"...","bank_code":"CCB","card_number":"6217...","amount":1500}
//	POST /v1/credit  {"key":"...","bank_code":"CCB","card_number":"6217...","amount":1500}
//	POST /v1/refund  {"key":"...","original_key":"...","bank_code":"CCB","card_number":"6217...","amount":500}
//	POST /v1/statement {"date":"2026-11-30"}
//
// A refund credits the card with part or all of an earlier debit (named by
// its key, on the same card); the gateway refuses refunds that together
// exceed the debit (REFUND_EXCEEDS) and an original it does not know
// (ORIGINAL_UNKNOWN). The statement lists every debit, credit and refund
// the gateway applied for this client on one day (China time), see
// Statement.
//
//	POST /v1/otp/send   {"bank_code":"CCB","card_number":"6217...","purpose":"reset_payment_password"}
//	POST /v1/otp/check  {"bank_code":"CCB","card_number":"6217...","otp_id":"OTP...","code":"123456"}
//
// Amounts are integer cents (分), > 0. Keys are 1–64 printable ASCII
// characters chosen by the caller; a key names one money movement forever.
//
// Success is HTTP 200 with
//
//	verify:         {"result":"OK"}
//	debit, credit:  {"result":"OK","receipt":{"ref":"CCB000000000001","key":"...","op":"debit","amount":1500,"time":"2026-11-30T08:00:00Z"}}
//	refund:         the same, with "op":"refund"
//	statement:      {"result":"OK","date":"2026-11-30","entries":[{"ref":..,"key":..,"op":..,"amount":..,"time":..,"bank_code":..,"card":"6217********1234"}]}
//	otp/send:       {"result":"OK","otp":{"id":"OTP000000000001","phone":"138****0001","expires":"2026-11-30T08:05:00Z"}}
//	otp/check:      {"result":"OK"}
//
// The one-time code proves that whoever asks holds the phone the bank keeps
// for the card (the reserved phone, 银行预留手机号): otp/send texts a
// 6-digit code to that phone, and otp/check compares what the student
// typed. The bank keeps the bounds: a code lives 5 minutes, allows 5 wrong
// tries, is good once, and a new one for the same card replaces the old;
// another send within 60 s of the last is refused. The purpose is text the
// SMS quotes, so the student knows what the code would allow.
//
// Repeating a debit or credit with the same key and the same parameters returns
// the original receipt and moves no money; the same key with different
// parameters (operation, bank, card or amount) is refused with KEY_CONFLICT.
// Only successful movements are remembered: a declined debit may be repeated
// with the same key and is evaluated afresh.
//
// Failure is a non-200 status with {"code":"...","message":"...","field":"..."}:
//
//	400 BAD_REQUEST           malformed body or parameters            ErrBadRequest
//	401 BAD_SIGNATURE         missing/invalid signature or timestamp  ErrUnauthorized
//	404 UNKNOWN_CARD          no such card at this bank               ErrUnknownCard
//	422 UNSUPPORTED_BANK      bank code not served by the gateway     ErrUnsupportedBank
//	422 INVALID_CARD_NUMBER   card number fails the Luhn check        ErrInvalidCardNumber
//	422 MISMATCH              holder detail differs; "field" is one of
//	                          "name", "id_number", "phone"            *MismatchError
//	402 INSUFFICIENT_FUNDS    card balance below the amount           ErrInsufficientFunds
//	403 DECLINED              card frozen or refused by the bank      ErrDeclined
//	409 KEY_CONFLICT          key reused with different parameters    ErrKeyConflict
//	404 ORIGINAL_UNKNOWN      refund of a debit the bank does not know ErrOriginalUnknown
//	422 REFUND_EXCEEDS        refunds would exceed the original debit  ErrRefundExceeds
//	422 OTP_WRONG             wrong code; tries remain                ErrOTPWrong
//	422 OTP_EXPIRED           code past its 5 minutes                 ErrOTPExpired
//	422 OTP_USED              code already checked or replaced        ErrOTPUsed
//	422 OTP_LOCKED            5 wrong tries: the code is dead         ErrOTPLocked
//	404 UNKNOWN_OTP           no such code for this card              ErrUnknownOTP
//	429 OTP_TOO_SOON          a code was sent under 60 s ago          ErrOTPTooSoon
//	5xx (any body)            gateway trouble; retryable              ErrUnavailable
//
// # Signatures
//
// Every request carries
//
//	X-Bank-Client:    client id
//	X-Bank-Timestamp: Unix seconds; the gateway refuses more than 5 minutes of skew
//	X-Bank-Signature: hex(HMAC-SHA256(secret, "POST\n" + path + "\n" + client + "\n" + timestamp + "\n" + body))
//
// Every response except 401, 413 (body over 64 KiB) and 5xx carries
//
//	X-Bank-Signature: hex(HMAC-SHA256(secret, "RESPONSE\n" + status + "\n" + request signature + "\n" + body))
//
// binding the answer to the request it answers, so a replayed or forged
// "OK" is detected. HTTPClient treats an answer with a bad signature like a
// lost one (ErrUnavailable): the outcome is unknown. A 401 is unsigned (the
// gateway does not trust the request, so it has no secret to sign with); the
// gateway answers 401 before touching any account, but since a 401 cannot be
// authenticated, a debit or credit refused with ErrUnauthorized should be
// repeated with the same key once the configuration is fixed.
//
// # Retries
//
// Every call is safe to repeat (verify reads, debit and credit are idempotent
// by key), so HTTPClient retries on timeouts, connection failures and 5xx with
// exponential back-off, and never on a definite answer. When the attempts run
// out the error wraps ErrUnavailable and the outcome of a debit or credit is
// unknown: repeat it later with the same key until a definite answer arrives.
package bank

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Holder is what the student enters when binding a card; the bank compares
// it with the details it keeps for the card.
type Holder struct {
	BankCode   string // e.g. "CCB" (建设银行), "ICBC", "ABC", "BOC"
	CardNumber string
	Name       string
	IDNumber   string // 身份证号
	Phone      string // 银行预留手机号
}

// Receipt is the bank's record of one debit or credit.
type Receipt struct {
	Ref    string    `json:"ref"` // the bank's reference
	Key    string    `json:"key"` // the caller's idempotency key
	Op     string    `json:"op"`  // "debit", "credit" or "refund"
	Amount int64     `json:"amount"`
	Time   time.Time `json:"time"`
}

// Client is the bank as the wallet sees it.
type Client interface {
	// Verify checks holder details against the bank's records. A mismatch
	// returns *MismatchError{Field: "name"|"id_number"|"phone"}; an unknown
	// card ErrUnknownCard; a bank not served ErrUnsupportedBank.
	Verify(ctx context.Context, h Holder) error
	// Debit takes amount cents from the card (top-up, or a payment funded by
	// the card). Idempotent by key.
	Debit(ctx context.Context, key, bankCode, cardNumber string, amount int64) (Receipt, error)
	// Credit pays amount cents to the card (withdrawal, refund). Idempotent
	// by key.
	Credit(ctx context.Context, key, bankCode, cardNumber string, amount int64) (Receipt, error)
	// Refund pays amount cents of the debit made under originalKey back
	// to the same card. Idempotent by key; the bank refuses refunds that
	// together exceed the debit.
	Refund(ctx context.Context, key, originalKey, bankCode, cardNumber string, amount int64) (Receipt, error)
	// SendOTP texts a one-time code to the card's reserved phone, quoting
	// purpose. Not idempotent: each call sends a new code (the bank
	// refuses ErrOTPTooSoon within a minute of the last).
	SendOTP(ctx context.Context, bankCode, cardNumber, purpose string) (OTP, error)
	// CheckOTP checks the code typed for OTP id of the card: nil once, then
	// ErrOTPUsed; ErrOTPWrong, ErrOTPExpired, ErrOTPLocked, ErrUnknownOTP.
	CheckOTP(ctx context.Context, bankCode, cardNumber, id, code string) error
}

// OTP is a one-time code the bank sent.
type OTP struct {
	ID      string    `json:"id"`
	Phone   string    `json:"phone"` // the reserved phone, masked (138****0001)
	Expires time.Time `json:"expires"`
}

// Errors returned by Client implementations; test with errors.Is.
var (
	ErrUnknownCard       = errors.New("bank: unknown card")
	ErrUnsupportedBank   = errors.New("bank: bank not served")
	ErrInvalidCardNumber = errors.New("bank: invalid card number")
	ErrInsufficientFunds = errors.New("bank: insufficient funds")
	ErrDeclined          = errors.New("bank: declined")
	ErrKeyConflict       = errors.New("bank: key reused with different parameters")
	ErrOriginalUnknown   = errors.New("bank: refund of an unknown debit")
	ErrRefundExceeds     = errors.New("bank: refunds exceed the original debit")
	ErrBadRequest        = errors.New("bank: bad request")
	ErrOTPWrong          = errors.New("bank: wrong one-time code")
	ErrOTPExpired        = errors.New("bank: one-time code expired")
	ErrOTPUsed           = errors.New("bank: one-time code already used")
	ErrOTPLocked         = errors.New("bank: one-time code locked after wrong tries")
	ErrUnknownOTP        = errors.New("bank: unknown one-time code")
	ErrOTPTooSoon        = errors.New("bank: one-time code requested too soon")
	ErrUnauthorized      = errors.New("bank: request signature refused")
	// ErrUnavailable means no definite answer: timeout, connection failure,
	// 5xx or an unverifiable response. Retry with the same key.
	ErrUnavailable = errors.New("bank: unavailable")
)

// Fields named by MismatchError.
const (
	FieldName     = "name"
	FieldIDNumber = "id_number"
	FieldPhone    = "phone"
)

// MismatchError says which holder detail differs from the bank's records.
type MismatchError struct {
	Field string // FieldName, FieldIDNumber or FieldPhone
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("bank: holder %s does not match the bank's records", e.Field)
}

// Wire error codes (the "code" member of an error body).
const (
	CodeBadRequest        = "BAD_REQUEST"
	CodeBadSignature      = "BAD_SIGNATURE"
	CodeUnknownCard       = "UNKNOWN_CARD"
	CodeUnsupportedBank   = "UNSUPPORTED_BANK"
	CodeInvalidCardNumber = "INVALID_CARD_NUMBER"
	CodeMismatch          = "MISMATCH"
	CodeInsufficientFunds = "INSUFFICIENT_FUNDS"
	CodeDeclined          = "DECLINED"
	CodeKeyConflict       = "KEY_CONFLICT"
	CodeOriginalUnknown   = "ORIGINAL_UNKNOWN"
	CodeRefundExceeds     = "REFUND_EXCEEDS"
	CodeOTPWrong          = "OTP_WRONG"
	CodeOTPExpired        = "OTP_EXPIRED"
	CodeOTPUsed           = "OTP_USED"
	CodeOTPLocked         = "OTP_LOCKED"
	CodeUnknownOTP        = "UNKNOWN_OTP"
	CodeOTPTooSoon        = "OTP_TOO_SOON"
)

// codeErrors maps wire codes to error values; MISMATCH is handled apart.
var codeErrors = map[string]error{
	CodeBadRequest:        ErrBadRequest,
	CodeBadSignature:      ErrUnauthorized,
	CodeUnknownCard:       ErrUnknownCard,
	CodeUnsupportedBank:   ErrUnsupportedBank,
	CodeInvalidCardNumber: ErrInvalidCardNumber,
	CodeInsufficientFunds: ErrInsufficientFunds,
	CodeDeclined:          ErrDeclined,
	CodeKeyConflict:       ErrKeyConflict,
	CodeOriginalUnknown:   ErrOriginalUnknown,
	CodeRefundExceeds:     ErrRefundExceeds,
	CodeOTPWrong:          ErrOTPWrong,
	CodeOTPExpired:        ErrOTPExpired,
	CodeOTPUsed:           ErrOTPUsed,
	CodeOTPLocked:         ErrOTPLocked,
	CodeUnknownOTP:        ErrUnknownOTP,
	CodeOTPTooSoon:        ErrOTPTooSoon,
}
