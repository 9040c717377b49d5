package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"campuspay/server/ledger"
	"campuspay/server/ledger/postgres/pgtest"
	"campuspay/server/wallet/fieldcrypt"
	"campuspay/server/wallet/postgres"
	"campuspay/server/wallet/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var ctx = context.Background()

func openDSN(t *testing.T, dsn string, key []byte) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(ctx, dsn, postgres.Options{FieldKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The wallet store conformance suite (wallet/storetest) on PostgreSQL,
// several Stores on one database included.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{Shared: true, Open: func(t *testing.T) (storetest.Store, func(*testing.T) storetest.Store) {
		dsn := pgtest.NewDatabase(t)
		key, _ := fieldcrypt.NewKey()
		return openDSN(t, dsn, key), func(t *testing.T) storetest.Store { return openDSN(t, dsn, key) }
	}})
}

// Another key is refused; the schema is migrated once, whoever opens
// first; personal data is not in the database in clear.
func TestFieldKeyAndMigrations(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	key, _ := fieldcrypt.NewKey()
	s := openDSN(t, dsn, key)
	defer s.Close()
	u := &storeUser
	if _, err := s.UpsertRosterUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	u.BankCard = "6217000000000000014"
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	other, _ := fieldcrypt.NewKey()
	if s2, err := postgres.Open(ctx, dsn, postgres.Options{FieldKey: other}); err == nil || !strings.Contains(err.Error(), "another key") {
		if s2 != nil {
			s2.Close()
		}
		t.Fatalf("opened under another key: %v", err)
	}
	if _, err := postgres.Open(ctx, dsn, postgres.Options{}); err == nil {
		t.Fatal("opened without a field key")
	}
	s3 := openDSN(t, dsn, key) // a second authorizer: nothing to migrate
	defer s3.Close()
	have, want, err := s3.SchemaVersion(ctx)
	if err != nil || have != want || want < 1 {
		t.Fatalf("schema %d of %d: %v", have, want, err)
	}
	if got, err := s3.User(ctx, u.ID); err != nil || got.BankCard != u.BankCard || got.IDNumber != u.IDNumber {
		t.Fatalf("user %+v %v", got, err)
	}
	raw := dump(t, dsn, `SELECT bank_card || ' ' || bank_card_last4 || ' ' || id_number || ' ' || phone FROM users`)
	for _, v := range []string{u.BankCard, u.IDNumber, u.Phone} {
		if strings.Contains(raw, v) {
			t.Fatalf("the database holds %s in clear: %s", v, raw)
		}
	}
	if !strings.Contains(raw, "0014") {
		t.Fatalf("last four digits not kept: %s", raw)
	}
	if err := s3.Ready(ctx); err != nil {
		t.Fatalf("ready: %v", err)
	}
}

// Authorizers starting together on an empty database migrate it once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	key, _ := fieldcrypt.NewKey()
	const n = 4
	errs := make(chan error, n)
	stores := make(chan *postgres.Store, n)
	for range n {
		go func() {
			s, err := postgres.Open(ctx, dsn, postgres.Options{FieldKey: key})
			errs <- err
			stores <- s
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		s := <-stores
		defer s.Close()
	}
	files, err := ledger.Migrations(os.DirFS("."), "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var each []string // every migration recorded once, in order (numbers may have gaps)
	for _, m := range files {
		each = append(each, fmt.Sprint(m.Version))
	}
	if got, want := dump(t, dsn, `SELECT string_agg(version::text, ',' ORDER BY version) FROM wallet_schema_version`), strings.Join(each, ","); got != want {
		t.Fatalf("wallet_schema_version %q, want %q", got, want)
	}
}
