package console

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"campuspay/protocol"
	"campuspay/server/operator"
	"campuspay/server/wallet"
)

// studentReaders see students: the desk, and finance (refunds start from
// a student's transactions).
var studentReaders = []operator.Role{operator.RoleAdmin, operator.RoleHelpdesk, operator.RoleFinance}

func init() {
	addRoutes(
		Route{"GET", "/students", studentReaders, (*Console).searchStudents},
		Route{"GET", "/students/{no}", studentReaders, (*Console).getStudent},
		Route{"POST", "/students/{no}/freeze", desk, (*Console).freeze},
		Route{"POST", "/students/{no}/unfreeze", desk, (*Console).unfreeze},
		Route{"POST", "/students/{no}/card/lost", desk, (*Console).cardLost},
		Route{"POST", "/students/{no}/card/found", desk, (*Console).cardFound},
		Route{"POST", "/students/{no}/card/replace", desk, (*Console).cardReplace},
		Route{"POST", "/students/{no}/password-reset", desk, (*Console).passwordReset},
		Route{"POST", "/students/{no}/devices/{device}/revoke", desk, (*Console).deviceRevoke},
	)
}

// MaxSearchResults bounds a student search.
const MaxSearchResults = 50

// StudentRow is one search result.
type StudentRow struct {
	StudentNo string `json:"student_no"`
	Name      string `json:"name"`
	CardUID   string `json:"card_uid"`
	Phone     string `json:"phone"` // masked
	Campus    string `json:"campus"`
	State     string `json:"state"`
	Frozen    bool   `json:"frozen"`
}

// mask keeps the first head and last tail characters of s.
func mask(s string, head, tail int) string {
	if len(s) <= head+tail {
		return s
	}
	return s[:head] + strings.Repeat("*", len(s)-head-tail) + s[len(s)-tail:]
}

// SearchStudents finds students by student number (prefix), name (part),
// card UID or phone (exact). The text is taken literally.
func (a *Actions) SearchStudents(ctx context.Context, text string) ([]StudentRow, error) {
	text, err := searchText(strings.TrimSpace(text), true)
	if err != nil {
		return nil, err
	}
	us, err := a.Store.SearchUsers(ctx, text, MaxSearchResults)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	out := make([]StudentRow, 0, len(us))
	for _, u := range us {
		out = append(out, StudentRow{StudentNo: u.StudentNo, Name: u.Name, CardUID: u.CardUID, Phone: mask(u.Phone, 3, 4),
			Campus: u.Campus, State: u.State.String(), Frozen: u.Frozen})
	}
	return out, nil
}

// StudentPage is everything the desk sees of one student.
type StudentPage struct {
	Wallet       *wallet.View `json:"wallet"` // balance, holds, masked bank card, limits, state
	Phone        string       `json:"phone"`  // masked
	IDNumber     string       `json:"id_number"`
	Devices      []DeviceRow  `json:"devices"`
	Cards        []CardRow    `json:"cards"`
	Transactions []TxRow      `json:"transactions"`
	Debt         int64        `json:"debt"` // cents owed for offline payments (repaid from the next top-up)
}

// DeviceRow is one of the student's phones.
type DeviceRow struct {
	ID        uint32    `json:"id"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	Revoked   bool      `json:"revoked"`
	RevokedAt time.Time `json:"revoked_at,omitzero"` // zero when revoked before the time was kept
}

// CardRow is a campus card of the student: the current one and those
// reported lost.
type CardRow struct {
	UID     string    `json:"uid"`
	Current bool      `json:"current"`
	Lost    bool      `json:"lost"`
	LostAt  time.Time `json:"lost_at,omitzero"`
}

// TxRow is one transaction.
type TxRow struct {
	ID       int64     `json:"id"`
	Created  time.Time `json:"created"`
	Kind     string    `json:"kind"`
	Terminal string    `json:"terminal,omitempty"`
	Merchant string    `json:"merchant,omitempty"`
	Amount   int64     `json:"amount"`
	Channel  string    `json:"channel,omitempty"`
	Status   string    `json:"status"`
	Code     string    `json:"code,omitempty"`
	Flags    []string  `json:"flags,omitempty"` // an offline payment's: after_revoke, code_replayed
}

// RecentTransactions is how many transactions a student page shows.
const RecentTransactions = 20

func (a *Actions) user(ctx context.Context, no string) (*wallet.User, error) {
	u, err := a.Store.UserByStudentNo(ctx, no)
	if err != nil && !errors.Is(err, protocol.ErrUserUnknown) {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	return u, err
}

// Student returns a student's page.
func (a *Actions) Student(ctx context.Context, no string) (*StudentPage, error) {
	u, err := a.user(ctx, no)
	if err != nil {
		return nil, err
	}
	v, err := a.Svc.Wallet(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	p := &StudentPage{Wallet: v, Phone: mask(u.Phone, 3, 4), IDNumber: mask(u.IDNumber, 4, 4),
		Devices: []DeviceRow{}, Cards: []CardRow{}, Transactions: []TxRow{}}
	ds, err := a.Store.Devices(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	for _, d := range ds {
		p.Devices = append(p.Devices, DeviceRow{ID: d.ID, Created: d.Created, Expires: d.Expires, Revoked: d.Revoked, RevokedAt: d.RevokedAt})
	}
	lost, err := a.Store.UserLostCards(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	if u.CardUID != "" {
		p.Cards = append(p.Cards, CardRow{UID: u.CardUID, Current: true})
	}
	for _, c := range lost {
		if c.UID == u.CardUID {
			p.Cards[0].Lost, p.Cards[0].LostAt = true, c.At
			continue
		}
		p.Cards = append(p.Cards, CardRow{UID: c.UID, Lost: true, LostAt: c.At})
	}
	if p.Debt, err = a.Svc.Debt(ctx, u.ID); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	recs, err := a.Svc.Transactions(ctx, u.ID, 0, RecentTransactions)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrInternal, err)
	}
	for _, r := range recs {
		p.Transactions = append(p.Transactions, TxRow{ID: r.ID, Created: r.Created, Kind: r.Kind, Terminal: r.Terminal, Merchant: r.Merchant,
			Amount: r.Amount, Channel: r.Channel, Status: string(r.Status), Code: r.Code, Flags: wallet.OfflineFlags(&r)})
	}
	return p, nil
}

// Outcome is an action's answer: whether it changed anything (false for a
// repeat), and what it produced to be shown once (a temporary password).
type Outcome struct {
	Changed      bool   `json:"changed"`
	TempPassword string `json:"temp_password,omitempty"`
	Password     string `json:"password,omitempty"` // a terminal's new broker password
}

// studentAction runs change on student no after checking the reason, and
// audits it (with the states before and after) if it changed anything.
func (a *Actions) studentAction(ctx context.Context, actor Actor, no, action, reason string,
	state func(u *wallet.User) any, change func(u *wallet.User) (Outcome, error)) (Outcome, error) {
	if err := checkReason(reason); err != nil {
		return Outcome{}, err
	}
	u, err := a.user(ctx, no)
	if err != nil {
		return Outcome{}, err
	}
	before := state(u)
	out, err := change(u)
	if err != nil || !out.Changed {
		return out, err
	}
	if u, err = a.user(ctx, no); err != nil {
		return out, err
	}
	return out, a.audit(ctx, actor, action, "user:"+no, reason, before, state(u))
}

func frozenState(u *wallet.User) any { return map[string]bool{"frozen": u.Frozen} }

// Freeze freezes (frozen) or unfreezes student no's wallet.
func (a *Actions) Freeze(ctx context.Context, actor Actor, no string, frozen bool, reason string) (Outcome, error) {
	action := "wallet.unfreeze"
	if frozen {
		action = "wallet.freeze"
	}
	return a.studentAction(ctx, actor, no, action, reason, frozenState, func(u *wallet.User) (Outcome, error) {
		changed, err := a.Svc.SetFrozen(ctx, u.ID, frozen)
		return Outcome{Changed: changed}, err
	})
}

func (a *Actions) cardState(ctx context.Context) func(u *wallet.User) any {
	return func(u *wallet.User) any {
		lost, _ := a.Store.CardLost(ctx, u.CardUID)
		return map[string]any{"card_uid": u.CardUID, "lost": lost && u.CardUID != ""}
	}
}

// CardLost reports student no's card lost (挂失, lost) or found (解挂).
func (a *Actions) CardLost(ctx context.Context, actor Actor, no string, lost bool, reason string) (Outcome, error) {
	action := "card.found"
	if lost {
		action = "card.lost"
	}
	return a.studentAction(ctx, actor, no, action, reason, a.cardState(ctx), func(u *wallet.User) (Outcome, error) {
		var changed bool
		var err error
		if lost {
			changed, err = a.Svc.ReportLost(ctx, u.ID)
		} else {
			changed, err = a.Svc.UndoCardLost(ctx, u.ID)
		}
		return Outcome{Changed: changed}, err
	})
}

// ReplaceCard gives student no the card uid; the old one is refused at
// every terminal from its next config.
func (a *Actions) ReplaceCard(ctx context.Context, actor Actor, no, uid, reason string) (Outcome, error) {
	return a.studentAction(ctx, actor, no, "card.replace", reason, a.cardState(ctx), func(u *wallet.User) (Outcome, error) {
		_, changed, err := a.Svc.ReplaceCard(ctx, u.ID, uid)
		return Outcome{Changed: changed}, err
	})
}

// ResetPassword resets student no's login, payment or water password.
func (a *Actions) ResetPassword(ctx context.Context, actor Actor, no, which, reason string) (Outcome, error) {
	state := func(u *wallet.User) any {
		// Never the hashes: whether each is set, and the locks.
		return map[string]any{"payment_set": u.PayHash != "", "payment_fails": u.PayFails, "water_set": u.WaterHash != "",
			"water_fails": u.WaterFails}
	}
	return a.studentAction(ctx, actor, no, "password.reset."+which, reason, state, func(u *wallet.User) (Outcome, error) {
		temp, changed, err := a.Svc.ResetPasswordAtDesk(ctx, u.ID, which)
		return Outcome{Changed: changed, TempPassword: temp}, err
	})
}

// RevokeDevice revokes one of student no's phones.
func (a *Actions) RevokeDevice(ctx context.Context, actor Actor, no string, device uint32, reason string) (Outcome, error) {
	state := func(u *wallet.User) any {
		d, err := a.Store.Device(ctx, device)
		if err != nil || d.UserID != u.ID {
			return nil
		}
		return map[string]any{"device": device, "revoked": d.Revoked}
	}
	return a.studentAction(ctx, actor, no, "device.revoke", reason, state, func(u *wallet.User) (Outcome, error) {
		changed, err := a.Svc.RevokeUserDevice(ctx, u.ID, device)
		return Outcome{Changed: changed}, err
	})
}

func (c *Console) searchStudents(r *Request) (any, error) {
	rows, err := c.act.SearchStudents(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"students": rows}, nil
}

func (c *Console) getStudent(r *Request) (any, error) {
	return c.act.Student(r.Context(), r.PathValue("no"))
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// studentOutcome answers an action with its outcome and the student's page
// as it is now.
func (c *Console) studentOutcome(r *Request, o Outcome, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	p, err := c.act.Student(r.Context(), r.PathValue("no"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"outcome": o, "student": p}, nil
}

// switchAction runs an on/off action (freeze, card lost) with the
// request's reason on the student of its path.
func (c *Console) switchAction(r *Request, on bool, f func(ctx context.Context, actor Actor, no string, on bool, reason string) (Outcome, error)) (any, error) {
	var b reasonBody
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	o, err := f(r.Context(), r.Actor(), r.PathValue("no"), on, b.Reason)
	return c.studentOutcome(r, o, err)
}

func (c *Console) freeze(r *Request) (any, error)    { return c.switchAction(r, true, c.act.Freeze) }
func (c *Console) unfreeze(r *Request) (any, error)  { return c.switchAction(r, false, c.act.Freeze) }
func (c *Console) cardLost(r *Request) (any, error)  { return c.switchAction(r, true, c.act.CardLost) }
func (c *Console) cardFound(r *Request) (any, error) { return c.switchAction(r, false, c.act.CardLost) }

func (c *Console) cardReplace(r *Request) (any, error) {
	var b struct {
		Reason string `json:"reason"`
		UID    string `json:"uid"`
	}
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	o, err := c.act.ReplaceCard(r.Context(), r.Actor(), r.PathValue("no"), b.UID, b.Reason)
	return c.studentOutcome(r, o, err)
}

func (c *Console) passwordReset(r *Request) (any, error) {
	var b struct {
		Reason string `json:"reason"`
		Which  string `json:"which"` // login, payment or water
	}
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	switch b.Which {
	case wallet.PasswordLogin, wallet.PasswordPayment, wallet.PasswordWater:
	default:
		return nil, fmt.Errorf("%w: which must be login, payment or water", protocol.ErrBadRequest)
	}
	o, err := c.act.ResetPassword(r.Context(), r.Actor(), r.PathValue("no"), b.Which, b.Reason)
	return c.studentOutcome(r, o, err)
}

func (c *Console) deviceRevoke(r *Request) (any, error) {
	var b reasonBody
	if err := r.Decode(&b); err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(r.PathValue("device"), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: device", protocol.ErrNotFound)
	}
	o, err := c.act.RevokeDevice(r.Context(), r.Actor(), r.PathValue("no"), uint32(id), b.Reason)
	return c.studentOutcome(r, o, err)
}
