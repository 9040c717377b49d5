package wallet

import "sync"

// payerCacheMax bounds the students kept (about 1 KiB each): a campus's
// paying students fit; past it the cache starts again empty.
const payerCacheMax = 1 << 16

// payerCache keeps the students read for a payment by code, by student
// and device (the device found theirs and live), so that the next payment
// of the same code's device is decided without reading them again. Only
// where the payment's write checks that the student is still at the
// version read (PaymentStore, PayerCheck): a payment decided on a student
// changed since — frozen, a device revoked, limits lowered, by this
// authorizer or any other writer — is refused by that write, and pay
// reads the student afresh and decides again. A refusal decided on a
// cached student is decided again on a fresh read too.
type payerCache struct {
	mu sync.Mutex
	m  map[uint64]User
}

func payerKey(uid, device uint32) uint64 { return uint64(uid)<<32 | uint64(device) }

// get returns a copy of the student cached for uid and device.
func (c *payerCache) get(uid, device uint32) (*User, bool) {
	c.mu.Lock()
	u, ok := c.m[payerKey(uid, device)]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	return &u, true
}

// put keeps a copy of u, read with device.
func (c *payerCache) put(u *User, device uint32) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= payerCacheMax {
		c.m = make(map[uint64]User)
	}
	c.m[payerKey(u.ID, device)] = *u
	c.mu.Unlock()
}

// drop forgets the student cached for uid and device.
func (c *payerCache) drop(uid, device uint32) {
	c.mu.Lock()
	delete(c.m, payerKey(uid, device))
	c.mu.Unlock()
}
