// Package console is the back office: the web console the card centre's
// help desk, its finance office and the merchants' managers use (served by
// the authorizer under /console/, its own login, separate from students),
// its JSON API under /console/api/v1/ (documented in openapi.yaml beside
// this file and checked against the routes by a test), and the actions
// behind both, which the admin CLI calls too (actions.go).
//
// # Roles and permissions
//
// Every route names the roles that may call it (Route.Roles); the server
// refuses the others with FORBIDDEN (403) before the handler runs. A
// merchant manager (operator.RoleMerchant) is bound to one merchant: the
// handlers of merchant data check it with Request.Merchant.
//
// # Sessions and CSRF
//
// Logging in (name, password, and the TOTP code when the operator has a
// secret) sets an HttpOnly, SameSite=Strict cookie holding a random token;
// the store knows the session by the token's SHA-256 only, so a copy of
// the database logs nobody in. A session expires Options.SessionTTL after
// login and ends at logout. Every state-changing request (any method but
// GET and HEAD) must carry the session's CSRF token in the X-CSRF-Token
// header (a hash of the cookie token, so a page of another site, which can
// neither read the cookie nor this page, cannot make it), and a JSON body.
//
// # Adding a page or an API route from another file
//
// A file of this package adds routes in an init function:
//
//	func init() {
//		addRoutes(
//			Route{"POST", "/refunds", finance, (*Console).refund},
//		)
//	}
//
// (paths are under /console/api/v1; finance and the other role sets are
// below), documents them in openapi.yaml (TestOpenAPI fails otherwise) and
// adds a page as assets/pages/NAME.js, which calls Console.page(...) (see
// assets/console.js). index.html loads every script in assets/pages in
// name order; the page's roles decide whether the menu shows it. State-
// changing actions call Console.Audit (or Actions.audit) with a reason.
package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"campuspay/protocol"
	"campuspay/server/api"
	"campuspay/server/operator"
	"campuspay/server/settle"
	"campuspay/server/wallet"
)

// Prefix is where the console is mounted; APIPrefix its API.
const (
	Prefix    = "/console/"
	APIPrefix = "/console/api/v1"
)

// MaxBody bounds a JSON request body (uploads have their own bound).
const MaxBody = 64 << 10

// cookieName holds the session token.
const cookieName = "campuspay_console"

// Store is what the console keeps: the wallet's state and the operators.
type Store interface {
	wallet.Store
	operator.Store
}

// Options configure a Console.
type Options struct {
	Now        func() time.Time // default time.Now
	Rand       io.Reader        // session tokens; default crypto/rand
	SessionTTL time.Duration    // default 8 h: one shift
	Log        *slog.Logger     // default slog.Default()
	// SecureCookie marks the session cookie Secure (the authorizer serves
	// HTTPS).
	SecureCookie bool
	// FontPath is a TrueType/OpenType font (collection) with Chinese
	// glyphs for the printed placards; default DefaultFontPath.
	FontPath string
	// Issuer names the console in authenticator apps (TOTP); default "campuspay".
	Issuer string
	// Parties are the outside sides of the reconciliation page (the bank,
	// WeChat Pay); none: the page answers BANK_UNAVAILABLE (money.go).
	Parties []settle.Party
}

// Console serves the back office.
type Console struct {
	svc *wallet.Service
	st  Store
	opt Options
	act *Actions
	mux *http.ServeMux

	fleet  atomic.Pointer[fleetSource] // SetFleet
	roster rosterJobs

	failMu sync.Mutex
	fails  map[string]*loginFails // by operator name
}

// Route is one console API operation.
type Route struct {
	Method, Path string          // Path under APIPrefix, with {name} wildcards
	Roles        []operator.Role // who may call it
	Handle       func(c *Console, r *Request) (any, error)
}

// Role sets of the routes.
var (
	anyRole   = operator.Roles()
	adminOnly = []operator.Role{operator.RoleAdmin}
	desk      = []operator.Role{operator.RoleAdmin, operator.RoleHelpdesk}
	finance   = []operator.Role{operator.RoleAdmin, operator.RoleFinance}
	// fleetRoles see terminals and merchants; a merchant manager only
	// their own.
	fleetRoles = []operator.Role{operator.RoleAdmin, operator.RoleHelpdesk, operator.RoleMerchant}
)

// routes are every file's routes (addRoutes); the session routes need no
// login and are listed by New.
var routes []Route

// addRoutes adds routes; call it from an init function.
func addRoutes(rs ...Route) { routes = append(routes, rs...) }

// publicRoutes need no session.
var publicRoutes = map[string]bool{"POST /login": true}

func init() {
	addRoutes(
		Route{"POST", "/login", anyRole, (*Console).login},
		Route{"POST", "/logout", anyRole, (*Console).logout},
		Route{"GET", "/me", anyRole, (*Console).me},
	)
}

// Routes returns "METHOD path" (full path) of every API route, for the
// documentation check.
func Routes() []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.Method + " " + APIPrefix + r.Path
	}
	return out
}

// RouteRoles returns, for each "METHOD path" (full path), the roles allowed.
func RouteRoles() map[string][]operator.Role {
	out := map[string][]operator.Role{}
	for _, r := range routes {
		out[r.Method+" "+APIPrefix+r.Path] = r.Roles
	}
	return out
}

// New makes the console. st must be the store svc uses.
func New(svc *wallet.Service, st Store, opt Options) *Console {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = 8 * time.Hour
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.FontPath == "" {
		opt.FontPath = DefaultFontPath
	}
	if opt.Issuer == "" {
		opt.Issuer = "campuspay"
	}
	c := &Console{svc: svc, st: st, opt: opt, mux: http.NewServeMux(), fails: map[string]*loginFails{}}
	c.act = &Actions{Svc: svc, Store: st, Now: opt.Now, Rand: opt.Rand}
	for _, rt := range routes {
		c.mux.HandleFunc(rt.Method+" "+APIPrefix+rt.Path, c.wrap(rt))
	}
	c.mux.HandleFunc(APIPrefix+"/", func(w http.ResponseWriter, r *http.Request) { writeError(w, protocol.ErrNotFound) })
	c.mux.HandleFunc("GET "+Prefix+"{$}", c.index)
	c.mux.HandleFunc("GET "+Prefix+"assets/", c.asset)
	c.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	return c
}

// Actions returns the console's actions (the admin CLI's too).
func (c *Console) Actions() *Actions { return c.act }

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'")
	c.mux.ServeHTTP(w, r)
}

// Request is an authenticated API request.
type Request struct {
	*http.Request
	Op      *operator.Operator
	Session *operator.Session
	body    []byte
	w       http.ResponseWriter
}

// Decode reads the JSON body into v, refusing unknown fields.
func (r *Request) Decode(v any) error {
	d := json.NewDecoder(bytes.NewReader(r.body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", protocol.ErrBadRequest, err)
	}
	return nil
}

// Actor is who does an action, for the audit log.
func (r *Request) Actor() Actor {
	return Actor{Operator: r.Op.ID, Name: r.Op.Name, Role: r.Op.Role.String(), Remote: remoteAddr(r.Request)}
}

// Merchant refuses a merchant manager access to another merchant's data
// (FORBIDDEN); other roles see every merchant.
func (r *Request) Merchant(id string) error {
	if r.Op.Role == operator.RoleMerchant && r.Op.Merchant != id {
		return protocol.ErrForbidden
	}
	return nil
}

func remoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// File is a handler's non-JSON answer (a PNG, a CSV).
type File struct {
	ContentType string
	Name        string // download name; "" shows it inline
	Body        []byte
}

// Status maps a reason to its HTTP status.
func Status(r *protocol.Reason) int {
	switch r {
	case protocol.ErrForbidden, protocol.ErrCSRF:
		return http.StatusForbidden
	case protocol.ErrOperatorLogin:
		return http.StatusUnauthorized
	case protocol.ErrOperatorLoginLocked:
		return http.StatusLocked
	case protocol.ErrReasonRequired, protocol.ErrSearchInvalid, protocol.ErrOperatorInvalid, protocol.ErrCardUIDInvalid,
		protocol.ErrUploadInvalid:
		return http.StatusBadRequest
	case protocol.ErrOperatorExists:
		return http.StatusConflict
	}
	return api.Status(r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"INTERNAL"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	r := protocol.AsReason(err)
	writeJSON(w, Status(r), r)
}

// tokenHash is how the store knows a session.
func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// csrfToken is a session's CSRF token: derived from the cookie token, so
// it needs no storage, and unguessable without it.
func csrfToken(tok string) string {
	h := sha256.Sum256([]byte("campuspay console csrf\x00" + tok))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// wrap authenticates, checks the role and CSRF, and encodes the answer.
func (c *Console) wrap(rt Route) http.HandlerFunc {
	public := publicRoutes[rt.Method+" "+rt.Path]
	return func(w http.ResponseWriter, hr *http.Request) {
		req := &Request{Request: hr, w: w}
		if hr.Method != http.MethodGet && hr.Method != http.MethodHead {
			if !strings.HasPrefix(hr.Header.Get("Content-Type"), "application/json") && !isUpload(hr) {
				writeError(w, fmt.Errorf("%w: want a JSON body", protocol.ErrBadRequest))
				return
			}
			limit := int64(MaxBody)
			if isUpload(hr) {
				limit = MaxUpload
			}
			b, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, limit))
			if err != nil {
				writeError(w, fmt.Errorf("%w: body: %v", protocol.ErrBadRequest, err))
				return
			}
			req.body = b
		}
		if !public {
			tok, err := c.session(hr.Context(), req)
			if err != nil {
				writeError(w, err)
				return
			}
			if hr.Method != http.MethodGet && hr.Method != http.MethodHead &&
				subtle.ConstantTimeCompare([]byte(hr.Header.Get("X-CSRF-Token")), []byte(csrfToken(tok))) != 1 {
				writeError(w, protocol.ErrCSRF)
				return
			}
			if !slices.Contains(rt.Roles, req.Op.Role) {
				writeError(w, protocol.ErrForbidden)
				return
			}
		}
		v, err := rt.Handle(c, req)
		if err != nil {
			if r := protocol.AsReason(err); r == protocol.ErrInternal {
				c.opt.Log.Error("console", "route", rt.Method+" "+rt.Path, "err", err)
			}
			writeError(w, err)
			return
		}
		if f, ok := v.(*File); ok {
			w.Header().Set("Content-Type", f.ContentType)
			w.Header().Set("Cache-Control", "no-store")
			if f.Name != "" {
				w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", f.Name))
			}
			w.Write(f.Body)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// session finds the request's operator; it returns the cookie token.
func (c *Console) session(ctx context.Context, req *Request) (string, error) {
	ck, err := req.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return "", protocol.ErrUnauthorized
	}
	ses, err := c.st.OperatorSession(ctx, tokenHash(ck.Value), c.opt.Now())
	if err != nil {
		return "", fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if ses == nil {
		return "", protocol.ErrUnauthorized
	}
	op, err := c.st.Operator(ctx, ses.Operator)
	if errors.Is(err, operator.ErrUnknown) {
		return "", protocol.ErrUnauthorized
	}
	if err != nil {
		return "", fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if op.Disabled {
		return "", protocol.ErrUnauthorized
	}
	req.Op, req.Session = op, ses
	return ck.Value, nil
}

// Login throttling per operator name: after maxLoginFails failures in a
// row the name is locked for loginLock, whoever tries.
const (
	maxLoginFails = 5
	loginLock     = 15 * time.Minute
)

type loginFails struct {
	n     int
	until time.Time
}

type loginBody struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	TOTP     string `json:"totp,omitempty"`
}

// OperatorView is an operator as the console shows them.
type OperatorView struct {
	Name     string        `json:"name"`
	Role     operator.Role `json:"role"`
	Merchant string        `json:"merchant,omitempty"`
	TOTP     bool          `json:"totp"`
}

func viewOperator(o *operator.Operator) OperatorView {
	return OperatorView{Name: o.Name, Role: o.Role, Merchant: o.Merchant, TOTP: len(o.TOTPSecret) > 0}
}

type sessionView struct {
	Operator OperatorView `json:"operator"`
	CSRF     string       `json:"csrf"`
	Expires  time.Time    `json:"expires"`
}

// dummyHash is compared against when the name is unknown, so that a login
// takes as long either way.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.MinCost)

func (c *Console) login(r *Request) (any, error) {
	var b loginBody
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	ctx, now := r.Context(), c.opt.Now()
	fail := func(why string, op *operator.Operator) error {
		e := Actor{Name: b.Name, Remote: remoteAddr(r.Request)}
		if op != nil {
			e.Operator, e.Role = op.ID, op.Role.String()
		}
		if len(e.Name) > 64 {
			e.Name = e.Name[:64]
		}
		c.failMu.Lock()
		f := c.fails[b.Name]
		if f == nil && len(c.fails) < 10_000 { // bounded: names are attacker-chosen
			f = &loginFails{}
			c.fails[b.Name] = f
		}
		locked := false
		if f != nil {
			if f.n++; f.n >= maxLoginFails {
				f.n, f.until = 0, now.Add(loginLock)
				locked = true
			}
		}
		c.failMu.Unlock()
		if err := c.act.audit(ctx, e, "login.fail", "operator:"+e.Name, why, nil, nil); err != nil {
			return err
		}
		if locked {
			return protocol.ErrOperatorLoginLocked
		}
		return protocol.ErrOperatorLogin
	}
	c.failMu.Lock()
	if f := c.fails[b.Name]; f != nil && now.Before(f.until) {
		c.failMu.Unlock()
		return nil, protocol.ErrOperatorLoginLocked
	}
	c.failMu.Unlock()
	op, err := c.st.OperatorByName(ctx, b.Name)
	if err != nil && !errors.Is(err, operator.ErrUnknown) {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if op == nil {
		bcrypt.CompareHashAndPassword(dummyHash, []byte(b.Password))
		return nil, fail("unknown name", nil)
	}
	if bcrypt.CompareHashAndPassword([]byte(op.PasswordHash), []byte(b.Password)) != nil {
		return nil, fail("wrong password", op)
	}
	if op.Disabled {
		return nil, fail("disabled", op)
	}
	if len(op.TOTPSecret) > 0 {
		step, ok := operator.CheckTOTP(op.TOTPSecret, b.TOTP, now, op.TOTPLast)
		if !ok {
			return nil, fail("wrong one-time code", op)
		}
		op.TOTPLast = step
		if err := c.st.UpdateOperator(ctx, op); err != nil {
			return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
		}
	}
	c.failMu.Lock()
	delete(c.fails, b.Name)
	c.failMu.Unlock()
	var raw [32]byte
	if _, err := io.ReadFull(c.opt.Rand, raw[:]); err != nil {
		return nil, fmt.Errorf("%w: token: %v", protocol.ErrInternal, err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	ses := operator.Session{TokenHash: tokenHash(tok), Operator: op.ID, Created: now, Expires: now.Add(c.opt.SessionTTL)}
	if err := c.st.PutOperatorSession(ctx, ses, now); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	a := Actor{Operator: op.ID, Name: op.Name, Role: op.Role.String(), Remote: remoteAddr(r.Request)}
	if err := c.act.audit(ctx, a, "login.ok", "operator:"+op.Name, "", nil, nil); err != nil {
		return nil, err
	}
	http.SetCookie(r.w, &http.Cookie{Name: cookieName, Value: tok, Path: strings.TrimSuffix(Prefix, "/"),
		HttpOnly: true, Secure: c.opt.SecureCookie, SameSite: http.SameSiteStrictMode}) // no Expires: the server ends the session
	return sessionView{Operator: viewOperator(op), CSRF: csrfToken(tok), Expires: ses.Expires}, nil
}

func (c *Console) logout(r *Request) (any, error) {
	if err := c.st.DeleteOperatorSession(r.Context(), r.Session.TokenHash); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if err := c.act.audit(r.Context(), r.Actor(), "logout", "operator:"+r.Op.Name, "", nil, nil); err != nil {
		return nil, err
	}
	http.SetCookie(r.w, &http.Cookie{Name: cookieName, Value: "", Path: strings.TrimSuffix(Prefix, "/"),
		HttpOnly: true, Secure: c.opt.SecureCookie, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	return map[string]bool{"ok": true}, nil
}

func (c *Console) me(r *Request) (any, error) {
	ck, _ := r.Cookie(cookieName)
	return sessionView{Operator: viewOperator(r.Op), CSRF: csrfToken(ck.Value), Expires: r.Session.Expires}, nil
}

//go:embed assets
var assets embed.FS

var indexTmpl = template.Must(template.New("index").ParseFS(assets, "assets/index.html"))

// index serves the page with every page script of assets/pages.
func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	pages, err := fs.Glob(assets, "assets/pages/*.js")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for i, p := range pages {
		pages[i] = strings.TrimPrefix(p, "assets/")
	}
	var b bytes.Buffer
	if err := indexTmpl.ExecuteTemplate(&b, "index.html", map[string]any{"Pages": pages}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b.Bytes())
}

var contentTypes = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

func (c *Console) asset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, Prefix)
	ct, ok := contentTypes[path.Ext(name)]
	b, err := fs.ReadFile(assets, path.Clean(name))
	if !ok || err != nil || name == "assets/index.html" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}
