package phone

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"
	"time"

	"campuspay/protocol"
)

// RegisterDevice makes a fresh Ed25519 device key, has the server certify
// it (POST /api/v1/devices) and sets the phone's clock offset from the
// server time in the answer, taken at the middle of the round trip. A phone
// that registers again gets a new key and certificate.
func (p *Phone) RegisterDevice(ctx context.Context) (Device, error) {
	pub, priv, err := ed25519.GenerateKey(p.opt.Rand)
	if err != nil {
		return Device{}, fmt.Errorf("phone: device key: %w", err)
	}
	var resp struct {
		DeviceID    uint32    `json:"device_id"`
		Certificate string    `json:"certificate"`
		ServerTime  time.Time `json:"server_time"`
		Expires     time.Time `json:"expires"`
	}
	t0 := p.opt.Now()
	err = p.do(ctx, call{method: "POST", path: "/api/v1/devices", auth: true,
		body: map[string]string{"public_key": base64.StdEncoding.EncodeToString(pub)}}, &resp)
	if err != nil {
		return Device{}, err
	}
	t1 := p.opt.Now()
	cert, err := base64.StdEncoding.DecodeString(resp.Certificate)
	if err != nil {
		return Device{}, fmt.Errorf("phone: device certificate: %w", err)
	}
	c, err := protocol.ParseCertificate(cert)
	if err != nil {
		return Device{}, fmt.Errorf("phone: device certificate: %w", err)
	}
	if !c.DeviceKey.Equal(pub) || c.DeviceID != resp.DeviceID {
		return Device{}, fmt.Errorf("phone: the server certified another key or device (%d, want %d)", c.DeviceID, resp.DeviceID)
	}
	offset := resp.ServerTime.Sub(t0.Add(t1.Sub(t0) / 2))
	p.mu.Lock()
	p.key, p.cert, p.deviceID, p.expires, p.offset = priv, cert, resp.DeviceID, c.Expires, offset
	p.last = ""
	p.mu.Unlock()
	return Device{ID: resp.DeviceID, Certificate: cert, Expires: c.Expires, ClockOffset: offset}, nil
}

// RemoveDevice revokes the phone's device on the server (as after a lost
// phone); codes it made are refused from then on. The phone keeps its key
// so that a scenario can show such a code.
func (p *Phone) RemoveDevice(ctx context.Context) error {
	p.mu.Lock()
	id := p.deviceID
	p.mu.Unlock()
	if id == 0 {
		return ErrNoDevice
	}
	return p.do(ctx, call{method: "DELETE", path: "/api/v1/devices/" + strconv.FormatUint(uint64(id), 10), auth: true}, nil)
}

// Device returns the registration (ID 0 before RegisterDevice).
func (p *Phone) Device() Device {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Device{ID: p.deviceID, Certificate: p.cert, Expires: p.expires, ClockOffset: p.offset}
}

// PayCode makes a payment code at the phone's time now, corrected by the
// clock offset learnt at registration, and puts it on screen.
func (p *Phone) PayCode(now time.Time) (string, error) {
	return p.code(protocol.PurposePay, now)
}

// IdentityCode makes an identity code (never payable) and puts it on screen.
func (p *Phone) IdentityCode(now time.Time) (string, error) {
	return p.code(protocol.PurposeIdentity, now)
}

// Code makes a payment code at the phone's clock (Options.Now).
func (p *Phone) Code() (string, error) { return p.PayCode(p.opt.Now()) }

func (p *Phone) code(purpose protocol.Purpose, now time.Time) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.key == nil {
		return "", ErrNoDevice
	}
	// Each code gets the next sequence number, so two codes made within the
	// same second differ and each is single-use on its own.
	p.seq++
	text, err := protocol.MakeCode(p.cert, p.key, purpose, now.Add(p.offset), p.seq)
	if err != nil {
		return "", fmt.Errorf("phone: make %s code: %w", purpose, err)
	}
	p.last = text
	return text, nil
}

// Screenshot returns the code last shown on screen, as a student's
// screenshot keeps it: showing it again must be refused as already used.
func (p *Phone) Screenshot() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == "" {
		return "", ErrNoCode
	}
	return p.last, nil
}
