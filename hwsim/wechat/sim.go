// Package wechat simulates WeChat Pay's v2 micropay API and the mini-program
// login (jscode2session) as documented in campuspay/server/wechat, written
// from that document rather than from the adapter's code.
//
// It keeps WeChat users (openid, balance), issues their 18-digit payment
// codes (prefix 10–15; single use; expiring after Config.CodeTTL on the
// injected clock) and mini-program login codes. A user may need to enter a
// password on the phone: micropay then answers USERPAYING and the order stays
// so until Confirm is called, or until the user's AutoConfirmAfter-th
// OrderQuery, or forever (AutoConfirmAfter 0) to test timeout and reverse.
// Reversing a paid order refunds the user; reversing an order the simulator
// never saw records the out_trade_no so a late micropay with it is refused
// (ORDERREVERSED).
//
// Control API (JSON, unauthenticated, hence loopback only):
//
//	POST /control/users                         {"openid","balance","needs_password","auto_confirm_after"}
//	GET  /control/users/{openid}                → {"openid","balance"}
//	POST /control/users/{openid}/paycode        → {"auth_code"}
//	POST /control/users/{openid}/logincode      → {"code"}
//	GET  /control/orders/{out_trade_no}         → Order
//	POST /control/orders/{out_trade_no}/confirm
//	POST /control/faults                        {"api":"micropay","n":1} (SYSTEMERROR) or {"unavailable":N} (HTTP 503)
//	POST /control/bill-skip                     {"no":".."}: leave that order's or refund's lines out of bills
//
// Refunds (/secapi/pay/refund) pay part or all of a paid order back to
// the user, idempotent by out_refund_no and never beyond the order;
// /pay/downloadbill gives the day's bill (see campuspay/server/wechat
// ParseBill): a SUCCESS line per payment, a REFUND line per refund and a
// REVOKED line per paid order reversed.
package wechat

import (
	"campuspay/hwsim/loopback"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Config configures a Sim.
type Config struct {
	AppID, MchID, APIKey  string // the merchant the simulated WeChat Pay serves
	MiniAppID, MiniSecret string // the mini-program; MiniAppID defaults to AppID

	CodeTTL      time.Duration    // payment code validity; default 60 s
	LoginCodeTTL time.Duration    // login code validity; default 5 min
	Now          func() time.Time // default time.Now
	Rand         io.Reader        // codes and nonces; default crypto/rand
}

// User is a simulated WeChat user.
type User struct {
	OpenID        string `json:"openid"`
	Balance       int64  `json:"balance"` // cents
	NeedsPassword bool   `json:"needs_password"`
	// AutoConfirmAfter > 0 confirms a password payment on that many-th
	// OrderQuery; 0 waits for Confirm.
	AutoConfirmAfter int `json:"auto_confirm_after"`
}

// Order is the simulator's view of an order.
type Order struct {
	OutTradeNo    string `json:"out_trade_no"`
	OpenID        string `json:"openid"`
	TotalFee      int64  `json:"total_fee"`
	State         string `json:"trade_state"`
	ErrCode       string `json:"err_code,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`
	Queries       int    `json:"queries"`
}

type code struct {
	openID string
	issued time.Time
	used   bool
}

type order struct {
	Order
	authCode, body, deviceInfo string
	timeEnd                    time.Time
}

// Sim is a simulated WeChat Pay. Its methods are safe for concurrent use.
type Sim struct {
	cfg Config

	mu          sync.Mutex
	users       map[string]*User
	payCodes    map[string]*code
	loginCodes  map[string]*code
	orders      map[string]*order
	reversed    map[string]bool    // out_trade_nos reversed before they were seen
	refunds     map[string]*refund // by out_refund_no
	refunded    map[string]int64   // out_trade_no → cents refunded
	events      []billEvent        // money movements, oldest first (bills)
	skip        map[string]bool    // out_trade_no / out_refund_no left out of bills
	seq         int64
	failNext    map[string]int
	unavailable int
	server      loopback.Server
}

// New makes an empty simulator.
func New(cfg Config) *Sim {
	if cfg.MiniAppID == "" {
		cfg.MiniAppID = cfg.AppID
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = time.Minute
	}
	if cfg.LoginCodeTTL <= 0 {
		cfg.LoginCodeTTL = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Sim{
		cfg:        cfg,
		users:      map[string]*User{},
		payCodes:   map[string]*code{},
		loginCodes: map[string]*code{},
		orders:     map[string]*order{},
		reversed:   map[string]bool{},
		refunds:    map[string]*refund{},
		refunded:   map[string]int64{},
		skip:       map[string]bool{},
		failNext:   map[string]int{},
	}
}

// CreateUser adds a user or replaces one with the same openid.
func (s *Sim) CreateUser(u User) error {
	if u.OpenID == "" || u.Balance < 0 || u.AutoConfirmAfter < 0 {
		return fmt.Errorf("wechatsim: bad user %+v", u)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.OpenID] = &u
	return nil
}

// SetNeedsPassword sets whether the user's payments wait for a password on
// the phone, and after how many order queries it is entered (0: only
// Confirm).
func (s *Sim) SetNeedsPassword(openID string, needs bool, autoConfirmAfter int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[openID]
	if !ok {
		return fmt.Errorf("wechatsim: no user %q", openID)
	}
	u.NeedsPassword, u.AutoConfirmAfter = needs, autoConfirmAfter
	return nil
}

// Balance returns a user's balance in cents.
func (s *Sim) Balance(openID string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[openID]
	if !ok {
		return 0, false
	}
	return u.Balance, true
}

// NewPaymentCode issues a payment code (付款码) for the user, as the WeChat
// app shows it: 18 digits starting 10–15, valid for CodeTTL, single use.
func (s *Sim) NewPaymentCode(openID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[openID]; !ok {
		return "", fmt.Errorf("wechatsim: no user %q", openID)
	}
	for {
		var b [9]byte
		if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
			return "", fmt.Errorf("wechatsim: random: %w", err)
		}
		c := fmt.Sprintf("%d%016d", 10+int(b[0])%6, binary.BigEndian.Uint64(b[1:])%1e16)
		if _, taken := s.payCodes[c]; !taken {
			s.payCodes[c] = &code{openID: openID, issued: s.cfg.Now()}
			return c, nil
		}
	}
}

// NewLoginCode issues a mini-program login code (what wx.login returns on
// the phone) for the user.
func (s *Sim) NewLoginCode(openID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[openID]; !ok {
		return "", fmt.Errorf("wechatsim: no user %q", openID)
	}
	c, err := s.randomHex(16)
	if err != nil {
		return "", err
	}
	s.loginCodes[c] = &code{openID: openID, issued: s.cfg.Now()}
	return c, nil
}

// Confirm is the student entering the password on the phone for a USERPAYING
// order: it is paid if the balance still covers it, else PAYERROR.
func (s *Sim) Confirm(outTradeNo string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[outTradeNo]
	if !ok {
		return fmt.Errorf("wechatsim: no order %q", outTradeNo)
	}
	if o.State != "USERPAYING" {
		return fmt.Errorf("wechatsim: order %q is %s, not USERPAYING", outTradeNo, o.State)
	}
	s.settle(o)
	return nil
}

// Order returns an order's state.
func (s *Sim) Order(outTradeNo string) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[outTradeNo]
	if !ok {
		return Order{}, false
	}
	return o.Order, true
}

// FailNext makes the next n calls of api ("micropay", "orderquery",
// "reverse", "authcodetoopenid", "jscode2session") answer SYSTEMERROR (reverse
// with recall=Y; jscode2session errcode -1) without doing anything.
func (s *Sim) FailNext(api string, n int) {
	s.mu.Lock()
	s.failNext[api] = n
	s.mu.Unlock()
}

// UnavailableNext makes the next n requests of any API answer HTTP 503.
func (s *Sim) UnavailableNext(n int) {
	s.mu.Lock()
	s.unavailable = n
	s.mu.Unlock()
}

// Serve serves the simulator on ln until Close. ln should be a loopback
// listener: the control API is unauthenticated.
func (s *Sim) Serve(ln net.Listener) error {
	if err := s.server.Serve(ln, s.Handler()); err != nil {
		return fmt.Errorf("wechatsim: serve: %w", err)
	}
	return nil
}

// Start listens on addr (loopback only; "" picks a free 127.0.0.1 port),
// serves in the background and returns the base URL.
func (s *Sim) Start(addr string) (string, error) {
	url, err := s.server.Start(addr, s.Handler())
	if err != nil {
		return "", fmt.Errorf("wechatsim: %w", err)
	}
	return url, nil
}

// Close stops serving.
func (s *Sim) Close() error { return s.server.Close() }

// randomHex returns 2n hex digits; s.mu must be held (Rand may not be safe
// for concurrent use).
func (s *Sim) randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("wechatsim: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// settle pays a USERPAYING order, or fails it if the balance no longer
// covers it. s.mu must be held.
func (s *Sim) settle(o *order) {
	u := s.users[o.OpenID]
	if u == nil || u.Balance < o.TotalFee {
		o.State, o.ErrCode = "PAYERROR", "NOTENOUGH"
		return
	}
	u.Balance -= o.TotalFee
	s.seq++
	now := s.cfg.Now()
	o.State, o.ErrCode = "SUCCESS", ""
	o.TransactionID = fmt.Sprintf("4200%s%016d", now.In(chinaTime).Format("20060102"), s.seq)
	o.timeEnd = now
	s.events = append(s.events, billEvent{at: now, order: o, state: "SUCCESS", fee: o.TotalFee})
}

var chinaTime = time.FixedZone("CST", 8*3600)

// LoadUsers reads a JSON array of User, for starting a simulator with a
// campus's WeChat users.
func LoadUsers(path string) ([]User, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wechatsim: %w", err)
	}
	var users []User
	if err := json.Unmarshal(b, &users); err != nil {
		return nil, fmt.Errorf("wechatsim: %s: %w", path, err)
	}
	return users, nil
}
