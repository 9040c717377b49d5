package api_test

import (
	"encoding/base64"
	"testing"

	"campuspay/protocol"
)

// The offline routes: status, an allowance with its certificate, the
// campus maximum, turning it off (the certificate comes back without it).
func TestOfflineRoutes(t *testing.T) {
	e, c, s := setup(t)
	c.want(200, "", "POST", "/api/v1/wallet/bank-card", map[string]string{"bank_code": "CCB", "card_number": s.BankCard}, nil)
	c.want(200, "", "POST", "/api/v1/wallet/top-up", map[string]int{"amount": 50_00}, nil)
	cert, err := protocol.ParseCertificate(s.Cert)
	if err != nil {
		t.Fatal(err)
	}
	m := c.want(200, "", "GET", "/api/v1/offline", nil, nil)
	if m["enabled"] != true || m["max"] != float64(30_00) || m["debt"] != float64(0) || m["allowance"] != nil {
		t.Fatalf("status %v", m)
	}
	c.want(422, protocol.ErrOfflineAmount.Code, "POST", "/api/v1/offline/allowance", map[string]any{"device_id": cert.DeviceID, "amount": 30_01}, nil)
	c.want(422, protocol.ErrOfflineNoDevice.Code, "POST", "/api/v1/offline/allowance", map[string]any{"device_id": 9999, "amount": 10_00}, nil)
	m = c.want(200, "", "POST", "/api/v1/offline/allowance", map[string]any{"device_id": cert.DeviceID, "amount": 20_00}, nil)
	raw, _ := base64.StdEncoding.DecodeString(m["certificate"].(string))
	got, err := protocol.ParseCertificate(raw)
	if err != nil || got.Allowance == nil || got.Allowance.Amount != 20_00 {
		t.Fatalf("certificate %+v %v", got, err)
	}
	a := m["allowance"].(map[string]any)
	if a["held"] != float64(20_00) || a["amount"] != float64(20_00) || a["valid_until"] == nil {
		t.Fatalf("allowance %v", a)
	}
	if w := c.want(200, "", "GET", "/api/v1/wallet", nil, nil); w["held"] != float64(20_00) || w["available"] != float64(30_00) {
		t.Fatalf("wallet %v", w)
	}
	m = c.want(200, "", "DELETE", "/api/v1/offline/allowance", nil, nil)
	raw, _ = base64.StdEncoding.DecodeString(m["certificate"].(string))
	if got, err := protocol.ParseCertificate(raw); err != nil || got.Allowance != nil || m["allowance"] != nil {
		t.Fatalf("after turning off: %v %+v %v", m, got, err)
	}
	if m := c.want(200, "", "POST", "/api/v1/offline/debt/repay", nil, nil); m["debt"] != float64(0) { // nothing owed: nothing moves
		t.Fatalf("repay %v", m)
	}
	e.Check()
}
