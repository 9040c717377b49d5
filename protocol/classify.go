package protocol

import "strings"

// Kind is what a scanned text is. Numbers are explicit: journals store them.
type Kind int

const (
	KindUnknown    Kind = 0
	KindPayCode    Kind = 1 // campus wallet payment code
	KindIdentity   Kind = 2 // campus identity code: never payable
	KindMerchantQR Kind = 3 // static merchant QR (scan-to-pay, app only)
	KindWeChat     Kind = 4 // WeChat Pay payment code: 18 digits, prefix 10–15
	KindAlipay     Kind = 5 // Alipay: 16–24 digits, prefix 25–30 (refused: unsupported)
	KindUnionPay   Kind = 6 // UnionPay: 19 digits, prefix 62 (refused: unsupported)
	KindMalformed  Kind = 7 // has a campus prefix but does not parse
	// KindFace is reserved for face payment: a face reader's match, never
	// scanned text, so Classify never returns it (see CredFace).
	KindFace Kind = 8
)

var kindNames = map[Kind]string{
	KindUnknown: "unknown", KindPayCode: "pay_code", KindIdentity: "identity_code",
	KindMerchantQR: "merchant_qr", KindWeChat: "wechat", KindAlipay: "alipay",
	KindUnionPay: "unionpay", KindMalformed: "malformed", KindFace: "face",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// Classify says what a scanned text is, from its form alone (no signature
// is checked: that is Verify's job). Serial scanners end lines with CR/LF;
// those are trimmed, but not spaces: space is a base45 character.
func Classify(text string) Kind {
	s := Trim(text)
	switch {
	case strings.HasPrefix(s, CodePrefix):
		c, err := ParseCode(s)
		if err != nil {
			return KindMalformed
		}
		if c.Purpose == PurposeIdentity {
			return KindIdentity
		}
		return KindPayCode
	case strings.HasPrefix(s, MerchantQRPrefix):
		if _, err := ParseMerchantQR(s); err != nil {
			return KindMalformed
		}
		return KindMerchantQR
	}
	if !allDigits(s) {
		return KindUnknown
	}
	p := s[:2]
	switch {
	case len(s) == 18 && p >= "10" && p <= "15":
		return KindWeChat
	case len(s) == 19 && p == "62":
		return KindUnionPay
	case len(s) >= 16 && len(s) <= 24 && p >= "25" && p <= "30":
		return KindAlipay
	}
	return KindUnknown
}

func allDigits(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Trim removes the line endings (and NULs) scanners add around a code.
// It keeps spaces, which are part of the base45 alphabet.
func Trim(text string) string { return strings.Trim(text, "\r\n\t\x00") }
