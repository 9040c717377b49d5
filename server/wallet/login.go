package wallet

import (
	"context"
	"errors"
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
// Checks of one number are serialised, so the count is exact however many
// attempts arrive at once: 60 parallel wrong passwords get PasswordTries
// checked, the rest are refused unchecked. Counts are kept in memory
// (bounded; a restart forgets them, which helps a guesser only by the
// restart rate) and forgotten after LoginForget without a failure.
const (
	AccountLoginTries = 4 * PasswordTries // wrong passwords from all addresses before the number locks
	LoginLockBase     = time.Minute       // the first lock; each further wrong password doubles it
	LoginLockMax      = 24 * time.Hour    // the longest lock of one address
	LoginForget       = 24 * time.Hour    // a count without failures this long is dropped
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
// ErrLoginFailed, or a *LoginLockedError if it sets a lock.
func (s *Service) LoginFrom(ctx context.Context, studentNo, password, client string) (*User, error) {
	defer s.loginLocks.lock(studentNo)()
	now := s.now()
	acct, pair := studentNo, ""
	if client != "" {
		pair = studentNo + "\x00" + client
	}
	s.loginMu.Lock()
	until := later(s.lockedUntil(acct, now), s.lockedUntil(pair, now))
	s.loginMu.Unlock()
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
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil && u != nil
	s.loginMu.Lock()
	defer s.loginMu.Unlock()
	if ok {
		delete(s.loginFails, acct)
		delete(s.loginFails, pair)
		return u, nil
	}
	if s.loginFails == nil {
		s.loginFails = map[string]*loginFail{}
	}
	if pair == "" {
		until = s.countLoginFail(acct, now, PasswordTries, s.cfg.PasswordLock)
	} else {
		until = later(s.countLoginFail(pair, now, PasswordTries, LoginLockMax),
			s.countLoginFail(acct, now, AccountLoginTries, s.cfg.PasswordLock))
	}
	if len(s.loginFails) > s.loginFailsCap() {
		s.evictLoginFails(now, acct, pair)
	}
	if !until.IsZero() {
		return nil, &LoginLockedError{Until: until, Failed: true}
	}
	return nil, protocol.ErrLoginFailed
}

type loginFail struct {
	n     int       // wrong passwords in a row
	last  time.Time // the last one
	until time.Time // locked until
}

// lockedUntil returns when key's lock ends, zero if it is not locked. The
// caller holds loginMu.
func (s *Service) lockedUntil(key string, now time.Time) time.Time {
	if f := s.loginFails[key]; key != "" && f != nil && now.Before(f.until) {
		return f.until
	}
	return time.Time{}
}

// countLoginFail counts a wrong password for key and returns the lock it
// sets, zero if none: after free wrong ones, LoginLockBase doubled for
// each one more, at most max. The caller holds loginMu.
func (s *Service) countLoginFail(key string, now time.Time, free int, max time.Duration) time.Time {
	f := s.loginFails[key]
	if f == nil || now.Sub(f.last) >= LoginForget {
		f = &loginFail{}
		s.loginFails[key] = f
	}
	f.n++
	f.last = now
	if f.n < free {
		return time.Time{}
	}
	d := max
	if k := f.n - free; k < 30 && LoginLockBase<<k < max {
		d = LoginLockBase << k
	}
	f.until = now.Add(d)
	return f.until
}

// maxLoginFails bounds the memory a guesser can take with failed logins.
const maxLoginFails = 100_000

func (s *Service) loginFailsCap() int {
	if s.maxLoginFails > 0 {
		return s.maxLoginFails
	}
	return maxLoginFails
}

// evictLoginFails drops the entries that lock nothing now (counting, or
// past their lock), never an active lock and not the keys just counted.
// The caller holds loginMu.
func (s *Service) evictLoginFails(now time.Time, keep ...string) {
next:
	for k, f := range s.loginFails {
		for _, kk := range keep {
			if k == kk {
				continue next
			}
		}
		if !now.Before(f.until) {
			delete(s.loginFails, k)
		}
	}
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
