package wallet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"campuspay/protocol"
)

// The app login's lockout (rule 13 applied to the login password).
//
// Wrong passwords are counted per student number and, when the caller
// knows it, per (student number, client address). After PasswordTries
// wrong ones in a row from one address, that address is locked out of that
// number, and each further wrong one doubles the lock: 1, 2, 4 … minutes
// up to a day. A guesser's tries per number thus grow only with the
// logarithm of the time spent, while the student, on their own phone at
// another address, is not locked by them. Across all addresses a number
// locks after AccountLoginTries wrong passwords, doubling likewise but
// only up to Config.PasswordLock: that lock can be triggered by anyone, so
// it is kept short, and it still bounds a guesser with many addresses to a
// handful of tries an hour. Without an address (Login), the number's count
// locks after PasswordTries, up to Config.PasswordLock.
//
// The counts and locks are in the wallet store (Store.UpdateLoginFail),
// so a lock holds on every authorizer on the database and across a
// restart. Checks of one number are serialised in this process, and each
// failure is counted atomically in the store, so the count is exact
// however many attempts arrive at once: 60 parallel wrong passwords to one
// authorizer get PasswordTries checked, the rest are refused unchecked
// (with several authorizers, each may check one more before it sees the
// lock). A lock seen is remembered in memory until it ends (bounded), a
// pre-filter that refuses a flood of attempts on a locked number without
// reading the store: a lock never ends early, since only a successful
// login clears a count and none succeeds while locked. Counts without a
// failure for LoginForget are pruned from the store (at most once per
// LoginPrune per process).
const (
	AccountLoginTries = 4 * PasswordTries // wrong passwords from all addresses before the number locks
	LoginLockBase     = time.Minute       // the first lock; each further wrong password doubles it
	LoginLockMax      = 24 * time.Hour    // the longest lock of one address
	LoginForget       = 24 * time.Hour    // a count without failures this long is dropped
	LoginPrune        = time.Hour         // how often a process prunes forgotten counts from the store
)

// LoginLockedError is protocol.ErrLoginLocked with the time the lock ends.
// Failed tells whether this attempt was itself a wrong password (the one
// that set the lock) rather than refused unchecked.
type LoginLockedError struct {
	Until  time.Time
	Failed bool
}

func (e *LoginLockedError) Error() string {
	return protocol.ErrLoginLocked.Error() + " until " + e.Until.Format(time.RFC3339)
}

// Unwrap makes errors.Is(err, protocol.ErrLoginLocked) hold.
func (e *LoginLockedError) Unwrap() error { return protocol.ErrLoginLocked }

// Login checks a student number and login password, counting failures
// for the number alone (see LoginFrom).
func (s *Service) Login(ctx context.Context, studentNo, password string) (*User, error) {
	return s.LoginFrom(ctx, studentNo, password, "")
}

// LoginFrom checks a student number and login password from client (an
// address; "" if unknown). A locked attempt is refused with a
// *LoginLockedError and its password is not checked; a wrong password is
// ErrLoginFailed, or a *LoginLockedError if it sets a lock. A store that
// cannot be read or written fails the login (the lock is not guessed).
func (s *Service) LoginFrom(ctx context.Context, studentNo, password, client string) (*User, error) {
	defer s.loginLocks.lock(studentNo)()
	now := s.now()
	keys := []string{studentNo}
	if client != "" {
		keys = append(keys, loginPairKey(studentNo, client))
	}
	if until := s.cachedLock(now, keys...); !until.IsZero() {
		return nil, &LoginLockedError{Until: until}
	}
	fails, err := s.st.LoginFails(ctx, keys...)
	if err != nil {
		return nil, fmt.Errorf("wallet: login: %w", err)
	}
	var until time.Time
	for _, f := range fails {
		if now.Before(f.Until) {
			until = later(until, f.Until)
			s.cacheLock(now, f.Key, f.Until)
		}
	}
	if !until.IsZero() {
		return nil, &LoginLockedError{Until: until}
	}
	u, err := s.st.UserByStudentNo(ctx, studentNo)
	if err != nil && !errors.Is(err, protocol.ErrUserUnknown) {
		return nil, err
	}
	hash := s.dummyLoginHash // compared anyway, so an unknown number takes as long
	if u != nil {
		hash = []byte(u.LoginHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && u != nil {
		if len(fails) > 0 { // a login with nothing counted writes nothing
			if err := s.st.ClearLoginFails(ctx, keys...); err != nil {
				return nil, fmt.Errorf("wallet: login: %w", err)
			}
		}
		return u, nil
	}
	if client == "" {
		until, err = s.countLoginFail(ctx, studentNo, now, PasswordTries, s.cfg.PasswordLock)
	} else {
		var u1, u2 time.Time
		u1, err = s.countLoginFail(ctx, keys[1], now, PasswordTries, LoginLockMax)
		if err == nil {
			u2, err = s.countLoginFail(ctx, studentNo, now, AccountLoginTries, s.cfg.PasswordLock)
		}
		until = later(u1, u2)
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: login: %w", err)
	}
	s.pruneLoginFails(ctx, now)
	if !until.IsZero() {
		return nil, &LoginLockedError{Until: until, Failed: true}
	}
	return nil, protocol.ErrLoginFailed
}

// loginPairKey is the throttled key of a student number tried from one
// client address.
func loginPairKey(studentNo, client string) string { return studentNo + "@" + client }

// countLoginFail counts a wrong password for key in the store and returns
// the lock it sets, zero if none: after free wrong ones, LoginLockBase
// doubled for each one more, at most max. A count whose last failure is
// LoginForget old starts again.
func (s *Service) countLoginFail(ctx context.Context, key string, now time.Time, free int, max time.Duration) (time.Time, error) {
	f, err := s.st.UpdateLoginFail(ctx, key, func(f *LoginFail) {
		if f.Fails > 0 && now.Sub(f.Last) >= LoginForget {
			f.Fails, f.Until = 0, time.Time{}
		}
		f.Fails++
		f.Last = now
		if f.Fails < free {
			return
		}
		d := max
		if k := f.Fails - free; k < 30 && LoginLockBase<<k < max {
			d = LoginLockBase << k
		}
		f.Until = now.Add(d)
	})
	if err != nil {
		return time.Time{}, err
	}
	if f.Fails < free || !now.Before(f.Until) {
		return time.Time{}, nil
	}
	s.cacheLock(now, key, f.Until)
	return f.Until, nil
}

// pruneLoginFails drops the store's counts that lock nothing and were
// forgotten, at most once per LoginPrune. It is housekeeping, not the
// login's business: a failure is not reported, and the next failed login
// tries again.
func (s *Service) pruneLoginFails(ctx context.Context, now time.Time) {
	s.loginMu.Lock()
	due := now.Sub(s.loginPruned) >= LoginPrune
	if due {
		s.loginPruned = now
	}
	s.loginMu.Unlock()
	if !due {
		return
	}
	if _, err := s.st.PruneLoginFails(ctx, now, now.Add(-LoginForget)); err != nil {
		s.loginMu.Lock()
		s.loginPruned = time.Time{}
		s.loginMu.Unlock()
	}
}

// cachedLock returns when the latest lock this process has seen on keys
// ends, zero if none holds at now.
func (s *Service) cachedLock(now time.Time, keys ...string) time.Time {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	var until time.Time
	for _, k := range keys {
		if u, ok := s.loginLocked[k]; ok && now.Before(u) {
			until = later(until, u)
		}
	}
	return until
}

// cacheLock remembers that key is locked until until. The memory is
// bounded: locks that ended go first, then (a flood of locked numbers)
// all of them; forgetting one only costs a store read.
func (s *Service) cacheLock(now time.Time, key string, until time.Time) {
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if s.loginLocked == nil {
		s.loginLocked = map[string]time.Time{}
	}
	if len(s.loginLocked) >= s.loginCacheCap() {
		for k, u := range s.loginLocked {
			if !now.Before(u) {
				delete(s.loginLocked, k)
			}
		}
		if len(s.loginLocked) >= s.loginCacheCap() {
			clear(s.loginLocked)
		}
	}
	s.loginLocked[key] = later(s.loginLocked[key], until)
}

// maxLoginCache bounds the locks remembered in memory.
const maxLoginCache = 100_000

func (s *Service) loginCacheCap() int {
	if s.maxLoginFails > 0 {
		return s.maxLoginFails
	}
	return maxLoginCache
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
