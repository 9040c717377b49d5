package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"campuspay/protocol"
	"campuspay/server/operator"
)

// MinOperatorPassword is the shortest operator password accepted.
const MinOperatorPassword = 10

// NewOperator is what AddOperator needs.
type NewOperator struct {
	Name     string
	Role     operator.Role
	Merchant string // RoleMerchant only: an existing merchant
	Password string
	TOTP     bool // make a TOTP secret (returned once)
}

// AddOperator creates an operator account. With TOTP it returns the new
// secret, shown once (the store keeps it encrypted).
func (a *Actions) AddOperator(ctx context.Context, actor Actor, n NewOperator) (*operator.Operator, []byte, error) {
	if !operator.ValidName(n.Name) || !n.Role.Valid() || (n.Role == operator.RoleMerchant) != (n.Merchant != "") {
		return nil, nil, protocol.ErrOperatorInvalid
	}
	if n.Merchant != "" {
		if _, err := a.Store.Merchant(ctx, n.Merchant); err != nil {
			return nil, nil, fmt.Errorf("merchant %q: %w", n.Merchant, err)
		}
	}
	if utf8.RuneCountInString(n.Password) < MinOperatorPassword {
		return nil, nil, fmt.Errorf("at least %d characters: %w", MinOperatorPassword, protocol.ErrPasswordWeak)
	}
	h, err := a.Svc.HashPassword(n.Password)
	if err != nil {
		return nil, nil, err
	}
	o := &operator.Operator{Name: n.Name, Role: n.Role, Merchant: n.Merchant, PasswordHash: h, Created: a.Now()}
	if n.TOTP {
		o.TOTPSecret = make([]byte, operator.TOTPSecretSize)
		if _, err := io.ReadFull(a.Rand, o.TOTPSecret); err != nil {
			return nil, nil, fmt.Errorf("%w: totp secret: %v", protocol.ErrInternal, err)
		}
	}
	if err := a.Store.AddOperator(ctx, o); errors.Is(err, operator.ErrNameTaken) {
		return nil, nil, protocol.ErrOperatorExists
	} else if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	after := viewOperator(o)
	if err := a.audit(ctx, actor, "operator.add", "operator:"+o.Name, "", nil, after); err != nil {
		return nil, nil, err
	}
	return o, o.TOTPSecret, nil
}

// SetOperatorDisabled disables (or enables again) an operator; disabling
// ends their sessions.
func (a *Actions) SetOperatorDisabled(ctx context.Context, actor Actor, name string, disabled bool, reason string) (bool, error) {
	if err := checkReason(reason); err != nil {
		return false, err
	}
	o, err := a.Store.OperatorByName(ctx, name)
	if errors.Is(err, operator.ErrUnknown) {
		return false, protocol.ErrNotFound
	} else if err != nil {
		return false, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if o.Disabled == disabled {
		return false, nil
	}
	o.Disabled = disabled
	if err := a.Store.UpdateOperator(ctx, o); err != nil {
		return false, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if disabled {
		if err := a.Store.DeleteOperatorSessions(ctx, o.ID); err != nil {
			return false, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
		}
	}
	action := "operator.enable"
	if disabled {
		action = "operator.disable"
	}
	return true, a.audit(ctx, actor, action, "operator:"+name, reason, map[string]bool{"disabled": !disabled}, map[string]bool{"disabled": disabled})
}

// checkReason requires a reason of 1..MaxReason characters.
func checkReason(s string) error {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxReason {
		return protocol.ErrReasonRequired
	}
	return nil
}
