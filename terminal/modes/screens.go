package modes

import (
	"strings"

	"campuspay/protocol"
	"campuspay/terminal/device"
)

// render shows the screen of the current (non-transient) state.
func (m *Machine) render() {
	s, ok := m.screen()
	if ok {
		m.show(s)
	}
}

func (m *Machine) screen() (device.Screen, bool) {
	var s device.Screen
	if m.prompt != nil {
		s.Message, s.MessageEN = m.prompt.ZH, m.prompt.EN
	}
	pay := m.o.Mode != protocol.ModeShower
	switch {
	case len(m.reversal) > 0 && m.state == StateReversing:
		return device.Screen{Kind: device.ScreenWorking, Title: "正在撤销交易，请勿重复支付", TitleEN: "Reversing the transaction; do not pay again",
			Message: "请稍候", MessageEN: "Please wait", Amount: m.amountShown()}, true
	case !m.online && pay && (m.state == StateIdle || m.state == StateAmount || m.state == StateAwait):
		s.Kind, s.Title, s.TitleEN, s.Amount = device.ScreenOffline, "网络中断，请扫码支付", "Offline: scan this code with the campus app", m.amountShown()
		if m.cfg != nil && m.cfg.Offline != nil && m.o.Mode == protocol.ModePOS && m.o.Devices.Scanner != nil {
			s.Title, s.TitleEN = "网络中断：请出示离线付款码，或扫码支付", "Offline: show an offline payment code, or scan this code with the campus app"
		}
		if m.cfg != nil {
			s.QR = m.cfg.MerchantQR
		}
		if m.prompt == nil {
			s.Message, s.MessageEN = protocol.ErrOffline.ZH, protocol.ErrOffline.EN
		}
		if m.state == StateAmount {
			s.Input = m.input
		}
		return s, true
	case !m.online && (m.state == StateIdle || m.state == StatePassword):
		return device.Screen{Kind: device.ScreenIdle, Title: "网络中断，淋浴暂停服务", TitleEN: "Offline: showers are unavailable"}, true
	}
	switch m.state {
	case StateIdle:
		if m.o.Mode == protocol.ModeShower {
			s.Kind, s.Title, s.TitleEN, s.Input = device.ScreenInput, "请输入账号，按功能键输入密码；或刷卡", "Enter your account number, then Func; or tap your card", m.input
		} else {
			s.Kind, s.Title, s.TitleEN = device.ScreenIdle, "欢迎使用校园一卡通", "Welcome"
		}
	case StateAmount:
		s.Kind, s.Title, s.TitleEN, s.Input, s.Amount = device.ScreenAmount, "请输入金额", "Enter the amount", m.input, m.amount
	case StateAwait:
		s.Kind, s.Amount = device.ScreenAwait, m.amount
		if m.o.Mode == protocol.ModePOS && m.o.Devices.Scanner != nil {
			s.Title, s.TitleEN = "请出示付款码或刷卡", "Show your payment code or tap your card"
		} else {
			s.Title, s.TitleEN = "请刷卡", "Tap your card"
		}
		if m.cfg == nil && m.prompt == nil {
			s.Message, s.MessageEN = "终端未收到配置，请稍候", "Waiting for the terminal's configuration"
		}
	case StateUserPaying:
		s.Kind, s.Title, s.TitleEN, s.Amount = device.ScreenWorking, "等待用户确认", "Waiting for the customer", m.amountShown()
		s.Message, s.MessageEN = protocol.ErrUserPaying.ZH, protocol.ErrUserPaying.EN
	case StateNotices:
		s.Kind, s.Title, s.TitleEN, s.Lines = device.ScreenNotices, "离线期间的扫码支付", "Paid by scan while offline", m.lines
		s.Message, s.MessageEN = "按确认键继续", "Press Enter to continue"
	case StatePassword:
		s.Kind, s.Title, s.TitleEN, s.Input = device.ScreenInput, "请输入用水密码，按确认开始", "Enter your water password, then Enter", strings.Repeat("*", len(m.secret))
	case StateShowering:
		t := m.cur
		s.Kind, s.Title, s.TitleEN = device.ScreenShower, "正在用水，按结束键停止", "Shower running: press Stop to finish"
		s.Litres, s.Amount, s.Hold = float64(t.ML)/1000, t.Cost, t.Hold
	default:
		return s, false
	}
	return s, true
}

func (m *Machine) amountShown() int64 {
	if m.cur != nil {
		return m.cur.Amount
	}
	return m.amount
}
