package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"campuspay/protocol"
	"campuspay/server/operator"
	"campuspay/server/wallet"
)

// Actor is who does an action: an operator in the console, or the admin
// CLI (Operator 0, Name "cli:USER").
type Actor struct {
	Operator int64
	Name     string
	Role     string
	Remote   string
}

// CLIActor is the admin CLI run by the named system user.
func CLIActor(user string) Actor { return Actor{Name: "cli:" + user, Role: "cli", Remote: "local"} }

// Actions are the back office's operations, shared by the console's
// handlers and the admin CLI: each checks its input, asks for a reason
// where it changes something, changes it through the wallet Service, and
// writes the audit log. Repeating an action whose effect is already there
// (a double click) changes nothing and logs nothing: the answer says
// Changed false.
type Actions struct {
	Svc   *wallet.Service
	Store Store
	Now   func() time.Time
	Rand  io.Reader
}

// MaxReason bounds an action's reason.
const MaxReason = 500

// Audit appends an entry to the audit log for actor: action (e.g.
// "wallet.freeze") on target (e.g. "user:2024001"), why, and the states
// before and after (any JSON-encodable value, nil for none). Handlers of
// other files call it after the change they log.
func (a *Actions) Audit(ctx context.Context, actor Actor, action, target, reason string, before, after any) error {
	return a.audit(ctx, actor, action, target, reason, before, after)
}

func (a *Actions) audit(ctx context.Context, actor Actor, action, target, reason string, before, after any) error {
	e := &operator.AuditEntry{At: a.Now(), Operator: actor.Operator, Name: actor.Name, Role: actor.Role, Action: action,
		Target: target, Reason: reason, Remote: actor.Remote}
	var err error
	if e.Before, err = rawJSON(before); err != nil {
		return err
	}
	if e.After, err = rawJSON(after); err != nil {
		return err
	}
	if err := a.Store.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("%w: audit %s: %v", protocol.ErrInternal, action, err)
	}
	return nil
}

func rawJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: audit state: %v", protocol.ErrInternal, err)
	}
	return b, nil
}

// Audit is Actions.Audit for the operator of r.
func (c *Console) Audit(r *Request, action, target, reason string, before, after any) error {
	return c.act.audit(r.Context(), r.Actor(), action, target, reason, before, after)
}
