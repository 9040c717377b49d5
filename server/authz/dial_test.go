package authz

import (
	"crypto/tls"
	"net"
	"net/url"
	"strings"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"campuspay/server/broker/brokertest"
)

// dial reaches a broker on each scheme the authorizer accepts, and a
// packet the broker writes a byte at a time (the worst split) and one it
// writes together with the next both arrive whole through the read
// buffer.
func TestDialSchemes(t *testing.T) {
	pki := brokertest.NewPKI(t)
	for _, tc := range []struct {
		scheme string
		listen func() (net.Listener, error)
		tls    *tls.Config
	}{
		{"tcp", func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }, nil},
		{"ssl", func() (net.Listener, error) { return tls.Listen("tcp", "127.0.0.1:0", pki.ServerTLS(false)) }, pki.ClientTLS(false)},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			ln, err := tc.listen()
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			first := publish("pay/T1", `{"n":1}`)
			second := publish("pay/T2", `{"n":2}`)
			sent := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					sent <- err
					return
				}
				defer c.Close()
				for _, b := range first {
					if _, err := c.Write([]byte{b}); err != nil {
						sent <- err
						return
					}
				}
				_, err = c.Write(append(append([]byte{}, first...), second...))
				sent <- err
				var b [1]byte
				c.Read(b[:]) // until the client hangs up
			}()
			u := &url.URL{Scheme: tc.scheme, Host: ln.Addr().String()}
			o := paho.NewClientOptions().SetTLSConfig(tc.tls)
			c, err := dial(u, *o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, buffered := c.(*bufferedConn); buffered != (tc.tls == nil) {
				t.Fatalf("%T: a plain connection is buffered, a TLS one is not", c)
			}
			for i, want := range []string{`{"n":1}`, `{"n":1}`, `{"n":2}`} {
				p, err := packets.ReadPacket(c)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if pp, ok := p.(*packets.PublishPacket); !ok || string(pp.Payload) != want {
					t.Fatalf("packet %d: %v, want a publish of %s", i, p, want)
				}
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		})
	}
	_, err := dial(&url.URL{Scheme: "ws", Host: "127.0.0.1:1"}, *paho.NewClientOptions())
	if err == nil || !strings.Contains(err.Error(), "unknown scheme") {
		t.Fatalf("ws: %v, want an unknown scheme error", err)
	}
}

// publish is a QoS 1 PUBLISH packet's bytes.
func publish(topic, payload string) []byte {
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.TopicName, p.Qos, p.MessageID, p.Payload = topic, 1, 7, []byte(payload)
	var b strings.Builder
	if err := p.Write(&b); err != nil {
		panic(err)
	}
	return []byte(b.String())
}
