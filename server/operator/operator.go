// Package operator holds the back office's domain: the card centre's and
// the merchants' operator accounts, their roles, their console sessions,
// the append-only audit log of what they did, and TOTP one-time codes
// (RFC 6238). The wallet stores (wallet/sqlite, wallet/postgres) keep
// them beside the wallet's own tables (Store); server/console serves the
// console on top.
package operator

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"
)

// Role of an operator; persisted, so the numbers are explicit.
type Role int

const (
	RoleAdmin    Role = 1 // everything, operators included
	RoleHelpdesk Role = 2 // 一卡通服务中心: students, cards, passwords, devices
	RoleFinance  Role = 3 // refunds, settlement, reconciliation
	RoleMerchant Role = 4 // one merchant's sales and terminals (Operator.Merchant)
)

var roleNames = map[Role]string{RoleAdmin: "admin", RoleHelpdesk: "helpdesk", RoleFinance: "finance", RoleMerchant: "merchant"}

func (r Role) String() string {
	if n, ok := roleNames[r]; ok {
		return n
	}
	return "unknown"
}

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { _, ok := roleNames[r]; return ok }

// ParseRole reads a role name.
func ParseRole(s string) (Role, bool) {
	for r, n := range roleNames {
		if n == s {
			return r, true
		}
	}
	return 0, false
}

// MarshalJSON writes the role's name.
func (r Role) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// Roles lists every role, in number order.
func Roles() []Role { return []Role{RoleAdmin, RoleHelpdesk, RoleFinance, RoleMerchant} }

// Operator is one person using the console.
type Operator struct {
	ID           int64
	Name         string // login name, ValidName
	Role         Role
	Merchant     string // RoleMerchant: the one merchant they manage; "" otherwise
	PasswordHash string // bcrypt
	TOTPSecret   []byte // nil: no second factor
	TOTPLast     int64  // last time step accepted (a code is good once)
	Disabled     bool
	Created      time.Time
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,31}$`)

// ValidName reports whether s may be an operator's login name: 2–32 of
// lower-case letters, digits, '.', '_' and '-'.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Session is a logged-in console session, known to the store by the
// SHA-256 of its cookie token (never the token).
type Session struct {
	TokenHash string
	Operator  int64
	Created   time.Time
	Expires   time.Time
}

// AuditEntry is one line of the audit log: who did what to what, why, and
// the state before and after (JSON; null when none). Logins and failed
// logins are entries too (Operator 0 when the name is unknown).
type AuditEntry struct {
	ID       int64           `json:"id"`
	At       time.Time       `json:"at"`
	Operator int64           `json:"operator_id"`
	Name     string          `json:"operator"` // the operator's name (or the name tried)
	Role     string          `json:"role"`
	Action   string          `json:"action"` // e.g. "wallet.freeze", "login.fail"
	Target   string          `json:"target"` // e.g. "user:2024001", "terminal:T-POS-01"
	Reason   string          `json:"reason"`
	Before   json.RawMessage `json:"before"`
	After    json.RawMessage `json:"after"`
	Remote   string          `json:"remote"` // client address
}

// AuditQuery selects audit entries, newest first. Empty fields match all;
// Text matches a substring of the operator, action, target or reason.
type AuditQuery struct {
	Text     string
	Operator string // exact operator name
	Action   string // exact action, or a prefix ending in '.' ("wallet.")
	Target   string // exact target
	BeforeID int64  // only entries with a smaller ID (paging); 0: from the newest
	Limit    int    // at most this many; the store caps it at 500
}

// MaxAuditLimit caps AuditQuery.Limit.
const MaxAuditLimit = 500

// Errors of the store.
var (
	ErrUnknown   = errors.New("operator: no such operator")
	ErrNameTaken = errors.New("operator: name taken")
)

// Store keeps operators, their sessions and the audit log. Both wallet
// stores implement it; the conformance suite (wallet/storetest) checks
// them. The audit log has no update or delete: the database refuses both.
type Store interface {
	AddOperator(ctx context.Context, o *Operator) error                 // assigns ID; ErrNameTaken
	UpdateOperator(ctx context.Context, o *Operator) error              // by ID: role, merchant, password, TOTP, disabled
	Operator(ctx context.Context, id int64) (*Operator, error)          // ErrUnknown
	OperatorByName(ctx context.Context, name string) (*Operator, error) // ErrUnknown
	Operators(ctx context.Context) ([]Operator, error)                  // by name

	// PutOperatorSession stores a session and sweeps the expired ones.
	PutOperatorSession(ctx context.Context, s Session, now time.Time) error
	// OperatorSession returns the session if it has not expired at now, else nil.
	OperatorSession(ctx context.Context, tokenHash string, now time.Time) (*Session, error)
	DeleteOperatorSession(ctx context.Context, tokenHash string) error
	// DeleteOperatorSessions ends every session of an operator (disabled,
	// password changed).
	DeleteOperatorSessions(ctx context.Context, operator int64) error

	AppendAudit(ctx context.Context, e *AuditEntry) error // assigns ID
	AuditLog(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// AuditPatterns turns a query into what every store's SQL takes: q
// bounded (NormalizeAuditQuery); text, the LIKE pattern of q.Text ("" for
// none); prefix, the LIKE pattern of an action prefix (q.Action ending in
// '.', then cleared in q). escape escapes a LIKE pattern (wallet.LikeEscape).
func AuditPatterns(q AuditQuery, escape func(string) string) (nq AuditQuery, text, prefix string) {
	q = NormalizeAuditQuery(q)
	if q.Text != "" {
		text = "%" + escape(q.Text) + "%"
	}
	if strings.HasSuffix(q.Action, ".") {
		prefix, q.Action = escape(q.Action)+"%", ""
	}
	return q, text, prefix
}

// NormalizeAuditQuery bounds a query as every store does: Limit in
// 1..MaxAuditLimit (default 100), BeforeID 0 meaning from the newest.
func NormalizeAuditQuery(q AuditQuery) AuditQuery {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > MaxAuditLimit {
		q.Limit = MaxAuditLimit
	}
	if q.BeforeID <= 0 {
		q.BeforeID = 1 << 62
	}
	return q
}
