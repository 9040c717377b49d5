package api

import (
	"encoding/base64"
	"net/http"
	"time"

	"campuspay/server/wallet"
)

// Offline allowances (wallet/allowance.go): the app shows the allowance,
// its hold, its expiry and any debt; asks for one for a device (the
// answer carries the device's certificate re-issued with it, which the
// app makes its codes with from then on); turns it off (the certificate
// comes back without it); repays a debt from the balance.

type allowanceRequest struct {
	DeviceID uint32 `json:"device_id"`
	Amount   int64  `json:"amount"` // cents, up to the campus maximum
}

// allowanceResponse is the offline status with, after a change, the
// device's new certificate.
type allowanceResponse struct {
	*wallet.OfflineView
	Certificate string     `json:"certificate,omitempty"` // base64
	Expires     *time.Time `json:"expires,omitempty"`     // the certificate's
	ServerTime  time.Time  `json:"server_time"`
}

func (s *Server) offlineAnswer(g *wallet.AllowanceGrant, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	out := allowanceResponse{OfflineView: g.OfflineView, ServerTime: s.opt.Now()}
	if len(g.Certificate) > 0 {
		exp := time.Unix(g.Expires, 0).UTC()
		out.Certificate, out.Expires = base64.StdEncoding.EncodeToString(g.Certificate), &exp
	}
	return out, nil
}

func (s *Server) getOffline(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	v, err := s.svc.OfflineStatus(r.Context(), user)
	if err != nil {
		return nil, err
	}
	return s.offlineAnswer(&wallet.AllowanceGrant{OfflineView: v}, nil)
}

func (s *Server) postAllowance(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req allowanceRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	return s.offlineAnswer(s.svc.RequestAllowance(r.Context(), user, req.DeviceID, req.Amount))
}

func (s *Server) deleteAllowance(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	return s.offlineAnswer(s.svc.ReleaseAllowance(r.Context(), user))
}

func (s *Server) repayDebt(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	v, err := s.svc.RepayDebt(r.Context(), user, idempotencyKey(r))
	if err != nil {
		return nil, err
	}
	return s.offlineAnswer(&wallet.AllowanceGrant{OfflineView: v}, nil)
}
