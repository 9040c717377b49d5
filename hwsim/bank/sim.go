// Package bank simulates a bank gateway speaking the JSON-over-HTTP protocol
// documented in campuspay/server/bank: holder verification, debits and credits
// idempotent by key, HMAC-SHA256 request signatures checked and response
// signatures made, card numbers checked with Luhn.
//
// It is written from the protocol document, not from the adapter's code, so
// the adapter's tests against it check the document too.
//
// For testing the wallet's failure handling it can fail the next calls with a
// status (503 by default) without applying them, delay every call, or apply a
// call and then drop the connection before answering (the case retries by key
// exist for).
//
// A control API, unauthenticated and therefore served on loopback only, adds
// accounts, reads balances and sets faults:
//
//	POST /control/accounts                    Account JSON → 201
//	GET  /control/accounts/{bank}/{card}      → {"bank_code":..,"card_number":..,"balance":..}
//	POST /control/faults                      {"fail_next":N,"fail_status":503,"drop_next":N,"delay_ms":N}
//	POST /control/statement-skip              {"key":".."}: leave that movement out of statements
//	                                          (a deliberate reconciliation mismatch for demos)
//	GET  /control/stats                       → {"requests":N,"applied":N}
//	GET  /control/sms?phone=138...            → {"messages":[{"phone":..,"text":..,"code":..,"at":..}]}
//
// One-time codes (POST /v1/otp/send) are "texted" into an outbox instead
// of a phone network: tests, the demo and the phone simulator read them
// from Outbox or GET /control/sms, as a student reads the SMS.
package bank

import (
	"bytes"
	"campuspay/hwsim/loopback"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultBanks are the bank codes the simulated gateway routes when
// Config.Banks is empty.
var DefaultBanks = []string{"CCB", "ICBC", "ABC", "BOC", "BOCOM", "CMB", "PSBC", "CIB", "SPDB", "CITIC"}

// Account is one card at a simulated bank.
type Account struct {
	BankCode   string `json:"bank_code"`
	CardNumber string `json:"card_number"`
	Name       string `json:"name"`
	IDNumber   string `json:"id_number"`
	Phone      string `json:"phone"`
	Balance    int64  `json:"balance"` // cents
	Frozen     bool   `json:"frozen,omitempty"`
}

// Config configures a Sim.
type Config struct {
	Clients  map[string]string // client id → shared secret
	Banks    []string          // bank codes served; default DefaultBanks
	Accounts []Account
	Now      func() time.Time // default time.Now
	MaxSkew  time.Duration    // allowed timestamp skew; default 5 min
	Rand     io.Reader        // one-time codes; default crypto/rand
}

// One-time code bounds (documented in campuspay/server/bank).
const (
	OTPTTL      = 5 * time.Minute
	OTPTries    = 5
	OTPInterval = time.Minute // between two codes for one card
)

// SMS is a text the bank sent to a reserved phone.
type SMS struct {
	Phone string    `json:"phone"`
	Text  string    `json:"text"`
	Code  string    `json:"code"` // the one-time code in Text
	At    time.Time `json:"at"`
}

// otp is a one-time code sent for a card.
type otp struct {
	id      string
	card    cardKey
	code    string
	sent    time.Time
	expires time.Time
	wrong   int
	used    bool
}

// Stats counts protocol calls.
type Stats struct {
	Requests int `json:"requests"` // protocol requests received
	Applied  int `json:"applied"`  // debits and credits that moved money
}

type cardKey struct{ bank, card string }

// move is a remembered debit or credit, for idempotency by key.
type move struct {
	client   string // who asked (statements are per client)
	original string // refund: the debit's key
	op       string
	card     cardKey
	amount   int64
	receipt  receipt
}

type receipt struct {
	Ref    string    `json:"ref"`
	Key    string    `json:"key"`
	Op     string    `json:"op"`
	Amount int64     `json:"amount"`
	Time   time.Time `json:"time"`
}

// Sim is a simulated bank gateway. Its methods are safe for concurrent use.
type Sim struct {
	clients map[string]string
	banks   map[string]bool
	now     func() time.Time
	maxSkew time.Duration

	mu         sync.Mutex
	accounts   map[cardKey]*Account
	moves      map[string]*move
	order      []*move          // applied movements, oldest first (statements)
	refunded   map[string]int64 // debit key → cents refunded
	skip       map[string]bool  // keys left out of statements
	seq        int64
	failNext   int
	failStatus int
	dropNext   int
	delay      time.Duration
	stats      Stats
	server     loopback.Server
	rand       io.Reader
	otps       map[string]*otp
	lastOTP    map[cardKey]*otp // the live code of each card
	outbox     []SMS
}

// New makes a simulator holding cfg.Accounts. It fails if an account is
// invalid (see AddAccount).
func New(cfg Config) (*Sim, error) {
	s := &Sim{
		clients:  cfg.Clients,
		banks:    map[string]bool{},
		now:      cfg.Now,
		maxSkew:  cfg.MaxSkew,
		accounts: map[cardKey]*Account{},
		moves:    map[string]*move{},
		refunded: map[string]int64{},
		rand:     cfg.Rand,
		otps:     map[string]*otp{},
		lastOTP:  map[cardKey]*otp{},
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxSkew <= 0 {
		s.maxSkew = 5 * time.Minute
	}
	banks := cfg.Banks
	if len(banks) == 0 {
		banks = DefaultBanks
	}
	for _, b := range banks {
		s.banks[b] = true
	}
	for _, a := range cfg.Accounts {
		if err := s.AddAccount(a); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// AddAccount adds or replaces an account. The bank must be served, the card
// number must pass the Luhn check and the balance must not be negative.
func (s *Sim) AddAccount(a Account) error {
	if !s.banks[a.BankCode] {
		return fmt.Errorf("banksim: account %s: bank %q not served", a.CardNumber, a.BankCode)
	}
	if !ValidCardNumber(a.CardNumber) {
		return fmt.Errorf("banksim: account %s/%s: card number fails the Luhn check", a.BankCode, a.CardNumber)
	}
	if a.Balance < 0 {
		return fmt.Errorf("banksim: account %s/%s: negative balance", a.BankCode, a.CardNumber)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[cardKey{a.BankCode, a.CardNumber}] = &a
	return nil
}

// Balance returns a card's balance in cents.
func (s *Sim) Balance(bankCode, cardNumber string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[cardKey{bankCode, cardNumber}]
	if !ok {
		return 0, false
	}
	return a.Balance, true
}

// SetFrozen freezes or thaws a card; a frozen card's debits and credits are
// DECLINED.
func (s *Sim) SetFrozen(bankCode, cardNumber string, frozen bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[cardKey{bankCode, cardNumber}]
	if !ok {
		return fmt.Errorf("banksim: no card %s/%s", bankCode, cardNumber)
	}
	a.Frozen = frozen
	return nil
}

// FailNext makes the next n protocol calls answer status (503 if 0) without
// applying them.
func (s *Sim) FailNext(n, status int) {
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	s.mu.Lock()
	s.failNext, s.failStatus = n, status
	s.mu.Unlock()
}

// DropNext makes the next n successful debits or credits apply and then drop
// the connection without an answer.
func (s *Sim) DropNext(n int) {
	s.mu.Lock()
	s.dropNext = n
	s.mu.Unlock()
}

// SetDelay delays every protocol call by d before it is handled.
func (s *Sim) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Stats returns call counts so far.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Handler serves the protocol under /v1/ and the control API under /control/.
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/verify", s.protocol("verify"))
	mux.HandleFunc("POST /v1/debit", s.protocol("debit"))
	mux.HandleFunc("POST /v1/credit", s.protocol("credit"))
	mux.HandleFunc("POST /v1/refund", s.protocol("refund"))
	mux.HandleFunc("POST /v1/statement", s.protocol("statement"))
	mux.HandleFunc("POST /v1/otp/send", s.protocol("otp_send"))
	mux.HandleFunc("POST /v1/otp/check", s.protocol("otp_check"))
	mux.HandleFunc("GET /control/sms", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]SMS{"messages": s.Outbox(r.URL.Query().Get("phone"))})
	})
	mux.HandleFunc("POST /control/accounts", s.controlAdd)
	mux.HandleFunc("GET /control/accounts/{bank}/{card}", s.controlBalance)
	mux.HandleFunc("POST /control/faults", s.controlFaults)
	mux.HandleFunc("POST /control/statement-skip", s.controlSkip)
	mux.HandleFunc("GET /control/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	return mux
}

// Serve serves the simulator on ln until Close. ln should be a loopback
// listener: the control API is unauthenticated.
func (s *Sim) Serve(ln net.Listener) error {
	if err := s.server.Serve(ln, s.Handler()); err != nil {
		return fmt.Errorf("banksim: serve: %w", err)
	}
	return nil
}

// Start listens on addr (loopback only; "" picks a free 127.0.0.1 port),
// serves in the background and returns the base URL.
func (s *Sim) Start(addr string) (string, error) {
	url, err := s.server.Start(addr, s.Handler())
	if err != nil {
		return "", fmt.Errorf("banksim: %w", err)
	}
	return url, nil
}

// Close stops serving.
func (s *Sim) Close() error { return s.server.Close() }

// Wire error codes, as in campuspay/server/bank.
const (
	codeBadRequest        = "BAD_REQUEST"
	codeBadSignature      = "BAD_SIGNATURE"
	codeUnknownCard       = "UNKNOWN_CARD"
	codeUnsupportedBank   = "UNSUPPORTED_BANK"
	codeInvalidCardNumber = "INVALID_CARD_NUMBER"
	codeMismatch          = "MISMATCH"
	codeInsufficientFunds = "INSUFFICIENT_FUNDS"
	codeDeclined          = "DECLINED"
	codeKeyConflict       = "KEY_CONFLICT"
	codeOriginalUnknown   = "ORIGINAL_UNKNOWN"
	codeRefundExceeds     = "REFUND_EXCEEDS"
	codeOTPWrong          = "OTP_WRONG"
	codeOTPExpired        = "OTP_EXPIRED"
	codeOTPUsed           = "OTP_USED"
	codeOTPLocked         = "OTP_LOCKED"
	codeUnknownOTP        = "UNKNOWN_OTP"
	codeOTPTooSoon        = "OTP_TOO_SOON"
)

const maxBody = 64 << 10

// answer is one protocol response before signing.
type answer struct {
	status int
	body   any
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func fail(status int, code, msg string) answer {
	return answer{status, errorBody{Code: code, Message: msg}}
}

func (s *Sim) protocol(op string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.stats.Requests++
		delay := s.delay
		failing := s.failNext > 0
		failStatus := s.failStatus
		if failing {
			s.failNext--
		}
		s.mu.Unlock()

		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if failing {
			http.Error(w, "injected failure", failStatus)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			// Unsigned: the request is not authenticated yet.
			http.Error(w, "body over 64 KiB or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		secret, reqSig, ok := s.authenticate(r, body)
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(errorBody{Code: codeBadSignature, Message: "signature, client or timestamp refused"})
			return
		}
		var a answer
		if op == "statement" {
			a = s.statement(r.Header.Get("X-Bank-Client"), body)
		} else if req, err := ParseRequest(op, bytes.NewReader(body)); err != nil {
			a = fail(http.StatusBadRequest, codeBadRequest, err.Error())
		} else {
			req.client = r.Header.Get("X-Bank-Client")
			a = s.apply(op, req)
		}
		if a.status == http.StatusOK && (op == "debit" || op == "credit" || op == "refund") {
			s.mu.Lock()
			drop := s.dropNext > 0
			if drop {
				s.dropNext--
			}
			s.mu.Unlock()
			if drop {
				// Applied, but the caller never hears: net/http closes the
				// connection without a response.
				panic(http.ErrAbortHandler)
			}
		}
		out, _ := json.Marshal(a.body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Bank-Signature", sign(secret, "RESPONSE\n"+strconv.Itoa(a.status)+"\n"+reqSig+"\n", out))
		w.WriteHeader(a.status)
		w.Write(out)
	}
}

// authenticate checks client, timestamp and signature, returning the
// client's secret and the request signature.
func (s *Sim) authenticate(r *http.Request, body []byte) (secret, sig string, ok bool) {
	client := r.Header.Get("X-Bank-Client")
	secret, known := s.clients[client]
	if !known || secret == "" {
		return "", "", false
	}
	tsText := r.Header.Get("X-Bank-Timestamp")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return "", "", false
	}
	skew := s.now().Sub(time.Unix(ts, 0))
	if skew > s.maxSkew || skew < -s.maxSkew {
		return "", "", false
	}
	sig = r.Header.Get("X-Bank-Signature")
	want := sign(secret, "POST\n"+r.URL.Path+"\n"+client+"\n"+tsText+"\n", body)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return "", "", false
	}
	return secret, sig, true
}

func sign(secret, prefix string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	io.WriteString(m, prefix)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Request is a parsed protocol request; which fields matter depends on the
// operation.
type Request struct {
	Key        string `json:"key"`
	BankCode   string `json:"bank_code"`
	CardNumber string `json:"card_number"`
	Name       string `json:"name"`
	IDNumber   string `json:"id_number"`
	Phone      string `json:"phone"`
	Amount     int64  `json:"amount"`
	// OriginalKey: a refund's debit.
	OriginalKey string `json:"original_key,omitempty"`

	client  string
	Purpose string `json:"purpose"`
	OTPID   string `json:"otp_id"`
	Code    string `json:"code"`
}

// ParseRequest decodes and checks the body of a verify, debit or credit
// request: exactly one JSON object, required fields present, amounts
// positive, keys 1–64 printable ASCII characters.
func ParseRequest(op string, r io.Reader) (Request, error) {
	var req Request
	dec := json.NewDecoder(r)
	if err := dec.Decode(&req); err != nil {
		return Request{}, fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Request{}, errors.New("body: data after the JSON object")
	}
	if req.BankCode == "" || req.CardNumber == "" {
		return Request{}, errors.New("bank_code and card_number are required")
	}
	switch op {
	case "verify":
		if req.Name == "" || req.IDNumber == "" || req.Phone == "" {
			return Request{}, errors.New("name, id_number and phone are required")
		}
	case "debit", "credit", "refund":
		if op == "refund" && !validKey(req.OriginalKey) {
			return Request{}, fmt.Errorf("original_key length %d not in 1..64 or not printable", len(req.OriginalKey))
		}
		if req.Amount <= 0 {
			return Request{}, fmt.Errorf("amount %d not positive", req.Amount)
		}
		if !validKey(req.Key) {
			return Request{}, fmt.Errorf("key length %d not in 1..64 or not printable", len(req.Key))
		}
	case "otp_send":
		if req.Purpose == "" || len(req.Purpose) > 64 {
			return Request{}, errors.New("purpose of 1..64 bytes is required")
		}
	case "otp_check":
		if req.OTPID == "" || len(req.OTPID) > 64 || req.Code == "" || len(req.Code) > 16 {
			return Request{}, errors.New("otp_id and code are required")
		}
	default:
		return Request{}, fmt.Errorf("unknown operation %q", op)
	}
	return req, nil
}

// apply performs a checked request.
func (s *Sim) apply(op string, req Request) answer {
	if !s.banks[req.BankCode] {
		return fail(http.StatusUnprocessableEntity, codeUnsupportedBank, "bank "+req.BankCode+" not served")
	}
	if !ValidCardNumber(req.CardNumber) {
		return fail(http.StatusUnprocessableEntity, codeInvalidCardNumber, "card number fails the Luhn check")
	}
	ck := cardKey{req.BankCode, req.CardNumber}
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "debit" || op == "credit" {
		if m, ok := s.moves[req.Key]; ok {
			if m.op != op || m.card != ck || m.amount != req.Amount || m.original != req.OriginalKey {
				return fail(http.StatusConflict, codeKeyConflict, "key "+req.Key+" was used for another movement")
			}
			return answer{http.StatusOK, map[string]any{"result": "OK", "receipt": m.receipt}}
		}
	}
	acct, ok := s.accounts[ck]
	if !ok {
		return fail(http.StatusNotFound, codeUnknownCard, "no such card")
	}
	switch op {
	case "verify":
		field := ""
		switch {
		case strings.TrimSpace(req.Name) != acct.Name:
			field = "name"
		case !strings.EqualFold(strings.TrimSpace(req.IDNumber), acct.IDNumber):
			field = "id_number" // the check letter may be typed x or X
		case strings.TrimSpace(req.Phone) != acct.Phone:
			field = "phone"
		}
		if field != "" {
			return answer{http.StatusUnprocessableEntity, errorBody{Code: codeMismatch, Message: "信息与银行预留信息不一致", Field: field}}
		}
		return answer{http.StatusOK, map[string]string{"result": "OK"}}
	case "otp_send":
		return s.sendOTP(acct, ck, req.Purpose)
	case "otp_check":
		return s.checkOTP(ck, req.OTPID, req.Code)
	}
	if acct.Frozen {
		return fail(http.StatusForbidden, codeDeclined, "card frozen")
	}
	if op == "refund" {
		if a, ok := s.checkRefund(req, ck); !ok {
			return a
		}
		s.refunded[req.OriginalKey] += req.Amount
	}
	if op == "debit" {
		if acct.Balance < req.Amount {
			return fail(http.StatusPaymentRequired, codeInsufficientFunds, "余额不足")
		}
		acct.Balance -= req.Amount
	} else {
		acct.Balance += req.Amount
	}
	s.seq++
	s.stats.Applied++
	m := &move{client: req.client, original: req.OriginalKey, op: op, card: ck, amount: req.Amount, receipt: receipt{
		Ref:    fmt.Sprintf("%s%012d", req.BankCode, s.seq),
		Key:    req.Key,
		Op:     op,
		Amount: req.Amount,
		Time:   s.now().UTC().Truncate(time.Second),
	}}
	s.moves[req.Key] = m
	s.order = append(s.order, m)
	return answer{http.StatusOK, map[string]any{"result": "OK", "receipt": m.receipt}}
}

// sendOTP texts a new code to the card's reserved phone. The caller holds mu.
func (s *Sim) sendOTP(acct *Account, ck cardKey, purpose string) answer {
	now := s.now()
	if last := s.lastOTP[ck]; last != nil && now.Sub(last.sent) < OTPInterval {
		return fail(http.StatusTooManyRequests, codeOTPTooSoon, "a code was sent less than a minute ago")
	}
	var b [4]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return fail(http.StatusInternalServerError, "INTERNAL", err.Error())
	}
	if last := s.lastOTP[ck]; last != nil {
		last.used = true // replaced: only the newest code counts
	}
	s.seq++
	o := &otp{id: fmt.Sprintf("OTP%012d", s.seq), card: ck, sent: now, expires: now.Add(OTPTTL),
		code: fmt.Sprintf("%06d", binary.BigEndian.Uint32(b[:])%1_000_000)}
	s.otps[o.id], s.lastOTP[ck] = o, o
	s.outbox = append(s.outbox, SMS{Phone: acct.Phone, Code: o.code, At: now.UTC(),
		Text: fmt.Sprintf("【%s】验证码 %s，用于%s，%d分钟内有效，请勿告诉他人。Code %s, for %s, valid %d min.",
			ck.bank, o.code, purpose, int(OTPTTL/time.Minute), o.code, purpose, int(OTPTTL/time.Minute))})
	return answer{http.StatusOK, map[string]any{"result": "OK", "otp": map[string]any{
		"id": o.id, "phone": maskPhone(acct.Phone), "expires": o.expires.UTC()}}}
}

// checkOTP checks a typed code. The caller holds mu.
func (s *Sim) checkOTP(ck cardKey, id, code string) answer {
	o := s.otps[id]
	switch {
	case o == nil || o.card != ck:
		return fail(http.StatusNotFound, codeUnknownOTP, "no such code for this card")
	case o.used:
		return fail(http.StatusUnprocessableEntity, codeOTPUsed, "code already used or replaced")
	case o.wrong >= OTPTries:
		return fail(http.StatusUnprocessableEntity, codeOTPLocked, "too many wrong codes")
	case !s.now().Before(o.expires):
		return fail(http.StatusUnprocessableEntity, codeOTPExpired, "code expired")
	case !hmac.Equal([]byte(code), []byte(o.code)):
		o.wrong++
		if o.wrong >= OTPTries {
			return fail(http.StatusUnprocessableEntity, codeOTPLocked, "too many wrong codes")
		}
		return fail(http.StatusUnprocessableEntity, codeOTPWrong, "wrong code")
	}
	o.used = true
	return answer{http.StatusOK, map[string]string{"result": "OK"}}
}

// Outbox returns the texts sent to phone ("" for every phone), oldest first.
func (s *Sim) Outbox(phone string) []SMS {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []SMS{}
	for _, m := range s.outbox {
		if phone == "" || m.Phone == phone {
			out = append(out, m)
		}
	}
	return out
}

// LastCode returns the newest one-time code texted to phone.
func (s *Sim) LastCode(phone string) (string, bool) {
	msgs := s.Outbox(phone)
	if len(msgs) == 0 {
		return "", false
	}
	return msgs[len(msgs)-1].Code, true
}

func maskPhone(p string) string {
	if len(p) < 7 {
		return "****"
	}
	return p[:3] + "****" + p[len(p)-4:]
}

// ValidCardNumber reports whether n is 12–19 digits passing the Luhn check.
func ValidCardNumber(n string) bool {
	if len(n) < 12 || len(n) > 19 {
		return false
	}
	sum := 0
	for i := 0; i < len(n); i++ {
		c := n[len(n)-1-i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if i%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// LuhnComplete appends the Luhn check digit to a string of digits, for
// making fixture card numbers.
func LuhnComplete(prefix string) string {
	for d := byte('0'); d <= '9'; d++ {
		if n := prefix + string(d); ValidCardNumber(n) {
			return n
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Sim) controlAdd(w http.ResponseWriter, r *http.Request) {
	var a Account
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&a); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	if err := s.AddAccount(a); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"result": "OK"})
}

func (s *Sim) controlBalance(w http.ResponseWriter, r *http.Request) {
	bank, card := r.PathValue("bank"), r.PathValue("card")
	bal, ok := s.Balance(bank, card)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such card"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"bank_code": bank, "card_number": card, "balance": bal})
}

func (s *Sim) controlFaults(w http.ResponseWriter, r *http.Request) {
	var f struct {
		FailNext   int `json:"fail_next"`
		FailStatus int `json:"fail_status"`
		DropNext   int `json:"drop_next"`
		DelayMS    int `json:"delay_ms"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	s.FailNext(f.FailNext, f.FailStatus)
	s.DropNext(f.DropNext)
	s.SetDelay(time.Duration(f.DelayMS) * time.Millisecond)
	writeJSON(w, http.StatusOK, map[string]string{"result": "OK"})
}
