package console

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"campuspay/protocol"
	"campuspay/server/operator"
	"campuspay/server/wallet"
)

// TerminalLink is a terminal's link as the MQTT side last saw it (from the
// status messages terminals publish: the retained birth and the Last Will).
type TerminalLink struct {
	Terminal string
	Online   bool
	Seen     time.Time // when the authorizer received the last status
	Software string
	// JournalDepth is how many journal entries the terminal had not yet
	// delivered when it said so (-1: it did not say).
	JournalDepth int
	// ConfigRevision is the config revision the terminal runs (0: it did
	// not say).
	ConfigRevision uint64
}

// fleetSource is set by the MQTT side (SetFleet).
type fleetSource = func() []TerminalLink

// SetFleet gives the console the terminals' link states (called by serve
// once its MQTT side runs).
func (c *Console) SetFleet(f func() []TerminalLink) { c.fleet.Store(&f) }

// terminalAdmins rotate credentials: the new password is typed on the box.
var terminalAdmins = []operator.Role{operator.RoleAdmin, operator.RoleHelpdesk}

func init() {
	addRoutes(
		Route{"GET", "/terminals", fleetRoles, (*Console).listTerminals},
		Route{"POST", "/terminals", adminOnly, (*Console).addTerminal},
		Route{"POST", "/terminals/{terminal}/revoke", fleetRoles, (*Console).revokeTerminal},
		Route{"POST", "/terminals/{terminal}/rotate", terminalAdmins, (*Console).rotateTerminal},
		Route{"GET", "/terminals/{terminal}/placard.png", fleetRoles, (*Console).placard},
		Route{"GET", "/merchants", fleetRoles, (*Console).listMerchants},
		Route{"POST", "/merchants", adminOnly, (*Console).addMerchant},
	)
}

// TerminalRow is one terminal of the fleet.
type TerminalRow struct {
	ID             string        `json:"id"`
	Merchant       string        `json:"merchant"`
	MerchantName   string        `json:"merchant_name"`
	Campus         string        `json:"campus"`
	Mode           protocol.Mode `json:"mode"`
	FixedAmount    int64         `json:"fixed_amount,omitempty"`
	Revoked        bool          `json:"revoked"`
	Link           string        `json:"link"` // online, offline or never (no status seen since start)
	LastSeen       time.Time     `json:"last_seen,omitzero"`
	Software       string        `json:"software,omitempty"`
	JournalDepth   *int          `json:"journal_depth"`   // null: not reported
	ConfigRevision uint64        `json:"config_revision"` // the terminal's, or 0 if not reported
	Published      uint64        `json:"published_revision"`
}

// Fleet lists the terminals (of merchant only, if not "") with their links.
func (a *Actions) Fleet(ctx context.Context, links []TerminalLink, merchant string) ([]TerminalRow, error) {
	ts, err := a.Store.Terminals(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	ms, err := a.Store.Merchants(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	rev, err := a.Store.Revision(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	names := map[string]string{}
	for _, m := range ms {
		names[m.ID] = m.Name
	}
	byID := map[string]TerminalLink{}
	for _, l := range links {
		byID[l.Terminal] = l
	}
	out := []TerminalRow{}
	for _, t := range ts {
		if merchant != "" && t.Merchant != merchant {
			continue
		}
		row := TerminalRow{ID: t.ID, Merchant: t.Merchant, MerchantName: names[t.Merchant], Campus: t.Campus, Mode: t.Mode,
			FixedAmount: t.FixedAmount, Revoked: t.Revoked(), Link: "never", Published: rev}
		if l, ok := byID[t.ID]; ok {
			row.Link, row.LastSeen, row.Software, row.ConfigRevision = "offline", l.Seen, l.Software, l.ConfigRevision
			if l.Online {
				row.Link = "online"
			}
			if l.JournalDepth >= 0 {
				d := l.JournalDepth
				row.JournalDepth = &d
			}
		}
		out = append(out, row)
	}
	return out, nil
}

// terminalAction checks the reason and that t exists, runs change and
// audits it if it changed anything.
func (a *Actions) terminalAction(ctx context.Context, actor Actor, id, action, reason string, change func(t *wallet.Terminal) (Outcome, error)) (Outcome, error) {
	if err := checkReason(reason); err != nil {
		return Outcome{}, err
	}
	t, err := a.Store.Terminal(ctx, id)
	if err != nil {
		return Outcome{}, err
	}
	out, err := change(t)
	if err != nil || !out.Changed {
		return out, err
	}
	return out, a.audit(ctx, actor, action, "terminal:"+id, reason, map[string]bool{"revoked": t.Revoked()},
		map[string]bool{"revoked": action == "terminal.revoke"})
}

// RevokeTerminal withdraws a terminal's credentials (a stolen box).
func (a *Actions) RevokeTerminal(ctx context.Context, actor Actor, id, reason string) (Outcome, error) {
	return a.terminalAction(ctx, actor, id, "terminal.revoke", reason, func(t *wallet.Terminal) (Outcome, error) {
		changed, err := a.Svc.RevokeTerminal(ctx, id)
		return Outcome{Changed: changed}, err
	})
}

// RotateTerminal issues a terminal new credentials; the password is in the
// outcome, shown once.
func (a *Actions) RotateTerminal(ctx context.Context, actor Actor, id, reason string) (Outcome, error) {
	return a.terminalAction(ctx, actor, id, "terminal.rotate", reason, func(t *wallet.Terminal) (Outcome, error) {
		pw, err := a.Svc.RotateTerminal(ctx, id)
		return Outcome{Changed: true, Password: pw}, err
	})
}

// AddTerminal registers a terminal and returns its broker password.
func (a *Actions) AddTerminal(ctx context.Context, actor Actor, t wallet.Terminal) (Outcome, error) {
	if _, err := a.Store.Terminal(ctx, t.ID); err == nil {
		return Outcome{}, fmt.Errorf("terminal %s exists (rotate its credentials instead): %w", t.ID, protocol.ErrBadRequest)
	} else if !errors.Is(err, protocol.ErrTerminalUnknown) {
		return Outcome{}, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	pw, err := a.Svc.AddTerminal(ctx, t)
	if err != nil {
		return Outcome{}, err
	}
	after := map[string]any{"merchant": t.Merchant, "mode": t.Mode, "fixed_amount": t.FixedAmount, "campus": t.Campus}
	return Outcome{Changed: true, Password: pw}, a.audit(ctx, actor, "terminal.add", "terminal:"+t.ID, "", nil, after)
}

// AddMerchant creates or renames a merchant.
func (a *Actions) AddMerchant(ctx context.Context, actor Actor, m wallet.Merchant) (Outcome, error) {
	old, err := a.Store.Merchant(ctx, m.ID)
	if err != nil && !errors.Is(err, protocol.ErrMerchantUnknown) {
		return Outcome{}, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if old != nil && *old == m {
		return Outcome{}, nil
	}
	if err := a.Svc.AddMerchant(ctx, m); err != nil {
		return Outcome{}, err
	}
	var before any
	if old != nil {
		before = old
	}
	return Outcome{Changed: true}, a.audit(ctx, actor, "merchant.put", "merchant:"+m.ID, "", before, m)
}

// Placard renders a till's static collection code as a printable PNG.
func (a *Actions) Placard(ctx context.Context, id, fontPath string) ([]byte, error) {
	t, err := a.Store.Terminal(ctx, id)
	if err != nil {
		return nil, err
	}
	m, err := a.Store.Merchant(ctx, t.Merchant)
	if err != nil {
		return nil, err
	}
	key := strings.Join([]string{fontPath, m.Name, t.ID, t.MerchantQR}, "\x00")
	placardMu.Lock()
	b := placards[key]
	placardMu.Unlock()
	if b != nil {
		return b, nil
	}
	b, err = RenderPlacard(Placard{MerchantName: m.Name, Terminal: t.ID, QR: t.MerchantQR}, fontPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	placardMu.Lock()
	if len(placards) >= maxPlacards {
		clear(placards)
	}
	placards[key] = b
	placardMu.Unlock()
	return b, nil
}

// Rendered placards by what they show (a new merchant name or QR makes
// another): a till's placard is printed more than once, and rendering one
// takes a few hundred milliseconds.
var (
	placardMu sync.Mutex
	placards  = map[string][]byte{}
)

const maxPlacards = 32

func (c *Console) links() []TerminalLink {
	if f := c.fleet.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// ownMerchant is the merchant a merchant manager is bound to, "" for the
// other roles (who see all).
func ownMerchant(r *Request) string {
	if r.Op.Role == operator.RoleMerchant {
		return r.Op.Merchant
	}
	return ""
}

func (c *Console) listTerminals(r *Request) (any, error) {
	rows, err := c.act.Fleet(r.Context(), c.links(), ownMerchant(r))
	if err != nil {
		return nil, err
	}
	return map[string]any{"terminals": rows}, nil
}

// terminalOf finds the terminal of the request's path and checks that the
// operator may see its merchant.
func (c *Console) terminalOf(r *Request) (*wallet.Terminal, error) {
	t, err := c.st.Terminal(r.Context(), r.PathValue("terminal"))
	if errors.Is(err, protocol.ErrTerminalUnknown) {
		if r.Op.Role == operator.RoleMerchant {
			return nil, protocol.ErrForbidden // says nothing of other merchants' terminals
		}
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if err := r.Merchant(t.Merchant); err != nil {
		return nil, err
	}
	return t, nil
}

// onTerminal runs a terminal action with the request's reason, on a
// terminal the operator may see.
func (c *Console) onTerminal(r *Request, f func(ctx context.Context, actor Actor, id, reason string) (Outcome, error)) (any, error) {
	var b reasonBody
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	t, err := c.terminalOf(r)
	if err != nil {
		return nil, err
	}
	return f(r.Context(), r.Actor(), t.ID, b.Reason)
}

func (c *Console) revokeTerminal(r *Request) (any, error) {
	return c.onTerminal(r, c.act.RevokeTerminal)
}
func (c *Console) rotateTerminal(r *Request) (any, error) {
	return c.onTerminal(r, c.act.RotateTerminal)
}

func (c *Console) addTerminal(r *Request) (any, error) {
	var b struct {
		ID          string        `json:"id"`
		Merchant    string        `json:"merchant"`
		Mode        protocol.Mode `json:"mode"`
		FixedAmount int64         `json:"fixed_amount"`
		Campus      string        `json:"campus"`
	}
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	return c.act.AddTerminal(r.Context(), r.Actor(), wallet.Terminal{ID: b.ID, Merchant: b.Merchant, Mode: b.Mode, FixedAmount: b.FixedAmount, Campus: b.Campus})
}

func (c *Console) placard(r *Request) (any, error) {
	t, err := c.terminalOf(r)
	if err != nil {
		return nil, err
	}
	b, err := c.act.Placard(r.Context(), t.ID, c.opt.FontPath)
	if err != nil {
		return nil, err
	}
	return &File{ContentType: "image/png", Body: b}, nil
}

func (c *Console) listMerchants(r *Request) (any, error) {
	ms, err := c.st.Merchants(r.Context())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	own := ownMerchant(r)
	out := slices.DeleteFunc(ms, func(m wallet.Merchant) bool { return own != "" && m.ID != own })
	if out == nil {
		out = []wallet.Merchant{}
	}
	type row struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Campus string `json:"campus"`
	}
	rows := make([]row, len(out))
	for i, m := range out {
		rows[i] = row{m.ID, m.Name, m.Campus}
	}
	return map[string]any{"merchants": rows, "campuses": c.svc.Config().Campuses}, nil
}

func (c *Console) addMerchant(r *Request) (any, error) {
	var b struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Campus string `json:"campus"`
	}
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	return c.act.AddMerchant(r.Context(), r.Actor(), wallet.Merchant{ID: b.ID, Name: b.Name, Campus: b.Campus})
}
