package protocol

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxAmount bounds any single amount (¥100,000.00): larger is a keying error.
const MaxAmount int64 = 100_000_00

// FormatCents renders cents as yuan with two decimals: 1250 → "12.50".
func FormatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// ParseYuan parses a keyed amount in yuan ("12.5", "12.50", "3") to cents.
// It refuses more than two decimals, signs, exponents and amounts outside
// (0, MaxAmount].
func ParseYuan(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrAmountInvalid
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && !hasDot || len(frac) > 2 || (hasDot && frac == "" && whole == "") {
		return 0, ErrAmountInvalid
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, ErrAmountInvalid
		}
	}
	if len(whole) > 9 {
		return 0, ErrAmountInvalid
	}
	var w int64
	if whole != "" {
		var err error
		if w, err = strconv.ParseInt(whole, 10, 64); err != nil {
			return 0, ErrAmountInvalid
		}
	}
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	c := w*100 + f
	if c <= 0 || c > MaxAmount {
		return 0, ErrAmountInvalid
	}
	return c, nil
}

// ValidAmount reports whether c is a payable amount.
func ValidAmount(c int64) bool { return c > 0 && c <= MaxAmount }
