package broker_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"campuspay/protocol"
	"campuspay/server/broker"
)

// A terminal that keeps publishing big payloads where it may not must not
// grow the broker's log by its payloads (issue 13 item 2): 4 MiB refused
// used to add 12 MB of log.
func TestRefusedPublishesDoNotFloodTheLog(t *testing.T) {
	var buf syncBuffer
	b, err := broker.New(broker.Config{Addr: "127.0.0.1:0", Authenticate: authenticate,
		Logger: slog.New(slog.NewTextHandler(&buf, nil))}) // the daemon's default level (info)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	payload := bytes.Repeat([]byte("Z"), 256<<10)
	const rounds = 16 // 4 MiB in all
	for i := 0; i < rounds; i++ {
		lost := make(chan struct{})
		c, _, err := connectWithLost(t, "tcp://"+b.Addr(), "T1", lost)
		if err != nil {
			t.Fatal(err)
		}
		tok := c.Publish(protocol.Topic(protocol.ChanRequest, "T2"), 1, false, payload)
		select {
		case <-tok.Done():
		case <-lost:
		case <-time.After(10 * time.Second):
			t.Fatal("refused publish neither acked nor disconnected")
		}
		c.Disconnect(0)
	}
	log := buf.String()
	if strings.Contains(log, "ZZZZ") || strings.Contains(log, "90 90 90 90") {
		t.Error("the broker log holds the refused payload")
	}
	if len(log) > 64<<10 {
		t.Errorf("%d MiB refused grew the log by %d bytes", rounds/4, len(log))
	}
	if !strings.Contains(log, "access denied") {
		t.Errorf("the refusal is not logged at all: %q", log)
	}
}
