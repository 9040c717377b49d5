package protocol

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Wallet codes (DESIGN §3). The app holds a device key pair; the server
// signs a device certificate; each code is signed by the device, so a
// terminal can verify it offline with only the issuer's public key.
//
// Byte layout (all integers big-endian), base45-encoded behind CodePrefix:
//
//	code (181 bytes with a version 1 certificate, 194 with version 2)
//	  0      purpose      1 = pay, 2 = identity
//	  1..4   time         unix seconds when the app made the code
//	  5..6   seq          per-device counter (wraps), makes codes distinct within a second
//	  7..    certificate  110 bytes (version 1) or 123 bytes (version 2), below
//	  last 64 device signature  Ed25519 over "CPCODE1" || everything before
//
//	certificate version 1 (110 bytes)
//	  0      version      1
//	  1      issuer key id  selects the issuer public key (rotation)
//	  2..5   user id      the authorizer's numeric wallet/user id
//	  6..9   device id    assigned by the authorizer at registration
//	 10..41  device public key (Ed25519)
//	 42..45  expiry       unix seconds
//	 46..109 issuer signature  Ed25519 over "CPCERT1" || bytes 0..45
//
//	certificate version 2 (123 bytes): version 1's first 46 bytes (version
//	byte 2), then the offline allowance (offline.go):
//	 46..49  allowance id
//	 50..53  allowance amount, cents
//	 54..57  allowance valid until, unix seconds
//	 58      flags        bit 0: may be spent offline; other bits must be 0
//	 59..122 issuer signature  Ed25519 over "CPCERT2" || bytes 0..58
//
// A version 1 code is 4 + 272 = 276 characters of the QR alphanumeric
// set: a QR symbol of version 10 at error-correction level M (57×57
// modules; capacity 311), or version 9 at level L. A version 2 code is
// 4 + 291 = 295 characters: still version 10 at level M. Level M is used
// on phone screens. The prefix stays "CW1:": the certificate's version
// byte tells the two apart, and codes made under version 1 certificates
// verify as before.
const (
	CodePrefix        = "CW1:"
	CertificateSize   = 110 // version 1
	CertificateV2Size = 123 // version 2: with an offline allowance
	CodeSize          = 181 // with a version 1 certificate
	CodeV2Size        = 194 // with a version 2 certificate

	certSignedLen   = 46
	certV2SignedLen = 59
	codeHeaderLen   = 7 // purpose, time, seq
	certVersion     = 1
	certVersion2    = 2
)

// CodeValidity is how long a code is valid after the app makes it.
const CodeValidity = 60 * time.Second

// MaxClockSkew is the residual clock error tolerated between the phone and
// the verifier, on either side of the validity window. Both the app and the
// terminals correct their clocks from the server's time (the device
// registration response and the retained terminal config), so the residue
// is small; a code is fresh when
//
//	code.Time − MaxClockSkew ≤ now ≤ code.Time + CodeValidity + MaxClockSkew.
const MaxClockSkew = 10 * time.Second

var (
	certDomain   = []byte("CPCERT1")
	certV2Domain = []byte("CPCERT2")
	codeDomain   = []byte("CPCODE1")
)

// Purpose says what a code may be used for.
type Purpose byte

const (
	PurposePay      Purpose = 1
	PurposeIdentity Purpose = 2
)

func (p Purpose) String() string {
	switch p {
	case PurposePay:
		return "pay"
	case PurposeIdentity:
		return "identity"
	}
	return fmt.Sprintf("purpose(%d)", byte(p))
}

// IssuerKeys maps an issuer key id to its Ed25519 public key.
type IssuerKeys map[byte]ed25519.PublicKey

// Certificate binds a device key to a user, signed by the issuer.
type Certificate struct {
	KeyID     byte
	UserID    uint32
	DeviceID  uint32
	DeviceKey ed25519.PublicKey
	Expires   time.Time // second precision
	// Allowance, when set, makes a version 2 certificate: the offline
	// allowance it carries (offline.go). Nil: version 1.
	Allowance *Allowance

	raw []byte // the signed 110 or 123 bytes when parsed
}

// IssueCertificate signs c with the issuer key and returns its bytes: 110
// (version 1), or 123 (version 2) when c carries an allowance.
func IssueCertificate(c Certificate, issuer ed25519.PrivateKey) ([]byte, error) {
	if err := CheckDeviceKey(c.DeviceKey); err != nil {
		return nil, fmt.Errorf("protocol: issue certificate: %w", err)
	}
	if len(issuer) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("protocol: issue certificate: bad issuer key")
	}
	exp := c.Expires.Unix()
	if exp <= 0 || exp > 0xFFFFFFFF {
		return nil, fmt.Errorf("protocol: issue certificate: expiry %v out of range", c.Expires)
	}
	size, signedLen, domain, version := CertificateSize, certSignedLen, certDomain, byte(certVersion)
	if c.Allowance != nil {
		if err := c.Allowance.check(); err != nil {
			return nil, fmt.Errorf("protocol: issue certificate: %w", err)
		}
		size, signedLen, domain, version = CertificateV2Size, certV2SignedLen, certV2Domain, certVersion2
	}
	b := make([]byte, size)
	b[0] = version
	b[1] = c.KeyID
	binary.BigEndian.PutUint32(b[2:], c.UserID)
	binary.BigEndian.PutUint32(b[6:], c.DeviceID)
	copy(b[10:42], c.DeviceKey)
	binary.BigEndian.PutUint32(b[42:], uint32(exp))
	if a := c.Allowance; a != nil {
		a.put(b[certSignedLen:certV2SignedLen])
	}
	copy(b[signedLen:], ed25519.Sign(issuer, signed(domain, b[:signedLen])))
	return b, nil
}

// certSize returns the size of a certificate of the given version byte, 0
// for an unknown version.
func certSize(version byte) int {
	switch version {
	case certVersion:
		return CertificateSize
	case certVersion2:
		return CertificateV2Size
	}
	return 0
}

// ParseCertificate reads the 110 (version 1) or 123 (version 2)
// certificate bytes without verifying them.
func ParseCertificate(b []byte) (Certificate, error) {
	if len(b) == 0 || certSize(b[0]) != len(b) {
		return Certificate{}, ErrCodeMalformed
	}
	c := Certificate{
		KeyID:     b[1],
		UserID:    binary.BigEndian.Uint32(b[2:]),
		DeviceID:  binary.BigEndian.Uint32(b[6:]),
		DeviceKey: ed25519.PublicKey(append([]byte(nil), b[10:42]...)),
		Expires:   time.Unix(int64(binary.BigEndian.Uint32(b[42:])), 0).UTC(),
		raw:       append([]byte(nil), b...),
	}
	if b[0] == certVersion2 {
		a, err := parseAllowance(b[certSignedLen:certV2SignedLen])
		if err != nil {
			return Certificate{}, err
		}
		c.Allowance = a
	}
	return c, nil
}

// Version is the certificate's layout version (1 or 2), 0 if not parsed.
func (c Certificate) Version() int {
	if len(c.raw) == 0 {
		return 0
	}
	return int(c.raw[0])
}

// Verify checks the issuer signature and expiry of a parsed certificate.
func (c Certificate) Verify(keys IssuerKeys, now time.Time) error {
	_, err := c.verify(keys, now, nil)
	return err
}

// verify is Verify through cache; it returns the device key expanded for
// verification when cache holds one (nil otherwise).
func (c Certificate) verify(keys IssuerKeys, now time.Time, cache *CertCache) (*voi.ExpandedPublicKey, error) {
	if len(c.raw) == 0 || certSize(c.raw[0]) != len(c.raw) {
		return nil, ErrCodeMalformed
	}
	pub, ok := keys[c.KeyID]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, ErrCodeUnknownIssuer
	}
	signedLen, domain := certSignedLen, certDomain
	if c.raw[0] == certVersion2 {
		signedLen, domain = certV2SignedLen, certV2Domain
	}
	dk, ok := cache.known(pub, c.raw)
	if !ok {
		if !verifySig(pub, signed(domain, c.raw[:signedLen]), c.raw[signedLen:]) {
			return nil, ErrCodeBadCertSig
		}
		dk = cache.add(pub, c.raw, c.DeviceKey)
	}
	if CheckDeviceKey(c.DeviceKey) != nil { // certified before keys were checked
		return nil, ErrCodeBadCertSig
	}
	if !now.Before(c.Expires) {
		return nil, ErrCodeCertExpired
	}
	return dk, nil
}

// Code is a parsed wallet code.
type Code struct {
	Purpose Purpose
	Time    time.Time // second precision
	Seq     uint16
	Cert    Certificate

	raw []byte
}

// ID identifies a code for single-use checks: device, time and sequence.
// Two scans of the same code (a screenshot) have the same ID.
func (c *Code) ID() string {
	return fmt.Sprintf("%d-%d-%d", c.Cert.DeviceID, c.Time.Unix(), c.Seq)
}

// MakeCode is the app side: it makes a code text from the device's
// certificate bytes and private key.
func MakeCode(cert []byte, device ed25519.PrivateKey, p Purpose, t time.Time, seq uint16) (string, error) {
	if len(device) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("protocol: make code: bad device key")
	}
	body, msg, err := CodeBody(cert, p, t, seq)
	if err != nil {
		return "", err
	}
	return FinishCode(body, ed25519.Sign(device, msg))
}

// CodeBody lays out the unsigned part of a code and returns it with the
// exact message the device must sign. It exists for signers that hold the
// key elsewhere (the web wallet signs with a non-extractable WebCrypto key).
func CodeBody(cert []byte, p Purpose, t time.Time, seq uint16) (body, msg []byte, err error) {
	if len(cert) == 0 || certSize(cert[0]) != len(cert) {
		return nil, nil, fmt.Errorf("protocol: make code: certificate has %d bytes", len(cert))
	}
	if p != PurposePay && p != PurposeIdentity {
		return nil, nil, fmt.Errorf("protocol: make code: %v", p)
	}
	u := t.Unix()
	if u <= 0 || u > 0xFFFFFFFF {
		return nil, nil, fmt.Errorf("protocol: make code: time %v out of range", t)
	}
	b := make([]byte, codeHeaderLen+len(cert))
	b[0] = byte(p)
	binary.BigEndian.PutUint32(b[1:], uint32(u))
	binary.BigEndian.PutUint16(b[5:], seq)
	copy(b[7:], cert)
	return b, signed(codeDomain, b), nil
}

// FinishCode appends the device signature to a CodeBody and returns the text.
func FinishCode(body, sig []byte) (string, error) {
	if len(body) <= codeHeaderLen || certSize(body[codeHeaderLen]) != len(body)-codeHeaderLen || len(sig) != ed25519.SignatureSize {
		return "", fmt.Errorf("protocol: finish code: body %d bytes, signature %d bytes", len(body), len(sig))
	}
	b := make([]byte, 0, len(body)+len(sig))
	b = append(append(b, body...), sig...)
	return CodePrefix + Base45Encode(b), nil
}

// ParseCode reads a code's structure without verifying any signature.
func ParseCode(s string) (*Code, error) {
	if !strings.HasPrefix(s, CodePrefix) {
		return nil, ErrCodeMalformed
	}
	b, err := Base45Decode(s[len(CodePrefix):])
	if err != nil || len(b) <= codeHeaderLen {
		return nil, ErrCodeMalformed
	}
	n := certSize(b[codeHeaderLen])
	if n == 0 || len(b) != codeHeaderLen+n+ed25519.SignatureSize {
		return nil, ErrCodeMalformed
	}
	p := Purpose(b[0])
	if p != PurposePay && p != PurposeIdentity {
		return nil, ErrCodeMalformed
	}
	cert, err := ParseCertificate(b[codeHeaderLen : codeHeaderLen+n])
	if err != nil {
		return nil, err
	}
	return &Code{
		Purpose: p,
		Time:    time.Unix(int64(binary.BigEndian.Uint32(b[1:])), 0).UTC(),
		Seq:     binary.BigEndian.Uint16(b[5:]),
		Cert:    cert,
		raw:     b,
	}, nil
}

// Verify checks, in order: the certificate (issuer known, signature,
// expiry), the device signature, the purpose, then freshness. Asking for
// PurposePay with an identity code fails with ErrIdentityCode; any other
// purpose mismatch with ErrCodeWrongPurpose.
func (c *Code) Verify(keys IssuerKeys, now time.Time, want Purpose) error {
	return c.VerifyWith(keys, now, want, nil)
}

// Verifier is what a busy checker of codes keeps between them: the
// certificates whose issuer signature it has verified, and the batch its
// concurrent device signature checks share. A nil *Verifier, or nil
// fields, cache nothing and check each signature alone.
type Verifier struct {
	Certs *CertCache
	Sigs  *SigBatch
}

func (v *Verifier) certs() *CertCache {
	if v == nil {
		return nil
	}
	return v.Certs
}

func (v *Verifier) sigs() *SigBatch {
	if v == nil {
		return nil
	}
	return v.Sigs
}

// VerifyWith is Verify through v: a certificate v has verified before is
// not verified again, and the device signature is checked in v's batch.
// The device signature, the purpose, the certificate's expiry and
// freshness are checked every time.
func (c *Code) VerifyWith(keys IssuerKeys, now time.Time, want Purpose, v *Verifier) error {
	dk, err := c.Cert.verify(keys, now, v.certs())
	if err != nil {
		return err
	}
	signedLen := len(c.raw) - ed25519.SignatureSize
	if !v.sigs().verify(c.Cert.DeviceKey, dk, signed(codeDomain, c.raw[:signedLen]), c.raw[signedLen:]) {
		return ErrCodeBadSig
	}
	if c.Purpose != want {
		if want == PurposePay && c.Purpose == PurposeIdentity {
			return ErrIdentityCode
		}
		return ErrCodeWrongPurpose
	}
	if now.Before(c.Time.Add(-MaxClockSkew)) {
		return ErrCodeNotYetValid
	}
	if now.After(c.Time.Add(CodeValidity + MaxClockSkew)) {
		return ErrCodeExpired
	}
	return nil
}

// VerifyCode parses and verifies s for the wanted purpose at time now.
func VerifyCode(s string, keys IssuerKeys, now time.Time, want Purpose) (*Code, error) {
	return VerifyCodeWith(s, keys, now, want, nil)
}

// VerifyCodeWith is VerifyCode through v (Code.VerifyWith).
func VerifyCodeWith(s string, keys IssuerKeys, now time.Time, want Purpose, v *Verifier) (*Code, error) {
	c, err := ParseCode(s)
	if err != nil {
		return nil, err
	}
	if err := c.VerifyWith(keys, now, want, v); err != nil {
		return c, err
	}
	return c, nil
}

// CertCache remembers device certificates whose issuer signature verified,
// so that a busy authorizer checks each certificate's signature once
// instead of on every code (a student's certificate lives for weeks; codes
// come every minute). Entries are keyed by the issuer key and the exact
// certificate bytes, so a changed key or a single altered byte misses.
// Each entry holds its device key expanded for verification (about
// 1.5 KiB), which takes about a third off every later check of that
// device's signature (BenchmarkVerifySig). It is bounded: when full it
// forgets the older half. Safe for concurrent use; a nil *CertCache caches
// nothing.
type CertCache struct {
	mu       sync.Mutex
	max      int
	cur, old map[string]*voi.ExpandedPublicKey
}

// NewCertCache makes a cache of about max certificates (at least 2).
func NewCertCache(max int) *CertCache {
	max = (max + 1) / 2
	if max < 1 {
		max = 1
	}
	return &CertCache{max: max, cur: map[string]*voi.ExpandedPublicKey{}}
}

func certCacheKey(pub ed25519.PublicKey, raw []byte) string {
	return string(pub) + string(raw)
}

// known reports whether the certificate raw, signed by pub, verified
// before, and the device key expanded then.
func (c *CertCache) known(pub ed25519.PublicKey, raw []byte) (*voi.ExpandedPublicKey, bool) {
	if c == nil {
		return nil, false
	}
	k := certCacheKey(pub, raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if dk, ok := c.cur[k]; ok {
		return dk, true
	}
	if dk, ok := c.old[k]; ok {
		c.put(k, dk) // still in use: keep it through the next turnover
		return dk, true
	}
	return nil, false
}

// add remembers the certificate raw, whose signature by pub verified, and
// returns its device key expanded (nil if it is not a point on the curve:
// its signatures then fail as they would unexpanded).
func (c *CertCache) add(pub ed25519.PublicKey, raw, device []byte) *voi.ExpandedPublicKey {
	if c == nil {
		return nil
	}
	dk, err := voi.NewExpandedPublicKey(voi.PublicKey(device))
	if err != nil {
		dk = nil
	}
	c.mu.Lock()
	c.put(certCacheKey(pub, raw), dk)
	c.mu.Unlock()
	return dk
}

func (c *CertCache) put(k string, dk *voi.ExpandedPublicKey) {
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[string]*voi.ExpandedPublicKey, c.max)
	}
	c.cur[k] = dk
}

// Len reports how many certificates the cache holds.
func (c *CertCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}

func signed(domain, body []byte) []byte {
	m := make([]byte, 0, len(domain)+len(body))
	return append(append(m, domain...), body...)
}
