package protocol

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"runtime"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// verifySig reports whether sig is pub's Ed25519 signature of msg.
//
// The rule is RFC 8032's cofactored check ([8][S]B = [8]R + [8][k]A), s
// below the group order, A and R canonically encoded, and a key of small
// order refused, as anyone can sign for it (curve25519-voi's
// VerifyOptionsDefault). It is the rule a batch of signatures can be
// checked under (SigBatch), and one rule serves everywhere, so a
// terminal's check and the authorizer's agree whether or not a code was
// batched. It accepts every signature crypto/ed25519 (cofactorless)
// accepts under a canonical key of large order, and more only where the
// signer put a small-order component into R or its key: only the key's
// holder can do that, for a message it signed anyway (sig_test.go).
// Unlike crypto/ed25519 it never panics: a key of the wrong length is
// simply not valid.
func verifySig(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, verifyOpts)
}

var verifyOpts = &voi.Options{Verify: voi.VerifyOptionsDefault}

// verifyOne is verifySig through pub's expanded form when there is one
// (exp is pub expanded, or nil).
func verifyOne(pub ed25519.PublicKey, exp *voi.ExpandedPublicKey, msg, sig []byte) bool {
	if exp == nil {
		return verifySig(pub, msg, sig)
	}
	return voi.VerifyExpandedWithOptions(exp, msg, sig, verifyOpts)
}

// MaxSigBatch is the most signatures one batch checks, which bounds how
// long its callers wait for it: 64 take about 1.4 ms of CPU here, and past
// about 8 a batch saves little more per signature (BenchmarkVerifySig).
const MaxSigBatch = 64

// SigBatch checks the signatures that concurrent callers ask for together,
// as one batch: in a batch of 8 or more a signature costs about 70 % of
// the CPU it costs checked alone (BenchmarkVerifySig).
// The authorizer checks a device signature on every payment code, and one
// by one that was its largest single cost in Go (docs/money-path.md).
//
// Nothing waits on a timer. The first caller to find no batch running
// leads: it yields the processor once (runtime.Gosched), so that the
// goroutines already runnable — under load, the other workers about to
// check their own codes — add theirs, then checks whatever is pending (at
// most MaxSigBatch) and hands the lead to the first caller still waiting.
// An idle authorizer's batch is its one signature, checked alone.
//
// A batch answers each signature as verifySig would: if the whole batch
// does not verify, each of its signatures is checked alone. The zero value
// is ready; a nil *SigBatch checks every signature alone. Safe for
// concurrent use.
type SigBatch struct {
	// Rand gives the batch equation's random coefficients (crypto/rand
	// when nil).
	Rand io.Reader

	mu      sync.Mutex
	pending []*sigReq
	leading bool

	checked func(n int) // tests: called with each batch's size
}

type sigReq struct {
	pub, msg, sig []byte
	exp           *voi.ExpandedPublicKey // pub expanded, or nil
	ok            bool
	lead          bool          // woken to lead the next batch, not answered
	done          chan struct{} // closed when answered or made the leader
}

// Verify reports whether sig is pub's Ed25519 signature of msg, under
// verifySig's rule, checking it in a batch with any other callers'.
func (b *SigBatch) Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	return b.verify(pub, nil, msg, sig)
}

// verify is Verify with pub also expanded for verification (exp, from a
// CertCache), or exp nil.
func (b *SigBatch) verify(pub ed25519.PublicKey, exp *voi.ExpandedPublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	if b == nil {
		return verifyOne(pub, exp, msg, sig)
	}
	r := &sigReq{pub: pub, exp: exp, msg: msg, sig: sig, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	follow := b.leading
	b.leading = true
	b.mu.Unlock()
	if follow {
		if <-r.done; !r.lead {
			return r.ok
		}
	}
	b.lead()
	return r.ok
}

// lead checks one batch, whose first request is the leader's own, and
// hands off.
func (b *SigBatch) lead() {
	runtime.Gosched()
	b.mu.Lock()
	n := min(len(b.pending), MaxSigBatch)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()

	defer b.handOff(batch) // even if check panics: its callers then get false
	b.check(batch)
	if b.checked != nil {
		b.checked(len(batch))
	}
}

// handOff answers a checked batch's callers and passes the lead to the
// first caller still waiting, or to no one.
func (b *SigBatch) handOff(batch []*sigReq) {
	b.mu.Lock()
	var next *sigReq
	if len(b.pending) > 0 {
		next = b.pending[0]
		next.lead = true
	} else {
		b.pending, b.leading = nil, false
	}
	b.mu.Unlock()
	for _, q := range batch {
		if !q.lead { // a leader's done was closed to make it one
			close(q.done)
		}
	}
	if next != nil {
		close(next.done)
	}
}

// check sets each request's answer: one alone is checked alone; more go
// through curve25519-voi's batch verifier, which checks each one alone
// when the batch equation fails.
func (b *SigBatch) check(batch []*sigReq) {
	if len(batch) == 1 {
		q := batch[0]
		q.ok = verifyOne(q.pub, q.exp, q.msg, q.sig)
		return
	}
	v := voi.NewBatchVerifierWithCapacity(len(batch))
	all := true
	for _, q := range batch {
		all = all && q.exp != nil
	}
	if !all {
		// A key not expanded yet would be expanded for this one use: its
		// tables would cost more than they save. This also keeps the
		// batch off the expanded keys' precomputed path, which needs
		// every key expanded.
		v.ForceNoPublicKeyExpansion()
	}
	for _, q := range batch {
		if q.exp != nil {
			v.AddExpandedWithOptions(q.exp, q.msg, q.sig, verifyOpts)
		} else {
			v.AddWithOptions(voi.PublicKey(q.pub), q.msg, q.sig, verifyOpts)
		}
	}
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	_, oks := v.Verify(rnd)
	for i, q := range batch {
		q.ok = oks[i]
	}
}
