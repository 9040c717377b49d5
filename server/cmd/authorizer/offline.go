package main

import (
	"fmt"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// OfflineFileConfig is the "offline" section of the config: offline
// payment codes under an allowance (wallet/allowance.go). Every field is
// optional; zero takes the default.
type OfflineFileConfig struct {
	Disabled         bool     `json:"disabled,omitempty"`          // the off switch
	MaxAllowance     int64    `json:"max_allowance,omitempty"`     // cents, default 3000 (¥30)
	DefaultAllowance int64    `json:"default_allowance,omitempty"` // cents the app offers, default the maximum
	Validity         Duration `json:"validity,omitempty"`          // default 24h
	MaxPerHour       int      `json:"max_per_hour,omitempty"`      // per allowance per terminal, default 3
	MaxIssued        int      `json:"max_issued,omitempty"`        // allowances per student per validity, default 3
	ExcludeMerchants []string `json:"exclude_merchants,omitempty"` // their terminals accept no offline codes
}

func (o OfflineFileConfig) wallet() wallet.OfflineConfig {
	return wallet.OfflineConfig{Disabled: o.Disabled, Max: o.MaxAllowance, Default: o.DefaultAllowance,
		Validity: time.Duration(o.Validity), MaxPerHour: o.MaxPerHour, MaxIssued: o.MaxIssued, ExcludeMerchants: o.ExcludeMerchants}
}

// problem checks the section (Validate lists it).
func (o OfflineFileConfig) problem() string {
	switch {
	case o.MaxAllowance < 0 || o.MaxAllowance > protocol.MaxAmount:
		return fmt.Sprintf("offline.max_allowance: %d cents, want 1 to %d (or 0 for ¥30)", o.MaxAllowance, protocol.MaxAmount)
	case o.DefaultAllowance < 0:
		return "offline.default_allowance: negative"
	case o.Validity < 0 || time.Duration(o.Validity) > 7*24*time.Hour:
		return "offline.validity: want up to 168h (or 0 for 24h)"
	case o.MaxPerHour < 0 || o.MaxPerHour > 1000:
		return "offline.max_per_hour: want 1 to 1000 (or 0 for 3)"
	case o.MaxIssued < 0:
		return "offline.max_issued: negative"
	}
	return ""
}
