// Package wechat is the authorizer's view of WeChat Pay: charging a student's
// WeChat payment code at a terminal (micropay, 付款码支付), following a
// payment the student must confirm on the phone, reversing one that timed
// out, and the campus mini-program's login (DESIGN §2 rule 10).
//
// Client is the interface the wallet and authorizer use; HTTPClient is the
// adapter that speaks the protocol below. The simulator in
// campuspay/hwsim/wechat implements the same protocol.
//
// # Protocol: WeChat Pay v2 style, XML over HTTP
//
// Requests are POSTed as a flat XML document:
//
//	<xml><appid>wx..</appid><mch_id>..</mch_id><nonce_str>..</nonce_str>
//	     <sign_type>HMAC-SHA256</sign_type><sign>..</sign> ...api fields... </xml>
//
// to these paths:
//
//	/tools/authcodetoopenid  auth_code                              → openid
//	/pay/micropay            out_trade_no, auth_code, total_fee (分), body,
//	                         device_info, fee_type=CNY, spbill_create_ip
//	                                                                → openid, transaction_id, total_fee, cash_fee, time_end
//	/pay/orderquery          out_trade_no                           → trade_state (+ the above when paid)
//	/secapi/pay/reverse      out_trade_no                           → recall (Y|N)
//	/secapi/pay/refund       out_trade_no, out_refund_no, total_fee, refund_fee (分)
//	                                                                → refund_id, refund_fee
//	/pay/downloadbill        bill_date (yyyyMMdd), bill_type=ALL    → the day's bill as text (see ParseBill),
//	                                                                  or an XML return_code FAIL
//
// A refund is idempotent by out_refund_no: the same number with the same
// parameters returns the first answer and refunds nothing more. WeChat
// refuses refunds that together exceed the order (ERROR,
// "退款金额超过订单可退金额"). The bill is not signed (as in v2): reconcile
// against it, never move money on it.
//
// The real /secapi/ endpoints also require the merchant's TLS client
// certificate: give HTTPClient an *http.Client whose transport carries it.
//
// The sign is HMAC-SHA256, keyed with the merchant's API key, over the
// non-empty fields other than sign sorted by name and joined as
// "k1=v1&k2=v2...&key=API_KEY", in upper-case hex. Only sign_type
// HMAC-SHA256 is used (the v2 MD5 default is not).
//
// Every response has return_code SUCCESS|FAIL (with return_msg). FAIL means the
// request itself was refused (bad sign, wrong appid/mch_id, malformed XML);
// such responses are unsigned and returned as errors wrapping ErrRejected.
// SUCCESS responses are signed the same way; HTTPClient checks the sign, appid
// and mch_id, and treats a response failing them as lost (ErrUnavailable).
// Then result_code SUCCESS|FAIL with err_code and err_code_des tells the
// business outcome. Codes used:
//
//	micropay:  USERPAYING (the student must enter a password: query, then
//	           reverse on timeout), NOTENOUGH, AUTHCODEEXPIRE, AUTH_CODE_INVALID,
//	           OUT_TRADE_NO_USED (same out_trade_no, different parameters),
//	           ORDERREVERSED, PARAM_ERROR, SYSTEMERROR, BANKERROR (outcome
//	           unknown: query)
//	orderquery: ORDERNOTEXIST, SYSTEMERROR
//	reverse:   ORDERNOTEXIST, SYSTEMERROR with recall=Y (call again)
//	refund:    ORDERNOTEXIST, ERROR (over the order), NOTENOUGH (merchant
//	           funds), TRADE_STATE_ERROR (order not paid), SYSTEMERROR, BIZERR_NEED_RETRY
//	authcodetoopenid: AUTHCODEEXPIRE, AUTH_CODE_INVALID, SYSTEMERROR
//
// Repeating a micropay with the same out_trade_no and the same parameters
// returns the order's current result and charges nothing more, so HTTPClient
// retries every call on timeouts, connection failures and 5xx.
//
// # Mini-program login (JSON)
//
//	GET /sns/jscode2session?appid=..&secret=..&js_code=..&grant_type=authorization_code
//	→ {"openid":"..","session_key":".."}  or  {"errcode":40029,"errmsg":".."}
//
// errcode 40029 invalid code, 40163 code already used, 40013/40125 bad
// appid/secret, -1 busy. Login codes are single use, so Code2Session is
// attempted once.
package wechat

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// TradeState is an order's state as WeChat Pay names it.
type TradeState string

// Trade states. StateFail appears only in a MicropayResult.
const (
	StateSuccess    TradeState = "SUCCESS"
	StateUserPaying TradeState = "USERPAYING"
	StateFail       TradeState = "FAIL"
	StateNotPay     TradeState = "NOTPAY"
	StatePayError   TradeState = "PAYERROR"
	StateRevoked    TradeState = "REVOKED"
	StateClosed     TradeState = "CLOSED"
	StateRefund     TradeState = "REFUND"
)

// Error codes (err_code) the adapter and simulator use.
const (
	CodeUserPaying      = "USERPAYING"
	CodeNotEnough       = "NOTENOUGH"
	CodeAuthCodeExpire  = "AUTHCODEEXPIRE"
	CodeAuthCodeInvalid = "AUTH_CODE_INVALID"
	CodeOutTradeNoUsed  = "OUT_TRADE_NO_USED"
	CodeOrderReversed   = "ORDERREVERSED"
	CodeOrderNotExist   = "ORDERNOTEXIST"
	CodeParamError      = "PARAM_ERROR"
	CodeSystemError     = "SYSTEMERROR"
	CodeBankError       = "BANKERROR"
)

// MicropayRequest charges a payment code.
type MicropayRequest struct {
	OutTradeNo string // the terminal's transaction ID: ≤ 32 of [0-9A-Za-z_-|*@]
	AuthCode   string // the 18-digit payment code the terminal scanned
	TotalFee   int64  // cents
	Body       string // what is bought, e.g. "云谷食堂-午餐"
	DeviceInfo string // terminal ID
}

// MicropayResult is the outcome of a micropay call.
type MicropayResult struct {
	TradeState    TradeState // StateSuccess, StateUserPaying or StateFail
	ErrCode       string     // with StateFail (and CodeUserPaying with StateUserPaying)
	ErrCodeDes    string
	OpenID        string
	TransactionID string
	TotalFee      int64
	TimeEnd       time.Time
}

// Unknown reports whether the payment's outcome is not yet known, so the
// caller must poll OrderQuery (and Reverse when it gives up).
func (r MicropayResult) Unknown() bool {
	return r.TradeState == StateUserPaying ||
		(r.TradeState == StateFail && (r.ErrCode == CodeSystemError || r.ErrCode == CodeBankError))
}

// OrderResult is the state of an order.
type OrderResult struct {
	TradeState     TradeState
	TradeStateDesc string
	OpenID         string
	TransactionID  string
	TotalFee       int64
	TimeEnd        time.Time
}

// Client is WeChat Pay as the authorizer sees it.
type Client interface {
	// AuthCodeToOpenID says which WeChat user owns a payment code.
	AuthCodeToOpenID(ctx context.Context, authCode string) (openID string, err error)
	// Micropay charges a payment code. Business outcomes (NOTENOUGH,
	// USERPAYING, ...) are results; errors are for calls without an answer.
	Micropay(ctx context.Context, req MicropayRequest) (MicropayResult, error)
	// OrderQuery returns an order's state; an unknown order is ErrOrderNotExist.
	OrderQuery(ctx context.Context, outTradeNo string) (OrderResult, error)
	// Reverse cancels an order, refunding it if paid; recall=true means call
	// again.
	Reverse(ctx context.Context, outTradeNo string) (recall bool, err error)
	// Refund pays part or all of a paid order back to the student.
	// Business refusals are errors wrapping *ResultError; errors wrapping
	// ErrUnavailable leave the outcome unknown: repeat with the same
	// OutRefundNo.
	Refund(ctx context.Context, req RefundRequest) (RefundResult, error)
	// Code2Session turns a mini-program login code (wx.login) into an openid.
	Code2Session(ctx context.Context, jsCode string) (openID string, err error)
}

// Errors; test with errors.Is.
var (
	// ErrUnavailable means no trustworthy answer: timeout, connection
	// failure, 5xx, SYSTEMERROR, a bad response sign. Retry; for a micropay
	// use OrderQuery.
	ErrUnavailable = errors.New("wechat: unavailable")
	// ErrRejected is return_code FAIL: the request itself was refused (bad
	// sign, wrong appid or mch_id, malformed request).
	ErrRejected = errors.New("wechat: request rejected")
	// ErrBadRequest is a request the adapter refused to send.
	ErrBadRequest       = errors.New("wechat: bad request")
	ErrOrderNotExist    = errors.New("wechat: order does not exist")
	ErrAuthCodeExpired  = errors.New("wechat: payment code expired or used")
	ErrAuthCodeInvalid  = errors.New("wechat: payment code invalid")
	ErrLoginCodeInvalid = errors.New("wechat: login code invalid")
	ErrLoginCodeUsed    = errors.New("wechat: login code already used")
)

// ResultError is a result_code FAIL (or a Code2Session errcode) that is not
// part of a result. errors.Is matches it against the sentinel for its code.
type ResultError struct {
	API  string
	Code string // err_code, or the errcode number for Code2Session
	Des  string
}

func (e *ResultError) Error() string {
	return fmt.Sprintf("wechat: %s: %s %s", e.API, e.Code, e.Des)
}

// Is maps WeChat's codes to this package's sentinels.
func (e *ResultError) Is(target error) bool {
	switch target {
	case ErrOrderNotExist:
		return e.Code == CodeOrderNotExist
	case ErrAuthCodeExpired:
		return e.Code == CodeAuthCodeExpire
	case ErrAuthCodeInvalid:
		return e.Code == CodeAuthCodeInvalid || e.Code == "AUTH_CODE_ERROR"
	case ErrUnavailable:
		return e.Code == CodeSystemError || e.Code == CodeBankError || e.Code == "BIZERR_NEED_RETRY" || e.Code == "-1" || e.Code == "45011"
	case ErrLoginCodeInvalid:
		return e.Code == "40029"
	case ErrLoginCodeUsed:
		return e.Code == "40163"
	case ErrRejected:
		return e.Code == "40013" || e.Code == "40125"
	}
	return false
}
