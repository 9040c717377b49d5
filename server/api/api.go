// Package api is the wallet app's HTTP API (JSON over HTTP, documented in
// openapi.yaml beside this file). It authenticates students with bearer
// tokens from POST /api/v1/session and calls the wallet Service; every
// refusal is a protocol.Reason sent as {"code","message_zh","message_en"}
// with a 4xx/5xx status.
//
// Money-moving POSTs honour an Idempotency-Key header: the key is also the
// wallet's idempotency key for the money movement, and the first definite
// response is stored, so a repeat gets the same response and moves nothing.
// A repeat with another body is refused with TX_ID_CONFLICT (409).
//
// Sessions live in the wallet store (by the SHA-256 of their token), so a
// restart logs nobody out and every authorizer on a shared database knows
// them; a log-out ends a session everywhere.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"campuspay/protocol"
	"campuspay/server/wallet"
)

// MaxBody bounds a request body.
const MaxBody = 16 << 10

// IdempotencyStore keeps the responses given for Idempotency-Keys.
type IdempotencyStore interface {
	APIResponse(ctx context.Context, user uint32, key string) (*wallet.APIResponse, error)
	PutAPIResponse(ctx context.Context, user uint32, key string, r wallet.APIResponse, at time.Time) error
}

// SessionStore keeps the app's sessions by the SHA-256 of their bearer
// token (never the token itself), so that every authorizer on the store
// knows them and a restart logs nobody out.
type SessionStore interface {
	PutSession(ctx context.Context, tokenHash string, user uint32, expires, now time.Time) error
	Session(ctx context.Context, tokenHash string, now time.Time) (user uint32, ok bool, err error)
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteUserSessions ends every session of user but keep (a token
	// hash; "" for none).
	DeleteUserSessions(ctx context.Context, user uint32, keep string) error
}

// Store is what the API keeps beside the wallet: idempotent responses and
// sessions (both wallet stores implement it).
type Store interface {
	IdempotencyStore
	SessionStore
}

// Options configure a Server.
type Options struct {
	Now      func() time.Time // default time.Now
	Rand     io.Reader        // tokens and generated keys; default crypto/rand
	TokenTTL time.Duration    // default 24 h
	Log      *slog.Logger     // default slog.Default()
	// LoginLimits throttle logins per client address and in all.
	LoginLimits LoginLimits
	// Support is the help desk the help pages name (GET /api/v1/help).
	Support Support
}

// Server serves the API.
type Server struct {
	svc  *wallet.Service
	idem IdempotencyStore
	ses  SessionStore
	opt  Options
	mux  *http.ServeMux
	thr  *loginThrottle
}

// tokenHash is how a session is known to the store.
func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// route is one API operation; Routes lists them for the OpenAPI check.
type route struct {
	method, path string
	auth, money  bool
	h            func(s *Server, w http.ResponseWriter, r *http.Request, user uint32) (any, error)
}

var routes = []route{
	{"POST", "/api/v1/session", false, false, (*Server).login},
	{"DELETE", "/api/v1/session", true, false, (*Server).logout},
	{"GET", "/api/v1/banks", false, false, (*Server).banks},
	{"GET", "/api/v1/wallet", true, false, (*Server).getWallet},
	{"POST", "/api/v1/wallet/bank-card", true, false, (*Server).bindCard},
	{"DELETE", "/api/v1/wallet/bank-card", true, false, (*Server).unbindCard},
	{"POST", "/api/v1/wallet/cancel", true, true, (*Server).cancel},
	{"POST", "/api/v1/wallet/reopen", true, false, (*Server).reopen},
	{"POST", "/api/v1/wallet/password-free", true, false, (*Server).signPasswordFree},
	{"DELETE", "/api/v1/wallet/password-free", true, false, (*Server).endPasswordFree},
	{"POST", "/api/v1/wallet/top-up", true, true, (*Server).topUp},
	{"POST", "/api/v1/wallet/withdraw", true, true, (*Server).withdraw},
	{"PUT", "/api/v1/wallet/limits", true, false, (*Server).setLimits},
	{"PUT", "/api/v1/wallet/payment-password", true, false, (*Server).setPaymentPassword},
	{"PUT", "/api/v1/wallet/water-password", true, false, (*Server).setWaterPassword},
	{"POST", "/api/v1/devices", true, false, (*Server).addDevice},
	{"DELETE", "/api/v1/devices/{id}", true, false, (*Server).deleteDevice},
	{"POST", "/api/v1/card/lost", true, false, (*Server).cardLost},
	{"POST", "/api/v1/wechat/link", true, false, (*Server).linkWeChat},
	{"POST", "/api/v1/scan-pay", true, true, (*Server).scanPay},
	{"GET", "/api/v1/transactions", true, false, (*Server).transactions},
	// The account and its security (issue 15).
	{"DELETE", "/api/v1/sessions", true, false, (*Server).logoutEverywhere},
	{"PUT", "/api/v1/account/login-password", true, false, (*Server).changeLoginPassword},
	{"GET", "/api/v1/devices", true, false, (*Server).listDevices},
	{"POST", "/api/v1/wallet/password-reset/code", true, false, (*Server).sendResetCode},
	{"POST", "/api/v1/wallet/password-reset", true, false, (*Server).resetPassword},
	{"DELETE", "/api/v1/card/lost", true, false, (*Server).cardFound},
	{"DELETE", "/api/v1/wechat/link", true, false, (*Server).unlinkWeChat},
	{"GET", "/api/v1/wallet/cancel", true, false, (*Server).cancelPreview},
	{"GET", "/api/v1/help", false, false, (*Server).help},
	{"GET", "/api/v1/shower", true, false, (*Server).shower},
	{"GET", "/api/v1/statement", true, false, (*Server).statement},
	{"GET", "/api/v1/statement.csv", true, false, (*Server).statementCSV},
	{"POST", "/api/v1/merchant-qr", true, false, (*Server).merchantQR},
	{"GET", "/api/v1/offline", true, false, (*Server).getOffline},
	{"POST", "/api/v1/offline/allowance", true, false, (*Server).postAllowance},
	{"DELETE", "/api/v1/offline/allowance", true, false, (*Server).deleteAllowance},
	{"POST", "/api/v1/offline/debt/repay", true, true, (*Server).repayDebt},
}

// Routes returns "METHOD path" of every route, for documentation checks.
func Routes() []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.method + " " + r.path
	}
	return out
}

// New makes a Server.
func New(svc *wallet.Service, st Store, opt Options) *Server {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.TokenTTL <= 0 {
		opt.TokenTTL = 24 * time.Hour
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	s := &Server{svc: svc, idem: st, ses: st, opt: opt, mux: http.NewServeMux(), thr: newLoginThrottle(opt.LoginLimits)}
	for _, rt := range routes {
		s.mux.HandleFunc(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, protocol.ErrNotFound)
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Status maps a reason to its HTTP status.
func Status(r *protocol.Reason) int {
	switch r {
	case protocol.ErrUnauthorized, protocol.ErrLoginFailed:
		return http.StatusUnauthorized
	case protocol.ErrNotFound, protocol.ErrUserUnknown:
		return http.StatusNotFound
	case protocol.ErrTxConflict:
		return http.StatusConflict
	case protocol.ErrBadRequest, protocol.ErrAmountInvalid, protocol.ErrIDNumberInvalid, protocol.ErrPhoneInvalid,
		protocol.ErrCardNumberInvalid, protocol.ErrPasswordWeak, protocol.ErrDeviceKeyInvalid, protocol.ErrLoginPasswordWeak:
		return http.StatusBadRequest
	case protocol.ErrPaymentPasswordLocked, protocol.ErrWaterPasswordLocked, protocol.ErrLoginLocked:
		return http.StatusLocked
	case protocol.ErrLoginThrottled, protocol.ErrOTPTooSoon:
		return http.StatusTooManyRequests
	case protocol.ErrBankUnavailable, protocol.ErrWeChatUnavailable:
		return http.StatusServiceUnavailable
	case protocol.ErrInternal:
		return http.StatusInternalServerError
	}
	return http.StatusUnprocessableEntity
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"INTERNAL"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// fieldReason is a refusal that names the field of the request it is
// about, so the app can point at it.
type fieldReason struct {
	*protocol.Reason
	Field string `json:"field"`
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, Status(protocol.AsReason(err)), errorBody(err))
}

// errorBody is the JSON of a refusal: the reason, and the field when the
// wallet named one.
func errorBody(err error) any {
	r := protocol.AsReason(err)
	var fe *wallet.FieldError
	if errors.As(err, &fe) && fe.Field != "" && r != protocol.ErrInternal {
		return fieldReason{Reason: r, Field: fe.Field}
	}
	return r
}

// wrap authenticates, applies idempotency and encodes the answer.
func (s *Server) wrap(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		var user uint32
		if rt.auth {
			var ok bool
			var err error
			if user, ok, err = s.authenticate(r); err != nil {
				s.answer(w, r, nil, err)
				return
			} else if !ok {
				writeError(w, protocol.ErrUnauthorized)
				return
			}
		}
		if !rt.money {
			v, err := rt.h(s, w, r, user)
			s.answer(w, r, v, err)
			return
		}
		s.idempotent(w, r, rt, user)
	}
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		if protocol.AsReason(err) == protocol.ErrInternal {
			s.opt.Log.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, err)
		return
	}
	if c, ok := v.(csvBody); ok {
		writeCSV(w, c)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// idempotencyKeyHeader names the header of money-moving POSTs.
const idempotencyKeyHeader = "Idempotency-Key"

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

type keyCtx struct{}

// idempotencyKey is the key a money handler passes to the wallet.
func idempotencyKey(r *http.Request) string { k, _ := r.Context().Value(keyCtx{}).(string); return k }

func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, rt route, user uint32) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, fmt.Errorf("body: %v: %w", err, protocol.ErrBadRequest))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	key := r.Header.Get(idempotencyKeyHeader)
	if key == "" {
		var b [16]byte
		if _, err := io.ReadFull(s.opt.Rand, b[:]); err != nil {
			writeError(w, err)
			return
		}
		key = "gen-" + hex.EncodeToString(b[:])
	} else if !validKey(key) {
		writeError(w, fmt.Errorf("idempotency key: %w", protocol.ErrBadRequest))
		return
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", rt.method, rt.path)
	h.Write(body)
	hash := hex.EncodeToString(h.Sum(nil))
	ctx := r.Context()
	prev, err := s.idem.APIResponse(ctx, user, key)
	if err != nil {
		writeError(w, err)
		return
	}
	if prev != nil {
		if prev.Hash != hash {
			writeError(w, protocol.ErrTxConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(prev.Status)
		w.Write(prev.Body)
		return
	}
	v, herr := rt.h(s, w, r.WithContext(context.WithValue(ctx, keyCtx{}, key)), user)
	status := http.StatusOK
	var out any = v
	if herr != nil {
		rs := protocol.AsReason(herr)
		status, out = Status(rs), errorBody(herr)
		if rs == protocol.ErrInternal {
			s.opt.Log.Error("api", "method", r.Method, "path", r.URL.Path, "err", herr)
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, err)
		return
	}
	b = append(b, '\n')
	// Only definite answers are kept: after a 5xx the outcome may be
	// unknown, and the repeat resumes it under the same key.
	if status < 500 {
		if err := s.idem.PutAPIResponse(ctx, user, key, wallet.APIResponse{Hash: hash, Status: status, Body: b}, s.opt.Now()); err != nil {
			s.opt.Log.Error("api: store idempotent response", "err", err)
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b)
}

// bearer returns the request's bearer token, "" if it has none.
func bearer(r *http.Request) string {
	const prefix = "Bearer "
	a := r.Header.Get("Authorization")
	if len(a) <= len(prefix) || a[:len(prefix)] != prefix {
		return ""
	}
	return a[len(prefix):]
}

// A store that cannot be read is an error (answered INTERNAL, retryable),
// not a missing login.
func (s *Server) authenticate(r *http.Request) (uint32, bool, error) {
	tok := bearer(r)
	if tok == "" {
		return 0, false, nil
	}
	user, ok, err := s.ses.Session(r.Context(), tokenHash(tok), s.opt.Now())
	if err != nil {
		return 0, false, fmt.Errorf("api: read session: %w", err)
	}
	return user, ok, nil
}

// DecodeBody parses a JSON request body strictly: one object, known
// fields only, each named exactly (case-sensitive) and at most once
// (protocol.CheckJSONNames: {"AMOUNT":1} and {"amount":100,"amount":1} are
// refused, not read as an amount), nothing after it.
func DecodeBody(r io.Reader, v any) error {
	b, err := io.ReadAll(r)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return fmt.Errorf("body over %d bytes: %w", mb.Limit, protocol.ErrBadRequest)
		}
		return fmt.Errorf("body: %v: %w", err, protocol.ErrBadRequest)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("body: %v: %w", err, protocol.ErrBadRequest)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("body: data after the JSON object: %w", protocol.ErrBadRequest)
	}
	if err := protocol.CheckJSONNames(b, v); err != nil {
		return fmt.Errorf("body: %v: %w", err, protocol.ErrBadRequest)
	}
	return nil
}

// Requests.

type loginRequest struct {
	StudentNo string `json:"student_no"`
	Password  string `json:"password"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	UserID    uint32    `json:"user_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

type amountRequest struct {
	Amount   int64  `json:"amount"`   // cents
	Password string `json:"password"` // payment password: confirms the withdrawal
}

// confirmRequest is the body of a sensitive action: the payment password.
type confirmRequest struct {
	Password string `json:"password"`
}

type loginPasswordRequest struct {
	OldPassword string `json:"old_password"`
	Password    string `json:"password"`
}

type resetCodeRequest struct {
	Kind string `json:"kind"` // "payment" or "water"
}

type resetRequest struct {
	Kind     string `json:"kind"`
	OTPID    string `json:"otp_id"`
	Code     string `json:"code"`
	Password string `json:"password"`
}

type deviceList struct {
	Devices []wallet.DeviceView `json:"devices"`
}

type limitsRequest struct {
	PerTransaction int64 `json:"per_transaction"`
	Daily          int64 `json:"daily"`
}

type passwordRequest struct {
	OldPassword string `json:"old_password,omitempty"`
	Password    string `json:"password"`
}

type deviceRequest struct {
	PublicKey string `json:"public_key"` // base64 (standard) Ed25519 public key
}

type deviceResponse struct {
	DeviceID    uint32    `json:"device_id"`
	Certificate string    `json:"certificate"` // base64
	ServerTime  time.Time `json:"server_time"`
	Expires     time.Time `json:"expires"`
}

type linkRequest struct {
	Code string `json:"code"` // mini-program wx.login code
}

type scanPayRequest struct {
	QR       string `json:"qr"`
	Amount   int64  `json:"amount"`
	Password string `json:"password"`
}

// Transaction is one line of the transaction details.
type Transaction struct {
	ID           int64     `json:"id"`
	Time         time.Time `json:"time"`
	Kind         string    `json:"kind"`
	Merchant     string    `json:"merchant,omitempty"`
	MerchantName string    `json:"merchant_name,omitempty"`
	Terminal     string    `json:"terminal,omitempty"`
	Tx           string    `json:"tx,omitempty"`
	Amount       int64     `json:"amount"`
	Channel      string    `json:"channel,omitempty"`
	Status       string    `json:"status"`
	Code         string    `json:"code,omitempty"`
	Offline      bool      `json:"offline,omitempty"` // accepted by a terminal offline, settled later
	Flags        []string  `json:"flags,omitempty"`   // an offline payment's: after_revoke, code_replayed
}

type moneyResponse struct {
	Transaction Transaction  `json:"transaction"`
	Wallet      *wallet.View `json:"wallet"`
}

type transactionsResponse struct {
	Transactions []Transaction `json:"transactions"`
	NextBefore   int64         `json:"next_before,omitempty"` // pass as ?before= for the next page
}

func (s *Server) transaction(ctx context.Context, r wallet.Record, names map[string]string) Transaction {
	return Transaction{ID: r.ID, Time: r.Created, Kind: r.Kind, Merchant: r.Merchant, MerchantName: names[r.Merchant],
		Terminal: r.Terminal, Tx: string(r.Tx), Amount: r.Amount, Channel: r.Channel, Status: string(r.Status), Code: r.Code,
		Offline: r.Kind == wallet.KindOffline, Flags: wallet.OfflineFlags(&r)}
}

func (s *Server) merchantNames(ctx context.Context) map[string]string {
	names := map[string]string{}
	if ms, err := s.svc.Merchants(ctx); err == nil {
		for _, m := range ms {
			names[m.ID] = m.Name
		}
	}
	return names
}

// Handlers.

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ uint32) (any, error) {
	var req loginRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	addr, now := clientAddr(r), s.opt.Now()
	refund, scope, wait := s.thr.admit(addr, now)
	if scope != "" {
		loginThrottled.WithLabelValues(scope).Inc()
		retryAfter(w, wait)
		return nil, protocol.ErrLoginThrottled
	}
	u, err := s.svc.LoginFrom(r.Context(), req.StudentNo, req.Password, addr)
	var locked *wallet.LoginLockedError
	switch {
	case errors.As(err, &locked):
		if locked.Failed {
			loginFailures.Inc()
			loginLocks.Inc()
		} else {
			loginThrottled.WithLabelValues(scopeAccount).Inc()
		}
		retryAfter(w, locked.Until.Sub(now))
		return nil, err
	case errors.Is(err, protocol.ErrLoginFailed):
		loginFailures.Inc()
		return nil, err
	case err != nil:
		return nil, err
	}
	refund()
	var b [32]byte
	if _, err := io.ReadFull(s.opt.Rand, b[:]); err != nil {
		return nil, fmt.Errorf("api: token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	exp := s.opt.Now().Add(s.opt.TokenTTL)
	if err := s.ses.PutSession(r.Context(), tokenHash(tok), u.ID, exp, s.opt.Now()); err != nil {
		return nil, fmt.Errorf("api: session: %w", err)
	}
	return loginResponse{Token: tok, UserID: u.ID, ExpiresAt: exp}, nil
}

// retryAfter tells the client when to try again (whole seconds, at least 1).
func retryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64(max(time.Second, d+time.Second-1)/time.Second), 10))
}

// logout ends the session of the request's token on the server, so a
// token copied from a shared or lost phone stops working at once.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ uint32) (any, error) {
	if err := s.ses.DeleteSession(r.Context(), tokenHash(bearer(r))); err != nil {
		return nil, fmt.Errorf("api: log out: %w", err)
	}
	return map[string]bool{"logged_out": true}, nil
}

func (s *Server) view(ctx context.Context, user uint32, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return s.svc.Wallet(ctx, user)
}

// BankList is the answer of GET /api/v1/banks.
type BankList struct {
	Banks []wallet.Bank `json:"banks"`
}

// banks lists the banks accepted for binding; no login needed (the
// activation guide shows them before the student has an account open).
func (s *Server) banks(w http.ResponseWriter, r *http.Request, _ uint32) (any, error) {
	return BankList{Banks: s.svc.Banks()}, nil
}

func (s *Server) getWallet(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	return s.svc.Wallet(r.Context(), user)
}

func (s *Server) bindCard(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req wallet.BindRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.BindCard(r.Context(), user, req))
}

// confirmed reads a sensitive action's body and checks its payment
// password on the server (rule 13's count and lock) before the action.
func (s *Server) confirmed(r *http.Request, user uint32) error {
	var req confirmRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return err
	}
	return s.svc.ConfirmPassword(r.Context(), user, req.Password)
}

func (s *Server) unbindCard(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	if err := s.confirmed(r, user); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.UnbindCard(r.Context(), user))
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	if err := s.confirmed(r, user); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.Cancel(r.Context(), user))
}

// cancelPreview says what cancelling would end, before the student confirms.
func (s *Server) cancelPreview(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	return s.svc.CancelPreview(r.Context(), user)
}

func (s *Server) reopen(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	return s.view(r.Context(), user, s.svc.Reopen(r.Context(), user))
}

func (s *Server) signPasswordFree(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	if err := s.confirmed(r, user); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.SetPasswordFree(r.Context(), user, true))
}

func (s *Server) endPasswordFree(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	if err := s.confirmed(r, user); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.SetPasswordFree(r.Context(), user, false))
}

func (s *Server) money(ctx context.Context, user uint32, rec *wallet.Record, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	v, err := s.svc.Wallet(ctx, user)
	if err != nil {
		return nil, err
	}
	return moneyResponse{Transaction: s.transaction(ctx, *rec, s.merchantNames(ctx)), Wallet: v}, nil
}

func (s *Server) topUp(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req amountRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	rec, err := s.svc.TopUp(r.Context(), user, idempotencyKey(r), req.Amount)
	return s.money(r.Context(), user, rec, err)
}

func (s *Server) withdraw(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req amountRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	if err := s.svc.ConfirmPassword(r.Context(), user, req.Password); err != nil {
		return nil, err
	}
	rec, err := s.svc.Withdraw(r.Context(), user, idempotencyKey(r), req.Amount)
	return s.money(r.Context(), user, rec, err)
}

func (s *Server) setLimits(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req limitsRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.SetLimits(r.Context(), user, req.PerTransaction, req.Daily))
}

func (s *Server) setPassword(r *http.Request, user uint32, water bool) (any, error) {
	var req passwordRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.SetPassword(r.Context(), user, water, req.OldPassword, req.Password))
}

func (s *Server) setPaymentPassword(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	return s.setPassword(r, user, false)
}

func (s *Server) setWaterPassword(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	return s.setPassword(r, user, true)
}

func (s *Server) addDevice(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req deviceRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	pub, err := base64.StdEncoding.DecodeString(req.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", protocol.ErrBadRequest)
	}
	dc, err := s.svc.RegisterDevice(r.Context(), user, pub)
	if err != nil {
		return nil, err
	}
	return deviceResponse{DeviceID: dc.DeviceID, Certificate: base64.StdEncoding.EncodeToString(dc.Certificate),
		ServerTime: s.opt.Now(), Expires: time.Unix(dc.Expires, 0).UTC()}, nil
}

func (s *Server) deleteDevice(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		return nil, protocol.ErrNotFound
	}
	if err := s.svc.RevokeDevice(r.Context(), user, uint32(id)); err != nil {
		return nil, err
	}
	return map[string]any{"device_id": id, "revoked": true}, nil
}

func (s *Server) cardLost(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	if err := s.confirmed(r, user); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.ReportCardLost(r.Context(), user))
}

// cardFound undoes a card-lost report (解挂), confirmed like the report.
func (s *Server) cardFound(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	if err := s.confirmed(r, user); err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.ReportCardFound(r.Context(), user))
}

func (s *Server) unlinkWeChat(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	return s.view(r.Context(), user, s.svc.UnlinkWeChat(r.Context(), user))
}

// logoutEverywhere ends every session of the student, this one included
// (a phone lost while logged in).
func (s *Server) logoutEverywhere(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	if err := s.ses.DeleteUserSessions(r.Context(), user, ""); err != nil {
		return nil, fmt.Errorf("api: log out everywhere: %w", err)
	}
	return map[string]bool{"logged_out": true}, nil
}

// changeLoginPassword changes the login password and ends every other
// session: whoever knew the old one is logged out.
func (s *Server) changeLoginPassword(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req loginPasswordRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	err := s.svc.ChangeLoginPassword(r.Context(), user, req.OldPassword, req.Password)
	var locked *wallet.LoginLockedError
	if errors.As(err, &locked) {
		retryAfter(w, locked.Until.Sub(s.opt.Now()))
	}
	if err != nil {
		return nil, err
	}
	if err := s.ses.DeleteUserSessions(r.Context(), user, tokenHash(bearer(r))); err != nil {
		return nil, fmt.Errorf("api: log out other sessions: %w", err)
	}
	return map[string]bool{"changed": true}, nil
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	ds, err := s.svc.Devices(r.Context(), user)
	if err != nil {
		return nil, err
	}
	return deviceList{Devices: ds}, nil
}

// resetKind reads which password a reset is for.
func resetKind(kind string) (water bool, err error) {
	switch kind {
	case "payment":
		return false, nil
	case "water":
		return true, nil
	}
	return false, fmt.Errorf("kind %q: %w", kind, protocol.ErrBadRequest)
}

// sendResetCode has the bank text a one-time code to the card's reserved
// phone, for resetting a forgotten payment or water password.
func (s *Server) sendResetCode(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req resetCodeRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	water, err := resetKind(req.Kind)
	if err != nil {
		return nil, err
	}
	return s.svc.SendResetCode(r.Context(), user, water)
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req resetRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	water, err := resetKind(req.Kind)
	if err != nil {
		return nil, err
	}
	return s.view(r.Context(), user, s.svc.ResetPassword(r.Context(), user, water, req.OTPID, req.Code, req.Password))
}

func (s *Server) linkWeChat(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req linkRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	if req.Code == "" || len(req.Code) > 128 {
		return nil, protocol.ErrBadRequest
	}
	return s.view(r.Context(), user, s.svc.LinkWeChat(r.Context(), user, req.Code))
}

func (s *Server) scanPay(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	var req scanPayRequest
	if err := DecodeBody(r.Body, &req); err != nil {
		return nil, err
	}
	rec, err := s.svc.ScanPay(r.Context(), user, idempotencyKey(r), req.QR, req.Amount, req.Password)
	return s.money(r.Context(), user, rec, err)
}

func (s *Server) transactions(w http.ResponseWriter, r *http.Request, user uint32) (any, error) {
	q := r.URL.Query()
	var before int64
	limit := 20
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, protocol.ErrBadRequest
		}
		before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, protocol.ErrBadRequest
		}
		limit = n
	}
	recs, err := s.svc.Transactions(r.Context(), user, before, limit)
	if err != nil {
		return nil, err
	}
	names := s.merchantNames(r.Context())
	out := transactionsResponse{Transactions: make([]Transaction, 0, len(recs))}
	for _, rec := range recs {
		out.Transactions = append(out.Transactions, s.transaction(r.Context(), rec, names))
	}
	if len(recs) == limit {
		out.NextBefore = recs[len(recs)-1].ID
	}
	return out, nil
}
