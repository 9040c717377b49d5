package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"campuspay/server/ledger/postgres/pgtest"
	"campuspay/server/wallet"
	"campuspay/server/wallet/fieldcrypt"
)

// A database that goes away mid-way, or turns read-only (a demoted
// primary), makes the store return errors — never panic, never report a
// write it did not make — and not ready; it recovers by itself, without
// being reopened, when the database is back.
func TestOutageAndReadOnly(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	dsn := c.NewDatabase(t)
	key, _ := fieldcrypt.NewKey()
	s := openDSN(t, dsn, key)
	defer s.Close()
	now := time.Unix(1_800_000_000, 0)
	pay := func(i int) (string, error) {
		r := &wallet.Record{Key: fmt.Sprint("T:pos-1:", i), Kind: wallet.KindPayment, Status: wallet.StatusProcessing, Amount: 100,
			Created: now, Updated: now}
		return s.PutIntent(ctx, r, &wallet.CodeUse{ID: fmt.Sprint("code-", i), Expires: now.Add(time.Minute), Now: now}, nil)
	}
	mustWork := func(what string, i int) {
		t.Helper()
		if owner, err := pay(i); err != nil || owner != fmt.Sprint("T:pos-1:", i) {
			t.Fatalf("%s: payment %d: owner %q, %v", what, i, owner, err)
		}
		if _, err := s.Terminals(ctx); err != nil {
			t.Fatalf("%s: read: %v", what, err)
		}
		if err := s.Ready(ctx); err != nil {
			t.Fatalf("%s: not ready: %v", what, err)
		}
	}
	mustFail := func(what string, i int) {
		t.Helper()
		if owner, err := pay(i); err == nil {
			t.Fatalf("%s: payment %d stored (owner %q)", what, i, owner)
		}
		if err := s.PutMerchant(ctx, &wallet.Merchant{ID: "M1"}); err == nil {
			t.Fatalf("%s: merchant stored", what)
		}
		if err := s.Ready(ctx); err == nil {
			t.Fatalf("%s: ready", what)
		}
	}
	mustWork("before", 1)

	if err := c.Pause(); err != nil {
		t.Fatal(err)
	}
	mustFail("database down", 2)
	if _, err := s.User(ctx, 1); err == nil {
		t.Fatal("a read answered with the database down")
	}
	if err := c.Resume(); err != nil {
		t.Fatal(err)
	}
	mustWork("database back", 3)

	setReadOnly(t, c, true)
	mustFail("read-only", 4)
	setReadOnly(t, c, false)
	mustWork("writable again", 5)

	// What failed was not written; what worked is there once.
	for i, want := range []bool{false, true, false, true, false, true} {
		if i == 0 {
			continue
		}
		r, err := s.Record(ctx, fmt.Sprint("T:pos-1:", i))
		if err != nil || (r != nil) != want {
			t.Fatalf("record %d: %+v %v, want present=%v", i, r, err, want)
		}
	}
}
