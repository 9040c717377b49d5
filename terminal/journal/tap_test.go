package journal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"campuspay/protocol"
)

// A card's last tap is recorded with its transaction, survives a
// reopen (a restart), is found whatever the UID's case, is kept
// TapRetention, and the UID is nowhere in the files.
func TestLastTapDurableAndUIDNotStored(t *testing.T) {
	ctx := context.Background()
	j, c, path := open(t)
	const uid = "04A1B2C3D4E5F6"
	if _, ok, err := j.LastTap(ctx, uid); err != nil || ok {
		t.Fatalf("LastTap before any tap: ok=%v err=%v", ok, err)
	}
	tx := &Tx{ID: newID(t, c.t), Flow: FlowPay, Amount: 300, CredKind: protocol.CredCard}
	if err := j.CreateForTap(ctx, tx, uid); err != nil {
		t.Fatal(err)
	}
	at := c.t
	c.t = c.t.Add(5 * time.Second)
	other := &Tx{ID: newID(t, c.t), Flow: FlowPay, Amount: 300, CredKind: protocol.CredCard}
	if err := j.CreateForTap(ctx, other, "0A0B0C0D"); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j, err := Open(path, Options{Terminal: "T1", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	got, ok, err := j.LastTap(ctx, "04a1b2c3d4e5f6 ")
	if err != nil || !ok || !got.At.Equal(at) || got.Tx != tx.ID {
		t.Fatalf("LastTap = %+v ok=%v err=%v, want %v at %v", got, ok, err, tx.ID, at)
	}
	if h, err := j.History(ctx, tx.ID); err != nil || len(h) != 1 || h[0] != StateCreated {
		t.Fatalf("history %v %v", h, err)
	}

	// A tap past the retention prunes the old ones.
	c.t = at.Add(TapRetention + time.Minute)
	third := &Tx{ID: newID(t, c.t), Flow: FlowPay, Amount: 300, CredKind: protocol.CredCard}
	if err := j.CreateForTap(ctx, third, "0E0F0A0B"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := j.LastTap(ctx, uid); ok {
		t.Fatal("a tap older than TapRetention was kept")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range []string{uid, "04a1b2c3d4e5f6", "0A0B0C0D"} {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%s holds the card UID %s", filepath.Base(f), s)
			}
		}
	}
}
