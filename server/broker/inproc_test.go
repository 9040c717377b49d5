package broker_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
	"campuspay/server/broker"
)

// The in-process client, as the authorizer uses it on its embedded broker:
// OnConnect runs on Connect and subscribes with a shared filter; a
// terminal's request reaches the default handler whole (a copy that
// outlives the broker's packet); the answer published in-process reaches
// the terminal; nothing is delivered after Disconnect, and a publish then
// fails.
func TestInProcessClient(t *testing.T) {
	b, err := broker.New(broker.Config{Addr: "127.0.0.1:0", Authenticate: authenticate})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan paho.Message, 10)
	subscribed := make(chan error, 1)
	o := paho.NewClientOptions().
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- m }).
		SetOnConnectHandler(func(c paho.Client) {
			tok := c.SubscribeMultiple(map[string]byte{protocol.AuthorizerFilter(protocol.ChanRequest, "authz"): 1}, nil)
			tok.Wait()
			subscribed <- tok.Error()
		})
	c := b.Client(o)
	if c.IsConnected() {
		t.Fatal("connected before Connect")
	}
	if err := c.Publish("x", 1, false, []byte("early")).Error(); err != broker.ErrNotConnected {
		t.Fatalf("publish before Connect: %v", err)
	}
	if err := wait(t, c.Connect()); err != nil {
		t.Fatal(err)
	}
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
	if !c.IsConnected() {
		t.Fatal("not connected after Connect")
	}

	term, r := mustConnect(t, "tcp://"+b.Addr(), "T1")
	if err := wait(t, term.Subscribe(protocol.Topic(protocol.ChanResponse, "T1"), 1, nil)); err != nil {
		t.Fatal(err)
	}
	req := protocol.Topic(protocol.ChanRequest, "T1")
	if err := wait(t, term.Publish(req, 1, false, []byte(`{"op":"pay"}`))); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Topic() != req || string(m.Payload()) != `{"op":"pay"}` || m.Qos() != 1 {
			t.Fatalf("got %s %q qos %d", m.Topic(), m.Payload(), m.Qos())
		}
		m.Ack() // a no-op, as the authorizer calls it
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the in-process client")
	}
	resp := protocol.Topic(protocol.ChanResponse, "T1")
	if err := wait(t, c.Publish(resp, 1, false, []byte(`{"ok":true}`))); err != nil {
		t.Fatal(err)
	}
	r.expect(t, resp)

	c.Disconnect(0)
	if c.IsConnected() {
		t.Fatal("connected after Disconnect")
	}
	if err := wait(t, term.Publish(req, 1, false, []byte(`{"op":"late"}`))); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(resp, 1, false, []byte("late")).Error(); err != broker.ErrNotConnected {
		t.Fatalf("publish after Disconnect: %v", err)
	}
	// The late request went through the broker (T1's PUBACK) to nobody:
	// Disconnect removed the inline subscription before it was sent.
	select {
	case m := <-got:
		t.Fatalf("delivered %s %q", m.Topic(), m.Payload())
	default:
	}
	if n := b.ClientsConnected(); n != 1 {
		t.Fatalf("%d clients connected, want the terminal alone (the in-process client is none)", n)
	}
}
