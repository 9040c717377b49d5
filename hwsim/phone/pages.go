package phone

import (
	"context"
	"net/url"

	"campuspay/server/api"
)

// What the app's help, shower, statement and scan-to-pay pages read; the
// answers are the API's own types, so the simulated phone cannot drift
// from the server.

// Help returns the help pages' facts and the support contact (no login).
func (p *Phone) Help(ctx context.Context) (*api.HelpInfo, error) {
	var h api.HelpInfo
	return &h, p.do(ctx, call{method: "GET", path: "/api/v1/help"}, &h)
}

// Shower returns the 浴室洗澡 page: balance against the minimum, limits and
// the shower history with the water metered.
func (p *Phone) Shower(ctx context.Context) (*api.ShowerInfo, error) {
	var s api.ShowerInfo
	return &s, p.do(ctx, call{method: "GET", path: "/api/v1/shower", auth: true}, &s)
}

// Statement returns a month's lines ("" for the current month) with the
// balance after each and the monthly bill, optionally of one channel.
func (p *Phone) Statement(ctx context.Context, month, channel string) (*api.StatementResponse, error) {
	q := url.Values{}
	if month != "" {
		q.Set("month", month)
	}
	if channel != "" {
		q.Set("channel", channel)
	}
	path := "/api/v1/statement"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var s api.StatementResponse
	return &s, p.do(ctx, call{method: "GET", path: path, auth: true}, &s)
}

// Payee names whom a scanned static merchant QR pays, before the password.
func (p *Phone) Payee(ctx context.Context, merchantQR string) (*api.MerchantQRInfo, error) {
	var m api.MerchantQRInfo
	return &m, p.do(ctx, call{method: "POST", path: "/api/v1/merchant-qr", body: map[string]string{"qr": merchantQR}, auth: true}, &m)
}
