package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"campuspay/server/ledger/postgres/pgtest"
	"campuspay/server/wallet"
	"campuspay/server/wallet/fieldcrypt"
)

// A multi-host connection string with target_session_attrs=read-write
// finds the writable host; when the primary is demoted (turns read-only)
// and the other host is promoted, the store's next write — refused by the
// old primary, so applied nowhere — is sent again on fresh connections and
// lands on the new one, without reopening the store.
func TestMultiHostFailover(t *testing.T) {
	a, b := pgtest.New(t, pgtest.Options{}), pgtest.New(t, pgtest.Options{})
	key, _ := fieldcrypt.NewKey()
	for _, c := range []*pgtest.Cluster{a, b} { // both hold the schema, as a primary and its replica would
		openDSN(t, c.ConnString("postgres"), key).Close()
	}
	merchants := func(c *pgtest.Cluster) string {
		return dump(t, c.ConnString("postgres"), `SELECT COALESCE(string_agg(id, ',' ORDER BY id), '') FROM merchants`)
	}

	setReadOnly(t, a, true) // b is the primary
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write", a.Port, b.Port)
	s := openDSN(t, dsn, key)
	defer s.Close()
	if err := s.PutMerchant(ctx, &wallet.Merchant{ID: "M1"}); err != nil {
		t.Fatal(err)
	}
	if got := merchants(b); got != "M1" {
		t.Fatalf("merchants on the primary: %q", got)
	}

	// Failover: b is demoted, a promoted.
	setReadOnly(t, b, true)
	setReadOnly(t, a, false)
	if err := s.PutMerchant(ctx, &wallet.Merchant{ID: "M2"}); err != nil {
		t.Fatalf("write after the failover: %v", err)
	}
	now := time.Unix(1_800_000_000, 0)
	r := &wallet.Record{Key: "T:pos-1:1", Kind: wallet.KindPayment, Status: wallet.StatusProcessing, Created: now, Updated: now}
	setReadOnly(t, a, true) // and back: the batched money path follows too
	setReadOnly(t, b, false)
	if owner, err := s.PutIntent(ctx, r, &wallet.CodeUse{ID: "c1", Expires: now.Add(time.Minute), Now: now}, nil); err != nil || owner != r.Key {
		t.Fatalf("payment after the second failover: %q %v", owner, err)
	}
	if got := dump(t, b.ConnString("postgres"), `SELECT COALESCE(string_agg(key, ','), '') FROM records`); got != r.Key {
		t.Fatalf("records on the primary: %q", got)
	}
	if got := merchants(a); got != "M2" {
		t.Fatalf("merchants on the new primary: %q", got)
	}
	if got := merchants(b); got != "M1" {
		t.Fatalf("merchants on the demoted primary: %q", got)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("not ready on the primary: %v", err)
	}
}
