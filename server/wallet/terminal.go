package wallet

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"

	"golang.org/x/crypto/bcrypt"

	"campuspay/protocol"
)

// ApplyJournal applies one journal entry idempotently by (Terminal, Seq) and
// acknowledges it once it is durable. A shower entry captures its hold if it
// has not been captured yet (a shower that ended offline); a reversal entry
// reverses its transaction. It returns nil when the entry cannot be applied
// for now (storage, bank or WeChat trouble): the caller sends no ack and
// the terminal sends the entry again later.
func (s *Service) ApplyJournal(ctx context.Context, e *protocol.JournalEntry) *protocol.JournalAck {
	if e == nil {
		return &protocol.JournalAck{V: protocol.Version, Code: protocol.ErrBadRequest.Code}
	}
	ack := &protocol.JournalAck{V: protocol.Version, Terminal: e.Terminal, Seq: e.Seq, Tx: e.Tx}
	refuse := func(r *protocol.Reason) *protocol.JournalAck { ack.Code = r.Code; return ack }
	if e.Validate() != nil {
		return refuse(protocol.ErrBadRequest)
	}
	t, err := s.st.Terminal(ctx, e.Terminal)
	if errors.Is(err, protocol.ErrTerminalUnknown) {
		return refuse(protocol.ErrTerminalUnknown)
	} else if err != nil {
		return nil
	}
	if t.Revoked() {
		// No answer: a refusal would be final at the terminal, and the
		// entries of a box whose credentials are rotated are good.
		return nil
	}
	c := *e
	c.V = 0
	raw, _ := json.Marshal(c)
	sum := sha256.Sum256(raw)
	hash := hex.EncodeToString(sum[:])

	jkey := fmt.Sprintf("J:%s:%d", e.Terminal, e.Seq)
	defer s.txLocks.lock(jkey)()
	prev, err := s.st.JournalEntry(ctx, e.Terminal, e.Seq)
	if err != nil {
		return nil
	}
	if prev != "" {
		if prev != hash {
			return refuse(protocol.ErrTxConflict)
		}
		ack.OK = true
		return ack
	}

	switch e.Kind {
	case protocol.EntryShower:
		req := &protocol.Request{Op: protocol.OpCapture, Tx: e.Tx, Terminal: e.Terminal, Amount: e.Amount, ML: e.ML}
		r := s.HandleRequest(ctx, req)
		switch {
		case r.Status == protocol.StatusApproved || r.Status == protocol.StatusVoided:
		case r.Status == protocol.StatusDeclined && e.Amount == 0:
			// A hold that was declined, and nothing metered: nothing to settle.
		case r.Code == protocol.ErrTxConflict.Code:
			// Captured online with another amount: the online capture
			// stands; the entry is kept as the terminal's record.
		case r.Code == protocol.ErrInternal.Code || r.Code == "":
			return nil // transient: no ack, the terminal sends it again
		default:
			return refuse(r.Reason()) // e.g. HOLD_UNKNOWN: refused for good
		}
	case protocol.EntryReversal:
		r := s.HandleRequest(ctx, &protocol.Request{Op: protocol.OpReverse, Tx: e.Tx, Terminal: e.Terminal})
		if r.Status != protocol.StatusReversed {
			return nil
		}
	case protocol.EntryOffline:
		if why, retry := s.settleOffline(ctx, t, e); retry {
			return nil // the bank or our storage: the terminal sends it again
		} else if why != nil {
			return refuse(why)
		}
	}
	if err := s.st.PutJournalEntry(ctx, t.ID, e.Seq, e.Tx, hash, s.now()); err != nil {
		return nil
	}
	ack.OK = true
	return ack
}

// Notices returns the static-QR payments made to terminal's merchant QR
// with a cursor above after.
func (s *Service) Notices(ctx context.Context, terminal string, after uint64) (*protocol.Notice, error) {
	if _, err := s.st.Terminal(ctx, terminal); err != nil {
		return nil, err
	}
	recs, err := s.st.ScanPays(ctx, terminal, after)
	if err != nil {
		return nil, fmt.Errorf("wallet: notices for %s: %w", terminal, err)
	}
	n := &protocol.Notice{V: protocol.Version, Terminal: terminal, Payments: []protocol.StaticQRPayment{}, Cursor: after}
	for _, r := range recs {
		name := ""
		if u, err := s.st.User(ctx, r.UserID); err == nil {
			name = MaskName(u.Name)
		}
		n.Payments = append(n.Payments, protocol.StaticQRPayment{Tx: r.Tx, Seq: r.QRSeq, Amount: r.Amount, User: name, At: r.Created})
		n.Cursor = max(n.Cursor, r.QRSeq)
	}
	return n, nil
}

// TerminalConfig builds the terminal's full retained configuration.
func (s *Service) TerminalConfig(ctx context.Context, terminal string) (*protocol.Config, error) {
	t, err := s.st.Terminal(ctx, terminal)
	if err != nil {
		return nil, err
	}
	m, err := s.st.Merchant(ctx, t.Merchant)
	if err != nil {
		return nil, err
	}
	rev, err := s.st.Revision(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	revoked, err := s.st.RevokedDevices(ctx, now)
	if err != nil {
		return nil, err
	}
	lost, err := s.st.LostCards(ctx)
	if err != nil {
		return nil, err
	}
	c := &protocol.Config{
		V: protocol.Version, Revision: rev, Terminal: t.ID, Merchant: t.Merchant, MerchantName: m.Name,
		Campus: t.Campus, Mode: t.Mode, FixedAmount: t.FixedAmount,
		SealKey: base64.StdEncoding.EncodeToString(s.keys.SealPub[:]), MerchantQR: t.MerchantQR,
		RevokedDevices: revoked, LostCards: lost, AuthTimeoutMS: s.cfg.AuthTimeoutMS, ServerTime: now,
	}
	ids := make([]int, 0, len(s.issuer))
	for id := range s.issuer {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	for _, id := range ids {
		c.IssuerKeys = append(c.IssuerKeys, protocol.IssuerKey{ID: byte(id), Key: base64.StdEncoding.EncodeToString(s.issuer[byte(id)])})
	}
	if t.Mode == protocol.ModeShower {
		tr := s.cfg.Tariff
		c.Tariff = &tr
	}
	if c.Offline, err = s.offlinePolicy(ctx, t, now); err != nil {
		return nil, err
	}
	return c, nil
}

// AuthenticateTerminal checks a terminal's broker credentials. A
// successful check is remembered (as a SHA-256 of hash and password) so
// that a reconnect storm of a whole campus does not cost a bcrypt each.
func (s *Service) AuthenticateTerminal(ctx context.Context, terminal, password string) bool {
	t, err := s.st.Terminal(ctx, terminal)
	if err != nil || t.PasswordHash == "" {
		return false
	}
	sum := sha256.Sum256([]byte(t.PasswordHash + "\x00" + password))
	s.authMu.Lock()
	known, ok := s.authOK[terminal]
	s.authMu.Unlock()
	if ok && subtle.ConstantTimeCompare(known[:], sum[:]) == 1 {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(t.PasswordHash), []byte(password)) != nil {
		return false
	}
	s.authMu.Lock()
	if s.authOK == nil {
		s.authOK = map[string][32]byte{}
	}
	s.authOK[terminal] = sum
	s.authMu.Unlock()
	return true
}

// Terminals lists every registered terminal.
func (s *Service) Terminals(ctx context.Context) ([]TerminalInfo, error) {
	ts, err := s.st.Terminals(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TerminalInfo, len(ts))
	for i, t := range ts {
		out[i] = TerminalInfo{ID: t.ID, Merchant: t.Merchant, Campus: t.Campus, Mode: t.Mode}
	}
	return out, nil
}

// AddMerchant creates or renames a merchant.
func (s *Service) AddMerchant(ctx context.Context, m Merchant) error {
	if !protocol.ValidID(m.ID) || m.Name == "" {
		return fmt.Errorf("merchant %q: %w", m.ID, protocol.ErrBadRequest)
	}
	if _, ok := s.cfg.Campuses[m.Campus]; !ok {
		return fmt.Errorf("campus %q is not configured: %w", m.Campus, protocol.ErrBadRequest)
	}
	if err := s.st.PutMerchant(ctx, &m); err != nil {
		return err
	}
	ts, err := s.st.Terminals(ctx)
	if err != nil {
		return err
	}
	var ids []string
	for _, t := range ts {
		if t.Merchant == m.ID {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return s.changed(ctx, ids) // the merchant's name is in their configs
}

// Merchants lists merchants.
func (s *Service) Merchants(ctx context.Context) ([]Merchant, error) { return s.st.Merchants(ctx) }

// AddTerminal registers a terminal (or re-registers it: new credentials)
// with its signed static merchant QR, and returns its broker password,
// which is stored only as a hash.
func (s *Service) AddTerminal(ctx context.Context, t Terminal) (password string, err error) {
	if !protocol.ValidID(t.ID) {
		return "", fmt.Errorf("terminal %q: %w", t.ID, protocol.ErrBadRequest)
	}
	switch t.Mode {
	case protocol.ModePOS, protocol.ModeCard, protocol.ModeShower:
	default:
		return "", fmt.Errorf("mode %q: %w", t.Mode, protocol.ErrBadRequest)
	}
	if t.FixedAmount < 0 || t.FixedAmount > protocol.MaxAmount {
		return "", protocol.ErrAmountInvalid
	}
	m, err := s.st.Merchant(ctx, t.Merchant)
	if err != nil {
		return "", err
	}
	if t.Campus == "" {
		t.Campus = m.Campus
	}
	var b [18]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("wallet: random: %w", err)
	}
	password = base64.RawURLEncoding.EncodeToString(b[:])
	if t.PasswordHash, err = s.hash(password); err != nil {
		return "", err
	}
	t.Created = s.now()
	if t.MerchantQR, err = protocol.IssueMerchantQR(protocol.MerchantQR{KeyID: s.keys.IssuerID, Issued: t.Created,
		Merchant: t.Merchant, Terminal: t.ID, Campus: t.Campus}, s.keys.Issuer); err != nil {
		return "", fmt.Errorf("wallet: merchant QR for %s: %w", t.ID, err)
	}
	if err := s.st.PutTerminal(ctx, &t); err != nil {
		return "", err
	}
	s.hotTerminals.drop(t.ID)
	return password, s.changed(ctx, []string{t.ID})
}

// ScanPay pays a terminal's static merchant QR from the app with the
// payment password (rule 11). key makes it idempotent. The terminal is told
// through OnNotice and Notices.
func (s *Service) ScanPay(ctx context.Context, id uint32, key, qr string, amount int64, password string) (*Record, error) {
	if err := checkAmount(amount); err != nil {
		return nil, err
	}
	m, err := protocol.VerifyMerchantQR(qr, s.issuer)
	if err != nil {
		return nil, protocol.ErrMerchantQRInvalid
	}
	t, err := s.st.Terminal(ctx, m.Terminal)
	if err != nil || t.Merchant != m.Merchant {
		return nil, protocol.ErrMerchantQRInvalid
	}
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\n%d", qr, amount)))
	rk := fmt.Sprintf("Q:%d:%s", id, key)
	defer s.lockUser(id)()
	rec, err := s.st.Record(ctx, rk)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		if rec.ReqHash != hex.EncodeToString(h[:]) {
			return nil, protocol.ErrTxConflict
		}
		if rec.Status == protocol.StatusApproved {
			return rec, nil
		}
		if rec.Status == protocol.StatusDeclined {
			return nil, reasonOf(rec.Code)
		}
	}
	u, err := s.st.User(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec != nil {
		if werr := active(u); werr != nil { // in doubt, and cancelled meanwhile
			if err := s.settleClosed(ctx, rec); err != nil {
				return nil, err
			}
			return nil, s.finish(ctx, rec, protocol.StatusDeclined, werr)
		}
	}
	if rec == nil {
		if err := payable(u); err != nil {
			return nil, err
		}
		if err := s.checkSecret(ctx, u, false, password); err != nil {
			return nil, err
		}
		lim, err := s.limits(u, amount)
		if err != nil {
			return nil, err
		}
		tx, err := protocol.NewTxID(s.now(), s.rand)
		if err != nil {
			return nil, fmt.Errorf("wallet: scan-pay id: %w", err)
		}
		now := s.now()
		rec = &Record{Key: rk, Kind: KindScanPay, UserID: id, Terminal: t.ID, Tx: tx, Merchant: t.Merchant,
			Amount: amount, ReqHash: hex.EncodeToString(h[:]), Created: now, Updated: now, limit: lim}
	}
	_, _, err = s.fund(ctx, u, rec)
	switch {
	case errors.Is(err, errPending):
		return nil, protocol.ErrBankUnavailable // processing: the same key resumes
	case err != nil && rec.Channel != "" && protocol.AsReason(err) == protocol.ErrInternal:
		return nil, err
	case err != nil:
		if rec.Channel == "" {
			return nil, err // nothing recorded, nothing moved
		}
		return nil, s.finish(ctx, rec, protocol.StatusDeclined, err)
	}
	if err := s.finish(ctx, rec, protocol.StatusApproved, nil); err != nil {
		return nil, err
	}
	s.notice(t.ID)
	return rec, nil
}
