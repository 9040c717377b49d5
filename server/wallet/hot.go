package wallet

import (
	"context"
	"sync"
	"time"

	"campuspay/protocol"
)

// hotTTL is how long a terminal row read by the money path is served from
// memory. The store stays the truth: a change made through
// this Service drops the entry at once, and one made elsewhere (another
// authorizer on the same database, the admin CLI) is seen within hotTTL.
const hotTTL = 2 * time.Second

// hotCache keeps rows the money path reads on every payment but that
// change rarely (terminals), so that a payment costs no query for them.
// Devices are not among them: a student pays a few times a day, so a
// device's row would rarely be in memory; a code payment reads it with
// its user instead (Store.Payer). Only rows that exist are cached: an
// unknown terminal is looked up again every time (it may be added at any
// moment).
type hotCache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]hotEntry[V]
}

type hotEntry[V any] struct {
	v       V
	expires time.Time
}

// get returns the cached value of k, or loads it with load and caches it
// until now+hotTTL. The value is shared: callers must not modify it.
func (c *hotCache[K, V]) get(k K, now time.Time, load func() (V, error)) (V, error) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[K]hotEntry[V]{}
	}
	if len(c.m) >= hotCacheMax {
		clear(c.m) // a campus has far fewer terminals: a bound, not a policy
	}
	c.m[k] = hotEntry[V]{v: v, expires: now.Add(hotTTL)}
	c.mu.Unlock()
	return v, nil
}

// drop forgets k (after a change made through this Service).
func (c *hotCache[K, V]) drop(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}

const hotCacheMax = 200_000

// terminal returns the terminal id from the hot cache or the store.
func (s *Service) terminal(ctx context.Context, id string) (*Terminal, error) {
	return s.hotTerminals.get(id, s.now(), func() (*Terminal, error) { return s.st.Terminal(ctx, id) })
}

// checkDeadline refuses a request that would start moving money after the
// terminal has given up waiting for it (DESIGN §6: a request past its
// terminal's deadline never moves money). The deadline is the request's
// time on the terminal's corrected clock plus the auth timeout this
// authorizer tells terminals, less DeadlineMargin; a request dated further ahead than the
// tolerated clock skew is refused too, so that no terminal can buy itself
// an endless deadline. A request without a time (older firmware) is not
// checked here.
func (s *Service) checkDeadline(req *protocol.Request, now time.Time) error {
	if req.At.IsZero() {
		return nil
	}
	if req.At.After(now.Add(protocol.MaxClockSkew)) {
		return protocol.ErrRequestTime
	}
	if !now.Add(s.DeadlineMargin()).Before(req.At.Add(s.authTimeout())) {
		return protocol.ErrDeadline
	}
	return nil
}

// DeadlineMargin is how much of a request's time must be left for money
// to start moving: a tenth of the auth timeout, so that the writes and the
// answer's way back still fit before the terminal gives up.
func (s *Service) DeadlineMargin() time.Duration { return s.authTimeout() / 10 }

// authTimeout is how long terminals wait for an answer.
func (s *Service) authTimeout() time.Duration {
	return time.Duration(s.cfg.AuthTimeoutMS) * time.Millisecond
}
