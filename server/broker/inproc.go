package broker

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ErrNotConnected is an in-process client's answer to a publish or
// subscribe before Connect or after Disconnect.
var ErrNotConnected = errors.New("broker: in-process client not connected")

// Client returns a paho client that joins b inside this process, without a
// connection: its subscriptions are mochi inline subscriptions, called on
// the publishing terminal's own goroutine, and its publishes are injected
// as the broker's inline client. For the authorizer on its embedded
// broker, whose every request and answer otherwise crossed a socket twice
// more (encoded, written, read and decoded again by paho and by mochi,
// with a PUBACK each way).
//
// What differs from a network client: a message is handed over at once,
// acknowledged or not (Ack does nothing; there is no in-flight window, so
// the receiver bounds its own queue); a shared-subscription filter
// ($share/GROUP/F) subscribes to F, since one process shares nothing with
// itself; publishes complete when the broker has routed them; o's
// OnConnect runs on Connect and o's DefaultPublishHandler gets messages
// subscribed without a callback.
func (b *Broker) Client(o *paho.ClientOptions) paho.Client {
	return &inprocClient{b: b, o: *o, id: int(inprocSubIDs.Add(1))}
}

type inprocClient struct {
	b         *Broker
	o         paho.ClientOptions
	id        int // its inline subscriptions' identifier
	connected atomic.Bool

	mu      sync.Mutex
	filters map[string]bool // subscribed inline filters
}

// inprocSubIDs numbers in-process clients: mochi keys inline
// subscriptions by filter and identifier, so two clients need two.
var inprocSubIDs atomic.Int32

func (c *inprocClient) IsConnected() bool      { return c.connected.Load() }
func (c *inprocClient) IsConnectionOpen() bool { return c.IsConnected() }

func (c *inprocClient) Connect() paho.Token {
	if !c.connected.Swap(true) && c.o.OnConnect != nil {
		go c.o.OnConnect(c) // as paho does
	}
	return doneToken(nil)
}

// Disconnect removes the subscriptions. A delivery mochi had already
// started may still reach its handler after it returns.
func (c *inprocClient) Disconnect(uint) {
	c.connected.Store(false)
	c.mu.Lock()
	filters := c.filters
	c.filters = nil
	c.mu.Unlock()
	for f := range filters {
		c.b.srv.Unsubscribe(f, c.id)
	}
}

func (c *inprocClient) Publish(topic string, qos byte, retained bool, payload any) paho.Token {
	var b []byte
	switch p := payload.(type) {
	case []byte:
		b = p
	case string:
		b = []byte(p)
	default:
		return doneToken(fmt.Errorf("broker: in-process publish of a %T", payload))
	}
	if !c.IsConnected() {
		return doneToken(ErrNotConnected)
	}
	return doneToken(c.b.srv.Publish(topic, b, retained, qos))
}

func (c *inprocClient) Subscribe(topic string, qos byte, callback paho.MessageHandler) paho.Token {
	return c.SubscribeMultiple(map[string]byte{topic: qos}, callback)
}

// SubscribeMultiple subscribes outside the client's lock: mochi hands the
// retained messages to the handler within the call, and a handler may use
// the client.
func (c *inprocClient) SubscribeMultiple(filters map[string]byte, callback paho.MessageHandler) paho.Token {
	if callback == nil {
		callback = c.o.DefaultPublishHandler
	}
	if callback == nil {
		return doneToken(errors.New("broker: in-process subscribe without a handler"))
	}
	if !c.IsConnected() {
		return doneToken(ErrNotConnected)
	}
	for f := range filters {
		f = unshared(f)
		err := c.b.srv.Subscribe(f, c.id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			if !c.IsConnected() {
				return
			}
			callback(c, &inprocMessage{
				topic:    pk.TopicName,
				payload:  append([]byte(nil), pk.Payload...), // the receiver keeps it past the call
				qos:      pk.FixedHeader.Qos,
				retained: pk.FixedHeader.Retain,
				dup:      pk.FixedHeader.Dup,
				id:       pk.PacketID,
			})
		})
		if err != nil {
			return doneToken(fmt.Errorf("broker: in-process subscribe %s: %w", f, err))
		}
		c.mu.Lock()
		if c.filters == nil {
			c.filters = map[string]bool{}
		}
		c.filters[f] = true
		c.mu.Unlock()
	}
	return doneToken(nil)
}

func (c *inprocClient) Unsubscribe(topics ...string) paho.Token {
	for _, f := range topics {
		f = unshared(f)
		c.b.srv.Unsubscribe(f, c.id)
		c.mu.Lock()
		delete(c.filters, f)
		c.mu.Unlock()
	}
	return doneToken(nil)
}

// AddRoute is not supported: subscribe with a callback instead.
func (c *inprocClient) AddRoute(string, paho.MessageHandler) {}

func (c *inprocClient) OptionsReader() paho.ClientOptionsReader { return paho.NewOptionsReader(&c.o) }

// unshared is filter without a shared-subscription prefix.
func unshared(filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if _, f, ok := strings.Cut(rest, "/"); ok {
			return f
		}
	}
	return filter
}

type inprocMessage struct {
	topic         string
	payload       []byte
	qos           byte
	retained, dup bool
	id            uint16
}

func (m *inprocMessage) Duplicate() bool   { return m.dup }
func (m *inprocMessage) Qos() byte         { return m.qos }
func (m *inprocMessage) Retained() bool    { return m.retained }
func (m *inprocMessage) Topic() string     { return m.topic }
func (m *inprocMessage) MessageID() uint16 { return m.id }
func (m *inprocMessage) Payload() []byte   { return m.payload }
func (m *inprocMessage) Ack()              {}

// doneToken is a paho.Token already complete with err.
func doneToken(err error) paho.Token { return token{err} }

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

type token struct{ err error }

func (t token) Wait() bool                     { return true }
func (t token) WaitTimeout(time.Duration) bool { return true }
func (t token) Done() <-chan struct{}          { return closedCh }
func (t token) Error() error                   { return t.err }
