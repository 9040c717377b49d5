package protocol

import (
	"fmt"
	"strings"
)

// Topic tree (DESIGN §4). Everything lives under a versioned root; the
// direction is the second level so that a broker ACL is two pattern rules:
//
//	pattern write campuspay/v1/up/%u/#
//	pattern read  campuspay/v1/down/%u/#
//
//	campuspay/v1/up/{terminal}/req          terminal → authorizer  Request
//	campuspay/v1/up/{terminal}/journal      terminal → authorizer  JournalEntry
//	campuspay/v1/up/{terminal}/status       terminal, retained     StatusMsg (birth; Last Will = offline)
//	campuspay/v1/down/{terminal}/resp       authorizer → terminal  Response
//	campuspay/v1/down/{terminal}/journal/ack authorizer → terminal JournalAck
//	campuspay/v1/down/{terminal}/config     authorizer, retained   Config
//	campuspay/v1/down/{terminal}/notify     authorizer → terminal  Notice
//
// The terminal id is the broker user name and client id, and a valid ID
// (ValidID), so it can never contain '/', '+' or '#'.
const TopicRoot = "campuspay/v1"

// Channel is one topic kind.
type Channel string

const (
	ChanRequest    Channel = "req"
	ChanJournal    Channel = "journal"
	ChanStatus     Channel = "status"
	ChanResponse   Channel = "resp"
	ChanJournalAck Channel = "journal/ack"
	ChanConfig     Channel = "config"
	ChanNotify     Channel = "notify"
)

// Up reports whether the channel flows from terminal to authorizer.
func (c Channel) Up() bool { return c == ChanRequest || c == ChanJournal || c == ChanStatus }

var channels = []Channel{ChanRequest, ChanJournal, ChanStatus, ChanResponse, ChanJournalAck, ChanConfig, ChanNotify}

// Topic returns the topic of channel c for terminal t.
func Topic(c Channel, terminal string) string {
	dir := "down"
	if c.Up() {
		dir = "up"
	}
	return TopicRoot + "/" + dir + "/" + terminal + "/" + string(c)
}

// ParseTopic splits a topic into terminal id and channel.
func ParseTopic(topic string) (terminal string, c Channel, err error) {
	rest, ok := strings.CutPrefix(topic, TopicRoot+"/")
	if !ok {
		return "", "", fmt.Errorf("protocol: topic %q: not under %s", topic, TopicRoot)
	}
	dir, rest, _ := strings.Cut(rest, "/")
	terminal, ch, _ := strings.Cut(rest, "/")
	if !ValidID(terminal) {
		return "", "", fmt.Errorf("protocol: topic %q: bad terminal id", topic)
	}
	for _, k := range channels {
		if string(k) == ch && (k.Up() == (dir == "up")) && (dir == "up" || dir == "down") {
			return terminal, k, nil
		}
	}
	return "", "", fmt.Errorf("protocol: topic %q: unknown channel", topic)
}

// AuthorizerFilter is the subscription filter for channel c across all
// terminals. With group != "" it is an MQTT shared subscription
// ($share/group/...), so several authorizers split the load.
func AuthorizerFilter(c Channel, group string) string {
	f := TopicRoot + "/up/+/" + string(c)
	if group != "" {
		f = "$share/" + group + "/" + f
	}
	return f
}
