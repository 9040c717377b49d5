package modes

import (
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/terminal/device"
)

// Issue 13 (1): one card tap is charged at most once, also when
// terminald is killed and restarted while the card is still on the
// reader.

const stillThere = "S Await 300 | 卡片仍在读卡区：如需再次支付，请移开后重新刷卡"

func cardBox(t *testing.T) *harness {
	h := newHarness(t, protocol.ModeCard, func(c *protocol.Config) { c.FixedAmount = 300 })
	h.step(up(), StateAwait, "S Await 300")
	return h
}

func (h *harness) paysCard(uid string) {
	h.t.Helper()
	h.link.script(approved(protocol.ChannelBalance))
	h.step(tap(uid), StateResult, "J Created", "J Sent", "S Working 300", "R pay 300 card", "J Approved",
		"S Result ok=true 300 | 余额支付")
	h.advance(DefaultResultHold)
	h.step(tick(), StateAwait, "S Await 300")
}

// restart is a kill -9 and a new process on the same journal.
func (h *harness) restart(after time.Duration) {
	h.advance(after)
	h.newMachine(protocol.ModeCard)
	h.step(up(), StateAwait, "S Await 300")
}

func presented(uid string, p device.Presentation) TapEvent {
	return TapEvent{device.Tap{UID: uid, Source: "fake", Presentation: p}}
}

// A card the driver found in the field at its first poll does not pay;
// taken off and tapped again, it does.
func TestCardHeldByTheReaderDoesNotPay(t *testing.T) {
	h := cardBox(t)
	h.step(presented("04A1B2", device.PresentationHeld), StateAwait, stillThere)
	h.link.script(approved(protocol.ChannelBalance))
	h.step(presented("04A1B2", device.PresentationNew), StateResult, "J Created", "J Sent", "S Working 300",
		"R pay 300 card", "J Approved", "S Result ok=true 300 | 余额支付")
	if n := len(h.link.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// A reader that tells a new presentation is believed right after a
// restart: the student took the card off and tapped again.
func TestCardNewPresentationAfterARestartPays(t *testing.T) {
	h := cardBox(t)
	h.paysCard("04A1B2")
	h.restart(time.Second)
	h.link.script(approved(protocol.ChannelBalance))
	h.step(presented("04A1B2", device.PresentationNew), StateResult, "J Created", "J Sent", "S Working 300",
		"R pay 300 card", "J Approved", "S Result ok=true 300 | 余额支付")
}

// After a restart a reader that cannot tell reports the card again: its
// first tap within RetapInterval of its journalled tap does not pay,
// other cards do, and the card taken off and tapped again does.
func TestCardLeftOnTheReaderAcrossARestart(t *testing.T) {
	h := cardBox(t)
	h.paysCard("04A1B2")
	h.restart(3 * time.Second)
	h.step(tap("04a1b2"), StateAwait, stillThere)
	h.paysCard("0A0B0C0D")
	h.paysCard("04A1B2")
	// Within the run, the driver's presence logic is what stops repeats:
	// a new presentation pays at once.
	h.paysCard("04A1B2")
	if n := len(h.link.requests()); n != 4 {
		t.Fatalf("%d requests, want 4", n)
	}
}

// A tap past RetapInterval after the card's last one pays, whether the
// restart came late or the first tap after it did.
func TestCardRetapIntervalOver(t *testing.T) {
	h := cardBox(t)
	h.paysCard("04A1B2")
	h.restart(DefaultRetapInterval)
	h.paysCard("04A1B2")

	h.restart(2 * time.Second)
	h.advance(DefaultRetapInterval)
	h.paysCard("04A1B2")
}
