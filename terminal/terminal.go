// Package terminal holds the domain types of the terminal daemon shared by
// its parts: the link to the authorizer (implemented by terminal/link on
// paho MQTT), the journal's outbox that the link drains, and link states.
// The mode state machines (pos, card, shower), the journal (SQLite) and the
// daemon (cmd/terminald) build on these.
package terminal

import (
	"context"
	"errors"

	"campuspay/protocol"
)

// LinkState is the link's connectivity as the state machines see it.
// Numbers are explicit: they are logged and exported as a metric.
type LinkState int

const (
	LinkDown LinkState = 0 // not connected to the broker, or the authorizer is silent
	LinkUp   LinkState = 1 // connected, config received, authorizer answering
)

func (s LinkState) String() string {
	if s == LinkUp {
		return "online"
	}
	return "offline"
}

// ErrNoResponse means a request's deadline passed with no response: the
// transaction is in doubt and must be reversed (or resolved by query)
// before the customer is offered another way to pay.
var ErrNoResponse = errors.New("link: no response before the deadline")

// ErrLinkDown means the request was not sent because the link is down.
// Nothing reached the authorizer... unless it had been sent before: callers
// treat any request that was journalled as sent as in doubt.
var ErrLinkDown = errors.New("link: offline")

// Link is the terminal's connection to the authorizer.
type Link interface {
	// Request publishes req and waits for the Response with the same Tx and
	// Op, until ctx ends (→ ErrNoResponse) . It may be called concurrently.
	Request(ctx context.Context, req *protocol.Request) (*protocol.Response, error)
	// States delivers every link state change (the current state first).
	States() <-chan LinkState
	// Configs delivers every config received (retained on connect, then
	// on each change).
	Configs() <-chan *protocol.Config
	// Notices delivers static-QR payment notices for this terminal.
	Notices() <-chan *protocol.Notice
	// Kick wakes the journal pump after new entries were committed.
	Kick()
	Close() error
}

// Outbox is the journal's upload queue, drained in order by the link's
// pump. Entries are numbered per terminal from 1 without gaps.
type Outbox interface {
	// Pending returns up to limit unacknowledged entries with Seq > after,
	// in Seq order.
	Pending(ctx context.Context, after uint64, limit int) ([]protocol.JournalEntry, error)
	// Acked durably marks entry seq as acknowledged by the authorizer.
	Acked(ctx context.Context, seq uint64, ack protocol.JournalAck) error
}
