package wallet

import (
	"regexp"
	"strings"

	"campuspay/protocol"
)

var phoneRE = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// gb11643Weights are the check-digit weights of GB 11643-1999.
var gb11643Weights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const gb11643Checks = "10X98765432"

// ValidIDNumber reports whether s is an 18-character resident ID number
// with a correct GB 11643 check character (upper-case X).
func ValidIDNumber(s string) bool {
	if len(s) != 18 {
		return false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		sum += int(c-'0') * gb11643Weights[i]
	}
	return s[17] == gb11643Checks[sum%11]
}

// ValidPhone reports whether s is a mainland mobile number.
func ValidPhone(s string) bool { return phoneRE.MatchString(s) }

// ValidCardNumber reports whether s is a 12–19 digit card number passing
// the Luhn check.
func ValidCardNumber(s string) bool {
	if len(s) < 12 || len(s) > 19 {
		return false
	}
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// validPassword reports whether s is a 6-digit payment or water password.
func validPassword(s string) bool {
	if len(s) != passwordDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NormalizeCardUID upper-cases a card UID and checks it is 4–20 hex digits.
func NormalizeCardUID(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) < 4 || len(s) > 20 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return "", false
		}
	}
	return s, true
}

// validStudentNo accepts what the roster and keypads can carry.
func validStudentNo(s string) bool {
	if s == "" || len(s) > maxStudentNoLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// checkAmount refuses amounts that are not positive or above the bound.
func checkAmount(c int64) error {
	if !protocol.ValidAmount(c) {
		return protocol.ErrAmountInvalid
	}
	return nil
}

// MaskName keeps the first character of a name for a display ("张*").
func MaskName(name string) string {
	r := []rune(name)
	if len(r) == 0 {
		return ""
	}
	return string(r[0]) + strings.Repeat("*", max(1, len(r)-1))
}
