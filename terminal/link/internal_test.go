package link

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"campuspay/protocol"
)

type nopOutbox struct{}

func (nopOutbox) Pending(context.Context, uint64, int) ([]protocol.JournalEntry, error) {
	return nil, nil
}
func (nopOutbox) Acked(context.Context, uint64, protocol.JournalAck) error { return nil }

func offline(t *testing.T, rnd func() float64) *Link {
	t.Helper()
	n := uint64(0)
	l, err := New(Config{
		Broker: "tcp://127.0.0.1:1", Terminal: "T1", ConnSeq: func() (uint64, error) { n++; return n, nil },
		BackoffMin: 100 * time.Millisecond, BackoffMax: 800 * time.Millisecond, Rand: rnd,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, nopOutbox{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestBackoffDoublesWithJitter(t *testing.T) {
	tests := []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{1, 0, 50 * time.Millisecond},
		{1, 0.999999, 100 * time.Millisecond},
		{2, 0, 100 * time.Millisecond},
		{3, 0.5, 300 * time.Millisecond},
		{4, 0, 400 * time.Millisecond},
		{10, 0, 400 * time.Millisecond}, // capped at BackoffMax
		{10, 0.999999, 800 * time.Millisecond},
	}
	for _, tt := range tests {
		l := offline(t, func() float64 { return tt.r })
		got := l.backoff(tt.n)
		if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("backoff(%d) with rand %.2f = %v, want %v", tt.n, tt.r, got, tt.want)
		}
	}
}

// FuzzOnMessage feeds arbitrary payloads on every down topic: nothing may
// panic, and only a valid message for this terminal is delivered.
func FuzzOnMessage(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"op":"pay","tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","terminal":"T1","status":"approved","server_time":"2026-01-01T00:00:00Z"}`,
		`{"v":1,"terminal":"T1","seq":1,"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","ok":true}`,
		`{"v":1,"revision":1,"terminal":"T1","merchant":"M","merchant_name":"x","campus":"c","mode":"pos","issuer_keys":[],"seal_key":"","merchant_qr":"","server_time":"2026-01-01T00:00:00Z"}`,
		`{"v":1,"terminal":"T1","payments":[{"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","seq":2,"amount":5,"user":"张*","at":"2026-01-01T00:00:00Z"}],"cursor":2}`,
		`{"v":1,"terminal":"T2","payments":[{"tx":"01ARZ3NDEKTSV4RRFFQ69G5FAV","seq":2,"amount":5,"user":"x","at":"2026-01-01T00:00:00Z"}],"cursor":2}`,
		`{}`, `null`, `[`, "\xff",
	} {
		for ch := byte(0); ch < 4; ch++ {
			f.Add(ch, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, ch byte, payload []byte) {
		l := offline(t, nil)
		c := []protocol.Channel{protocol.ChanResponse, protocol.ChanJournalAck, protocol.ChanConfig, protocol.ChanNotify}[int(ch)%4]
		l.onMessage(1, &fakeMsg{topic: protocol.Topic(c, "T1"), payload: payload})
		select {
		case n := <-l.notices:
			if n.Terminal != "T1" || len(n.Payments) == 0 {
				t.Fatalf("delivered notice %+v", n)
			}
		case cfg := <-l.configs:
			if cfg.Terminal != "T1" {
				t.Fatalf("delivered config %+v", cfg)
			}
		default:
		}
	})
}

type fakeMsg struct {
	topic   string
	payload []byte
}

func (m *fakeMsg) Duplicate() bool   { return false }
func (m *fakeMsg) Qos() byte         { return 1 }
func (m *fakeMsg) Retained() bool    { return false }
func (m *fakeMsg) Topic() string     { return m.topic }
func (m *fakeMsg) MessageID() uint16 { return 1 }
func (m *fakeMsg) Payload() []byte   { return m.payload }
func (m *fakeMsg) Ack()              {}
