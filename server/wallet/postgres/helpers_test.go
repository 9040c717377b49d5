package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"campuspay/server/ledger/postgres/pgtest"
	"campuspay/server/wallet"
)

var storeUser = wallet.User{StudentNo: "2024001", Name: "李娜", IDNumber: "11010520000101001X", Phone: "13800000001",
	Campus: "yungu", CardUID: "CA01", LoginHash: "h", State: wallet.StateInactive, LimitPerTx: 1, LimitDaily: 2}

// dump runs q on its own connection and returns its single text column.
func dump(t *testing.T, dsn, q string) string {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var v string
	if err := c.QueryRow(ctx, q).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// setReadOnly turns default_transaction_read_only of cluster c on or off
// (a demoted or promoted primary) and returns once the server has taken it:
// a fresh session sees the new value, so the postmaster has reloaded its
// configuration and signalled every existing session, which applies it
// before its next command.
func setReadOnly(t *testing.T, c *pgtest.Cluster, on bool) {
	t.Helper()
	conn, err := pgx.Connect(ctx, c.ConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	q, want := "ALTER SYSTEM RESET default_transaction_read_only", "off"
	if on {
		q, want = "ALTER SYSTEM SET default_transaction_read_only = on", "on"
	}
	for _, q := range []string{q, "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for range 1000 {
		if dump(t, c.ConnString("postgres"), "SHOW default_transaction_read_only") == want {
			return
		}
	}
	t.Fatalf("default_transaction_read_only never became %s", want)
}
