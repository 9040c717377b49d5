package syncsuite_test

import (
	"context"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"campuspay/protocol"
)

// BenchmarkRequestRoundTrip measures a payment request from the terminal
// link through the embedded broker, the authorizer and the (fake) wallet
// and back, against a baseline measured in the same run: a bare paho
// client echoing the same payload through the same broker. The ratio is
// the link's and authorizer's overhead on top of the MQTT round trip.
func BenchmarkRequestRoundTrip(b *testing.B) {
	for _, kind := range []string{"embedded", "mosquitto"} {
		b.Run(kind, func(b *testing.B) {
			e := newEnv(b, kind, envOpts{})
			e.fb.fund("S1", 1<<40)

			// Baseline: echo through the broker with bare clients.
			echo := e.rawClient(services[1].User, services[1].Password, nil)
			echo.Subscribe(protocol.AuthorizerFilter(protocol.ChanJournal, ""), 1, func(c paho.Client, m paho.Message) {
				term, _, _ := protocol.ParseTopic(m.Topic())
				c.Publish(protocol.Topic(protocol.ChanJournalAck, term), 1, false, m.Payload())
			}).Wait()
			got := make(chan struct{}, 1)
			term := e.rawClient("T2", termPasswords["T2"], func(paho.Message) { got <- struct{}{} })
			term.Subscribe(protocol.Topic(protocol.ChanJournalAck, "T2"), 1, nil).Wait()
			payload := encode(b, pay(newTx(b), "S1", 100))
			n := 2000
			start := time.Now()
			for range n {
				term.Publish(protocol.Topic(protocol.ChanJournal, "T2"), 1, false, payload)
				<-got
			}
			base := time.Since(start) / time.Duration(n)

			l := e.newLink("T1", nil, nil)
			waitUp(b, l)
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if _, err := l.Request(ctx, pay(newTx(b), "S1", 100)); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
			b.StopTimer()
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(base.Microseconds()), "baseline-µs/op")
			b.ReportMetric(float64(per)/float64(base), "x-baseline")
		})
	}
}
