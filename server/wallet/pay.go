package wallet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"campuspay/protocol"
	"campuspay/server/bank"
	"campuspay/server/ledger"
)

// kindTombstone marks a transaction reversed before it was ever seen: a
// later OpPay with its ID is refused with ErrTxReversed.
const kindTombstone = "tombstone"

// errPending is returned by a money step whose outcome is not known yet
// (bank unavailable, WeChat USERPAYING): the record is left pending.
var errPending = errors.New("wallet: outcome pending")

// ErrRecordExists is PaymentStore.PutPayment's refusal of a payment whose
// key is recorded already: nothing was written.
var ErrRecordExists = errors.New("wallet: the transaction is recorded already")

// ErrPayerChanged is PaymentStore.PutPayment's refusal of a payment whose
// student changed after the read it was decided on: nothing was written.
var ErrPayerChanged = errors.New("wallet: the student changed since the payment was decided")

// HandleRequest answers one terminal request (OpPay, OpQuery, OpReverse,
// OpHold, OpCapture, OpVoid). It never returns nil. It is idempotent by
// (req.Terminal, req.Tx): the same pay or hold again returns the original
// response and moves no money; the same Tx with a different content is
// refused with ErrTxConflict.
func (s *Service) HandleRequest(ctx context.Context, req *protocol.Request) *protocol.Response {
	var resp *protocol.Response
	switch {
	case req == nil:
		req = &protocol.Request{}
		resp = declined(protocol.ErrBadRequest)
	case req.Validate() != nil:
		resp = declined(protocol.ErrBadRequest)
	default:
		resp = s.handle(ctx, req)
	}
	resp.V, resp.Op, resp.Tx, resp.Terminal, resp.ServerTime = protocol.Version, req.Op, req.Tx, req.Terminal, s.now()
	return resp
}

// HandleRequestFirst is HandleRequest for a caller that publishes the
// answer itself (the MQTT authorizer): it returns the answer as soon as it
// is decided and durable, and finish, which the caller must call once the
// answer is on its way (it releases the transaction). A balance payment
// written in one transaction with its record (PaymentStore) leaves finish
// nothing else to do. Otherwise, for a balance payment the ledger
// transfer is the commit point (DESIGN §6: the transfer's key tells whether it was
// posted), so the record's final write is left to finish instead of
// delaying the terminal by one more commit. finish writes it and only then
// releases the transaction, so a query, retry or reversal of the same
// transaction finds the final record; a crash before it leaves the record
// processing with its transfer posted, which a query or Recover completes
// as approved. The response is the caller's to change before finish.
func (s *Service) HandleRequestFirst(ctx context.Context, req *protocol.Request) (*protocol.Response, func()) {
	d := &deferred{}
	defer func() {
		if r := recover(); r != nil {
			d.run() // never leave the transaction locked
			panic(r)
		}
	}()
	resp := s.HandleRequest(context.WithValue(ctx, deferredKey{}, d), req)
	return resp, d.run
}

// deferred is the final write and the transaction unlock that
// HandleRequestFirst leaves to its caller; nil funcs when nothing was left.
type deferred struct {
	save   func()
	unlock func()
	once   sync.Once
}

type deferredKey struct{}

// run writes and unlocks, once, and unlocks even if the write panics.
func (d *deferred) run() {
	d.once.Do(func() {
		if d.unlock != nil {
			defer d.unlock()
		}
		if d.save != nil {
			d.save()
		}
	})
}

// deferredOf returns the request's deferred state when its caller takes
// the answer first (HandleRequestFirst), else nil.
func deferredOf(ctx context.Context) *deferred {
	d, _ := ctx.Value(deferredKey{}).(*deferred)
	return d
}

func declined(err error) *protocol.Response {
	r := &protocol.Response{Status: protocol.StatusDeclined}
	r.SetReason(protocol.AsReason(err))
	return r
}

func (s *Service) handle(ctx context.Context, req *protocol.Request) *protocol.Response {
	if req.Op == protocol.OpPay || req.Op == protocol.OpHold {
		// Shed before any work: an overloaded authorizer that reaches a
		// request only after its terminal gave up answers it at once, moves
		// no money and records nothing (the terminal reverses the Tx).
		if err := s.checkDeadline(req, s.now()); err != nil {
			return declined(err)
		}
	}
	t, err := s.terminal(ctx, req.Terminal)
	if err != nil {
		return declined(err)
	}
	if t.Revoked() && (req.Op == protocol.OpPay || req.Op == protocol.OpHold) {
		return declined(protocol.ErrTerminalRevoked) // what it started before may still be settled
	}
	key := "T:" + req.Terminal + ":" + string(req.Tx)
	unlock := s.txLocks.lock(key)
	if d := deferredOf(ctx); d != nil {
		d.unlock = unlock // released by the caller's finish, after the deferred write
	} else {
		defer unlock()
	}
	if req.Op == protocol.OpPay && s.firstTry(req) {
		return s.pay(ctx, t, req, key, nil, true)
	}
	rec, err := s.st.Record(ctx, key)
	if err != nil {
		return declined(err)
	}
	switch req.Op {
	case protocol.OpPay:
		return s.pay(ctx, t, req, key, rec, false)
	case protocol.OpQuery:
		return s.query(ctx, t, rec)
	case protocol.OpReverse:
		return s.reverse(ctx, t, req, key, rec)
	case protocol.OpHold:
		return s.hold(ctx, t, req, key, rec)
	case protocol.OpCapture:
		return s.capture(ctx, t, rec, req.Amount, req.ML)
	case protocol.OpVoid:
		return s.void(ctx, rec)
	}
	return declined(protocol.ErrUnsupportedOp)
}

// firstTry reports whether a pay request may go without looking up its
// key first: a code paid from the balance in one transaction with its
// record (payInOne), whose write refuses a key recorded before
// (ErrRecordExists). Nearly every payment is a first try, and the look-up
// was one of its two reads; a retry is found by that write, or by the
// look-up every other step that writes or calls out makes first
// (Service.askEarlier).
func (s *Service) firstTry(req *protocol.Request) bool {
	if req.Cred == nil || req.Cred.Kind != protocol.CredCode {
		return false
	}
	p, one := s.st.(PaymentStore)
	return one && p.PaysInto(s.led)
}

// requestHash identifies what a pay or hold asks for. The sealed secret is
// left out: sealing is randomised, so a retry carries different bytes.
func requestHash(req *protocol.Request) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n", req.Op, req.Amount)
	if req.Cred != nil {
		fmt.Fprintf(h, "%s\n%s", req.Cred.Kind, req.Cred.Text)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// replay answers a repeated request from its record.
func (s *Service) replay(ctx context.Context, t *Terminal, rec *Record) *protocol.Response {
	switch rec.Status {
	case StatusProcessing, protocol.StatusPending:
		return s.resume(ctx, t, rec)
	case StatusReversing: // the reversal was asked for and will complete
		return &protocol.Response{Status: protocol.StatusReversed, Amount: rec.Amount, Channel: rec.Channel}
	}
	var r protocol.Response
	if len(rec.Response) == 0 || json.Unmarshal(rec.Response, &r) != nil {
		r = protocol.Response{Status: rec.Status, Amount: rec.Amount, Channel: rec.Channel}
		if rec.Code != "" {
			r.SetReason(reasonOf(rec.Code).(*protocol.Reason))
		}
	}
	return &r
}

// save stores the response as the record's final state and returns it.
func (s *Service) save(ctx context.Context, rec *Record, r *protocol.Response) *protocol.Response {
	if r2, ok := s.askEarlier(ctx, rec); ok {
		return r2 // a retry: its first answer stands, not this one
	}
	if r.Code == protocol.ErrInternal.Code {
		// Our own trouble (storage, ledger) is never recorded as the
		// answer: the record keeps its state and a retry resumes it.
		return r
	}
	s.answered(rec, r)
	if err := s.st.PutRecord(ctx, rec); err != nil {
		// The money step is done and idempotent: the retry re-does
		// nothing and records again.
		return declined(fmt.Errorf("wallet: record %s: %w", rec.Key, err))
	}
	return r
}

// finishRecord is save for the last write of a payment answered before it
// (HandleRequestFirst): it writes over the intent only, never over what
// another authorizer did with the payment meanwhile. A failed write leaves
// the intent, which a query or Recover completes from the ledger.
func (s *Service) finishRecord(ctx context.Context, rec *Record, r *protocol.Response) {
	s.answered(rec, r)
	s.st.FinishRecord(ctx, rec) //nolint:errcheck // see above
}

// answered sets rec's final state from its answer r.
func (s *Service) answered(rec *Record, r *protocol.Response) {
	rec.Status, rec.Code, rec.Updated = r.Status, r.Code, s.now()
	if r.Amount != 0 {
		rec.Amount = r.Amount
	}
	if r.Channel != "" {
		rec.Channel = r.Channel
	}
	rec.Response, _ = protocol.MarshalResponse(r)
}

func tombstoned() *protocol.Response {
	r := &protocol.Response{Status: protocol.StatusReversed}
	r.SetReason(protocol.ErrTxReversed)
	return r
}

// pay authorises a payment by code, card or WeChat code.
func (s *Service) pay(ctx context.Context, t *Terminal, req *protocol.Request, key string, rec *Record, unchecked bool) *protocol.Response {
	h := requestHash(req)
	if rec != nil {
		return s.payAgain(ctx, t, h, rec)
	}
	now := s.now()
	rec = &Record{Key: key, Kind: KindPayment, Terminal: t.ID, Tx: req.Tx, Merchant: t.Merchant,
		Amount: req.Amount, ReqHash: h, Created: now, Updated: now}
	if unchecked {
		rec.unchecked = true
	}
	r := s.payNew(ctx, t, req, rec)
	if rec.found != nil {
		// A retry, found by a step of its try: answered as the first
		// try was, with the student's lock released (resuming a pending
		// payment takes it).
		return s.payAgain(ctx, t, h, rec.found)
	}
	return r
}

// payNew authorises a payment whose key was not recorded (or not looked
// up: then rec.unchecked is set, see Service.askEarlier).
func (s *Service) payNew(ctx context.Context, t *Terminal, req *protocol.Request, rec *Record) *protocol.Response {
	now := rec.Created
	if t.Mode == protocol.ModeShower {
		return s.save(ctx, rec, declined(protocol.ErrUnsupportedOp))
	}
	text := strings.TrimSpace(req.Cred.Text)
	var uid, device uint32 // device: the code's
	byCode := false
	switch req.Cred.Kind {
	case protocol.CredCard:
		u, err := s.cardUser(ctx, text)
		if err != nil {
			return s.save(ctx, rec, declined(err))
		}
		uid = u.ID
	case protocol.CredCode, protocol.CredWeChat:
		switch k := protocol.Classify(text); k {
		case protocol.KindWeChat:
			if r, ok := s.askEarlier(ctx, rec); ok {
				return r
			}
			return s.payWeChat(ctx, t, rec, text)
		case protocol.KindPayCode, protocol.KindIdentity:
			var err error
			byCode = true
			if uid, device, rec.use, err = s.codeUser(text, now); err != nil {
				return s.save(ctx, rec, declined(err))
			}
		case protocol.KindAlipay, protocol.KindUnionPay:
			return s.save(ctx, rec, declined(protocol.ErrUnsupportedCode))
		case protocol.KindMerchantQR:
			return s.save(ctx, rec, declined(protocol.ErrCodeWrongPurpose))
		case protocol.KindMalformed:
			return s.save(ctx, rec, declined(protocol.ErrCodeMalformed))
		default:
			return s.save(ctx, rec, declined(protocol.ErrUnknownCode))
		}
	case protocol.CredFace: // reserved: refused, after the 免密 gate it will keep
		return s.save(ctx, rec, declined(s.faceUser(ctx, text)))
	default:
		return s.save(ctx, rec, declined(protocol.ErrUnsupportedOp))
	}
	rec.UserID = uid
	defer s.lockUser(uid)()
	// A payment by code paid in one transaction may be decided on the
	// student read for an earlier payment (payerCache): its write checks
	// the student's version, and on a change or a refusal it is decided
	// again, once, on a fresh read.
	cached := byCode && s.firstTry(req)
	for {
		u, fromCache, err := s.payerOf(ctx, uid, device, byCode, cached)
		if errors.Is(err, protocol.ErrDeviceRevoked) {
			rec.UserID, rec.use = 0, nil // recorded as a refusal of no one's, as the code's other refusals
			return s.save(ctx, rec, declined(err))
		} else if errors.Is(err, protocol.ErrUserUnknown) {
			return s.save(ctx, rec, declined(err))
		} else if err != nil {
			return declined(err)
		}
		r, again := s.payAs(ctx, req, rec, u, fromCache)
		if !again {
			return r
		}
		s.payers.drop(uid, device)
		cached = false
	}
}

// payerOf reads the paying student (payer), or with cached takes them from
// the cache (fromCache); a student read with cached is kept there.
func (s *Service) payerOf(ctx context.Context, uid, device uint32, byCode, cached bool) (u *User, fromCache bool, err error) {
	if cached {
		if u, ok := s.payers.get(uid, device); ok {
			return u, true, nil
		}
	}
	if u, err = s.payer(ctx, uid, device, byCode); err != nil {
		return nil, false, err
	}
	if cached {
		s.payers.put(u, device)
	}
	return u, false, nil
}

// payAs decides rec for student u and funds it. again: u came from the
// cache and the payment would be refused on it, or its write found the
// student changed since; nothing was written, and pay decides again on a
// fresh read.
func (s *Service) payAs(ctx context.Context, req *protocol.Request, rec *Record, u *User, fromCache bool) (r *protocol.Response, again bool) {
	refuse := func(err error) (*protocol.Response, bool) {
		if fromCache {
			return nil, true
		}
		return s.save(ctx, rec, declined(err)), false
	}
	if err := payable(u); err != nil {
		return refuse(err)
	}
	if req.Cred.Kind == protocol.CredCard && !u.PasswordFree {
		return refuse(protocol.ErrPasswordFreeMissing) // rule 4: a card tap needs the contract
	}
	var err error
	if rec.limit, err = s.limits(u, rec.Amount); err != nil {
		return refuse(err)
	}
	// Checked again just before money moves: waiting for this student's
	// lock or for the store may have taken the request past its deadline.
	if err := s.checkDeadline(req, s.now()); err != nil {
		return s.save(ctx, rec, declined(err)), false
	}
	if !req.At.IsZero() {
		rec.moveBy = req.At.Add(s.authTimeout() - s.DeadlineMargin())
	}
	rec.payer = nil
	if fromCache {
		rec.payer = &PayerCheck{UserID: u.ID, Version: u.Version}
	}
	r = s.fundAndAnswer(ctx, u, rec)
	if rec.stale {
		rec.stale = false
		return nil, true
	}
	return r, false
}

// payAgain answers a pay request whose key was recorded before (h: the
// request's hash): a retry is answered as the first time was.
func (s *Service) payAgain(ctx context.Context, t *Terminal, h string, rec *Record) *protocol.Response {
	switch {
	case rec.Kind == kindTombstone:
		return tombstoned()
	case rec.Kind != KindPayment || rec.ReqHash != h:
		return declined(protocol.ErrTxConflict)
	case rec.Status == protocol.StatusReversed || rec.Status == StatusReversing:
		r := s.replay(ctx, t, rec)
		r.Status = protocol.StatusReversed
		r.SetReason(protocol.ErrTxReversed)
		return r
	}
	return s.replay(ctx, t, rec)
}

// askEarlier looks up the key of a new payment not looked up before it
// was tried (rec.unchecked, which it clears): every step of the payment
// that writes or calls out asks it first, unless PutPayment has settled
// it (ErrRecordExists or not). ok: stop and return r, which is an error
// reading the record, or (rec.found set: a retry) a stand-in that pay
// replaces with the answer to the retry.
func (s *Service) askEarlier(ctx context.Context, rec *Record) (r *protocol.Response, ok bool) {
	if !rec.unchecked {
		return nil, false
	}
	rec.unchecked = false
	old, err := s.st.Record(ctx, rec.Key)
	switch {
	case err != nil:
		return declined(err), true
	case old == nil:
		return nil, false
	}
	rec.found = old
	return declined(ErrRecordExists), true
}

// fundAndAnswer funds rec (choosing the channel if not yet chosen) and
// answers the terminal. The caller holds the user lock.
func (s *Service) fundAndAnswer(ctx context.Context, u *User, rec *Record) *protocol.Response {
	if r, ok := s.payInOne(ctx, u, rec); ok {
		return r
	}
	after, known, err := s.fund(ctx, u, rec)
	switch {
	case errors.Is(err, errPending):
		r := &protocol.Response{Status: protocol.StatusPending, Amount: rec.Amount, Channel: rec.Channel}
		r.SetReason(protocol.ErrBankUnavailable)
		return s.save(ctx, rec, r)
	case err != nil:
		return s.save(ctx, rec, declined(err))
	}
	r := &protocol.Response{Status: protocol.StatusApproved, Amount: rec.Amount, Channel: rec.Channel, User: MaskName(u.Name)}
	if known {
		r.Balance = &after
	} else if b, err := s.led.Balance(ctx, walletAccount(u.ID)); err == nil {
		r.Balance = &b.Available
	}
	if d := deferredOf(ctx); d != nil && rec.Kind == KindPayment && rec.Channel == protocol.ChannelBalance && rec.Status == StatusProcessing {
		// The transfer is posted: the answer stands whatever the record's
		// write does (HandleRequestFirst). A copy is saved, so the answer
		// the caller publishes is not the one the write marshals.
		final := *r
		wctx := context.WithoutCancel(ctx)
		d.save = func() { s.finishRecord(wctx, rec, &final) }
		return r
	}
	return s.save(ctx, rec, r)
}

// payInOne pays a new payment from the balance in one transaction with its
// checks and its record (PaymentStore: the ledger inside the wallet's
// database), answering it only once that transaction is durable. The
// balance is not read before: the transfer's own check decides, and the
// answer shows the balance it left (read in that transaction). ok is false
// when it does not apply — another store, a channel already chosen, a
// balance short of the amount (the bound card may pay) — and rec is then
// left to fund.
func (s *Service) payInOne(ctx context.Context, u *User, rec *Record) (r *protocol.Response, ok bool) {
	p, one := s.st.(PaymentStore)
	if !one || rec.Channel != "" || rec.Kind != KindPayment || !p.PaysInto(s.led) {
		return nil, false
	}
	rec.Channel = protocol.ChannelBalance
	r = &protocol.Response{Status: protocol.StatusApproved, Amount: rec.Amount, Channel: rec.Channel, User: MaskName(u.Name)}
	wctx := ctx
	if !rec.moveBy.IsZero() {
		// A third and last deadline check, where the money moves: the
		// writer refuses the payment if its batch reaches it too late.
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, rec.moveBy.Sub(s.now()))
		defer cancel()
	}
	owner, err := p.PutPayment(wctx, rec, rec.use, rec.limit, rec.payer, balanceTransfer(rec, s.now()), func(after int64) {
		r.Balance = &after
		s.answered(rec, r)
	})
	if err == nil && owner == rec.Key {
		rec.use, rec.limit, rec.unchecked = nil, nil, false
		return r, true
	}
	if errors.Is(err, ErrPayerChanged) {
		// Decided on a cached student changed since: nothing written;
		// payAs decides again on a fresh read.
		rec.Channel, rec.Status, rec.Code, rec.Response = "", "", "", nil
		rec.stale = true
		return nil, true
	}
	if errors.Is(err, ErrRecordExists) {
		// A retry not looked up first (or recorded by another
		// authorizer meanwhile): pay answers it from its record.
		rec.unchecked = true
		if r, ok := s.askEarlier(ctx, rec); ok {
			return r, true
		}
		return declined(fmt.Errorf("wallet: record %s: recorded, then not found", rec.Key)), true
	}
	// Nothing was written: the record is saved declined, as fund's
	// refusals are (an error of our own is not saved; a retry pays).
	rec.Channel, rec.Status, rec.Code, rec.Response = "", "", "", nil
	switch {
	case err == nil:
		err = protocol.ErrCodeUsed
	case errors.Is(err, ledger.ErrInsufficient):
		// The bound card may pay, unless the writer's queue took the
		// request past the time money may move (fund does not check it),
		// and unless this is a retry (a balance the first try spent).
		if r, ok := s.askEarlier(ctx, rec); ok {
			return r, true
		}
		if rec.moveBy.IsZero() || s.now().Before(rec.moveBy) {
			return nil, false
		}
		err = protocol.ErrDeadline
	case errors.Is(err, protocol.ErrLimitDaily):
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		err = protocol.ErrDeadline
	default:
		return declined(err), true
	}
	return s.save(ctx, rec, declined(err)), true
}

// balanceTransfer is the ledger transfer of a payment from the balance.
func balanceTransfer(rec *Record, at time.Time) ledger.Transfer {
	return ledger.Transfer{Key: "pay:" + rec.Key, Kind: "payment", At: at, Memo: memo(rec),
		Postings: []ledger.Posting{{Account: walletAccount(rec.UserID), Amount: -rec.Amount}, {Account: merchantAccount(rec.Merchant), Amount: rec.Amount}}}
}

// cardUser finds the holder of a campus card.
func (s *Service) cardUser(ctx context.Context, text string) (*User, error) {
	uid, ok := NormalizeCardUID(text)
	if !ok {
		return nil, protocol.ErrCardUnknown
	}
	if lost, err := s.st.CardLost(ctx, uid); err != nil {
		return nil, err
	} else if lost {
		return nil, protocol.ErrCardLost
	}
	return s.st.UserByCard(ctx, uid)
}

// codeUser verifies a campus payment code: signature, purpose and
// freshness. It returns the code's user and device, which the caller reads
// under the user lock (payer: the device must be the user's and not
// revoked), and the code's single-use mark, which fund writes with the
// payment's intent: the code is spent campus-wide exactly when money is
// about to move (a retry of the same transaction owns it already; any
// other transaction is refused CODE_ALREADY_USED).
func (s *Service) codeUser(text string, now time.Time) (user, device uint32, use *CodeUse, err error) {
	c, err := protocol.VerifyCodeWith(text, s.issuer, now, protocol.PurposePay, s.codes)
	if err != nil {
		return 0, 0, nil, err
	}
	use = &CodeUse{ID: c.ID(), Expires: c.Time.Add(protocol.CodeValidity + 2*protocol.MaxClockSkew), Now: now}
	return c.Cert.UserID, c.Cert.DeviceID, use, nil
}

// payer reads the paying user; for a code, in the same read, whether its
// device is the user's and not revoked, refused DEVICE_REVOKED before
// anything about the user (a device of no user included: devices
// reference their user).
func (s *Service) payer(ctx context.Context, uid, device uint32, byCode bool) (*User, error) {
	if !byCode {
		return s.st.User(ctx, uid)
	}
	u, ok, err := s.st.Payer(ctx, uid, device)
	switch {
	case errors.Is(err, protocol.ErrUserUnknown):
		return nil, protocol.ErrDeviceRevoked
	case err != nil:
		return nil, err
	case !ok:
		return nil, protocol.ErrDeviceRevoked
	}
	return u, nil
}

// limits enforces the user's per-transaction limit on a wallet-funded
// payment (rule 9) and returns the daily limit its intent is written
// against (fund): checked in that write, not here, so that a payment of
// the same student on another authorizer cannot pass on the same total.
// The day is the calendar day in Shanghai; an amount exactly at a limit is
// allowed.
func (s *Service) limits(u *User, amount int64) (*DailyLimit, error) {
	if amount > u.LimitPerTx {
		return nil, protocol.ErrLimitPerTx
	}
	from, to := day(s.now())
	return &DailyLimit{From: from, To: to, Max: u.LimitDaily}, nil
}

// day returns the Shanghai calendar day containing t.
func day(t time.Time) (from, to time.Time) {
	l := t.In(Shanghai)
	from = time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, Shanghai)
	return from, from.AddDate(0, 0, 1)
}

// fund moves rec.Amount from u's wallet to rec.Merchant: the balance if it
// covers the whole amount, else the whole amount from the bound card (rule
// 6). The channel is recorded before any money moves, so a resumed
// operation never switches channel. The caller holds the user lock. When
// it chose the channel it also returns the wallet's available balance
// after the payment (known), saving the caller a read.
func (s *Service) fund(ctx context.Context, u *User, rec *Record) (after int64, known bool, err error) {
	if rec.Channel == "" {
		b, err := s.led.Balance(ctx, walletAccount(u.ID))
		if err != nil {
			return 0, false, fmt.Errorf("wallet: balance: %w", err)
		}
		after, known = b.Available, true
		switch {
		case b.Available >= rec.Amount:
			rec.Channel = protocol.ChannelBalance
			after -= rec.Amount
		case u.BankCard != "":
			rec.Channel, rec.BankCode, rec.BankCard = protocol.ChannelBankCard, u.BankCode, u.BankCard
		default:
			return 0, false, protocol.ErrInsufficientFunds
		}
		rec.Status, rec.Updated = StatusProcessing, s.now()
		owner, err := s.st.PutIntent(ctx, rec, rec.use, rec.limit)
		if err != nil {
			rec.Channel, rec.Status = "", ""
			if errors.Is(err, protocol.ErrLimitDaily) {
				return 0, false, err
			}
			return 0, false, fmt.Errorf("wallet: record intent %s: %w", rec.Key, err)
		}
		if owner != rec.Key {
			rec.Channel, rec.Status = "", ""
			return 0, false, protocol.ErrCodeUsed
		}
		rec.use, rec.limit = nil, nil
	}
	return after, known, s.move(ctx, rec)
}

// move performs the money steps of a recorded intent; repeatable.
func (s *Service) move(ctx context.Context, rec *Record) error {
	switch rec.Channel {
	case protocol.ChannelBalance:
		_, err := s.led.Post(ctx, balanceTransfer(rec, s.now()))
		if errors.Is(err, ledger.ErrInsufficient) {
			return protocol.ErrInsufficientFunds
		}
		if err != nil {
			return fmt.Errorf("wallet: post %s: %w", rec.Key, err)
		}
		return nil
	case protocol.ChannelBankCard:
		_, err := s.bank.Debit(ctx, bankKey("pay", rec.Key), rec.BankCode, rec.BankCard, rec.Amount)
		switch {
		case errors.Is(err, bank.ErrInsufficientFunds):
			return protocol.ErrInsufficientFunds
		case bankDefinite(err):
			return mapBankErr(err)
		case err != nil:
			return errPending
		}
		if _, err := s.led.Post(ctx, ledger.Transfer{Key: "paycard:" + rec.Key, Kind: "payment", At: s.now(), Memo: memo(rec),
			Postings: []ledger.Posting{{Account: bankAccount(rec.BankCode), Amount: -rec.Amount}, {Account: merchantAccount(rec.Merchant), Amount: rec.Amount}}}); err != nil {
			return fmt.Errorf("wallet: post %s: %w", rec.Key, err)
		}
		return nil
	}
	return fmt.Errorf("wallet: record %s has channel %q", rec.Key, rec.Channel)
}

func memo(rec *Record) string {
	return fmt.Sprintf("%s merchant=%s terminal=%s channel=%s", rec.Kind, rec.Merchant, rec.Terminal, rec.Channel)
}

// payWeChat pays with a WeChat payment code of a linked student (rule 10).
func (s *Service) payWeChat(ctx context.Context, t *Terminal, rec *Record, code string) *protocol.Response {
	if s.wx == nil {
		return s.save(ctx, rec, declined(protocol.ErrWeChatUnavailable))
	}
	openID, err := s.wx.AuthCodeToOpenID(ctx, code)
	if err != nil {
		return s.save(ctx, rec, declined(wechatErr(err)))
	}
	u, err := s.st.UserByOpenID(ctx, openID)
	if errors.Is(err, protocol.ErrUserUnknown) {
		return s.save(ctx, rec, declined(protocol.ErrWeChatNotLinked))
	} else if err != nil {
		return declined(err)
	}
	rec.UserID = u.ID
	// The intent is recorded under the user lock, so a cancellation either
	// sees it (and waits) or comes first (and this is refused).
	unlock := s.lockUser(u.ID)
	if u, err = s.st.User(ctx, u.ID); err != nil {
		unlock()
		return declined(err)
	}
	if err := payable(u); err != nil {
		unlock()
		return s.save(ctx, rec, declined(err))
	}
	rec.Channel, rec.Status, rec.Updated = protocol.ChannelWeChat, StatusProcessing, s.now()
	err = s.st.PutRecord(ctx, rec)
	unlock()
	if err != nil {
		return declined(err)
	}
	st, err := s.micropay(ctx, rec, code, t.Merchant)
	return s.wechatOutcome(ctx, u, rec, st, err)
}

// wechatOutcome records a micropay or order query answer.
func (s *Service) wechatOutcome(ctx context.Context, u *User, rec *Record, st wxState, err error) *protocol.Response {
	if err != nil {
		var r *protocol.Reason
		if errors.As(err, &r) && r != protocol.ErrWeChatUnavailable {
			return s.save(ctx, rec, declined(r))
		}
		r2 := &protocol.Response{Status: protocol.StatusPending, Amount: rec.Amount, Channel: protocol.ChannelWeChat}
		r2.SetReason(protocol.ErrWeChatUnavailable)
		return s.save(ctx, rec, r2)
	}
	switch st {
	case wxSuccess:
		if _, err := s.led.Post(ctx, ledger.Transfer{Key: "pay:" + rec.Key, Kind: "payment", At: s.now(), Memo: memo(rec),
			Postings: []ledger.Posting{{Account: wechatAccount, Amount: -rec.Amount}, {Account: merchantAccount(rec.Merchant), Amount: rec.Amount}}}); err != nil {
			return declined(fmt.Errorf("wallet: post %s: %w", rec.Key, err))
		}
		return s.save(ctx, rec, &protocol.Response{Status: protocol.StatusApproved, Amount: rec.Amount,
			Channel: protocol.ChannelWeChat, User: MaskName(u.Name)})
	case wxUserPaying:
		r := &protocol.Response{Status: protocol.StatusPending, Amount: rec.Amount, Channel: protocol.ChannelWeChat}
		r.SetReason(protocol.ErrUserPaying)
		return s.save(ctx, rec, r)
	}
	return s.save(ctx, rec, declined(protocol.ErrWeChatDeclined))
}

// query answers OpQuery: the state of a transaction, resolving a pending one.
func (s *Service) query(ctx context.Context, t *Terminal, rec *Record) *protocol.Response {
	switch {
	case rec == nil:
		return &protocol.Response{Status: protocol.StatusUnknown}
	case rec.Kind == kindTombstone:
		return tombstoned()
	}
	return s.replay(ctx, t, rec)
}

// resume continues a processing or pending payment.
func (s *Service) resume(ctx context.Context, t *Terminal, rec *Record) *protocol.Response {
	u, err := s.st.User(ctx, rec.UserID)
	if err != nil {
		return declined(err)
	}
	if rec.Kind == KindShower {
		defer s.lockUser(u.ID)()
		if u, err = s.st.User(ctx, u.ID); err != nil { // fresh, under the lock
			return declined(err)
		}
		if err := active(u); err != nil {
			// Cancelled meanwhile: no hold on a closed wallet (one placed
			// before a crash is released).
			if _, verr := s.led.VoidHold(ctx, holdKey(rec.Key), s.now()); verr != nil &&
				!errors.Is(verr, ledger.ErrHoldNotFound) && !errors.Is(verr, ledger.ErrHoldClosed) {
				return declined(fmt.Errorf("wallet: void %s: %w", rec.Key, verr))
			}
			rec.Amount = 0
			return s.save(ctx, rec, declined(err))
		}
		return s.placeHold(ctx, u, rec) // PlaceHold is idempotent by key
	}
	if rec.Channel == protocol.ChannelWeChat {
		if s.wx == nil {
			return declined(protocol.ErrWeChatUnavailable)
		}
		st, err := s.orderQuery(ctx, rec) // an error leaves it pending
		return s.wechatOutcome(ctx, u, rec, st, err)
	}
	defer s.lockUser(u.ID)()
	if u, err = s.st.User(ctx, u.ID); err != nil { // fresh, under the lock
		return declined(err)
	}
	if err := active(u); err != nil {
		// Cancelled meanwhile: settle it as a reversal would, so nothing
		// stays taken for a wallet that is closed.
		if err := s.settleClosed(ctx, rec); err != nil {
			if errors.Is(err, protocol.ErrBankUnavailable) {
				r := &protocol.Response{Status: protocol.StatusPending, Amount: rec.Amount, Channel: rec.Channel}
				r.SetReason(protocol.ErrBankUnavailable)
				return r // the next query tries again
			}
			return declined(err)
		}
		return s.save(ctx, rec, declined(err))
	}
	return s.fundAndAnswer(ctx, u, rec)
}

// settleClosed gives back whatever a payment in doubt (processing or
// pending) took, before it is declined because its wallet is no longer
// active. Money refunded to the balance stays withdrawable.
func (s *Service) settleClosed(ctx context.Context, rec *Record) error {
	_, err := s.refund(ctx, rec)
	return err
}

// reverse answers OpReverse (WeChat micropay semantics, DESIGN §4).
func (s *Service) reverse(ctx context.Context, t *Terminal, req *protocol.Request, key string, rec *Record) *protocol.Response {
	ok := func(amount int64) *protocol.Response {
		return &protocol.Response{Status: protocol.StatusReversed, Amount: amount}
	}
	if rec == nil {
		now := s.now()
		rec = &Record{Key: key, Kind: kindTombstone, Terminal: t.ID, Tx: req.Tx, Merchant: t.Merchant, Created: now}
		return s.save(ctx, rec, ok(0))
	}
	if rec.Kind == kindTombstone || rec.Status == protocol.StatusReversed || rec.Status == protocol.StatusVoided {
		return s.replay(ctx, t, rec)
	}
	if rec.Kind == KindShower {
		if rec.Status == protocol.StatusDeclined {
			return ok(0) // never held; the record keeps its reason
		}
		return s.void(ctx, rec)
	}
	if rec.Kind != KindPayment {
		return declined(protocol.ErrTxConflict)
	}
	if rec.Status == protocol.StatusDeclined {
		return s.save(ctx, rec, ok(0))
	}
	if rec.Status == protocol.StatusApproved && rec.Channel != protocol.ChannelBalance {
		// The refund has a step outside (bank credit, WeChat reverse) that
		// may fail for a while: mark it so that Recover finishes it even
		// if the terminal never asks again.
		rec.Status, rec.Updated = StatusReversing, s.now()
		if err := s.st.PutRecord(ctx, rec); err != nil {
			return declined(err)
		}
	}
	// Back-office refunds (refund.go) already gave back part of an
	// approved sale: the reversal gives back the rest.
	done, err := s.refundedOf(ctx, rec.Key)
	if err != nil {
		return declined(err)
	}
	refunded, err := s.refundPart(ctx, rec, rec.Amount-done)
	if err != nil {
		return declined(err) // the terminal (or Recover) reverses again
	}
	r := ok(refunded)
	r.Channel = rec.Channel
	return s.save(ctx, rec, r)
}

// refund gives back whatever rec took; it returns how much was refunded.
// Repeatable: every step is idempotent by a key derived from rec.Key.
func (s *Service) refund(ctx context.Context, rec *Record) (int64, error) {
	return s.refundPart(ctx, rec, rec.Amount)
}

// refundPart is refund of a cents only: what back-office refunds (refund.go)
// left of an approved sale.
func (s *Service) refundPart(ctx context.Context, rec *Record, a int64) (int64, error) {
	if a <= 0 {
		return 0, nil // refunded in full by the back office
	}
	switch rec.Channel {
	case "":
		return 0, nil // no channel chosen: no money moved
	case protocol.ChannelBalance:
		if _, _, found, err := s.led.Lookup(ctx, "pay:"+rec.Key); err != nil {
			return 0, fmt.Errorf("wallet: lookup %s: %w", rec.Key, err)
		} else if !found {
			return 0, nil
		}
		if _, err := s.giveBack(ctx, rec, a, walletAccount(rec.UserID), "refund:"+rec.Key, "", "reversal "+memo(rec), nil); err != nil {
			return 0, err
		}
		return a, nil
	case protocol.ChannelWeChat:
		if s.wx == nil {
			return 0, protocol.ErrWeChatUnavailable
		}
		if err := s.wxReverse(ctx, rec); err != nil {
			return 0, err
		}
		if _, _, found, err := s.led.Lookup(ctx, "pay:"+rec.Key); err != nil {
			return 0, fmt.Errorf("wallet: lookup %s: %w", rec.Key, err)
		} else if !found {
			return 0, nil
		}
		if _, err := s.led.Post(ctx, ledger.Transfer{Key: "refund:" + rec.Key, Kind: "refund", At: s.now(), Memo: "reversal " + memo(rec),
			Postings: []ledger.Posting{{Account: merchantAccount(rec.Merchant), Amount: -a}, {Account: wechatAccount, Amount: a}}}); err != nil {
			return 0, fmt.Errorf("wallet: refund %s: %w", rec.Key, err)
		}
		return a, nil
	case protocol.ChannelBankCard:
		_, _, posted, err := s.led.Lookup(ctx, "paycard:"+rec.Key)
		if err != nil {
			return 0, fmt.Errorf("wallet: lookup %s: %w", rec.Key, err)
		}
		if !posted {
			// Processing or pending: whether the bank debited is unknown.
			// Repeating the debit under its key tells (and takes it now if
			// it never happened); the credit below gives it back either way.
			if _, err := s.bank.Debit(ctx, bankKey("pay", rec.Key), rec.BankCode, rec.BankCard, a); err != nil {
				if bankDefinite(err) {
					return 0, nil // refused: nothing was taken
				}
				return 0, mapBankErr(err)
			}
			if _, err := s.led.Post(ctx, ledger.Transfer{Key: "paycard:" + rec.Key, Kind: "payment", At: s.now(), Memo: memo(rec),
				Postings: []ledger.Posting{{Account: bankAccount(rec.BankCode), Amount: -a}, {Account: merchantAccount(rec.Merchant), Amount: a}}}); err != nil {
				return 0, fmt.Errorf("wallet: post %s: %w", rec.Key, err)
			}
		}
		// Money goes out: ledger first, then the bank credit; a card that
		// refuses it (closed, frozen) sends it to the wallet balance.
		if _, err := s.giveBack(ctx, rec, a, bankAccount(rec.BankCode), "refund:"+rec.Key, "refund-to-wallet:"+rec.Key, "reversal "+memo(rec),
			func() error {
				_, err := s.bank.Credit(ctx, bankKey("rf", rec.Key), rec.BankCode, rec.BankCard, a)
				return bankOutcome(err)
			}); err != nil {
			return 0, err
		}
		return a, nil
	}
	return 0, fmt.Errorf("wallet: record %s has channel %q", rec.Key, rec.Channel)
}
