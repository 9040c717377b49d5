package protocol

// Label is how the transaction details name a channel, a status or a kind
// of record, in Chinese and English. The web wallet gets the table through
// its WebAssembly build and the CSV export reads it here, so the page and
// the server name every line alike.
type Label struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

// labels is keyed "channel:<channel>", "status:<status>",
// "kind:<record kind>" (the kinds of the wallet's records) and
// "flag:<flag>" (the flags of a settled offline payment).
var labels = map[string]Label{
	"channel:" + ChannelBalance:  {"余额", "Balance"},
	"channel:" + ChannelBankCard: {"银行卡", "Bank card"},
	"channel:" + ChannelWeChat:   {"微信", "WeChat"},
	"channel:debt":               {"欠款", "Debt"}, // an offline payment nothing covered

	"status:" + string(StatusApproved): {"成功", "Approved"},
	"status:" + string(StatusDeclined): {"失败", "Declined"},
	"status:" + string(StatusPending):  {"处理中", "Pending"},
	"status:processing":                {"处理中", "Processing"},
	"status:reversing":                 {"退款中", "Refunding"},
	"status:" + string(StatusReversed): {"已撤销并退款", "Reversed and refunded"},
	"status:" + string(StatusHeld):     {"已冻结", "Held"},
	"status:" + string(StatusVoided):   {"已释放", "Released"},
	"status:" + string(StatusUnknown):  {"未知", "Unknown"},

	"kind:payment":  {"消费", "Payment"},
	"kind:shower":   {"淋浴", "Shower"},
	"kind:scan_pay": {"扫码支付", "Scan-to-pay"},
	"kind:top_up":   {"充值", "Top-up"},
	"kind:withdraw": {"提现", "Withdrawal"},
	"kind:offline":  {"离线消费", "Offline payment"},
	"kind:refund":   {"退款", "Refund"},
	// An offline debt repaid from the balance (after a top-up, or asked for).
	"kind:debt_repay": {"偿还欠款", "Debt repaid"},

	// Flags settlement puts on an offline payment (wallet.OfflineFlags).
	"flag:after_revoke":  {"设备吊销后使用", "Used after the phone was revoked"},
	"flag:code_replayed": {"付款码重复使用", "Payment code used twice"},
}

// LabelOf returns the label of key ("channel:balance", "status:reversed",
// "kind:shower"); an unknown key labels itself in both languages.
func LabelOf(key string) Label {
	if l, ok := labels[key]; ok {
		return l
	}
	return Label{key, key}
}

// Labels returns a copy of the whole table.
func Labels() map[string]Label {
	out := make(map[string]Label, len(labels))
	for k, l := range labels {
		out[k] = l
	}
	return out
}
