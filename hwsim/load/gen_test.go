package load

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"campuspay/protocol"
)

// The generator pays every student once a round, in a shuffled order (not
// the order they were provisioned in), the same order for the same seed.
func TestGeneratorShufflesStudents(t *testing.T) {
	_, issuer, _ := ed25519.GenerateKey(nil)
	var devices []Device
	for i := 0; i < 50; i++ {
		pub, priv, _ := ed25519.GenerateKey(nil)
		cert, err := protocol.IssueCertificate(protocol.Certificate{KeyID: 1, UserID: uint32(i + 1), DeviceID: uint32(i + 1),
			DeviceKey: pub, Expires: time.Unix(2_000_000_000, 0)}, issuer)
		if err != nil {
			t.Fatal(err)
		}
		devices = append(devices, Device{StudentNo: fmt.Sprint("S", i), Certificate: cert, DeviceKey: priv})
	}
	order := func(seed byte) []int {
		g, err := newGenerator("t", "127.0.0.1:1", devices, time.Now, rand.NewChaCha8([32]byte{seed}), time.Second, false)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, ph := range g.devices {
			for i, d := range devices {
				if string(d.Certificate) == string(ph.cert) {
					out = append(out, i)
				}
			}
		}
		return out
	}
	a := order(1)
	seen := map[int]bool{}
	inOrder := true
	for k, i := range a {
		seen[i] = true
		inOrder = inOrder && i == k
	}
	if len(a) != len(devices) || len(seen) != len(devices) {
		t.Fatalf("a round is not every student once: %v", a)
	}
	if inOrder {
		t.Fatal("students pay in provisioning order")
	}
	if b := order(1); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, two orders: %v and %v", a, b)
	}
	if c := order(2); fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("another seed, the same order")
	}
}
