package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzMarshalResponse: MarshalResponse writes exactly what json.Marshal
// writes, for any response.
func FuzzMarshalResponse(f *testing.F) {
	f.Add(1, "pay", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "T1", "approved", "", "", "", int64(100), "balance", int64(0), true, int64(4900), "张*", int64(1788237000123456789), 8*3600)
	f.Add(1, "pay", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "T1", "declined", "LIMIT_DAILY", "超过每日限额", "Daily limit <reached> & \"more\"", int64(0), "", int64(0), false, int64(0), "", int64(0), 0)
	f.Add(0, "hold", "x\u2028y", "T\x01", "held", "", "\xff", "a\\b", int64(-5), "", int64(1500), true, int64(0), "\ufffd", int64(-62135596800000000), -3600)
	f.Add(1, "", "", "", "", "", "", "", int64(0), "", int64(0), false, int64(0), "", int64(253402300800000000), 59)
	f.Fuzz(func(t *testing.T, v int, op, tx, terminal, status, code, zh, en string, amount int64, channel string, hold int64, hasBalance bool, balance int64, user string, unixNano int64, offset int) {
		r := &Response{V: v, Op: Op(op), Tx: TxID(tx), Terminal: terminal, Status: Status(status), Code: code,
			MessageZH: zh, MessageEN: en, Amount: amount, Channel: channel, Hold: hold, User: user,
			ServerTime: time.Unix(0, unixNano).In(time.FixedZone("", offset))}
		if hasBalance {
			r.Balance = &balance
		}
		want, werr := json.Marshal(r)
		got, gerr := MarshalResponse(r)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("json.Marshal error %v, MarshalResponse error %v", werr, gerr)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("MarshalResponse\n%s\njson.Marshal\n%s", got, want)
		}
	})
}

// The fast path writes the responses a payment gets; otherwise it would
// never run.
func TestMarshalResponseFast(t *testing.T) {
	bal := int64(4900)
	at := time.Date(2026, 9, 1, 12, 30, 0, 5, time.FixedZone("CST", 8*3600))
	for _, r := range []*Response{
		{V: 1, Op: OpPay, Tx: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Terminal: "T-01", Status: StatusApproved, Amount: 100, Channel: ChannelBalance, Balance: &bal, User: "张*", ServerTime: at},
		{V: 1, Op: OpPay, Tx: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Terminal: "T-01", Status: StatusDeclined, Code: "LIMIT_DAILY", MessageZH: "超过每日限额", MessageEN: "Daily limit reached", ServerTime: at},
	} {
		if _, ok := appendResponse(nil, r); !ok {
			t.Errorf("fast path refused %+v", r)
		}
	}
}

// BenchmarkMarshalResponse: an approved payment's response through
// json.Marshal and MarshalResponse, in the same run.
func BenchmarkMarshalResponse(b *testing.B) {
	bal := int64(4900)
	r := &Response{V: 1, Op: OpPay, Tx: "01ARZ3NDEKTSV4RRFFQ69G5FAV", Terminal: "T-01", Status: StatusApproved, Amount: 100,
		Channel: ChannelBalance, Balance: &bal, User: "张*", ServerTime: time.Date(2026, 9, 1, 12, 30, 0, 5, time.UTC)}
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MarshalResponse", func(b *testing.B) {
		for b.Loop() {
			if _, err := MarshalResponse(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
