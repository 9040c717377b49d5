// Package device defines the small, per-role interfaces the terminal daemon
// drives: scanners, card readers, keypads, customer displays, the shower
// valve and its flow meter. Drivers live in sub-packages named after the
// hardware family (camera, serialscan, cardreader, keypad, display, valve);
// devicetest holds in-memory fakes for unit tests.
//
// Every device has Halt, which puts it in its safe state (valve closed,
// display blanked, scanning stopped). Halt is idempotent and is called on
// graceful shutdown and on any unrecoverable error.
package device

import (
	"context"
	"errors"
	"time"
)

// ErrHalted is returned by blocking calls on a device after Halt.
var ErrHalted = errors.New("device: halted")

// Scan is one code read by a scanner (camera or serial barcode scanner).
type Scan struct {
	Text   string    // decoded text, exactly as encoded in the symbol
	Format string    // "QR_CODE", "CODE_128", ... ("" when the device does not say)
	Source string    // driver name, e.g. "camera", "serialscan"
	At     time.Time // when it was read
}

// Scanner reads codes. Scanning happens only while Scan is being called:
// a camera grabs and decodes frames only then, so an idle box does no work.
type Scanner interface {
	// Scan blocks until a code is read, ctx ends (ctx.Err()) or the device
	// is halted (ErrHalted). A driver must not report the same text twice
	// within its de-duplication window.
	Scan(ctx context.Context) (Scan, error)
	Halt() error
}

// Tap is one card presented to a reader.
type Tap struct {
	UID    string    // upper-case hex, no separators (e.g. "04A2B3C4D5E6F7"), or the reader's decimal/hex ID text for 125 kHz tags
	Source string    // driver name, e.g. "rdm6300", "pn532", "asciiuid"
	At     time.Time // when it was read
	// Presentation is what the driver knows of this presentation: a
	// card that entered the field while it watched, one already there at
	// its first poll (maybe left on the reader across a restart: it must
	// leave the field before it pays), or unknown.
	Presentation Presentation
}

// Presentation is what a card reader driver knows of a tap.
type Presentation int

// Presentations. Numbers are explicit: logs carry them.
const (
	// PresentationUnknown: the driver cannot tell (ASCII-line readers
	// send each presentation once and nothing while the card stays).
	PresentationUnknown Presentation = 0
	// PresentationNew: the card entered the field while the driver watched.
	PresentationNew Presentation = 1
	// PresentationHeld: the card was already in the field when the
	// driver began watching (its first poll after opening).
	PresentationHeld Presentation = 2
)

// CardReader reads card taps.
type CardReader interface {
	// Read blocks until a card is presented, ctx ends, or Halt.
	// A card held on the reader is reported once, not repeatedly; a card
	// found in the field when the driver started is PresentationHeld.
	Read(ctx context.Context) (Tap, error)
	Halt() error
}

// Face is one face a face reader matched (reserved: face payment, 刷脸, is
// coming; no driver exists and the authorizer refuses it today, see
// protocol.CredFace).
type Face struct {
	Account string    // the student number the reader matched
	Score   float64   // the reader's match confidence, 0..1
	Source  string    // driver name
	At      time.Time // when it matched
}

// FaceReader matches faces against the students enrolled on the reader.
// Reserved: terminald drives no FaceReader yet; the role is named so that
// a driver, when one exists, slots in beside the scanner and card reader.
type FaceReader interface {
	// Match blocks until a face is matched, ctx ends, or Halt.
	Match(ctx context.Context) (Face, error)
	Halt() error
}

// Key is one key press on a keypad.
type Key rune

// Keys other than the digits '0'..'9' and '.'.
const (
	KeyEnter     Key = '\n'
	KeyCancel    Key = 0x1b // ESC / "取消"
	KeyBackspace Key = 0x08
	KeyStop      Key = 'S' // shower "stop" / "结束"
	KeyFunc      Key = 'F' // function key: switch input field (e.g. account → password)
)

// Keypad reads key presses.
type Keypad interface {
	// Key blocks until a key is pressed, ctx ends, or Halt.
	Key(ctx context.Context) (Key, error)
	Halt() error
}

// ScreenKind is what the customer display is showing.
type ScreenKind int

// Screen kinds. Numbers are explicit: the display page and logs carry them.
const (
	ScreenBlank   ScreenKind = 0 // nothing (after Halt)
	ScreenIdle    ScreenKind = 1 // welcome / ready
	ScreenAmount  ScreenKind = 2 // cashier keying an amount
	ScreenAwait   ScreenKind = 3 // waiting for a code or card for Amount
	ScreenWorking ScreenKind = 4 // authorising / waiting for the phone (USERPAYING)
	ScreenResult  ScreenKind = 5 // success or failure, with a message
	ScreenOffline ScreenKind = 6 // offline: static merchant QR in QR
	ScreenShower  ScreenKind = 7 // shower running: Litres and Amount so far, Hold
	ScreenInput   ScreenKind = 8 // keyed input (shower account / password, masked)
	ScreenNotices ScreenKind = 9 // static-QR payments made while offline, for the cashier
)

// Screen is everything a customer display shows at one moment. Drivers
// render what they can (a text console shows the QR as half-blocks).
type Screen struct {
	Kind      ScreenKind
	Title     string // short heading, Chinese first ("请出示付款码")
	TitleEN   string
	Message   string // result or prompt line in Chinese (reason message as-is)
	MessageEN string
	Amount    int64    // cents; 0 when not relevant
	OK        bool     // for ScreenResult: success
	QR        string   // payload to draw as a QR code (static merchant QR), "" for none
	Input     string   // for ScreenInput: what was typed, already masked for secrets
	Litres    float64  // for ScreenShower
	Hold      int64    // for ScreenShower: cents held
	Lines     []string // for ScreenNotices: one line per item
	Online    bool     // link state indicator
}

// Display is a customer-facing display.
type Display interface {
	Show(Screen) error
	Halt() error // blank the screen
}

// Valve is the shower's water valve. Closed is the safe state.
type Valve interface {
	Open() error
	Close() error
	// IsOpen reads the valve's actual state from the device.
	IsOpen() (bool, error)
	Halt() error // close the valve
}

// FlowMeter counts water-flow pulses.
type FlowMeter interface {
	// Pulses returns the meter's cumulative pulse counter. It wraps at 2^32.
	Pulses() (uint32, error)
	Halt() error
}
