package broker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

func TestLimitHandler(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	h := newLimitHandler(slog.NewTextHandler(&buf, nil), func() time.Time { return now })
	log := slog.New(h).With("component", "broker")
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "a/b", Payload: []byte("secret-payload"), PacketID: 7}
	conn := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{Password: []byte("pw-123")}}

	log.Warn("error processing packet", "client", "T1", "pk", pk)
	log.Warn("error processing packet", "client", "T1", "pk", &conn)
	if s := buf.String(); strings.Contains(s, "secret-payload") || strings.Contains(s, "pw-123") ||
		!strings.Contains(s, "payload_bytes=14") || !strings.Contains(s, "topic=a/b") {
		t.Fatalf("packet not summarised: %s", s)
	}
	// The same refusal for the same client: one record per window.
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d records, want 1: %s", n, buf.String())
	}
	for i := 0; i < 100; i++ {
		log.Warn("error processing packet", "client", "T1")
	}
	// Many clients: at most logBurst per window.
	for i := 0; i < 100; i++ {
		log.Warn("error processing packet", "client", strings.Repeat("x", i+1))
	}
	if n := strings.Count(buf.String(), "\n"); n != logBurst {
		t.Fatalf("%d records in one window, want %d", n, logBurst)
	}
	now = now.Add(logWindow)
	buf.Reset()
	log.Warn("error processing packet", "client", "T1")
	if !strings.Contains(buf.String(), "suppressed=81") {
		t.Fatalf("next window's record lacks the count of suppressed ones: %s", buf.String())
	}
	if !h.Enabled(context.Background(), slog.LevelWarn) || h.Enabled(context.Background(), slog.LevelDebug) {
		t.Fatal("levels not those of the inner handler")
	}
}
