package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// groupOrder is L, the order of the Ed25519 base point.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// le32 is n as 32 little-endian bytes, Ed25519's encoding of scalars.
func le32(n *big.Int) []byte {
	b := n.FillBytes(make([]byte, 32))
	slices.Reverse(b)
	return b
}

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sigEdgeCases are the inputs where Ed25519 implementations are known to
// differ (small-order, mixed-order and non-canonical points, s not
// reduced), with what crypto/ed25519 (std) and verifySig (want) answer.
func sigEdgeCases(t testing.TB) []struct {
	name          string
	pub, msg, sig []byte
	std, want     bool
} {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("campuspay code body")
	sig := ed25519.Sign(priv, msg)

	// s + L: the same signature with s not reduced mod L.
	be := slices.Clone(sig[32:])
	slices.Reverse(be)
	s := new(big.Int).SetBytes(be)
	sPlusL := append(append([]byte(nil), sig[:32]...), le32(new(big.Int).Add(s, groupOrder))...)

	identity := mustHex(t, "0100000000000000000000000000000000000000000000000000000000000000")
	// y = p + 1, a non-canonical encoding of the identity's y = 1.
	identityNonCanon := mustHex(t, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	zero := make([]byte, 32)
	// y = 2 is not the y of any curve point.
	offCurve := mustHex(t, "0200000000000000000000000000000000000000000000000000000000000000")
	flipped := append([]byte(nil), sig...)
	flipped[10] ^= 1

	return []struct {
		name          string
		pub, msg, sig []byte
		std, want     bool
	}{
		{"valid", pub, msg, sig, true, true},
		{"other message", pub, []byte("campuspay code bodY"), sig, false, false},
		{"R altered", pub, msg, flipped, false, false},
		{"s not reduced (s+L)", pub, msg, sPlusL, false, false},
		// Anyone can sign for a key of small order: refused.
		{"small-order A and R, s=0", identity, msg, append(append([]byte(nil), identity...), zero...), true, false},
		{"non-canonical A, s=0", identityNonCanon, msg, append(append([]byte(nil), identity...), zero...), true, false},
		{"non-canonical R, s=0", identity, msg, append(append([]byte(nil), identityNonCanon...), zero...), false, false},
		{"A off the curve", offCurve, msg, sig, false, false},
		{"R off the curve", pub, msg, append(append([]byte(nil), offCurve...), sig[32:]...), false, false},
		{"all zero", zero, msg, make([]byte, 64), false, false},
		// Only the key's holder can make this one: the cofactored
		// equation accepts it, the cofactorless one does not.
		{"R with a small-order component", pub, msg, torsionSig(t, seed, msg), false, true},
	}
}

// torsionSig signs msg with seed's key as Ed25519 does, except that R is
// rB plus a point of order 8 (and k hashes that R).
func torsionSig(t testing.TB, seed, msg []byte) []byte {
	h := sha512.Sum512(seed)
	h[0] &= 248
	h[31] &= 127
	h[31] |= 64
	a, err := scalar.NewFromBytesModOrder(h[:32])
	if err != nil {
		t.Fatal(err)
	}
	rh := sha512.Sum512([]byte("campuspay torsion test nonce"))
	r, err := scalar.NewFromBytesModOrderWide(rh[:])
	if err != nil {
		t.Fatal(err)
	}
	var R curve.EdwardsPoint
	R.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, r)
	R.Add(&R, curve.EIGHT_TORSION[1])
	var Rc curve.CompressedEdwardsY
	Rc.SetEdwardsPoint(&R)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	kh := sha512.New()
	kh.Write(Rc[:])
	kh.Write(pub)
	kh.Write(msg)
	k, err := scalar.NewFromBytesModOrderWide(kh.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	var sc scalar.Scalar
	sc.Add(r, sc.Mul(k, a))
	sig := make([]byte, 64)
	copy(sig, Rc[:])
	if err := sc.ToBytes(sig[32:]); err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestVerifySigRule(t *testing.T) {
	for _, c := range sigEdgeCases(t) {
		if std := ed25519.Verify(c.pub, c.msg, c.sig); std != c.std {
			t.Errorf("%s: crypto/ed25519 says %v, the table %v", c.name, std, c.std)
		}
		if got := verifySig(c.pub, c.msg, c.sig); got != c.want {
			t.Errorf("%s: verifySig says %v, the table %v", c.name, got, c.want)
		}
		// The key expanded (as a CertCache holds it) follows the same rule.
		if exp := expand(c.pub); exp != nil {
			if got := verifyOne(c.pub, exp, c.msg, c.sig); got != c.want {
				t.Errorf("%s: verifyOne with the key expanded says %v, the table %v", c.name, got, c.want)
			}
		}
	}
}

// expand is pub expanded for verification, as CertCache.add makes it, or
// nil where it cannot be.
func expand(pub []byte) *voi.ExpandedPublicKey {
	exp, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil
	}
	return exp
}

// TestVerifySigMutations signs random messages and flips random bytes of
// the key, message or signature: verifySig must agree with crypto/ed25519
// on every one.
func TestVerifySigMutations(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	accepted := 0
	for i := 0; i < 3000; i++ {
		seed := make([]byte, ed25519.SeedSize)
		for j := range seed {
			seed[j] = byte(r.UintN(256))
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := append([]byte(nil), priv.Public().(ed25519.PublicKey)...)
		msg := make([]byte, r.IntN(200))
		for j := range msg {
			msg[j] = byte(r.UintN(256))
		}
		sig := ed25519.Sign(priv, msg)
		switch r.IntN(4) {
		case 1:
			pub[r.IntN(len(pub))] ^= byte(1 + r.IntN(255))
		case 2:
			if len(msg) > 0 {
				msg[r.IntN(len(msg))] ^= byte(1 + r.IntN(255))
			}
		case 3:
			sig[r.IntN(len(sig))] ^= byte(1 + r.IntN(255))
		}
		std := ed25519.Verify(pub, msg, sig)
		if got := verifySig(pub, msg, sig); got != std {
			t.Fatalf("case %d: verifySig %v, crypto/ed25519 %v (pub %x msg %x sig %x)", i, got, std, pub, msg, sig)
		}
		if std {
			accepted++
		}
	}
	if accepted < 500 || accepted > 2500 {
		t.Fatalf("%d of 3000 accepted: the mutations are not exercising both outcomes", accepted)
	}
}

func TestVerifySigWrongLengths(t *testing.T) {
	c := sigEdgeCases(t)[0]
	for _, tc := range []struct {
		name     string
		pub, sig []byte
	}{
		{"short key", c.pub[:31], c.sig},
		{"long key", append(append([]byte(nil), c.pub...), 0), c.sig},
		{"short signature", c.pub, c.sig[:63]},
		{"long signature", c.pub, append(append([]byte(nil), c.sig...), 0)},
		{"nil", nil, nil},
	} {
		if verifySig(tc.pub, c.msg, tc.sig) {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// FuzzVerifySig: verifySig never panics, refuses wrong lengths, accepts
// whatever crypto/ed25519 accepts under a canonical key of large order,
// and a batch answers each signature as verifySig does.
func FuzzVerifySig(f *testing.F) {
	for _, c := range sigEdgeCases(f) {
		f.Add(c.pub, c.msg, c.sig)
	}
	good := sigEdgeCases(f)[0]
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		got := verifySig(pub, msg, sig)
		if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			if got {
				t.Fatalf("accepted a key of %d bytes and a signature of %d", len(pub), len(sig))
			}
			return
		}
		if ed25519.Verify(pub, msg, sig) && CheckDeviceKey(pub) == nil && !got {
			t.Fatal("refused what crypto/ed25519 accepts under a canonical key of large order")
		}
		batch := []*sigReq{
			{pub: good.pub, msg: good.msg, sig: good.sig},
			{pub: pub, msg: msg, sig: sig},
			{pub: good.pub, msg: good.msg, sig: good.sig},
		}
		(&SigBatch{Rand: testRand(1)}).check(batch)
		if batch[1].ok != got || !batch[0].ok || !batch[2].ok {
			t.Fatalf("batched %v %v %v, alone %v", batch[0].ok, batch[1].ok, batch[2].ok, got)
		}
	})
}

// testRand is a deterministic stream for a batch's coefficients.
func testRand(seed uint64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return rand.NewChaCha8(key)
}

// sigCases makes n signatures by distinct keys, every third one spoiled,
// with the edge cases mixed in, and verifySig's answer for each.
func sigCases(t testing.TB, n int) []struct {
	pub, msg, sig []byte
	want          bool
} {
	var out []struct {
		pub, msg, sig []byte
		want          bool
	}
	for _, c := range sigEdgeCases(t) {
		out = append(out, struct {
			pub, msg, sig []byte
			want          bool
		}{c.pub, c.msg, c.sig, c.want})
	}
	for i := len(out); i < n; i++ {
		seed := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, ed25519.SeedSize/2)
		priv := ed25519.NewKeyFromSeed(seed)
		msg := fmt.Appendf(nil, "code %d", i)
		sig := ed25519.Sign(priv, msg)
		if i%3 == 0 {
			sig[i%64] ^= 0x20
		}
		out = append(out, struct {
			pub, msg, sig []byte
			want          bool
		}{priv.Public().(ed25519.PublicKey), msg, sig, i%3 != 0})
	}
	return out[:n]
}

// A batch answers each signature as verifySig does, whether it holds one
// bad signature, several, or none, and whether none of its keys, some or
// all come expanded (from a CertCache: all expanded takes another path in
// curve25519-voi).
func TestSigBatchCheck(t *testing.T) {
	cases := sigCases(t, 40)
	for _, tc := range []struct {
		name string
		pick func(i int) bool
	}{
		{"all", func(int) bool { return true }},
		{"good only", func(i int) bool { return cases[i].want }},
		{"one bad among good", func(i int) bool { return cases[i].want || i == 1 }},
		{"bad only", func(i int) bool { return !cases[i].want }},
	} {
		for _, ex := range []struct {
			name   string
			expand func(i int) bool
		}{
			{"", func(int) bool { return false }},
			{", keys expanded", func(int) bool { return true }},
			{", every other key expanded", func(i int) bool { return i%2 == 0 }},
		} {
			t.Run(tc.name+ex.name, func(t *testing.T) {
				var batch []*sigReq
				var want []bool
				for i, c := range cases {
					if tc.pick(i) {
						q := &sigReq{pub: c.pub, msg: c.msg, sig: c.sig}
						if ex.expand(i) {
							q.exp = expand(c.pub)
						}
						batch = append(batch, q)
						want = append(want, c.want)
					}
				}
				(&SigBatch{Rand: testRand(2)}).check(batch)
				for i, q := range batch {
					if q.ok != want[i] {
						t.Errorf("signature %d of %d: %v, want %v", i, len(batch), q.ok, want[i])
					}
				}
			})
		}
	}
}

// Callers that arrive while a batch runs wait, and are then checked in
// batches of at most MaxSigBatch, each led by the first still waiting:
// 150 pending make batches of 64, 64 and 22, every caller answered right.
func TestSigBatchLead(t *testing.T) {
	const n = 150
	cases := sigCases(t, n)
	var mu sync.Mutex
	var sizes []int
	b := &SigBatch{Rand: testRand(3), checked: func(k int) {
		mu.Lock()
		sizes = append(sizes, k)
		mu.Unlock()
	}}
	b.leading = true // as if a batch were running
	got := make([]bool, n)
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Go(func() { got[i] = b.Verify(c.pub, c.msg, c.sig) })
	}
	for {
		b.mu.Lock()
		k := len(b.pending)
		b.mu.Unlock()
		if k == n {
			break
		}
		runtime.Gosched()
	}
	b.mu.Lock() // the running batch ends: the first waiting leads
	next := b.pending[0]
	next.lead = true
	b.mu.Unlock()
	close(next.done)
	wg.Wait()
	if !slices.Equal(sizes, []int{MaxSigBatch, MaxSigBatch, n - 2*MaxSigBatch}) {
		t.Fatalf("batches of %v", sizes)
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("signature %d: %v, want %v", i, got[i], c.want)
		}
	}
	if b.leading || len(b.pending) != 0 {
		t.Fatalf("after the last batch: leading %v, %d pending", b.leading, len(b.pending))
	}
}

// Many callers at once, each checking several signatures in turn: every
// answer right, every signature in exactly one batch, and the batch idle
// at the end. A nil batch checks alone.
func TestSigBatchConcurrent(t *testing.T) {
	cases := sigCases(t, 60)
	var total atomic.Int64
	b := &SigBatch{checked: func(k int) { total.Add(int64(k)) }}
	const callers, each = 32, 15
	var wg sync.WaitGroup
	errs := make(chan string, callers*each)
	for g := range callers {
		wg.Go(func() {
			for j := range each {
				c := cases[(g*each+j)%len(cases)]
				if got := b.Verify(c.pub, c.msg, c.sig); got != c.want {
					errs <- fmt.Sprintf("caller %d, signature %d: %v, want %v", g, j, got, c.want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if n := total.Load(); n != callers*each {
		t.Fatalf("%d signatures went through batches, want %d", n, callers*each)
	}
	if b.leading || len(b.pending) != 0 {
		t.Fatalf("at rest: leading %v, %d pending", b.leading, len(b.pending))
	}
	var none *SigBatch
	for _, c := range cases[:12] {
		if got := none.Verify(c.pub, c.msg, c.sig); got != c.want {
			t.Errorf("nil batch: %v, want %v", got, c.want)
		}
	}
	if b.Verify(cases[0].pub[:31], cases[0].msg, cases[0].sig) {
		t.Error("a short key verified")
	}
}

// BenchmarkVerifySig: crypto/ed25519, verifySig and batches of 8, 16 and
// 64, in the same run; ns/sig is the CPU a signature.
func BenchmarkVerifySig(b *testing.B) {
	c := sigEdgeCases(b)[0]
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(c.pub, c.msg, c.sig) {
				b.Fatal("refused")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sig")
	})
	b.Run("verifySig", func(b *testing.B) {
		for b.Loop() {
			if !verifySig(c.pub, c.msg, c.sig) {
				b.Fatal("refused")
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sig")
	})
	for _, n := range []int{8, 16, MaxSigBatch} {
		good := sigCases(b, 3*n)
		var reqs []*sigReq
		for _, g := range good {
			if g.want && len(reqs) < n {
				reqs = append(reqs, &sigReq{pub: g.pub, msg: g.msg, sig: g.sig})
			}
		}
		run := func(name string, reqs []*sigReq) {
			b.Run(name, func(b *testing.B) {
				sb := &SigBatch{}
				for b.Loop() {
					sb.check(reqs)
				}
				for _, q := range reqs {
					if !q.ok {
						b.Fatal("refused")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
			})
		}
		run(fmt.Sprintf("batch-%d", n), reqs)
		// The keys expanded once, as the authorizer's CertCache holds them.
		var exp []*sigReq
		for _, q := range reqs {
			exp = append(exp, &sigReq{pub: q.pub, exp: expand(q.pub), msg: q.msg, sig: q.sig})
		}
		run(fmt.Sprintf("batch-%d-expanded", n), exp)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// A batch whose check panics (here: its randomness fails) answers its
// callers false and passes the lead on: the next callers are not stuck.
func TestSigBatchPanicHandsOff(t *testing.T) {
	var cases []struct {
		pub, msg, sig []byte
		want          bool
	}
	for _, c := range sigCases(t, 20) {
		if c.want {
			cases = append(cases, c)
		}
	}
	b := &SigBatch{Rand: failingReader{}}
	b.leading = true
	got := make([]bool, 2)
	panicked := make([]bool, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		c := cases[i+1]
		wg.Go(func() {
			defer func() { panicked[i] = recover() != nil }()
			got[i] = b.Verify(c.pub, c.msg, c.sig)
		})
	}
	for {
		b.mu.Lock()
		k := len(b.pending)
		b.mu.Unlock()
		if k == 2 {
			break
		}
		runtime.Gosched()
	}
	b.mu.Lock()
	next := b.pending[0]
	next.lead = true
	b.mu.Unlock()
	close(next.done)
	wg.Wait()
	if panicked[0] == panicked[1] || got[0] || got[1] {
		t.Fatalf("panicked %v, answers %v: want the leader's panic and false for the other", panicked, got)
	}
	b.Rand = testRand(4)
	if c := cases[0]; b.Verify(c.pub, c.msg, c.sig) != c.want {
		t.Fatal("the batch is not usable after a panic")
	}
	if b.leading || len(b.pending) != 0 {
		t.Fatalf("at rest: leading %v, %d pending", b.leading, len(b.pending))
	}
}
