package wechat

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"campuspay/server/wechat/wxpay"
)

const maxBody = 64 << 10

// Handler serves the pay API, jscode2session and the control API.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /pay/micropay", s.pay("micropay", s.micropay))
	mux.HandleFunc("POST /pay/orderquery", s.pay("orderquery", s.orderQuery))
	mux.HandleFunc("POST /secapi/pay/reverse", s.pay("reverse", s.reverse))
	mux.HandleFunc("POST /secapi/pay/refund", s.pay("refund", s.refund))
	mux.HandleFunc("POST /pay/downloadbill", s.downloadBill)
	mux.HandleFunc("POST /tools/authcodetoopenid", s.pay("authcodetoopenid", s.authCodeToOpenID))
	mux.HandleFunc("GET /sns/jscode2session", s.jsCode2Session)

	mux.HandleFunc("POST /control/users", s.controlCreateUser)
	mux.HandleFunc("GET /control/users/{openid}", s.controlUser)
	mux.HandleFunc("POST /control/users/{openid}/paycode", s.controlCode(s.NewPaymentCode, "auth_code"))
	mux.HandleFunc("POST /control/users/{openid}/logincode", s.controlCode(s.NewLoginCode, "code"))
	mux.HandleFunc("GET /control/orders/{no}", s.controlOrder)
	mux.HandleFunc("POST /control/orders/{no}/confirm", s.controlConfirm)
	mux.HandleFunc("POST /control/faults", s.controlFaults)
	mux.HandleFunc("POST /control/bill-skip", s.controlSkip)
	return mux
}

// takeUnavailable consumes one injected 503.
func (s *Sim) takeUnavailable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unavailable > 0 {
		s.unavailable--
		return true
	}
	return false
}

// takeFailure consumes one injected SYSTEMERROR of api.
func (s *Sim) takeFailure(api string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failNext[api] > 0 {
		s.failNext[api]--
		return true
	}
	return false
}

// pay wraps an API: parse, check identity and sign, run, sign the answer.
func (s *Sim) pay(api string, run func(req map[string]string) map[string]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, ok := s.checkRequest(w, r)
		if !ok {
			return
		}
		var res map[string]string
		if s.takeFailure(api) {
			res = failure("SYSTEMERROR", "系统超时")
			if api == "reverse" {
				res["recall"] = "Y"
			}
		} else {
			res = run(req)
		}
		res["return_code"] = "SUCCESS"
		res["return_msg"] = "OK"
		res["appid"] = s.cfg.AppID
		res["mch_id"] = s.cfg.MchID
		s.mu.Lock()
		res["nonce_str"], _ = s.randomHex(16)
		s.mu.Unlock()
		res["sign"] = wxpay.Sign(res, s.cfg.APIKey)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write(wxpay.EncodeCDATA(res))
	}
}

// checkRequest reads and checks a pay API request: injected 503s, XML,
// identity and sign. It has answered when ok is false.
func (s *Sim) checkRequest(w http.ResponseWriter, r *http.Request) (req map[string]string, ok bool) {
	if s.takeUnavailable() {
		http.Error(w, "injected unavailability", http.StatusServiceUnavailable)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeReturnFail(w, "请求过大或不可读")
		return nil, false
	}
	req, err = wxpay.Decode(bytes.NewReader(body))
	switch {
	case err != nil:
		writeReturnFail(w, "XML格式错误")
	case req["appid"] != s.cfg.AppID || req["mch_id"] != s.cfg.MchID:
		writeReturnFail(w, "appid和mch_id不匹配")
	case req["sign_type"] != "HMAC-SHA256":
		writeReturnFail(w, "sign_type must be HMAC-SHA256")
	case !wxpay.Verify(req, s.cfg.APIKey):
		writeReturnFail(w, "签名错误")
	case req["nonce_str"] == "" || len(req["nonce_str"]) > 32:
		writeReturnFail(w, "nonce_str 1-32 characters required")
	default:
		return req, true
	}
	return nil, false
}

func writeReturnFail(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(wxpay.EncodeCDATA(map[string]string{"return_code": "FAIL", "return_msg": msg}))
}

func failure(code, des string) map[string]string {
	return map[string]string{"result_code": "FAIL", "err_code": code, "err_code_des": des}
}

// validTradeNo: 1–32 of [0-9A-Za-z_-|*@], as WeChat Pay requires.
func validTradeNo(no string) bool {
	if len(no) == 0 || len(no) > 32 {
		return false
	}
	for _, c := range []byte(no) {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			c == '_' || c == '-' || c == '|' || c == '*' || c == '@'
		if !ok {
			return false
		}
	}
	return true
}

// validPayCode: 18 digits, first two 10–15.
func validPayCode(c string) bool {
	if len(c) != 18 || c[0] != '1' || c[1] < '0' || c[1] > '5' {
		return false
	}
	for _, d := range []byte(c) {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// checkPayCode finds a usable payment code; s.mu must be held.
func (s *Sim) checkPayCode(c string) (*code, map[string]string) {
	pc, ok := s.payCodes[c]
	switch {
	case !validPayCode(c) || !ok:
		return nil, failure("AUTH_CODE_INVALID", "付款码无效，请重新扫码")
	case pc.used:
		return nil, failure("AUTHCODEEXPIRE", "付款码已使用，请刷新后重新扫码")
	case s.cfg.Now().Sub(pc.issued) > s.cfg.CodeTTL:
		return nil, failure("AUTHCODEEXPIRE", "付款码已过期，请刷新后重新扫码")
	}
	return pc, nil
}

func (s *Sim) micropay(req map[string]string) map[string]string {
	no, authCode, body := req["out_trade_no"], req["auth_code"], req["body"]
	fee, err := strconv.ParseInt(req["total_fee"], 10, 64)
	if !validTradeNo(no) || err != nil || fee <= 0 || body == "" || authCode == "" {
		return failure("PARAM_ERROR", "参数错误")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o, ok := s.orders[no]; ok {
		if o.authCode != authCode || o.TotalFee != fee || o.body != body || o.deviceInfo != req["device_info"] {
			return failure("OUT_TRADE_NO_USED", "商户订单号重复")
		}
		return micropayAnswer(o)
	}
	if s.reversed[no] {
		return failure("ORDERREVERSED", "订单已撤销")
	}
	pc, fail := s.checkPayCode(authCode)
	if fail != nil {
		return fail
	}
	pc.used = true
	o := &order{
		Order:    Order{OutTradeNo: no, OpenID: pc.openID, TotalFee: fee},
		authCode: authCode, body: body, deviceInfo: req["device_info"],
	}
	s.orders[no] = o
	u := s.users[pc.openID]
	switch {
	case u == nil || u.Balance < fee:
		o.State, o.ErrCode = "PAYERROR", "NOTENOUGH"
	case u.NeedsPassword:
		o.State = "USERPAYING"
	default:
		s.settle(o)
	}
	return micropayAnswer(o)
}

// micropayAnswer is what micropay says about an order in its current state.
func micropayAnswer(o *order) map[string]string {
	switch o.State {
	case "SUCCESS":
		res := paidFields(o)
		res["result_code"] = "SUCCESS"
		return res
	case "USERPAYING":
		return failure("USERPAYING", "需要用户输入支付密码")
	case "REVOKED":
		return failure("ORDERREVERSED", "订单已撤销")
	case "PAYERROR":
		if o.ErrCode == "NOTENOUGH" {
			return failure("NOTENOUGH", "用户余额不足")
		}
		return failure(o.ErrCode, "支付失败")
	}
	return failure("SYSTEMERROR", "系统错误")
}

func paidFields(o *order) map[string]string {
	return map[string]string{
		"out_trade_no":   o.OutTradeNo,
		"openid":         o.OpenID,
		"is_subscribe":   "N",
		"trade_type":     "MICROPAY",
		"bank_type":      "OTHERS",
		"fee_type":       "CNY",
		"total_fee":      strconv.FormatInt(o.TotalFee, 10),
		"cash_fee":       strconv.FormatInt(o.TotalFee, 10),
		"transaction_id": o.TransactionID,
		"time_end":       o.timeEnd.In(chinaTime).Format("20060102150405"),
		"device_info":    o.deviceInfo,
	}
}

var stateDesc = map[string]string{
	"SUCCESS":    "支付成功",
	"USERPAYING": "用户支付中",
	"PAYERROR":   "支付失败",
	"REVOKED":    "已撤销",
}

func (s *Sim) orderQuery(req map[string]string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[req["out_trade_no"]]
	if !ok {
		return failure("ORDERNOTEXIST", "此交易订单号不存在")
	}
	o.Queries++
	if u := s.users[o.OpenID]; o.State == "USERPAYING" && u != nil && u.AutoConfirmAfter > 0 && o.Queries >= u.AutoConfirmAfter {
		s.settle(o)
	}
	res := map[string]string{"out_trade_no": o.OutTradeNo, "openid": o.OpenID, "total_fee": strconv.FormatInt(o.TotalFee, 10)}
	if o.State == "SUCCESS" {
		res = paidFields(o)
	}
	res["result_code"] = "SUCCESS"
	res["trade_state"] = o.State
	res["trade_state_desc"] = stateDesc[o.State]
	return res
}

func (s *Sim) reverse(req map[string]string) map[string]string {
	no := req["out_trade_no"]
	if !validTradeNo(no) {
		return failure("PARAM_ERROR", "参数错误")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[no]
	if !ok {
		// Remember it, so that the original micropay arriving late is refused.
		s.reversed[no] = true
		res := failure("ORDERNOTEXIST", "此交易订单号不存在")
		res["recall"] = "N"
		return res
	}
	if o.State == "SUCCESS" {
		back := o.TotalFee - s.refunded[no] // what earlier refunds left
		if u := s.users[o.OpenID]; u != nil {
			u.Balance += back
		}
		if back > 0 {
			s.events = append(s.events, billEvent{at: s.cfg.Now(), order: o, state: "REVOKED", fee: back})
		}
	}
	o.State = "REVOKED"
	return map[string]string{"result_code": "SUCCESS", "recall": "N"}
}

func (s *Sim) authCodeToOpenID(req map[string]string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	pc, fail := s.checkPayCode(req["auth_code"])
	if fail != nil {
		return fail
	}
	return map[string]string{"result_code": "SUCCESS", "openid": pc.openID}
}

func (s *Sim) jsCode2Session(w http.ResponseWriter, r *http.Request) {
	if s.takeUnavailable() {
		http.Error(w, "injected unavailability", http.StatusServiceUnavailable)
		return
	}
	q := r.URL.Query()
	answer := func(v map[string]any) { writeJSON(w, http.StatusOK, v) }
	switch {
	case s.takeFailure("jscode2session"):
		answer(map[string]any{"errcode": -1, "errmsg": "system error"})
		return
	case q.Get("appid") != s.cfg.MiniAppID:
		answer(map[string]any{"errcode": 40013, "errmsg": "invalid appid"})
		return
	case q.Get("secret") != s.cfg.MiniSecret || q.Get("grant_type") != "authorization_code":
		answer(map[string]any{"errcode": 40125, "errmsg": "invalid appsecret"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lc, ok := s.loginCodes[q.Get("js_code")]
	switch {
	case !ok || s.cfg.Now().Sub(lc.issued) > s.cfg.LoginCodeTTL:
		answer(map[string]any{"errcode": 40029, "errmsg": "invalid code"})
		return
	case lc.used:
		answer(map[string]any{"errcode": 40163, "errmsg": "code been used"})
		return
	}
	lc.used = true
	key := make([]byte, 16)
	io.ReadFull(s.cfg.Rand, key)
	answer(map[string]any{"openid": lc.openID, "session_key": base64.StdEncoding.EncodeToString(key)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (s *Sim) controlCreateUser(w http.ResponseWriter, r *http.Request) {
	var u User
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&u); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	if err := s.CreateUser(u); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (s *Sim) controlUser(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("openid")
	bal, ok := s.Balance(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such user"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"openid": id, "balance": bal})
}

func (s *Sim) controlCode(issue func(string) (string, error), name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := issue(r.PathValue("openid"))
		if err != nil {
			writeErr(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{name: c})
	}
}

func (s *Sim) controlOrder(w http.ResponseWriter, r *http.Request) {
	o, ok := s.Order(r.PathValue("no"))
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such order"})
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Sim) controlConfirm(w http.ResponseWriter, r *http.Request) {
	if err := s.Confirm(r.PathValue("no")); err != nil {
		writeErr(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "OK"})
}

func (s *Sim) controlFaults(w http.ResponseWriter, r *http.Request) {
	var f struct {
		API         string `json:"api"`
		N           int    `json:"n"`
		Unavailable int    `json:"unavailable"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&f); err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	if f.API != "" {
		s.FailNext(f.API, f.N)
	}
	s.UnavailableNext(f.Unavailable)
	writeJSON(w, http.StatusOK, map[string]string{"result": "OK"})
}
