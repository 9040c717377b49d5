package postgres

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"campuspay/server/ledger/postgres/pgtest"
)

// When the primary turns read-only (demoted) and the other host of a
// multi-host connection string becomes writable, the writer's batch on the
// old primary fails — applying nothing — and the next one connects to the
// new primary, without reopening the store.
func TestMultiHostFailover(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.New(t, pgtest.Options{}), pgtest.New(t, pgtest.Options{})
	for _, c := range []*pgtest.Cluster{a, b} { // both hold the schema, as a primary and its replica would
		s := open(t, c.ConnString("postgres"), Options{})
		s.Close()
	}
	setReadOnly := func(c *pgtest.Cluster, on bool) {
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
		// pg_reload_conf is asynchronous: a fresh session seeing the value
		// means the postmaster has signalled every session.
		for range 1000 {
			fresh, err := pgx.Connect(ctx, c.ConnString("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			var v string
			err = fresh.QueryRow(ctx, "SHOW default_transaction_read_only").Scan(&v)
			fresh.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v == want {
				return
			}
		}
		t.Fatalf("default_transaction_read_only never became %s", want)
	}
	setReadOnly(a, true)
	s := open(t, fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write", a.Port, b.Port), Options{})
	mustPost(t, s, pay("p1", "bank:CCB", "wallet:1", 100))

	setReadOnly(b, true) // failover
	setReadOnly(a, false)
	if _, err := s.Post(ctx, pay("p2", "bank:CCB", "wallet:1", 100)); err == nil {
		t.Fatal("posted on the demoted primary")
	}
	mustPost(t, s, pay("p3", "bank:CCB", "wallet:1", 100))
	for _, tc := range []struct {
		c    *pgtest.Cluster
		want string
	}{{b, "p1"}, {a, "p3"}} {
		conn, err := pgx.Connect(ctx, tc.c.ConnString("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		var keys string
		err = conn.QueryRow(ctx, "SELECT COALESCE(string_agg(key, ',' ORDER BY id), '') FROM transfers").Scan(&keys)
		conn.Close(ctx)
		if err != nil || keys != tc.want {
			t.Fatalf("transfers on port %d: %q %v, want %q", tc.c.Port, keys, err, tc.want)
		}
	}
}
