package wallet

import (
	"errors"
	"strings"
	"unicode"

	"campuspay/protocol"
	"campuspay/server/bank"
)

// NormalizeCardNumber returns a bank card number as the bank knows it:
// the grouping spaces and dashes people type or paste ("6217 0000 1234
// 5678 901", a full-width space from a Chinese keyboard, a non-breaking
// space from a web page) removed and full-width digits made ASCII. What
// remains is validated by ValidCardNumber, so anything else still fails.
func NormalizeCardNumber(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '０' && r <= '９':
			return '0' + (r - '０')
		case r == '-' || r == '－' || unicode.IsSpace(r):
			return -1
		}
		return r
	}, s)
}

// topUpBankErr is mapBankErr for a top-up: a card that cannot cover the
// amount says so, rather than the bank's generic decline.
func topUpBankErr(err error) error {
	if errors.Is(err, bank.ErrInsufficientFunds) {
		return protocol.ErrBankCardLowFunds
	}
	return mapBankErr(err)
}
