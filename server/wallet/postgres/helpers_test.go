package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

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
