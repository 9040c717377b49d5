package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

// offlineFlags finds what settlement flags about an offline entry before
// its record is written: a code made after its device's revocation.
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
	return flags, nil
}
