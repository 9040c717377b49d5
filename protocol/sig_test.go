package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"
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
// differ (small-order and non-canonical points, s not reduced), with what
// crypto/ed25519 answers for each.
func sigEdgeCases(t testing.TB) []struct {
	name          string
	pub, msg, sig []byte
	want          bool
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
		want          bool
	}{
		{"valid", pub, msg, sig, true},
		{"other message", pub, []byte("campuspay code bodY"), sig, false},
		{"R altered", pub, msg, flipped, false},
		{"s not reduced (s+L)", pub, msg, sPlusL, false},
		{"small-order A and R, s=0", identity, msg, append(append([]byte(nil), identity...), zero...), true},
		{"non-canonical A, s=0", identityNonCanon, msg, append(append([]byte(nil), identity...), zero...), true},
		{"non-canonical R, s=0", identity, msg, append(append([]byte(nil), identityNonCanon...), zero...), false},
		{"A off the curve", offCurve, msg, sig, false},
		{"R off the curve", pub, msg, append(append([]byte(nil), offCurve...), sig[32:]...), false},
		{"all zero", zero, msg, make([]byte, 64), false},
	}
}

func TestVerifySigMatchesStdlib(t *testing.T) {
	for _, c := range sigEdgeCases(t) {
		std := ed25519.Verify(c.pub, c.msg, c.sig)
		got := verifySig(c.pub, c.msg, c.sig)
		if std != c.want {
			t.Errorf("%s: crypto/ed25519 says %v, the table %v", c.name, std, c.want)
		}
		if got != std {
			t.Errorf("%s: verifySig %v, crypto/ed25519 %v", c.name, got, std)
		}
	}
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

// FuzzVerifySig: verifySig never panics, refuses wrong lengths and agrees
// with crypto/ed25519 on everything else.
func FuzzVerifySig(f *testing.F) {
	for _, c := range sigEdgeCases(f) {
		f.Add(c.pub, c.msg, c.sig)
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		got := verifySig(pub, msg, sig)
		if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			if got {
				t.Fatalf("accepted a key of %d bytes and a signature of %d", len(pub), len(sig))
			}
			return
		}
		if std := ed25519.Verify(pub, msg, sig); got != std {
			t.Fatalf("verifySig %v, crypto/ed25519 %v", got, std)
		}
	})
}

// BenchmarkVerifySig: crypto/ed25519 beside verifySig, in the same run.
func BenchmarkVerifySig(b *testing.B) {
	c := sigEdgeCases(b)[0]
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(c.pub, c.msg, c.sig) {
				b.Fatal("refused")
			}
		}
	})
	b.Run("verifySig", func(b *testing.B) {
		for b.Loop() {
			if !verifySig(c.pub, c.msg, c.sig) {
				b.Fatal("refused")
			}
		}
	})
}
