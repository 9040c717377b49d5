package protocol

import (
	"errors"
	"sort"
)

// Reason is a user-facing failure: a stable code (never renamed: terminals,
// the app and logs match on it) with the Chinese and English messages that
// terminals and the app show as-is. Reasons are error values; compare with
// errors.Is.
type Reason struct {
	Code string `json:"code"`
	ZH   string `json:"message_zh"`
	EN   string `json:"message_en"`
}

func (r *Reason) Error() string { return r.Code + ": " + r.EN }

var reasons = map[string]*Reason{}

func reason(code, zh, en string) *Reason {
	if _, dup := reasons[code]; dup {
		panic("protocol: duplicate reason code " + code)
	}
	r := &Reason{Code: code, ZH: zh, EN: en}
	reasons[code] = r
	return r
}

// ReasonByCode returns the reason with that code, or nil.
func ReasonByCode(code string) *Reason { return reasons[code] }

// Reasons returns every reason, sorted by code.
func Reasons() []*Reason {
	out := make([]*Reason, 0, len(reasons))
	for _, r := range reasons {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// AsReason finds the Reason in err's chain; any other error becomes
// ErrInternal so that a user never sees an internal message.
func AsReason(err error) *Reason {
	if err == nil {
		return nil
	}
	var r *Reason
	if errors.As(err, &r) {
		return r
	}
	return ErrInternal
}

// Wallet state (DESIGN §2 rules 1–4).
var (
	ErrWalletNotActive     = reason("WALLET_NOT_ACTIVE", "电子钱包未开通，请先绑定银行卡", "The e-wallet is not activated; bind a bank card first")
	ErrWalletCancelled     = reason("WALLET_CANCELLED", "电子钱包已注销", "The e-wallet has been cancelled")
	ErrWalletActive        = reason("WALLET_ALREADY_ACTIVE", "电子钱包已开通", "The e-wallet is already activated")
	ErrReopenLimit         = reason("REOPEN_LIMIT_REACHED", "重新开通次数已达上限（3次）", "The wallet can be re-opened at most 3 times")
	ErrUnbindLimit         = reason("UNBIND_LIMIT_REACHED", "解绑次数已达上限（3次）", "A bank card can be unbound at most 3 times")
	ErrHoldsPending        = reason("HOLDS_PENDING", "有未完成的预授权（如淋浴），暂不能注销", "Pending holds (e.g. a shower) must finish before cancelling")
	ErrNoBankCard          = reason("NO_BANK_CARD", "未绑定银行卡", "No bank card is bound")
	ErrCardAlreadyBound    = reason("BANK_CARD_ALREADY_BOUND", "已绑定银行卡，请先解绑", "A bank card is already bound; unbind it first")
	ErrPasswordFreeMissing = reason("PASSWORD_FREE_NOT_SIGNED", "您的电子钱包尚未开通免密支付", "Password-free payment is not signed for this e-wallet")
	ErrPasswordFreeSigned  = reason("PASSWORD_FREE_ALREADY_SIGNED", "已开通免密支付", "Password-free payment is already signed")
)

// Bank binding (rule 1).
var (
	ErrBankNameMismatch  = reason("BANK_NAME_MISMATCH", "姓名信息与银行预留信息不一致", "The holder name does not match the bank's records")
	ErrBankIDMismatch    = reason("BANK_ID_NUMBER_MISMATCH", "身份证号信息与银行预留信息不一致", "The ID number does not match the bank's records")
	ErrBankPhoneMismatch = reason("BANK_PHONE_MISMATCH", "手机号信息与银行预留信息不一致", "The phone number does not match the bank's records")
	ErrBankUnsupported   = reason("BANK_NOT_SUPPORTED", "暂不支持该银行的银行卡", "Cards of this bank are not supported")
	ErrBankUnknownCard   = reason("BANK_CARD_UNKNOWN", "银行卡号不存在", "The bank does not know this card number")
	ErrBankDeclined      = reason("BANK_DECLINED", "银行拒绝了此交易", "The bank declined the transaction")
	ErrBankUnavailable   = reason("BANK_UNAVAILABLE", "银行系统暂时不可用，请稍后再试", "The bank is unavailable; try again later")
)

// Funding and limits (rules 5, 6, 9).
var (
	ErrInsufficientFunds = reason("INSUFFICIENT_FUNDS", "余额和银行卡余额均不足", "Neither the balance nor the bank card covers the amount")
	ErrBalanceLow        = reason("BALANCE_INSUFFICIENT", "电子钱包余额不足", "The e-wallet balance is insufficient")
	ErrLimitPerTx        = reason("LIMIT_PER_TRANSACTION", "超出单笔支付限额", "The amount exceeds your per-transaction limit")
	ErrLimitDaily        = reason("LIMIT_DAILY", "超出每日累计支付限额", "The amount exceeds your daily limit")
	ErrAmountInvalid     = reason("AMOUNT_INVALID", "金额无效", "The amount is not valid")
)

// Showers (rule 7).
var (
	ErrShowerNotEnabled    = reason("SHOWER_NOT_ENABLED", "本校区未开通淋浴服务", "Showers are not enabled on this campus")
	ErrShowerBalanceLow    = reason("SHOWER_BALANCE_LOW", "余额不足15元，无法使用淋浴", "A balance of at least ¥15.00 is needed to shower")
	ErrWaterPasswordWrong  = reason("WATER_PASSWORD_WRONG", "账号或用水密码错误", "Wrong account number or water password")
	ErrWaterPasswordUnset  = reason("WATER_PASSWORD_NOT_SET", "未设置用水密码，请在App中设置", "No water password is set; set one in the app")
	ErrWaterPasswordLocked = reason("WATER_PASSWORD_LOCKED", "用水密码错误次数过多，请稍后再试", "Too many wrong water passwords; try again later")
	ErrHoldUnknown         = reason("HOLD_UNKNOWN", "预授权不存在", "No such hold")
)

// Codes (rule 8, DESIGN §3). Each verification failure is its own value.
var (
	ErrCodeMalformed     = reason("CODE_MALFORMED", "无法识别的付款码", "The code cannot be read")
	ErrCodeBadCertSig    = reason("CODE_CERT_INVALID", "付款码证书无效", "The code's certificate is not valid")
	ErrCodeCertExpired   = reason("CODE_CERT_EXPIRED", "付款码证书已过期，请在App中刷新", "The code's certificate has expired; refresh it in the app")
	ErrCodeBadSig        = reason("CODE_SIGNATURE_INVALID", "付款码签名无效", "The code's signature is not valid")
	ErrCodeExpired       = reason("CODE_EXPIRED", "付款码已过期，请刷新", "The payment code has expired; refresh it")
	ErrCodeNotYetValid   = reason("CODE_NOT_YET_VALID", "付款码时间异常，请校准手机时间", "The code's time is in the future; check the phone's clock")
	ErrCodeWrongPurpose  = reason("CODE_WRONG_PURPOSE", "该码不能用于此用途", "This code cannot be used for this purpose")
	ErrIdentityCode      = reason("IDENTITY_CODE_NOT_PAYABLE", "这是身份码，不能用于支付，请出示付款码", "This is an identity code and cannot pay; show the payment code")
	ErrCodeUsed          = reason("CODE_ALREADY_USED", "付款码已使用，请刷新后重试", "This payment code was already used; refresh it")
	ErrCodeUnknownIssuer = reason("CODE_UNKNOWN_ISSUER", "付款码签发者未知", "The code's issuer key is unknown")
	ErrDeviceRevoked     = reason("DEVICE_REVOKED", "该手机已挂失或解绑，付款码无效", "This phone was reported lost or removed; its codes are refused")
	ErrCardLost          = reason("CARD_LOST", "该卡已挂失", "This card has been reported lost")
	ErrCardUnknown       = reason("CARD_UNKNOWN", "未登记的卡", "This card is not registered")
	ErrUnsupportedCode   = reason("CODE_UNSUPPORTED", "暂不支持该付款方式（支付宝、银联）", "This payment method (Alipay, UnionPay) is not supported")
	ErrUnknownCode       = reason("CODE_UNKNOWN", "无法识别的二维码", "The code is not recognised")
	ErrMerchantQRInvalid = reason("MERCHANT_QR_INVALID", "商户收款码无效", "The merchant QR code is not valid")
)

// WeChat (rule 10).
var (
	ErrWeChatNotLinked   = reason("WECHAT_NOT_LINKED", "请先在校园微信小程序完成认证", "Authenticate in the campus WeChat mini-program first")
	ErrWeChatNeedsWallet = reason("WECHAT_LINK_NEEDS_WALLET", "请先开通电子钱包再进行微信认证", "Activate the e-wallet before WeChat authentication")
	ErrWeChatDeclined    = reason("WECHAT_DECLINED", "微信支付失败", "WeChat Pay declined the payment")
	ErrWeChatCodeInvalid = reason("WECHAT_CODE_INVALID", "微信付款码无效或已过期", "The WeChat payment code is invalid or expired")
	ErrWeChatUnavailable = reason("WECHAT_UNAVAILABLE", "微信支付暂时不可用", "WeChat Pay is unavailable")
	ErrUserPaying        = reason("USER_PAYING", "请在手机上输入密码", "Enter your password on the phone")
)

// Passwords (rule 13) and the app.
var (
	ErrPaymentPasswordWrong  = reason("PAYMENT_PASSWORD_WRONG", "支付密码错误", "Wrong payment password")
	ErrPaymentPasswordLocked = reason("PAYMENT_PASSWORD_LOCKED", "支付密码错误次数过多，已锁定，请稍后再试", "Too many wrong payment passwords; locked for a while")
	ErrPaymentPasswordUnset  = reason("PAYMENT_PASSWORD_NOT_SET", "未设置支付密码", "No payment password is set")
	ErrPasswordWeak          = reason("PASSWORD_INVALID", "密码须为6位数字", "The password must be 6 digits")
	ErrLoginFailed           = reason("LOGIN_FAILED", "学号或密码错误", "Wrong student number or password")
	ErrUnauthorized          = reason("UNAUTHORIZED", "请先登录", "Please log in")
	ErrIDNumberInvalid       = reason("ID_NUMBER_INVALID", "身份证号码格式不正确", "The ID card number is not valid")
	ErrPhoneInvalid          = reason("PHONE_INVALID", "手机号码格式不正确", "The mobile number is not valid")
	ErrCardNumberInvalid     = reason("CARD_NUMBER_INVALID", "银行卡号不正确", "The bank card number is not valid")
	ErrBadRequest            = reason("BAD_REQUEST", "请求格式不正确", "The request is not valid")
	ErrNotFound              = reason("NOT_FOUND", "记录不存在", "Not found")
	ErrUserUnknown           = reason("USER_UNKNOWN", "账号不存在", "No such account")
)

// Transactions and terminals (DESIGN §4, §5).
var (
	ErrTxReversed      = reason("TX_REVERSED", "交易已撤销", "The transaction was reversed")
	ErrTxUnknown       = reason("TX_UNKNOWN", "交易不存在", "No such transaction")
	ErrTxConflict      = reason("TX_ID_CONFLICT", "交易号重复", "The transaction ID was used for a different request")
	ErrTimeout         = reason("TIMEOUT", "交易超时，已撤销", "The transaction timed out and was reversed")
	ErrOffline         = reason("OFFLINE", "网络中断，请使用扫码支付", "Offline; pay by scanning the merchant QR code")
	ErrTerminalUnknown = reason("TERMINAL_UNKNOWN", "终端未登记", "The terminal is not registered")
	ErrMerchantUnknown = reason("MERCHANT_UNKNOWN", "商户不存在", "No such merchant")
	ErrCancelled       = reason("CANCELLED", "交易已取消", "The transaction was cancelled")
	ErrUnsupportedOp   = reason("UNSUPPORTED_OPERATION", "终端不支持该操作", "The terminal does not support this operation")
	ErrProtocolVersion = reason("PROTOCOL_VERSION", "协议版本不支持", "Unsupported protocol version")
	ErrInternal        = reason("INTERNAL", "系统繁忙，请稍后再试", "System busy; try again later")
)

// The app's login (added by the wallet service).
var (
	ErrLoginLocked = reason("LOGIN_LOCKED", "登录失败次数过多，请稍后再试", "Too many failed logins; try again later")
)

// Wallet review fixes (appended; codes are never renamed).
var (
	ErrTxInProgress     = reason("TX_IN_PROGRESS", "有处理中的交易，请稍后再注销", "A transaction is still being processed; try again later")
	ErrHolderNotStudent = reason("HOLDER_NOT_STUDENT", "持卡人须为本人", "The card holder must be the student")
)

// The money path under load (appended; codes are never renamed).
var (
	ErrBusy        = reason("BUSY", "系统繁忙，请重新支付", "The system is busy; please pay again")
	ErrDeadline    = reason("DEADLINE_PASSED", "请求已超时，未扣款，请重新支付", "The request arrived after the terminal's deadline; nothing was charged, please pay again")
	ErrRequestTime = reason("REQUEST_TIME_INVALID", "终端时间异常，未扣款，请稍后重试", "The terminal's clock is off; nothing was charged, try again shortly")
	// A terminal with more payments in hand than a till can have at once
	// (a fault or a forged flood) is refused before its requests cost
	// the others anything.
	ErrTerminalBurst = reason("TERMINAL_BUSY", "本终端同时请求过多，未扣款，请稍后重试", "Too many requests from this terminal at once; nothing was charged, try again shortly")
)

// Input and account hardening (issue 13; appended, codes are never renamed).
var (
	ErrDeviceKeyInvalid = reason("DEVICE_KEY_INVALID", "设备密钥无效，请重新安装或更新App", "The device key is not valid; reinstall or update the app")
	ErrBankCardLowFunds = reason("BANK_CARD_INSUFFICIENT", "银行卡余额不足", "The bank card's balance does not cover the amount")
	ErrLoginThrottled   = reason("LOGIN_THROTTLED", "登录尝试过于频繁，请稍后再试", "Too many login attempts; try again later")
	ErrRosterDuplicate  = reason("ROSTER_DUPLICATE", "文件中有重复的学号或卡号，所涉各行均未导入", "The student number or card appears on more than one line of the file; none of those lines was imported")
	ErrRosterColumns    = reason("ROSTER_COLUMNS", "列数不正确，应为8列", "Wrong number of columns; want 8")
	ErrRosterCampus     = reason("ROSTER_CAMPUS_UNKNOWN", "校区不存在", "No such campus")
	ErrRosterStudentNo  = reason("ROSTER_STUDENT_NO_INVALID", "学号格式不正确", "The student number is not valid")
	ErrRosterName       = reason("ROSTER_NAME_INVALID", "姓名不能为空且不超过64字节", "The name must be non-empty and at most 64 bytes")
	ErrRosterCardUID    = reason("ROSTER_CARD_UID_INVALID", "卡号格式不正确（4–20位十六进制）", "The card UID must be 4–20 hex digits")
	ErrRosterCardTaken  = reason("ROSTER_CARD_TAKEN", "该卡已登记给其他学生", "The card is registered to another student")
	ErrRosterPassword   = reason("ROSTER_PASSWORD_INVALID", "初始密码不能为空且不超过72字节", "The initial password must be non-empty and at most 72 bytes")
)

// The terminal's own refusals (appended; codes are never renamed).
var (
	ErrCardNotRemoved = reason("CARD_NOT_REMOVED", "卡片仍在读卡区：如需再次支付，请移开后重新刷卡", "The card is still on the reader: to pay again, take it off and tap again")
)

// The student's account and security (issue 15; appended, codes are never renamed).
var (
	ErrLimitsOrder        = reason("LIMITS_ORDER", "单笔限额不能高于日累计限额", "The per-payment limit cannot be above the daily limit")
	ErrLoginPasswordWrong = reason("LOGIN_PASSWORD_WRONG", "原登录密码错误", "The current login password is wrong")
	ErrLoginPasswordWeak  = reason("LOGIN_PASSWORD_WEAK", "登录密码须为8–64位，且同时包含字母和数字", "The login password must be 8–64 characters with both letters and digits")
	ErrOTPWrong           = reason("OTP_WRONG", "短信验证码错误", "The SMS verification code is wrong")
	ErrOTPExpired         = reason("OTP_EXPIRED", "短信验证码已过期，请重新获取", "The SMS verification code has expired; request a new one")
	ErrOTPUsed            = reason("OTP_USED", "短信验证码已使用，请重新获取", "The SMS verification code was already used; request a new one")
	ErrOTPLocked          = reason("OTP_LOCKED", "验证码错误次数过多，请重新获取", "Too many wrong codes; request a new one")
	ErrOTPTooSoon         = reason("OTP_TOO_SOON", "验证码已发送，请稍后再获取", "A code was just sent; wait a moment before requesting another")
	ErrCardNotLost        = reason("CARD_NOT_LOST", "该卡未挂失", "This card is not reported lost")
	ErrWeChatNotLinkedYet = reason("WECHAT_NOT_LINKED_YET", "尚未完成微信认证，无需解除", "WeChat is not linked; there is nothing to unlink")
	ErrFaceNotSupported   = reason("FACE_NOT_SUPPORTED", "刷脸支付暂未开通，请使用付款码或校园卡", "Face payment is not available yet; pay with the payment code or the campus card")
)

// Offline payment codes under a signed allowance (issue 17; appended,
// codes are never renamed).
var (
	ErrOfflineNotAllowed = reason("OFFLINE_NOT_ALLOWED", "网络中断：此付款码无离线额度，请扫码支付", "Offline: this code carries no offline allowance; pay by scanning the merchant QR code")
	ErrOfflineExpired    = reason("OFFLINE_ALLOWANCE_EXPIRED", "离线额度已过期，请联网后在App中刷新", "The offline allowance has expired; refresh it in the app when online")
	ErrOfflineExceeded   = reason("OFFLINE_ALLOWANCE_EXCEEDED", "超出本终端可用的离线额度", "The amount exceeds what is left of the offline allowance at this terminal")
	ErrOfflineVelocity   = reason("OFFLINE_VELOCITY", "离线支付过于频繁，请稍后再试", "Too many offline payments with this allowance here in the last hour")
	ErrOfflineRevoked    = reason("OFFLINE_ALLOWANCE_REVOKED", "该离线额度已关闭", "This offline allowance was turned off")
	ErrOfflineNoClock    = reason("OFFLINE_NO_CLOCK", "终端时间未校准，暂不能离线支付", "The terminal's clock is not set; offline payments are unavailable")
	ErrOfflineDisabled   = reason("OFFLINE_DISABLED", "本校区未开通离线支付", "Offline payments are not enabled")
	ErrOfflineDebt       = reason("OFFLINE_DEBT", "有未结清的离线支付欠款，请先还款", "An offline payment debt is outstanding; repay it first")
	ErrOfflineAmount     = reason("OFFLINE_AMOUNT_INVALID", "离线额度超出允许范围", "The allowance amount is outside the allowed range")
	ErrOfflineLimit      = reason("OFFLINE_ALLOWANCE_LIMIT", "离线额度申请过于频繁，请稍后再试", "Too many offline allowances in this period; try again later")
	ErrOfflineInvalid    = reason("OFFLINE_ALLOWANCE_INVALID", "离线额度无效", "The offline allowance is not valid")
	ErrOfflineNoDevice   = reason("OFFLINE_NO_DEVICE", "请先在本机生成付款码（注册设备）", "Register this phone (make a payment code) first")
)

// The back-office console (issue 14; appended, codes are never renamed).
var (
	ErrWalletFrozen        = reason("WALLET_FROZEN", "钱包已被冻结，请到一卡通服务中心办理", "The wallet is frozen; please see the card centre")
	ErrForbidden           = reason("FORBIDDEN", "无权执行此操作", "You are not allowed to do this")
	ErrCSRF                = reason("CSRF_INVALID", "页面已过期，请刷新后重试", "The page has expired; reload it and try again")
	ErrOperatorLogin       = reason("OPERATOR_LOGIN_FAILED", "用户名、密码或动态码错误", "Wrong name, password or one-time code")
	ErrReasonRequired      = reason("REASON_REQUIRED", "请填写操作原因", "Give a reason for this action")
	ErrOperatorExists      = reason("OPERATOR_EXISTS", "该操作员已存在", "An operator with that name already exists")
	ErrOperatorInvalid     = reason("OPERATOR_INVALID", "操作员名称、角色或商户不正确", "The operator's name, role or merchant is not valid")
	ErrSearchInvalid       = reason("SEARCH_INVALID", "搜索内容须为1–64个字符", "Search for 1 to 64 characters")
	ErrCardUIDInvalid      = reason("CARD_UID_INVALID", "卡号格式不正确（4–20位十六进制）", "The card UID must be 4–20 hex digits")
	ErrTerminalRevoked     = reason("TERMINAL_REVOKED", "终端凭据已吊销", "The terminal's credentials are revoked")
	ErrUploadInvalid       = reason("UPLOAD_INVALID", "上传的文件无法读取", "The uploaded file cannot be read")
	ErrOperatorLoginLocked = reason("OPERATOR_LOGIN_LOCKED", "登录失败次数过多，请15分钟后再试", "Too many failed logins; try again in 15 minutes")
)

// Refunds by the back office (issue 14; appended, codes are never renamed).
var (
	ErrRefundSaleUnknown   = reason("REFUND_SALE_UNKNOWN", "原交易不存在", "No such sale")
	ErrRefundNotRefundable = reason("REFUND_NOT_REFUNDABLE", "该交易未成功，不能退款", "The sale did not complete; it cannot be refunded")
	ErrRefundSaleReversed  = reason("REFUND_SALE_REVERSED", "原交易已撤销，不能退款", "The sale was reversed; it cannot be refunded")
	ErrRefundExceedsSale   = reason("REFUND_EXCEEDS_SALE", "退款金额超过可退金额（原交易金额减去已退金额）", "The refund is more than the sale less what was already refunded")
	ErrRefundKeyConflict   = reason("REFUND_KEY_CONFLICT", "退款编号已用于另一笔退款", "The refund key was used for a different refund")
	ErrRefundAmount        = reason("REFUND_AMOUNT_INVALID", "退款金额须大于零", "The refund amount must be more than zero")
)
