package journal

import "fmt"

// Flow is what kind of transaction a row is.
type Flow int

// Flows. Numbers are persisted.
const (
	FlowPay    Flow = 1 // a payment (pos, card)
	FlowShower Flow = 2 // a shower: hold, valve, metering, capture
)

// State is a transaction's persisted state. Numbers are explicit and
// persisted: never renumber, only add.
type State int

// States.
const (
	StateCreated       State = 1  // row written; no request sent yet
	StateSent          State = 2  // the pay request is about to be (or was) published
	StateApproved      State = 3  // final: paid
	StateDeclined      State = 4  // final: refused by the authorizer (pay or hold)
	StateInDoubt       State = 5  // no response before the deadline: must be reversed
	StateReversing     State = 6  // OpReverse being sent until acknowledged
	StateReversed      State = 7  // final: reversal acknowledged
	StatePending       State = 8  // WeChat USERPAYING: polling OpQuery until the deadline
	StateAbandoned     State = 9  // final: never sent (cancelled or crashed before sending)
	StateHoldRequested State = 10 // the hold request is about to be (or was) published
	StateHeld          State = 11 // hold placed; the valve is still closed
	StateValveOpen     State = 12 // the valve is being (or was) opened; Pulses0 is the meter's start
	StateMetering      State = 13 // water flowing; Pulses/ML/Cost are the last persisted meter values
	StateClosing       State = 14 // the valve is closed; final meter values persisted; capturing
	StateCaptured      State = 15 // final: shower settled (captured online or by its journal entry)
	StateOffline       State = 16 // final: a code accepted offline under its allowance (offline.go); settled on upload
)

var stateNames = map[State]string{
	StateCreated: "Created", StateSent: "Sent", StateApproved: "Approved",
	StateDeclined: "Declined", StateInDoubt: "InDoubt", StateReversing: "Reversing",
	StateReversed: "Reversed", StatePending: "Pending", StateAbandoned: "Abandoned",
	StateHoldRequested: "HoldRequested", StateHeld: "Held", StateValveOpen: "ValveOpen",
	StateMetering: "Metering", StateClosing: "Closing", StateCaptured: "Captured",
	StateOffline: "Offline",
}

func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ParseState returns the state named s ("Held"), for crash hooks and tools.
func ParseState(s string) (State, bool) {
	for k, v := range stateNames {
		if v == s {
			return k, true
		}
	}
	return 0, false
}

// Final reports whether no further transition is allowed.
func (s State) Final() bool {
	switch s {
	case StateApproved, StateDeclined, StateReversed, StateAbandoned, StateCaptured, StateOffline:
		return true
	}
	return false
}

// transitions lists the allowed moves. Anything else is a bug and is
// refused before it reaches the disk.
var transitions = map[State][]State{
	StateCreated:       {StateSent, StateHoldRequested, StateAbandoned},
	StateSent:          {StateApproved, StateDeclined, StateInDoubt, StatePending, StateReversing},
	StatePending:       {StateApproved, StateDeclined, StateInDoubt, StateReversing},
	StateInDoubt:       {StateReversing},
	StateReversing:     {StateReversed},
	StateHoldRequested: {StateHeld, StateDeclined, StateInDoubt, StateReversing},
	StateHeld:          {StateValveOpen, StateClosing},
	StateValveOpen:     {StateMetering, StateClosing},
	StateMetering:      {StateClosing},
	StateClosing:       {StateCaptured},
}

// CanMove reports whether from → to is an allowed transition.
func CanMove(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}
