package console

import "time"

// TerminalLink is a terminal's link as the MQTT side last saw it (from the
// status messages terminals publish: the retained birth and the Last Will).
type TerminalLink struct {
	Terminal string
	Online   bool
	Seen     time.Time // when the authorizer received the last status
	Software string
}
