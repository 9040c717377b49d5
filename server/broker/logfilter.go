package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// The broker's log is written by mochi and by the access hook for every
// refused packet, at the rate any connected client chooses. Two rules keep
// it from filling the disk (issue 13 item 2):
//
//   - a packet is never logged whole: mochi attaches the packets it fails on
//     ("pk", "packet"), payload and CONNECT password included, so every
//     packets.Packet attribute is replaced by a summary (type, topic, QoS,
//     packet id, payload length);
//   - repeated records are rate-limited: per message and client, at most one
//     record per logWindow, and per message at most logBurst records per
//     logWindow whatever the client. The next record let through carries
//     "suppressed", the number dropped since the last one.

const (
	logWindow = 10 * time.Second
	logBurst  = 20
	// logKeys bounds the limiter's memory: past it, the per-client table is
	// reset (the per-message cap still holds).
	logKeys = 4096
)

// limitHandler is the slog.Handler the broker logs through.
type limitHandler struct {
	inner slog.Handler
	lim   *logLimiter
	now   func() time.Time
}

// logLimiter is shared by a limitHandler and those derived from it.
type logLimiter struct {
	mu        sync.Mutex
	perClient map[string]time.Time // message+client → start of its window
	perMsg    map[string]*msgWindow
}

type msgWindow struct {
	start      time.Time
	n          int // records let through in this window
	suppressed int // dropped since the last record let through
}

func newLimitHandler(inner slog.Handler, now func() time.Time) *limitHandler {
	return &limitHandler{inner: inner, now: now,
		lim: &logLimiter{perClient: map[string]time.Time{}, perMsg: map[string]*msgWindow{}}}
}

func (h *limitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *limitHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &limitHandler{inner: h.inner.WithAttrs(scrubAttrs(as)), lim: h.lim, now: h.now}
}

func (h *limitHandler) WithGroup(name string) slog.Handler {
	return &limitHandler{inner: h.inner.WithGroup(name), lim: h.lim, now: h.now}
}

func (h *limitHandler) Handle(ctx context.Context, r slog.Record) error {
	client := ""
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "client" || (client == "" && a.Key == "user") {
			client = a.Value.String()
		}
		out.AddAttrs(scrubAttr(a))
		return true
	})
	suppressed, ok := h.lim.allow(r.Message, client, h.now())
	if !ok {
		logSuppressed.Inc()
		return nil
	}
	if suppressed > 0 {
		out.AddAttrs(slog.Int("suppressed", suppressed))
	}
	return h.inner.Handle(ctx, out)
}

// allow reports whether a record with msg about client may be written, and
// how many records with msg were dropped since the last one written.
func (l *logLimiter) allow(msg, client string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.perMsg[msg]
	if w == nil {
		if len(l.perMsg) >= logKeys {
			clear(l.perMsg)
		}
		w = &msgWindow{start: now}
		l.perMsg[msg] = w
	}
	if now.Sub(w.start) >= logWindow || now.Before(w.start) {
		w.start, w.n = now, 0
	}
	key := msg + "\x00" + client
	if t, seen := l.perClient[key]; seen && now.Sub(t) < logWindow && !now.Before(t) {
		w.suppressed++
		return 0, false
	}
	if w.n >= logBurst {
		w.suppressed++
		return 0, false
	}
	if len(l.perClient) >= logKeys {
		clear(l.perClient)
	}
	l.perClient[key] = now
	w.n++
	s := w.suppressed
	w.suppressed = 0
	return s, true
}

func scrubAttrs(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = scrubAttr(a)
	}
	return out
}

// scrubAttr replaces a packet by its summary, inside groups too.
func scrubAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindGroup:
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(scrubAttrs(v.Group())...)}
	case slog.KindAny:
		switch p := v.Any().(type) {
		case packets.Packet:
			return slog.Attr{Key: a.Key, Value: packetSummary(&p)}
		case *packets.Packet:
			if p != nil {
				return slog.Attr{Key: a.Key, Value: packetSummary(p)}
			}
		case []byte:
			return slog.Int(a.Key+"_bytes", len(p))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// packetSummary is what may be logged of a packet: never its payload or
// its CONNECT credentials.
func packetSummary(p *packets.Packet) slog.Value {
	as := []slog.Attr{slog.String("type", packets.PacketNames[p.FixedHeader.Type])}
	if p.TopicName != "" {
		as = append(as, slog.String("topic", p.TopicName))
	}
	if p.FixedHeader.Type == packets.Publish {
		as = append(as, slog.Int("qos", int(p.FixedHeader.Qos)), slog.Int("payload_bytes", len(p.Payload)))
	}
	if p.PacketID != 0 {
		as = append(as, slog.Int("packet_id", int(p.PacketID)))
	}
	return slog.GroupValue(as...)
}
