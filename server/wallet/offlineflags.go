package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"campuspay/protocol"
)

// Flags settlement puts on an offline payment's record for the back office
// and the student's details (issue 17). A flagged payment is still settled
// by the normal rule: the campus bears no more than the allowance, and the
// help desk may refund it.
const (
	// FlagAfterRevoke: the code was made after its device was revoked (a
	// terminal without the new revocation list accepted it).
	FlagAfterRevoke = "after_revoke"
	// FlagCodeReplayed: the code had been used before — online (a
	// screenshot shown again at an offline terminal within its validity)
	// or offline under another record (a second terminal).
	FlagCodeReplayed = "code_replayed"
)

// OfflineFlags returns the flags of a settled offline record, nil for any
// other record.
func OfflineFlags(r *Record) []string {
	var p offlinePlan
	if r.Kind != KindOffline || json.Unmarshal(r.Response, &p) != nil {
		return nil
	}
	return p.Flags
}

func addFlag(flags []string, f string) []string {
	if slices.Contains(flags, f) {
		return flags
	}
	return append(flags, f)
}

// offlineFlags finds what settlement flags about an offline entry before
// its record is written: a code made after its device's revocation, and a
// code an online payment spent already.
func (s *Service) offlineFlags(ctx context.Context, c *protocol.Code, e *protocol.JournalEntry) ([]string, error) {
	var flags []string
	d, err := s.st.Device(ctx, c.Cert.DeviceID)
	switch {
	case errors.Is(err, protocol.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("wallet: device %d: %w", c.Cert.DeviceID, err)
	case d.Revoked && !d.RevokedAt.IsZero() && c.Time.After(d.RevokedAt):
		flags = append(flags, FlagAfterRevoke)
	}
	used, err := s.usedOnline(ctx, c, e.Cred)
	if err != nil {
		return nil, err
	}
	if used {
		flags = append(flags, FlagCodeReplayed)
	}
	return flags, nil
}

// usedOnline reports whether an online payment spent the code text: a
// payment record of the code's user created within the code's validity
// (its time − skew to its time + 60 s + 2 × skew, as the authorizer
// accepts it), that got as far as its intent (a channel: the code's
// single-use mark is written with the intent) and whose request was this
// code (its request hash). The online mark itself expires 70 s after the
// code's time and is swept, so by the time an offline journal arrives the
// payment's record is what is left of it.
func (s *Service) usedOnline(ctx context.Context, c *protocol.Code, text string) (bool, error) {
	from := c.Time.Add(-protocol.MaxClockSkew)
	to := c.Time.Add(protocol.CodeValidity + 2*protocol.MaxClockSkew)
	recs, err := s.st.RecordsBetween(ctx, c.Cert.UserID, from, to, MaxStatementLines)
	if err != nil {
		return false, fmt.Errorf("wallet: records of %d: %w", c.Cert.UserID, err)
	}
	texts := []string{text}
	if t := strings.TrimSpace(text); t != text {
		texts = append(texts, t)
	}
	for _, r := range recs {
		if r.Kind != KindPayment || r.Channel == "" {
			continue
		}
		for _, kind := range []protocol.CredKind{protocol.CredCode, protocol.CredWeChat} { // both reach the code path (pay)
			for _, t := range texts {
				req := protocol.Request{Op: protocol.OpPay, Amount: r.Amount, Cred: &protocol.Credential{Kind: kind, Text: t}}
				if requestHash(&req) == r.ReqHash {
					return true, nil
				}
			}
		}
	}
	return false, nil
}
