// Package precheck refuses, before any network round trip, what the
// terminal can judge alone: identity codes, unsupported or unknown codes,
// campus payment codes that fail verification (issuer key, signatures,
// purpose, freshness on the server-corrected clock), codes already seen on
// this terminal, revoked phones and lost cards. Every refusal is a
// *protocol.Reason whose message the display shows as-is.
package precheck

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"campuspay/protocol"
)

// SeenCodes is the local cache of payment codes seen by this terminal
// (the journal implements it).
type SeenCodes interface {
	// SeeCode records id until expires; fresh is false if it was seen.
	SeeCode(ctx context.Context, id string, expires time.Time) (fresh bool, err error)
}

// Checker classifies and checks scans and card taps.
type Checker struct {
	Seen SeenCodes
	Now  func() time.Time // the corrected clock (see Clock)
}

// IssuerKeys decodes the config's issuer public keys.
func IssuerKeys(cfg *protocol.Config) (protocol.IssuerKeys, error) {
	keys := protocol.IssuerKeys{}
	for _, k := range cfg.IssuerKeys {
		b, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("precheck: issuer key %d: not a base64 Ed25519 public key", k.ID)
		}
		keys[k.ID] = ed25519.PublicKey(b)
	}
	return keys, nil
}

// Scan checks a scanned text against cfg and returns the credential to
// send. A refusal is (or wraps) a *protocol.Reason; any other error means
// the journal failed.
func (c *Checker) Scan(ctx context.Context, cfg *protocol.Config, text string) (protocol.Credential, error) {
	s := strings.TrimSpace(text)
	switch protocol.Classify(s) {
	case protocol.KindIdentity:
		return protocol.Credential{}, protocol.ErrIdentityCode
	case protocol.KindAlipay, protocol.KindUnionPay:
		return protocol.Credential{}, protocol.ErrUnsupportedCode
	case protocol.KindMalformed:
		return protocol.Credential{}, protocol.ErrCodeMalformed
	case protocol.KindMerchantQR:
		// A merchant QR is for the app to scan, never a way to pay here.
		return protocol.Credential{}, protocol.ErrCodeWrongPurpose
	case protocol.KindWeChat:
		return protocol.Credential{Kind: protocol.CredWeChat, Text: s}, nil
	case protocol.KindPayCode:
		return c.payCode(ctx, cfg, s)
	}
	return protocol.Credential{}, protocol.ErrUnknownCode
}

func (c *Checker) payCode(ctx context.Context, cfg *protocol.Config, s string) (protocol.Credential, error) {
	keys, err := IssuerKeys(cfg)
	if err != nil {
		// A broken key in the config: no code can be verified with it.
		return protocol.Credential{}, fmt.Errorf("%w (%v)", protocol.ErrCodeUnknownIssuer, err)
	}
	code, err := protocol.VerifyCode(s, keys, c.Now(), protocol.PurposePay)
	if err != nil {
		return protocol.Credential{}, err
	}
	if slices.Contains(cfg.RevokedDevices, code.Cert.DeviceID) {
		return protocol.Credential{}, protocol.ErrDeviceRevoked
	}
	// Remembered until the code could no longer be fresh anywhere.
	exp := code.Time.Add(protocol.CodeValidity + 2*protocol.MaxClockSkew)
	fresh, err := c.Seen.SeeCode(ctx, code.ID(), exp)
	if err != nil {
		return protocol.Credential{}, fmt.Errorf("precheck: %w", err)
	}
	if !fresh {
		return protocol.Credential{}, protocol.ErrCodeUsed
	}
	return protocol.Credential{Kind: protocol.CredCode, Text: s}, nil
}

// Card checks a tapped card's UID against the lost-card list.
func (c *Checker) Card(cfg *protocol.Config, uid string) (protocol.Credential, error) {
	u := strings.ToUpper(strings.TrimSpace(uid))
	if u == "" {
		return protocol.Credential{}, protocol.ErrCardUnknown
	}
	for _, l := range cfg.LostCards {
		if strings.EqualFold(l, u) {
			return protocol.Credential{}, protocol.ErrCardLost
		}
	}
	return protocol.Credential{Kind: protocol.CredCard, Text: u}, nil
}

// Clock is the terminal's clock corrected by the server's: the offset is
// learned from the config's and responses' server times.
type Clock struct {
	Local func() time.Time // nil = time.Now

	mu     sync.Mutex
	offset time.Duration
}

// Observe records a server time read at local time now.
func (c *Clock) Observe(server time.Time) {
	if server.IsZero() {
		return
	}
	c.mu.Lock()
	c.offset = server.Sub(c.local())
	c.mu.Unlock()
}

// Offset returns the current correction (server − local).
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// Now returns the corrected time.
func (c *Clock) Now() time.Time { return c.local().Add(c.Offset()) }

func (c *Clock) local() time.Time {
	if c.Local != nil {
		return c.Local()
	}
	return time.Now()
}
