package wallet

import (
	"context"
	"errors"
	"fmt"

	"campuspay/protocol"
	"campuspay/server/wechat"
)

// wxState is the outcome of a micropay or an order query.
type wxState int

const (
	wxSuccess    wxState = 1
	wxUserPaying wxState = 2 // the student must confirm on the phone
	wxFailed     wxState = 3 // definite failure: no money taken
)

// wechatErr turns a WeChat error into the reason the student sees; anything
// without a definite answer is ErrWeChatUnavailable.
func wechatErr(err error) error {
	var r *protocol.Reason
	switch {
	case errors.As(err, &r):
		return err
	case errors.Is(err, wechat.ErrAuthCodeExpired), errors.Is(err, wechat.ErrAuthCodeInvalid),
		errors.Is(err, wechat.ErrLoginCodeInvalid), errors.Is(err, wechat.ErrLoginCodeUsed):
		return fmt.Errorf("%w (%v)", protocol.ErrWeChatCodeInvalid, err)
	}
	return fmt.Errorf("%w (%v)", protocol.ErrWeChatUnavailable, err)
}

// micropay charges a WeChat payment code under the terminal's transaction ID.
func (s *Service) micropay(ctx context.Context, rec *Record, code, body string) (wxState, error) {
	res, err := s.wx.Micropay(ctx, wechat.MicropayRequest{OutTradeNo: string(rec.Tx), AuthCode: code,
		TotalFee: rec.Amount, Body: body, DeviceInfo: rec.Terminal})
	if err != nil {
		if errors.Is(err, wechat.ErrRejected) {
			return wxFailed, nil // refused before any charge (configuration): nothing taken
		}
		return 0, wechatErr(err)
	}
	switch {
	case res.TradeState == wechat.StateSuccess:
		return wxSuccess, nil
	case res.TradeState == wechat.StateUserPaying:
		return wxUserPaying, nil
	case res.Unknown():
		return 0, protocol.ErrWeChatUnavailable
	case res.ErrCode == wechat.CodeAuthCodeExpire || res.ErrCode == wechat.CodeAuthCodeInvalid:
		return 0, protocol.ErrWeChatCodeInvalid
	}
	return wxFailed, nil
}

// orderQuery asks for the state of a pending order.
func (s *Service) orderQuery(ctx context.Context, rec *Record) (wxState, error) {
	res, err := s.wx.OrderQuery(ctx, string(rec.Tx))
	if errors.Is(err, wechat.ErrOrderNotExist) {
		// WeChat has not seen the micropay, but it may still be in flight:
		// reverse the order number first, so a late arrival is refused,
		// and only then call it failed.
		if err := s.wxReverse(ctx, rec); err != nil {
			return 0, err
		}
		return wxFailed, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w (%v)", protocol.ErrWeChatUnavailable, err)
	}
	switch res.TradeState {
	case wechat.StateSuccess:
		return wxSuccess, nil
	case wechat.StateUserPaying, wechat.StateNotPay:
		return wxUserPaying, nil
	}
	return wxFailed, nil
}

// wxReverse cancels an order, refunding it if paid.
func (s *Service) wxReverse(ctx context.Context, rec *Record) error {
	recall, err := s.wx.Reverse(ctx, string(rec.Tx))
	switch {
	case errors.Is(err, wechat.ErrOrderNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%w (%v)", protocol.ErrWeChatUnavailable, err)
	case recall:
		return protocol.ErrWeChatUnavailable // WeChat asks to call again
	}
	return nil
}
