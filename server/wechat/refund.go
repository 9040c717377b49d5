package wechat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"campuspay/server/wechat/wxpay"
)

// RefundRequest refunds part or all of a paid order.
type RefundRequest struct {
	OutTradeNo  string // the order
	OutRefundNo string // the refund's own number: ≤ 64 of [0-9A-Za-z_-|*@]; idempotency
	TotalFee    int64  // the order's amount, cents
	RefundFee   int64  // cents refunded now
	Desc        string // refund_desc, shown to the student
}

// RefundResult is WeChat's acceptance of a refund.
type RefundResult struct {
	RefundID  string
	RefundFee int64
}

// Refund implements Client.
func (c *HTTPClient) Refund(ctx context.Context, req RefundRequest) (RefundResult, error) {
	if req.OutTradeNo == "" || req.OutRefundNo == "" || len(req.OutRefundNo) > 64 || req.RefundFee <= 0 || req.TotalFee < req.RefundFee {
		return RefundResult{}, fmt.Errorf("wechat: refund %q: out_trade_no, out_refund_no and 0 < refund_fee ≤ total_fee are required: %w", req.OutRefundNo, ErrBadRequest)
	}
	fields := map[string]string{
		"out_trade_no":  req.OutTradeNo,
		"out_refund_no": req.OutRefundNo,
		"total_fee":     strconv.FormatInt(req.TotalFee, 10),
		"refund_fee":    strconv.FormatInt(req.RefundFee, 10),
		"refund_desc":   req.Desc,
	}
	var res RefundResult
	err := c.retry(ctx, func() error {
		resp, err := c.post(ctx, "/secapi/pay/refund", fields)
		if err != nil {
			return err
		}
		if resp["result_code"] != "SUCCESS" {
			return resultError("refund", resp)
		}
		fee, err := strconv.ParseInt(resp["refund_fee"], 10, 64)
		if err != nil || fee != req.RefundFee || resp["out_refund_no"] != req.OutRefundNo || resp["out_trade_no"] != req.OutTradeNo || resp["refund_id"] == "" {
			return fmt.Errorf("%w: SUCCESS that does not match the refund", ErrUnavailable)
		}
		res = RefundResult{RefundID: resp["refund_id"], RefundFee: fee}
		return nil
	})
	if err != nil {
		return RefundResult{}, fmt.Errorf("wechat: refund %s of %s: %w", req.OutRefundNo, req.OutTradeNo, err)
	}
	return res, nil
}

// maxBill bounds a downloaded bill (a campus's day is far smaller).
const maxBill = 64 << 20

// DownloadBill fetches the day's bill (date YYYY-MM-DD, China time) and
// parses it. A day without any order is answered by WeChat with
// return_code FAIL "No Bill Exist": that is an empty bill.
func (c *HTTPClient) DownloadBill(ctx context.Context, date string) (*Bill, error) {
	d, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return nil, fmt.Errorf("wechat: downloadbill %q: %w", date, ErrBadRequest)
	}
	var bill *Bill
	err = c.retry(ctx, func() error {
		body, err := c.postRaw(ctx, "/pay/downloadbill", map[string]string{"bill_date": d.Format("20060102"), "bill_type": "ALL"})
		if err != nil {
			return err
		}
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("<xml>")) {
			resp, err := wxpay.Decode(bytes.NewReader(body))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			if strings.Contains(resp["return_msg"], "No Bill Exist") {
				bill = &Bill{Rows: []BillRow{}}
				return nil
			}
			return fmt.Errorf("%w: %s", ErrRejected, resp["return_msg"])
		}
		bill, err = ParseBill(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("wechat: downloadbill %s: %w", date, err)
	}
	return bill, nil
}

// postRaw makes one signed call whose success answer is not XML (the
// bill) and returns the body.
func (c *HTTPClient) postRaw(ctx context.Context, path string, fields map[string]string) ([]byte, error) {
	start := time.Now()
	body, err := c.send(ctx, path, fields, maxBill)
	observe(path, start, err)
	return body, err
}

// Bill is a parsed downloadbill (bill_type ALL).
type Bill struct {
	Rows []BillRow
}

// Bill row states (交易状态).
const (
	BillSuccess = "SUCCESS" // a payment: Fee is the order's settled amount
	BillRefund  = "REFUND"  // a refund: RefundFee under OutRefundNo
	BillRevoked = "REVOKED" // a paid order reversed: Fee went back
)

// BillRow is one line of the bill.
type BillRow struct {
	Time          time.Time
	DeviceInfo    string
	TransactionID string
	OutTradeNo    string
	State         string
	Fee           int64 // 应结订单金额, cents
	RefundID      string
	OutRefundNo   string
	RefundFee     int64 // 退款金额, cents
}

// billColumns are the columns ParseBill reads, by their header names.
var billColumns = []string{"交易时间", "设备号", "微信订单号", "商户订单号", "交易状态", "应结订单金额", "微信退款单号", "商户退款单号", "退款金额"}

// ParseBill reads a v2 bill: a header line of column names, one line per
// order or refund with every field prefixed by a backtick, then the
// summary header (总交易单数,...) and its line. The summary's count and
// totals must agree with the rows. Anything else is refused.
func ParseBill(r io.Reader) (*Bill, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	next := func() (string, bool) {
		for sc.Scan() {
			if l := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(l) != "" {
				return strings.TrimPrefix(l, "\ufeff"), true
			}
		}
		return "", false
	}
	head, ok := next()
	if !ok {
		return nil, errors.New("bill: empty")
	}
	names := strings.Split(head, ",")
	idx := map[string]int{}
	for i, n := range names {
		if _, dup := idx[n]; dup {
			return nil, fmt.Errorf("bill: column %q twice", n)
		}
		idx[n] = i
	}
	for _, n := range billColumns {
		if _, ok := idx[n]; !ok {
			return nil, fmt.Errorf("bill: no column %q", n)
		}
	}
	b := &Bill{Rows: []BillRow{}}
	var fees, refunds int64
	for {
		line, ok := next()
		if !ok {
			return nil, errors.New("bill: no summary")
		}
		if strings.HasPrefix(line, "总交易单数") {
			break
		}
		f, err := billFields(line, len(names))
		if err != nil {
			return nil, fmt.Errorf("bill: line %d: %w", len(b.Rows)+2, err)
		}
		row, err := billRow(f, idx)
		if err != nil {
			return nil, fmt.Errorf("bill: line %d: %w", len(b.Rows)+2, err)
		}
		b.Rows = append(b.Rows, row)
		fees += row.Fee
		refunds += row.RefundFee
		if fees > maxBillCents || refunds > maxBillCents {
			return nil, errors.New("bill: totals out of range")
		}
	}
	line, ok := next()
	if !ok {
		return nil, errors.New("bill: summary line missing")
	}
	f, err := billFields(line, 0)
	if err != nil || len(f) < 3 {
		return nil, errors.New("bill: summary line malformed")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n != len(b.Rows) {
		return nil, fmt.Errorf("bill: summary says %q lines, found %d", f[0], len(b.Rows))
	}
	if tf, err := billCents(f[1]); err != nil || tf != fees {
		return nil, fmt.Errorf("bill: summary total %q, rows sum to %d cents", f[1], fees)
	}
	if tr, err := billCents(f[2]); err != nil || tr != refunds {
		return nil, fmt.Errorf("bill: summary refunds %q, rows sum to %d cents", f[2], refunds)
	}
	if _, ok := next(); ok {
		return nil, errors.New("bill: data after the summary")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bill: %w", err)
	}
	return b, nil
}

// billFields splits a line of backtick-prefixed fields (want 0: any
// number). Splitting on ",`" keeps commas inside a product name.
func billFields(line string, want int) ([]string, error) {
	if !strings.HasPrefix(line, "`") {
		return nil, errors.New("field without its backtick")
	}
	f := strings.Split(line[1:], ",`")
	if want > 0 && len(f) != want {
		return nil, fmt.Errorf("%d fields, want %d", len(f), want)
	}
	return f, nil
}

func billRow(f []string, idx map[string]int) (BillRow, error) {
	get := func(n string) string { return f[idx[n]] }
	t, err := time.ParseInLocation(time.DateTime, get("交易时间"), chinaTime)
	if err != nil {
		return BillRow{}, fmt.Errorf("time %q", get("交易时间"))
	}
	row := BillRow{Time: t, DeviceInfo: get("设备号"), TransactionID: get("微信订单号"), OutTradeNo: get("商户订单号"),
		State: get("交易状态"), RefundID: get("微信退款单号"), OutRefundNo: get("商户退款单号")}
	if row.Fee, err = billCents(get("应结订单金额")); err != nil {
		return BillRow{}, err
	}
	if row.RefundFee, err = billCents(get("退款金额")); err != nil {
		return BillRow{}, err
	}
	switch {
	case row.OutTradeNo == "":
		return BillRow{}, errors.New("no out_trade_no")
	case row.State == BillSuccess || row.State == BillRevoked:
		if row.Fee <= 0 {
			return BillRow{}, fmt.Errorf("%s with amount %d", row.State, row.Fee)
		}
	case row.State == BillRefund:
		if row.RefundFee <= 0 || row.OutRefundNo == "" {
			return BillRow{}, errors.New("REFUND without amount or out_refund_no")
		}
	default:
		return BillRow{}, fmt.Errorf("state %q", row.State)
	}
	return row, nil
}

// maxBillCents bounds one amount and the totals: ¥10^13.
const maxBillCents = 1_000_000_000_000_000

// billCents parses a yuan amount with exactly two decimals, as bills
// write them ("12.50", "0.00").
func billCents(s string) (int64, error) {
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 || whole == "" || len(whole) > 13 {
		return 0, fmt.Errorf("amount %q", s)
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("amount %q", s)
		}
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f, nil
}
