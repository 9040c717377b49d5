package operator

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP (RFC 6238) with the parameters every authenticator app assumes:
// HMAC-SHA1, 30-second steps, 6 digits.
const (
	TOTPStep   = 30 * time.Second
	TOTPDigits = 6
	// TOTPSkew is how many steps either side of now are accepted: phone
	// clocks drift.
	TOTPSkew = 1
)

// TOTPSecretSize is the length of a new secret (160 bits, RFC 4226's
// recommendation).
const TOTPSecretSize = 20

// TOTPStepAt is the time step of t.
func TOTPStepAt(t time.Time) int64 { return t.Unix() / int64(TOTPStep/time.Second) }

// TOTPCode is the code of secret at time step step (RFC 4226 HOTP with the
// step as counter).
func TOTPCode(secret []byte, step int64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, secret)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000)
}

// CheckTOTP reports the time step whose code is code, within TOTPSkew
// steps of now and after last (a code is accepted once), or ok=false.
func CheckTOTP(secret []byte, code string, now time.Time, last int64) (step int64, ok bool) {
	code = strings.TrimSpace(code)
	if len(code) != TOTPDigits {
		return 0, false
	}
	cur := TOTPStepAt(now)
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		if s <= last {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(TOTPCode(secret, s)), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}

// TOTPSecretText is the secret as authenticator apps take it (base32,
// no padding).
func TOTPSecretText(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}

// TOTPURI is the otpauth:// URI an authenticator app scans.
func TOTPURI(issuer, name string, secret []byte) string {
	label := url.PathEscape(issuer + ":" + name)
	q := url.Values{"secret": {TOTPSecretText(secret)}, "issuer": {issuer}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}
