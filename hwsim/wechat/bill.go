package wechat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// refund is one accepted refund.
type refund struct {
	outTradeNo, outRefundNo, refundID string
	totalFee, fee                     int64
}

// billEvent is a money movement as the bill shows it.
type billEvent struct {
	at     time.Time
	order  *order
	state  string // SUCCESS, REFUND or REVOKED
	fee    int64
	refund *refund // with REFUND
}

// refund answers /secapi/pay/refund.
func (s *Sim) refund(req map[string]string) map[string]string {
	no, rno := req["out_trade_no"], req["out_refund_no"]
	total, err1 := strconv.ParseInt(req["total_fee"], 10, 64)
	fee, err2 := strconv.ParseInt(req["refund_fee"], 10, 64)
	if !validTradeNo(no) || rno == "" || len(rno) > 64 || err1 != nil || err2 != nil || fee <= 0 || total < fee {
		return failure("PARAM_ERROR", "参数错误")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.refunds[rno]; ok {
		if r.outTradeNo != no || r.totalFee != total || r.fee != fee {
			return failure("PARAM_ERROR", "订单金额或退款金额与之前请求不一致，请核实后再试")
		}
		return refundAnswer(r)
	}
	o, ok := s.orders[no]
	switch {
	case !ok:
		return failure("ORDERNOTEXIST", "订单不存在")
	case o.State != "SUCCESS":
		return failure("TRADE_STATE_ERROR", "订单状态错误")
	case o.TotalFee != total:
		return failure("PARAM_ERROR", "订单金额或退款金额与之前请求不一致，请核实后再试")
	case s.refunded[no]+fee > o.TotalFee:
		return failure("ERROR", "退款金额超过订单可退金额")
	}
	s.seq++
	r := &refund{outTradeNo: no, outRefundNo: rno, totalFee: total, fee: fee,
		refundID: fmt.Sprintf("5030%s%016d", s.cfg.Now().In(chinaTime).Format("20060102"), s.seq)}
	s.refunds[rno] = r
	s.refunded[no] += fee
	if u := s.users[o.OpenID]; u != nil {
		u.Balance += fee
	}
	s.events = append(s.events, billEvent{at: s.cfg.Now(), order: o, state: "REFUND", refund: r})
	return refundAnswer(r)
}

func refundAnswer(r *refund) map[string]string {
	return map[string]string{"result_code": "SUCCESS", "out_trade_no": r.outTradeNo, "out_refund_no": r.outRefundNo,
		"refund_id": r.refundID, "refund_fee": strconv.FormatInt(r.fee, 10), "total_fee": strconv.FormatInt(r.totalFee, 10),
		"cash_fee": strconv.FormatInt(r.totalFee, 10), "cash_refund_fee": strconv.FormatInt(r.fee, 10)}
}

// billHeader is the v2 ALL bill's header line.
const billHeader = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"

// Bill writes the day's bill (date YYYY-MM-DD, China time); ok is false
// when the day had no movement (WeChat answers "No Bill Exist").
func (s *Sim) Bill(date string) (bill string, ok bool, err error) {
	day, err := time.ParseInLocation(time.DateOnly, date, chinaTime)
	if err != nil {
		return "", false, fmt.Errorf("wechatsim: date %q: %w", date, err)
	}
	end := day.AddDate(0, 0, 1)
	yuan := func(c int64) string { return fmt.Sprintf("%d.%02d", c/100, c%100) }
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString(billHeader + "\n")
	n, fees, refunds := 0, int64(0), int64(0)
	for _, e := range s.events {
		if e.at.Before(day) || !e.at.Before(end) || s.skip[e.order.OutTradeNo] || (e.refund != nil && s.skip[e.refund.outRefundNo]) {
			continue
		}
		o := e.order
		fee, rid, rno, rfee, rtype, rstate := e.fee, "", "", int64(0), "", ""
		if e.refund != nil {
			fee, rid, rno, rfee, rtype, rstate = 0, e.refund.refundID, e.refund.outRefundNo, e.refund.fee, "ORIGINAL", "SUCCESS"
		}
		f := []string{e.at.In(chinaTime).Format(time.DateTime), s.cfg.AppID, s.cfg.MchID, "0", o.deviceInfo, o.TransactionID,
			o.OutTradeNo, o.OpenID, "MICROPAY", e.state, "OTHERS", "CNY", yuan(fee), "0.00", rid, rno, yuan(rfee), "0.00",
			rtype, rstate, o.body, "", "0.00000", "0.60%", yuan(o.TotalFee), yuan(rfee), ""}
		b.WriteString("`" + strings.Join(f, ",`") + "\n")
		n, fees, refunds = n+1, fees+fee, refunds+rfee
	}
	if n == 0 {
		return "", false, nil
	}
	b.WriteString("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n")
	fmt.Fprintf(&b, "`%d,`%s,`%s,`0.00,`0.00000,`%s,`%s\n", n, yuan(fees), yuan(refunds), yuan(fees), yuan(refunds))
	return b.String(), true, nil
}

// SkipInBill leaves the lines of an order (out_trade_no) or refund
// (out_refund_no) out of every bill: a mismatch for reconciliation to find.
func (s *Sim) SkipInBill(no string) {
	s.mu.Lock()
	s.skip[no] = true
	s.mu.Unlock()
}

// downloadBill answers /pay/downloadbill: the bill as text, or an XML FAIL.
func (s *Sim) downloadBill(w http.ResponseWriter, r *http.Request) {
	req, ok := s.checkRequest(w, r)
	if !ok {
		return
	}
	d, err := time.Parse("20060102", req["bill_date"])
	if err != nil || req["bill_type"] != "ALL" {
		writeReturnFail(w, "invalid bill_date or bill_type")
		return
	}
	if s.takeFailure("downloadbill") {
		http.Error(w, "injected failure", http.StatusServiceUnavailable)
		return
	}
	bill, ok, err := s.Bill(d.Format(time.DateOnly))
	if err != nil {
		writeReturnFail(w, err.Error())
		return
	}
	if !ok {
		writeReturnFail(w, "No Bill Exist")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(bill))
}

func (s *Sim) controlSkip(w http.ResponseWriter, r *http.Request) {
	var req struct {
		No string `json:"no"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil || req.No == "" {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("want {\"no\":...}"))
		return
	}
	s.SkipInBill(req.No)
	writeJSON(w, http.StatusOK, map[string]string{"result": "OK"})
}
