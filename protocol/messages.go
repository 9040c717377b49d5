package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the message format version carried in every payload ("v").
// A receiver refuses a different version with ErrProtocolVersion.
const Version = 1

// MaxMessageSize bounds any payload a receiver will parse.
const MaxMessageSize = 64 << 10

// Op is what a Request asks for.
type Op string

const (
	OpPay     Op = "pay"     // authorise Amount with Cred (code, card, WeChat)
	OpQuery   Op = "query"   // the state of Tx (after a lost response, or WeChat USERPAYING)
	OpReverse Op = "reverse" // undo Tx: refund if approved; refuse it forever if unseen
	OpHold    Op = "hold"    // shower: verify Cred (+ sealed water password), hold the shower amount
	OpCapture Op = "capture" // shower: capture Amount (≤ hold) of hold Tx, release the rest
	OpVoid    Op = "void"    // shower: release hold Tx without charging
	OpNotices Op = "notices" // send static-QR payments for this terminal after Cursor (reply on notify)
)

// CredKind is the kind of credential a student presented.
type CredKind string

const (
	CredCode    CredKind = "code"    // campus wallet payment code (Text = code text)
	CredCard    CredKind = "card"    // card tap (Text = UID, upper-case hex)
	CredWeChat  CredKind = "wechat"  // WeChat payment code (Text = 18 digits)
	CredAccount CredKind = "account" // shower keypad: Text = student/account number; Secret = sealed water password
	// CredFace is reserved for face payment (刷脸): Text = the student
	// number the terminal's face reader matched. The authorizer gates it
	// by the password-free contract, as card taps, and refuses it today
	// with ErrFaceNotSupported.
	CredFace CredKind = "face"
)

// Credential is what the student presented.
type Credential struct {
	Kind CredKind `json:"kind"`
	Text string   `json:"text"`
}

// Request is a terminal's request. Tx is the idempotency key: the same Tx
// with the same content is answered with the original result.
type Request struct {
	V        int         `json:"v"`
	Op       Op          `json:"op"`
	Tx       TxID        `json:"tx"`
	Terminal string      `json:"terminal"`
	At       time.Time   `json:"at"`               // terminal's corrected clock
	Amount   int64       `json:"amount,omitempty"` // cents (pay, capture)
	Cred     *Credential `json:"cred,omitempty"`   // pay, hold
	Secret   string      `json:"secret,omitempty"` // SealSecret output (hold with CredAccount, or card + water password)
	ML       int64       `json:"ml,omitempty"`     // capture: metered water in millilitres (for the record)
	Cursor   uint64      `json:"cursor,omitempty"` // notices
}

// Status is the state of a transaction as the authorizer sees it.
type Status string

const (
	StatusApproved Status = "approved" // pay approved / capture done
	StatusDeclined Status = "declined" // refused: Code says why
	StatusPending  Status = "pending"  // WeChat USERPAYING: query again, reverse at the deadline
	StatusReversed Status = "reversed" // reversed (refunded if it had been approved)
	StatusUnknown  Status = "unknown"  // query of a Tx the authorizer never saw
	StatusHeld     Status = "held"     // shower hold placed: Hold cents reserved
	StatusVoided   Status = "voided"   // shower hold released without charge
)

// Funding channel of an approved payment (DESIGN §2 rule 6).
const (
	ChannelBalance  = "balance"
	ChannelBankCard = "bank_card"
	ChannelWeChat   = "wechat"
)

// Response answers one Request; it is published on the terminal's resp
// topic and correlated by Tx and Op.
type Response struct {
	V          int       `json:"v"`
	Op         Op        `json:"op"`
	Tx         TxID      `json:"tx"`
	Terminal   string    `json:"terminal"`
	Status     Status    `json:"status"`
	Code       string    `json:"code,omitempty"`       // reason code when declined (or pending: USER_PAYING)
	MessageZH  string    `json:"message_zh,omitempty"` // shown as-is
	MessageEN  string    `json:"message_en,omitempty"`
	Amount     int64     `json:"amount,omitempty"`  // approved or captured cents
	Channel    string    `json:"channel,omitempty"` // balance | bank_card | wechat
	Hold       int64     `json:"hold,omitempty"`    // cents held (hold)
	Balance    *int64    `json:"balance,omitempty"` // wallet balance after, when known
	User       string    `json:"user,omitempty"`    // masked name for the display ("张*")
	ServerTime time.Time `json:"server_time"`       // for the terminal's clock offset
}

// Reason returns the response's reason, or nil for a non-failure.
func (r *Response) Reason() *Reason {
	if r.Code == "" {
		return nil
	}
	if x := ReasonByCode(r.Code); x != nil {
		return x
	}
	return &Reason{Code: r.Code, ZH: r.MessageZH, EN: r.MessageEN}
}

// SetReason fills Code and the messages from x.
func (r *Response) SetReason(x *Reason) {
	if x == nil {
		r.Code, r.MessageZH, r.MessageEN = "", "", ""
		return
	}
	r.Code, r.MessageZH, r.MessageEN = x.Code, x.ZH, x.EN
}

// EntryKind is the kind of journal entry.
type EntryKind string

const (
	EntryPayment  EntryKind = "payment"  // a finished payment (approved, declined, reversed)
	EntryShower   EntryKind = "shower"   // a finished shower: ML metered, Amount captured
	EntryReversal EntryKind = "reversal" // an in-doubt transaction the terminal reversed
	EntryNotice   EntryKind = "notice"   // a static-QR payment the cashier saw (Tx = the payment)
	EntryOffline  EntryKind = "offline"  // a code payment accepted offline under an allowance (Cred = the code)
)

// maxCredLen bounds JournalEntry.Cred: a wallet code is 295 characters.
const maxCredLen = 400

// JournalEntry is one finished transaction uploaded from a terminal's
// journal. Seq numbers a terminal's entries from 1 without gaps; the
// authorizer applies entries idempotently by (Terminal, Seq) in any order,
// and acks each only after it is durable in the ledger. A shower entry
// captures its hold if it has not been captured yet (a shower that ended
// offline is settled this way).
type JournalEntry struct {
	V        int       `json:"v"`
	Terminal string    `json:"terminal"`
	Seq      uint64    `json:"seq"`
	Tx       TxID      `json:"tx"`
	Kind     EntryKind `json:"kind"`
	Status   Status    `json:"status"`
	Code     string    `json:"code,omitempty"`
	Amount   int64     `json:"amount"`
	Channel  string    `json:"channel,omitempty"`
	CredKind CredKind  `json:"cred_kind,omitempty"` // never the credential itself ...
	// Cred is the credential itself only for an offline entry: the signed
	// code is the student's authorisation the authorizer settles against
	// (expired by the time it is uploaded, and single use).
	Cred string    `json:"cred,omitempty"`
	ML   int64     `json:"ml,omitempty"`
	At   time.Time `json:"at"`
}

// JournalAck acknowledges one entry. OK=false with Code means the entry
// was refused for good (e.g. malformed); the terminal keeps it for the
// operator and does not resend it.
type JournalAck struct {
	V        int    `json:"v"`
	Terminal string `json:"terminal"`
	Seq      uint64 `json:"seq"`
	Tx       TxID   `json:"tx"`
	OK       bool   `json:"ok"`
	Code     string `json:"code,omitempty"`
}

// Link states in StatusMsg.
const (
	StateOnline  = "online"
	StateOffline = "offline"
)

// StatusMsg is a terminal's retained birth ("online") and its Last Will
// ("offline"). ConnSeq increases with every connection (like Sparkplug's
// bdSeq): an "offline" whose ConnSeq is lower than the last "online" seen is
// a stale will and is ignored.
type StatusMsg struct {
	V        int       `json:"v"`
	Terminal string    `json:"terminal"`
	State    string    `json:"state"`
	ConnSeq  uint64    `json:"conn_seq"`
	At       time.Time `json:"at,omitempty"`
	Software string    `json:"software,omitempty"`
	// JournalDepth (entries not yet acknowledged) and ConfigRevision (of
	// the last config received) are repeated by an "online" status of the
	// same connection when they change, for the back office's fleet view;
	// nil/0 when not reported.
	JournalDepth   *int   `json:"journal_depth,omitempty"`
	ConfigRevision uint64 `json:"config_revision,omitempty"`
}

// Mode is a terminal's mode of operation.
type Mode string

const (
	ModePOS    Mode = "pos"    // cashier keys the amount; code, WeChat code or card
	ModeCard   Mode = "card"   // card-tap box, fixed or keyed amount
	ModeShower Mode = "shower" // shower controller
)

// Tariff prices a shower.
type Tariff struct {
	CentsPerLitre  int64 `json:"cents_per_litre"`
	PulsesPerLitre int64 `json:"pulses_per_litre"`
	Hold           int64 `json:"hold"`           // cents held per shower (≥ 1500: rule 7)
	IdleTimeoutS   int   `json:"idle_timeout_s"` // close the valve after this long without flow
}

// IssuerKey is one issuer public key (Ed25519, base64 std encoding).
type IssuerKey struct {
	ID  byte   `json:"id"`
	Key string `json:"key"`
}

// Config is a terminal's retained configuration, published by the
// authorizer and cached by the terminal so that a box that boots offline
// still has its static QR and keys.
type Config struct {
	V              int         `json:"v"`
	Revision       uint64      `json:"revision"` // increases on every change
	Terminal       string      `json:"terminal"`
	Merchant       string      `json:"merchant"`
	MerchantName   string      `json:"merchant_name"`
	Campus         string      `json:"campus"`
	Mode           Mode        `json:"mode"`
	FixedAmount    int64       `json:"fixed_amount,omitempty"` // card mode; 0 = keyed by the cashier
	Tariff         *Tariff     `json:"tariff,omitempty"`       // shower mode
	IssuerKeys     []IssuerKey `json:"issuer_keys"`
	SealKey        string      `json:"seal_key"` // authorizer's X25519 public key, base64
	MerchantQR     string      `json:"merchant_qr"`
	RevokedDevices []uint32    `json:"revoked_devices,omitempty"`
	LostCards      []string    `json:"lost_cards,omitempty"`
	AuthTimeoutMS  int         `json:"auth_timeout_ms,omitempty"` // request deadline before reversal
	// Offline: how this terminal accepts offline codes (offline.go); nil:
	// it accepts none.
	Offline    *OfflinePolicy `json:"offline,omitempty"`
	ServerTime time.Time      `json:"server_time"` // at publication; responses carry fresher times
}

// StaticQRPayment is a scan-to-pay payment made to a terminal's merchant QR.
type StaticQRPayment struct {
	Tx     TxID      `json:"tx"`
	Seq    uint64    `json:"seq"` // the cursor value of this payment
	Amount int64     `json:"amount"`
	User   string    `json:"user"` // masked
	At     time.Time `json:"at"`
}

// Notice is pushed to a terminal's notify topic: static-QR payments made
// to its merchant QR (all of them after the requested cursor, or one new one).
type Notice struct {
	V        int               `json:"v"`
	Terminal string            `json:"terminal"`
	Payments []StaticQRPayment `json:"payments"`
	Cursor   uint64            `json:"cursor"` // highest Seq included
}

// Message is any payload with a version and a terminal.
type Message interface {
	*Request | *Response | *JournalEntry | *JournalAck | *StatusMsg | *Config | *Notice
}

// Encode marshals m as JSON, stamping the version.
func Encode[M Message](m M) ([]byte, error) {
	setVersion(any(m))
	var b []byte
	var err error
	if r, ok := any(m).(*Response); ok {
		b, err = MarshalResponse(r)
	} else {
		b, err = json.Marshal(m)
	}
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %T: %w", m, err)
	}
	return b, nil
}

// Decode parses a payload strictly: size bound, known fields only, member
// names exactly as documented (case-sensitive) and each at most once
// (CheckJSONNames), the right version, and the message's own validation.
// A Request in the form the encoders here write takes a fast path with
// the same result (decodeRequestFast).
func Decode[M Message](b []byte, m M) error {
	if len(b) > MaxMessageSize {
		return fmt.Errorf("protocol: decode %T: %d bytes: %w", m, len(b), ErrBadRequest)
	}
	if r, ok := any(m).(*Request); !ok || !decodeRequestFast(b, r) {
		if err := decodeJSON(b, m); err != nil {
			return fmt.Errorf("protocol: decode %T: %v: %w", m, err, ErrBadRequest)
		}
	}
	if v := version(any(m)); v != Version {
		return fmt.Errorf("protocol: decode %T: version %d: %w", m, v, ErrProtocolVersion)
	}
	if err := validate(any(m)); err != nil {
		return fmt.Errorf("protocol: decode %T: %v: %w", m, err, ErrBadRequest)
	}
	return nil
}

// decodeJSON is Decode's strict JSON reading: encoding/json with unknown
// fields refused and nothing after the value, then CheckJSONNames.
func decodeJSON(b []byte, m any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(m); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return CheckJSONNames(b, m)
}

func setVersion(m any) {
	switch m := m.(type) {
	case *Request:
		m.V = Version
	case *Response:
		m.V = Version
	case *JournalEntry:
		m.V = Version
	case *JournalAck:
		m.V = Version
	case *StatusMsg:
		m.V = Version
	case *Config:
		m.V = Version
	case *Notice:
		m.V = Version
	}
}

func version(m any) int {
	switch m := m.(type) {
	case *Request:
		return m.V
	case *Response:
		return m.V
	case *JournalEntry:
		return m.V
	case *JournalAck:
		return m.V
	case *StatusMsg:
		return m.V
	case *Config:
		return m.V
	case *Notice:
		return m.V
	}
	return 0
}

func validate(m any) error {
	switch m := m.(type) {
	case *Request:
		return m.Validate()
	case *Response:
		return m.Validate()
	case *JournalEntry:
		return m.Validate()
	case *JournalAck:
		if !ValidID(m.Terminal) || m.Seq == 0 {
			return fmt.Errorf("bad journal ack")
		}
	case *StatusMsg:
		if !ValidID(m.Terminal) || (m.State != StateOnline && m.State != StateOffline) {
			return fmt.Errorf("bad status")
		}
	case *Config:
		if !ValidID(m.Terminal) || (m.Mode != ModePOS && m.Mode != ModeCard && m.Mode != ModeShower) {
			return fmt.Errorf("bad config")
		}
		if m.Offline != nil {
			return m.Offline.Validate()
		}
	case *Notice:
		if !ValidID(m.Terminal) {
			return fmt.Errorf("bad notice")
		}
	}
	return nil
}

// Validate checks a request's fields for its op.
func (r *Request) Validate() error {
	if !ValidID(r.Terminal) {
		return fmt.Errorf("bad terminal %q", r.Terminal)
	}
	if _, err := ParseTxID(string(r.Tx)); err != nil && r.Op != OpNotices {
		return fmt.Errorf("bad tx")
	}
	switch r.Op {
	case OpPay:
		if !ValidAmount(r.Amount) || r.Cred == nil {
			return fmt.Errorf("pay needs amount and credential")
		}
	case OpHold:
		if r.Cred == nil {
			return fmt.Errorf("hold needs a credential")
		}
	case OpCapture:
		if r.Amount < 0 || r.Amount > MaxAmount || r.ML < 0 {
			return fmt.Errorf("bad capture amount")
		}
	case OpQuery, OpReverse, OpVoid, OpNotices:
	default:
		return fmt.Errorf("unknown op %q", r.Op)
	}
	if r.Cred != nil {
		switch r.Cred.Kind {
		case CredCode, CredCard, CredWeChat, CredAccount, CredFace:
		default:
			return fmt.Errorf("unknown credential kind %q", r.Cred.Kind)
		}
		if r.Cred.Text == "" || len(r.Cred.Text) > 1024 {
			return fmt.Errorf("bad credential text")
		}
	}
	return nil
}

// Validate checks a response's fields.
func (r *Response) Validate() error {
	if !ValidID(r.Terminal) {
		return fmt.Errorf("bad terminal")
	}
	switch r.Status {
	case StatusApproved, StatusDeclined, StatusPending, StatusReversed, StatusUnknown, StatusHeld, StatusVoided:
	default:
		return fmt.Errorf("unknown status %q", r.Status)
	}
	return nil
}

// Validate checks a journal entry's fields.
func (e *JournalEntry) Validate() error {
	if !ValidID(e.Terminal) || e.Seq == 0 {
		return fmt.Errorf("bad terminal or seq")
	}
	if _, err := ParseTxID(string(e.Tx)); err != nil {
		return fmt.Errorf("bad tx")
	}
	switch e.Kind {
	case EntryPayment, EntryShower, EntryReversal, EntryNotice:
		if e.Cred != "" {
			return fmt.Errorf("a %s entry carries no credential", e.Kind)
		}
	case EntryOffline:
		if e.Cred == "" || len(e.Cred) > maxCredLen || e.Status != StatusApproved || e.Amount <= 0 {
			return fmt.Errorf("bad offline entry")
		}
	default:
		return fmt.Errorf("unknown kind %q", e.Kind)
	}
	if e.Amount < 0 || e.Amount > MaxAmount || e.ML < 0 {
		return fmt.Errorf("bad amount")
	}
	return nil
}
