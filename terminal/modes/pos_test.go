package modes

import (
	"context"
	"reflect"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/terminal/device"
	"campuspay/terminal/journal"
)

// posAwait brings a pos machine online with 12.50 keyed.
func posAwait(t *testing.T) *harness {
	h := newHarness(t, protocol.ModePOS, nil)
	h.step(up(), StateIdle, "S Idle")
	h.step(key('1'), StateAmount, "S Amount 100")
	h.step(key('2'), StateAmount, "S Amount 1200")
	h.step(key('.'), StateAmount, "S Amount 1200")
	h.step(key('5'), StateAmount, "S Amount 1250")
	h.step(key('5'), StateAmount, "S Amount 1255")
	h.step(key(device.KeyBackspace), StateAmount, "S Amount 1250")
	h.step(key(device.KeyEnter), StateAwait, "S Await 1250")
	return h
}

func TestPOSApproved(t *testing.T) {
	h := posAwait(t)
	h.link.script(approved(protocol.ChannelBalance))
	h.step(scan(h.payCode(protocol.PurposePay)), StateResult,
		"J Created", "J Sent", "S Working 1250", "R pay 1250 code", "J Approved", "S Result ok=true 1250 | 余额支付")
	h.advance(4 * time.Second)
	h.step(tick(), StateResult)
	h.advance(time.Second)
	h.step(tick(), StateIdle, "S Idle")
	e := h.entries()
	if len(e) != 1 || e[0].Seq != 1 || e[0].Kind != protocol.EntryPayment || e[0].Status != protocol.StatusApproved ||
		e[0].Amount != 1250 || e[0].Channel != protocol.ChannelBalance || e[0].CredKind != protocol.CredCode {
		t.Fatalf("entries %+v", e)
	}
	if h.link.kicks == 0 {
		t.Fatal("the upload pump was not kicked")
	}
}

func TestPOSDeclinedShowsReasonAsIs(t *testing.T) {
	h := posAwait(t)
	h.link.script(declined(protocol.ErrInsufficientFunds))
	h.step(scan(h.payCode(protocol.PurposePay)), StateResult,
		"J Created", "J Sent", "S Working 1250", "R pay 1250 code", "J Declined", "S Result ok=false 1250 | 余额和银行卡余额均不足")
	h.advance(5 * time.Second)
	h.step(tick(), StateAwait, "S Await 1250") // the amount stays: pay another way
	h.link.script(approved(protocol.ChannelBankCard))
	h.step(tap("04A1"), StateResult,
		"J Created", "J Sent", "S Working 1250", "R pay 1250 card", "J Approved", "S Result ok=true 1250 | 银行卡支付")
}

func TestPOSLocalRefusals(t *testing.T) {
	h := posAwait(t)
	code := h.payCode(protocol.PurposePay)
	tests := []struct {
		ev   any
		want string
	}{
		{scan(h.payCode(protocol.PurposeIdentity)), "S Await 1250 | 这是身份码，不能用于支付，请出示付款码"},
		{scan("281234567890123456"), "S Await 1250 | 暂不支持该付款方式（支付宝、银联）"},
		{scan("hello"), "S Await 1250 | 无法识别的二维码"},
		{tap("dead"), "S Await 1250 | 该卡已挂失"},
	}
	for _, tc := range tests {
		h.step(tc.ev, StateAwait, tc.want)
	}
	h.link.script(declined(protocol.ErrLimitPerTx))
	h.step(scan(code), StateResult, "J Created", "J Sent", "S Working 1250", "R pay 1250 code", "J Declined",
		"S Result ok=false 1250 | 超出单笔支付限额")
	h.advance(5 * time.Second)
	h.step(tick(), StateAwait, "S Await 1250")
	// The same code again (a screenshot) is refused without a request.
	h.step(scan(code), StateAwait, "S Await 1250 | 付款码已使用，请刷新后重试")
	h.step(key(device.KeyCancel), StateIdle, "S Idle")
	if n := len(h.link.requests()); n != 1 {
		t.Fatalf("%d requests", n)
	}
}

func TestPOSAmountKeys(t *testing.T) {
	h := newHarness(t, protocol.ModePOS, nil)
	h.online()
	h.step(key('0'), StateAmount, "S Amount 0")
	h.step(key('0'), StateAmount) // no leading zeros
	h.step(key(device.KeyEnter), StateAmount, "S Amount 0 | 金额无效")
	h.step(key('.'), StateAmount, "S Amount 0")
	h.step(key('0'), StateAmount, "S Amount 0")
	h.step(key('5'), StateAmount, "S Amount 5")
	h.step(key('1'), StateAmount) // two decimals at most
	h.step(key(device.KeyEnter), StateAwait, "S Await 5")
	h.step(key('9'), StateAwait)                                // set: Backspace to change
	h.step(key(device.KeyBackspace), StateAmount, "S Amount 5") // back to editing
	h.step(key(device.KeyCancel), StateIdle, "S Idle")          // cancel before authorisation
	h.step(scan(h.payCode(protocol.PurposePay)), StateIdle)     // no amount: scan ignored
	h.step(key(device.KeyBackspace), StateIdle, "S Idle")
}

func TestPOSInDoubtReversedBeforeAnythingElse(t *testing.T) {
	h := posAwait(t)
	h.link.script(noResponse(), noResponse())
	h.step(scan(h.payCode(protocol.PurposePay)), StateReversing,
		"J Created", "J Sent", "S Working 1250", "R pay 1250 code", "J InDoubt",
		"S Working 1250 | 请稍候", "J Reversing", "R reverse")
	// Nothing else is offered meanwhile: no scan, no keys, no static QR.
	h.step(scan(h.payCode(protocol.PurposePay)), StateReversing)
	h.step(tap("04A1"), StateReversing)
	h.step(key('5'), StateReversing)
	h.step(down(), StateReversing, "S Working 1250 | 请稍候")
	h.advance(5 * time.Second)
	h.link.script(linkDown())
	h.step(tick(), StateReversing, "R reverse")
	h.link.script(status(protocol.StatusReversed))
	h.step(up(), StateResult, "S Working 1250 | 请稍候", "R reverse", "J Reversed", "S Result ok=false 1250 | 交易超时，已撤销")
	h.advance(5 * time.Second)
	h.step(tick(), StateIdle, "S Idle")
	e := h.entries()
	if len(e) != 1 || e[0].Kind != protocol.EntryReversal || e[0].Status != protocol.StatusReversed || e[0].Amount != 1250 {
		t.Fatalf("entries %+v", e)
	}
	r := h.link.requests()
	for _, q := range r[1:] {
		if q.Tx != r[0].Tx {
			t.Fatalf("reversal of another tx: %s vs %s", q.Tx, r[0].Tx)
		}
	}
}

func TestPOSWeChatUserPaying(t *testing.T) {
	h := posAwait(t)
	h.link.script(status(protocol.StatusPending))
	h.step(scan("134567890123456789"), StateUserPaying,
		"J Created", "J Sent", "S Working 1250", "R pay 1250 wechat", "J Pending", "S Working 1250 | 请在手机上输入密码")
	if w := h.m.Wake(); !w.Equal(h.now.Add(DefaultPollInterval)) {
		t.Fatalf("wake %v", w)
	}
	h.advance(time.Second)
	h.step(tick(), StateUserPaying)
	h.advance(time.Second)
	h.link.script(status(protocol.StatusPending))
	h.step(tick(), StateUserPaying, "R query")
	h.advance(2 * time.Second)
	h.link.script(noResponse()) // a lost query changes nothing
	h.step(tick(), StateUserPaying, "R query")
	h.advance(2 * time.Second)
	h.link.script(approved(protocol.ChannelWeChat))
	h.step(tick(), StateResult, "R query", "J Approved", "S Result ok=true 1250 | 微信支付")
}

func TestPOSWeChatDeadlineAndCancel(t *testing.T) {
	h := posAwait(t)
	h.link.script(status(protocol.StatusPending))
	h.step(scan("134567890123456789"), StateUserPaying,
		"J Created", "J Sent", "S Working 1250", "R pay 1250 wechat", "J Pending", "S Working 1250 | 请在手机上输入密码")
	h.advance(DefaultPayingTimeout)
	h.link.script(status(protocol.StatusReversed))
	h.step(tick(), StateResult, "S Working 1250 | 请稍候", "J Reversing", "R reverse", "J Reversed",
		"S Result ok=false 1250 | 交易超时，已撤销")

	h.advance(5 * time.Second)
	h.step(tick(), StateIdle, "S Idle")
	h.keys("3\n")
	h.link.script(status(protocol.StatusPending))
	h.step(scan("134567890123456780"), StateUserPaying,
		"J Created", "J Sent", "S Working 300", "R pay 300 wechat", "J Pending", "S Working 300 | 请在手机上输入密码")
	h.link.script(status(protocol.StatusReversed))
	h.step(key(device.KeyCancel), StateResult, "S Working 300 | 请稍候", "J Reversing", "R reverse", "J Reversed",
		"S Result ok=false 300 | 交易已取消")
}

func TestOfflineStaticQRAndNotices(t *testing.T) {
	h := newHarness(t, protocol.ModePOS, nil)
	h.online()
	h.keys("8")
	h.step(down(), StateAmount, "S Offline 800 | 网络中断，请使用扫码支付")
	h.step(key('.'), StateAmount, "S Offline 800 | 网络中断，请使用扫码支付")
	h.step(key(device.KeyEnter), StateAwait, "S Offline 800 | 网络中断，请使用扫码支付")
	if s, _ := h.disp.Last(); s.QR != "CM1:STATICQR" || s.Online {
		t.Fatalf("offline screen %+v", s)
	}
	h.step(scan(h.payCode(protocol.PurposePay)), StateAwait) // not scanning offline
	h.step(tap("04A1"), StateAwait, "S Offline 800 | 网络中断，请使用扫码支付")
	h.step(up(), StateAwait, "S Await 800")
	p := []protocol.StaticQRPayment{
		{Tx: "01JDZ3ZQ0000000000000000A1", Seq: 4, Amount: 800, User: "张*", At: t0},
		{Tx: "01JDZ3ZQ0000000000000000A2", Seq: 5, Amount: 1200, User: "李*", At: t0},
	}
	n := &protocol.Notice{V: 1, Terminal: "T1", Payments: p, Cursor: 5}
	h.step(NoticeEvent{n}, StateNotices, "S Notices 2 | 按确认键继续")
	h.step(key(device.KeyEnter), StateAwait, "S Await 800")
	h.step(NoticeEvent{n}, StateAwait) // each recorded once
	if c, _ := h.j.NoticeCursor(context.Background()); c != 5 {
		t.Fatalf("cursor %d", c)
	}
	if e := h.entries(); len(e) != 2 || e[0].Kind != protocol.EntryNotice || e[1].Amount != 1200 {
		t.Fatalf("entries %+v", e)
	}
}

// Issue 13 (12b): two students paying the same amount in the same
// minute, or one student paying twice, must make lines the cashier can
// tell apart: the time to the second and the transaction's last digits.
func TestNoticeLinesTellPaymentsApart(t *testing.T) {
	h := newHarness(t, protocol.ModePOS, nil)
	h.online()
	p := []protocol.StaticQRPayment{
		{Tx: "01JDZ3ZQ0000000000000007K1", Seq: 1, Amount: 800, User: "张*", At: t0},
		{Tx: "01JDZ3ZQ0000000000000009M2", Seq: 2, Amount: 800, User: "张*", At: t0.Add(20 * time.Second)},
	}
	h.step(NoticeEvent{&protocol.Notice{V: 1, Terminal: "T1", Payments: p, Cursor: 2}}, StateNotices, "S Notices 2 | 按确认键继续")
	s, _ := h.disp.Last()
	want := []string{
		t0.Local().Format("01-02 15:04:05") + "  ¥8.00  张*  #07K1",
		t0.Add(20*time.Second).Local().Format("01-02 15:04:05") + "  ¥8.00  张*  #09M2",
	}
	if !reflect.DeepEqual(s.Lines, want) {
		t.Fatalf("lines %q, want %q", s.Lines, want)
	}
}

func TestCardFixedAmount(t *testing.T) {
	h := newHarness(t, protocol.ModeCard, func(c *protocol.Config) { c.FixedAmount = 300 })
	h.step(up(), StateAwait, "S Await 300")
	h.step(key('5'), StateAwait) // nothing to key
	h.link.script(approved(protocol.ChannelBalance))
	h.step(tap("04a1b2"), StateResult, "J Created", "J Sent", "S Working 300", "R pay 300 card", "J Approved",
		"S Result ok=true 300 | 余额支付")
	if r := h.link.requests(); r[0].Cred.Text != "04A1B2" {
		t.Fatalf("uid %q", r[0].Cred.Text)
	}
	h.step(tap("DEAD"), StateAwait, "S Await 300 | 该卡已挂失")
	h.link.script(declined(protocol.ErrPasswordFreeMissing))
	h.step(tap("04A1B3"), StateResult, "J Created", "J Sent", "S Working 300", "R pay 300 card", "J Declined",
		"S Result ok=false 300 | 您的电子钱包尚未开通免密支付")
	h.step(scan("134567890123456789"), StateResult) // a card box does not scan
}

func TestCardKeyedAmount(t *testing.T) {
	h := newHarness(t, protocol.ModeCard, nil)
	h.step(up(), StateIdle, "S Idle")
	h.keys("2")
	h.step(key(device.KeyEnter), StateAwait, "S Await 200")
	if s, _ := h.disp.Last(); s.Title != "请刷卡" {
		t.Fatalf("title %q", s.Title)
	}
	h.link.script(approved(protocol.ChannelBalance))
	h.step(tap("04A1"), StateResult, "J Created", "J Sent", "S Working 200", "R pay 200 card", "J Approved",
		"S Result ok=true 200 | 余额支付")
}

func TestJournalFailureFaults(t *testing.T) {
	h := posAwait(t)
	h.j.Close()
	if err := h.m.Handle(context.Background(), scan(h.payCode(protocol.PurposePay))); err == nil {
		t.Fatal("no error with a closed journal")
	}
	if h.m.State() != StateFault || len(h.link.requests()) != 0 {
		t.Fatalf("state %v, %d requests", h.m.State(), len(h.link.requests()))
	}
	_ = journal.StateCreated
}

// TestPOSInternalDeclineIsInDoubt: a "declined" with code INTERNAL means
// the authorizer failed part-way and may have taken the money: the box
// reverses it before the student pays another way.
func TestPOSInternalDeclineIsInDoubt(t *testing.T) {
	h := posAwait(t)
	h.link.script(declined(protocol.ErrInternal), status(protocol.StatusReversed))
	h.step(scan(h.payCode(protocol.PurposePay)), StateResult,
		"J Created", "J Sent", "S Working 1250", "R pay 1250 code", "J InDoubt",
		"S Working 1250 | 请稍候", "J Reversing", "R reverse", "J Reversed", "S Result ok=false 1250 | 交易超时，已撤销")
}

// TestPOSConfigRepublishKeepsKeyedAmount: the authorizer republishes the
// retained config on every reconnection; a sale the cashier has keyed must
// survive it (it used to be wiped back to idle).
func TestPOSConfigRepublishKeepsKeyedAmount(t *testing.T) {
	h := posAwait(t)
	again := *h.cfg
	h.step(ConfigEvent{&again}, StateAwait)
	h.link.script(approved(protocol.ChannelBalance))
	h.step(scan(h.payCode(protocol.PurposePay)), StateResult,
		"J Created", "J Sent", "S Working 1250", "R pay 1250 code", "J Approved", "S Result ok=true 1250 | 余额支付")
}
