package broker

import (
	"strings"

	"campuspay/protocol"
)

// The access rules, shared by the embedded broker's hook and the generated
// Mosquitto ACL so that both brokers enforce the same thing:
//
//   - a terminal (user name = client id = terminal id) may publish only
//     under campuspay/v1/up/{its id}/ and subscribe only under
//     campuspay/v1/down/{its id}/ (no shared subscriptions);
//   - a service user (an authorizer instance) may publish under
//     campuspay/v1/down/ and subscribe under campuspay/v1/up/, shared or not.

var (
	upPrefix   = protocol.TopicRoot + "/up/"
	downPrefix = protocol.TopicRoot + "/down/"
)

// TerminalCanWrite reports whether terminal id may publish to topic.
func TerminalCanWrite(id, topic string) bool {
	return protocol.ValidID(id) && strings.HasPrefix(topic, upPrefix+id+"/")
}

// TerminalCanRead reports whether terminal id may subscribe to filter.
func TerminalCanRead(id, filter string) bool {
	return protocol.ValidID(id) && strings.HasPrefix(filter, downPrefix+id+"/")
}

// ServiceCanWrite reports whether an authorizer may publish to topic.
func ServiceCanWrite(topic string) bool {
	return strings.HasPrefix(topic, downPrefix)
}

// ServiceCanRead reports whether an authorizer may subscribe to filter,
// which may be a shared subscription ($share/{group}/{filter}).
func ServiceCanRead(filter string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		group, f, ok := strings.Cut(rest, "/")
		if !ok || group == "" || strings.ContainsAny(group, "+#") {
			return false
		}
		filter = f
	}
	return strings.HasPrefix(filter, upPrefix)
}
