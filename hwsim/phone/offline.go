package phone

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"campuspay/protocol"
)

// Offline is the app's view of offline payments (GET /api/v1/offline).
type Offline struct {
	Enabled   bool  `json:"enabled"`
	Max       int64 `json:"max"`
	Default   int64 `json:"default"`
	Allowance *struct {
		ID         uint32    `json:"id"`
		DeviceID   uint32    `json:"device_id"`
		Amount     int64     `json:"amount"`
		Held       int64     `json:"held"`
		ValidUntil time.Time `json:"valid_until"`
	} `json:"allowance,omitempty"`
	Debt        int64      `json:"debt"`
	Certificate string     `json:"certificate,omitempty"`
	Expires     *time.Time `json:"expires,omitempty"`
	ServerTime  time.Time  `json:"server_time"`
}

// OfflineStatus reads the allowance, its hold and any debt.
func (p *Phone) OfflineStatus(ctx context.Context) (*Offline, error) {
	var o Offline
	if err := p.do(ctx, call{method: "GET", path: "/api/v1/offline", auth: true}, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// RequestAllowance asks for an offline allowance of cents for the phone's
// device and makes its codes with the certificate that carries it from
// then on — with the network or without.
func (p *Phone) RequestAllowance(ctx context.Context, cents int64) (*Offline, error) {
	dev := p.Device()
	if dev.ID == 0 {
		return nil, ErrNoDevice
	}
	var o Offline
	if err := p.do(ctx, call{method: "POST", path: "/api/v1/offline/allowance", auth: true,
		body: map[string]any{"device_id": dev.ID, "amount": cents}}, &o); err != nil {
		return nil, err
	}
	if err := p.useCertificate(o.Certificate); err != nil {
		return nil, err
	}
	return &o, nil
}

// ReleaseAllowance turns the allowance off; the phone goes back to the
// certificate without it.
func (p *Phone) ReleaseAllowance(ctx context.Context) (*Offline, error) {
	var o Offline
	if err := p.do(ctx, call{method: "DELETE", path: "/api/v1/offline/allowance", auth: true}, &o); err != nil {
		return nil, err
	}
	if o.Certificate != "" {
		if err := p.useCertificate(o.Certificate); err != nil {
			return nil, err
		}
	}
	return &o, nil
}

func (p *Phone) useCertificate(b64 string) error {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("phone: certificate: %w", err)
	}
	c, err := protocol.ParseCertificate(raw)
	if err != nil {
		return fmt.Errorf("phone: certificate: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.key == nil || !c.DeviceKey.Equal(p.key.Public()) || c.DeviceID != p.deviceID {
		return fmt.Errorf("phone: the certificate is for another key or device (%d, want %d)", c.DeviceID, p.deviceID)
	}
	p.cert, p.expires = raw, c.Expires
	return nil
}
