package api

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"
)

// LoginLimits throttle login attempts before any password is checked:
// one client address trying a common password on every student number
// runs into PerAddress, many addresses together into Global (which also
// bounds the bcrypt work a flood of guesses can cause). A successful
// login gives its tokens back, so students logging in — a whole lunch
// rush behind one campus NAT address — are held back only by failures.
// These limits are each authorizer's own, in memory: a cheap pre-filter
// against floods, which a restart resets. The per-number lockout with
// growing delays is the wallet's (wallet.LoginFrom), kept in the wallet
// store and so shared by every authorizer and kept across restarts.
type LoginLimits struct {
	PerAddress   rate.Limit // attempts per second per address; default 1/3 s
	AddressBurst int        // default 20
	Global       rate.Limit // attempts per second in all; default 30
	GlobalBurst  int        // default 60
	MaxAddresses int        // addresses remembered; default 100 000
}

func (l *LoginLimits) defaults() {
	if l.PerAddress <= 0 {
		l.PerAddress = rate.Every(3 * time.Second)
	}
	if l.AddressBurst <= 0 {
		l.AddressBurst = 20
	}
	if l.Global <= 0 {
		l.Global = 30
	}
	if l.GlobalBurst <= 0 {
		l.GlobalBurst = 60
	}
	if l.MaxAddresses <= 0 {
		l.MaxAddresses = 100_000
	}
}

// Login metrics, on the default registry.
var (
	loginFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "campuspay_login_failures_total",
		Help: "App logins refused for a wrong student number or password (including the one that sets a lock).",
	})
	loginThrottled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "campuspay_login_throttled_total",
		Help: "App logins refused unchecked: scope address or global (rate limits), account (the student number is locked for this client).",
	}, []string{"scope"})
	loginLocks = promauto.NewCounter(prometheus.CounterOpts{
		Name: "campuspay_login_locks_total",
		Help: "Student numbers locked (for one client address or for all) by a wrong password; each further one doubles the lock.",
	})
)

// Throttle scopes (label values of campuspay_login_throttled_total).
const (
	scopeAddress = "address"
	scopeGlobal  = "global"
	scopeAccount = "account"
)

// loginThrottle holds the login rate limiters. Times come from the
// Server's clock, never the limiter's own.
type loginThrottle struct {
	lim    LoginLimits
	global *rate.Limiter

	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

func newLoginThrottle(l LoginLimits) *loginThrottle {
	l.defaults()
	return &loginThrottle{lim: l, global: rate.NewLimiter(l.Global, l.GlobalBurst), addrs: map[string]*rate.Limiter{}}
}

// admit takes a token for one attempt from addr. It returns the scope that
// refused it and how long to wait, or a refund to call if the login
// succeeds.
func (t *loginThrottle) admit(addr string, now time.Time) (refund func(), scope string, wait time.Duration) {
	t.mu.Lock()
	l := t.addrs[addr]
	if l == nil {
		if len(t.addrs) >= t.lim.MaxAddresses {
			t.sweep(now)
		}
		l = rate.NewLimiter(t.lim.PerAddress, t.lim.AddressBurst)
		t.addrs[addr] = l
	}
	t.mu.Unlock()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, scopeAddress, d
	}
	g := t.global.ReserveN(now, 1)
	if d := g.DelayFrom(now); d > 0 {
		g.CancelAt(now)
		r.CancelAt(now)
		return nil, scopeGlobal, d
	}
	return func() { r.CancelAt(now); g.CancelAt(now) }, "", 0
}

// sweep forgets addresses whose bucket is full again (they lose nothing),
// and if that is not enough, all of them: then the global limit binds.
// The caller holds mu.
func (t *loginThrottle) sweep(now time.Time) {
	for a, l := range t.addrs {
		if l.TokensAt(now) >= float64(t.lim.AddressBurst) {
			delete(t.addrs, a)
		}
	}
	if len(t.addrs) >= t.lim.MaxAddresses {
		clear(t.addrs)
	}
}

// clientAddr is the address a request's login attempts are counted
// under: the peer's IP (the API is served directly, not behind a proxy),
// an IPv6 peer by its /64, which one machine usually holds whole.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
