package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"campuspay/server/wallet"
	"campuspay/server/wallet/sqlite"
	"campuspay/server/wallet/storetest"
)

var ctx = context.Background()

func open(t *testing.T) (*sqlite.Store, string) {
	p := filepath.Join(t.TempDir(), "wallet.db")
	s, err := sqlite.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

// The wallet store conformance suite (wallet/storetest) on SQLite files.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{Open: func(t *testing.T) (storetest.Store, func(*testing.T) storetest.Store) {
		s, p := open(t)
		return s, func(t *testing.T) storetest.Store {
			s2, err := sqlite.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			return s2
		}
	}})
}

// After Close, writes fail with ErrClosed.
func TestClosed(t *testing.T) {
	s, _ := open(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMerchant(ctx, &wallet.Merchant{ID: "m"}); !errors.Is(err, sqlite.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// Expired marks are swept (at most once a second), so the table does not
// grow with every payment ever made.
func TestSeenCodesSwept(t *testing.T) {
	s, path := open(t)
	t0 := time.Unix(1_800_000_000, 0)
	for i := 0; i < 5; i++ {
		r := &wallet.Record{Key: fmt.Sprint("k", i), Kind: wallet.KindPayment, Created: t0}
		if _, err := s.PutIntent(ctx, r, &wallet.CodeUse{ID: fmt.Sprint("c", i), Expires: t0.Add(time.Minute), Now: t0}, nil); err != nil {
			t.Fatal(err)
		}
	}
	later := t0.Add(2 * time.Minute)
	r := &wallet.Record{Key: "late", Kind: wallet.KindPayment, Created: later}
	if _, err := s.PutIntent(ctx, r, &wallet.CodeUse{ID: "c-late", Expires: later.Add(time.Minute), Now: later}, nil); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", path+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM seen_codes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d seen codes kept in %s, want 1 (the live one)", n, path)
	}
}

// A store with a small batch bound still commits every write queued
// together (in several transactions).
func TestSmallMaxBatch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "wallet.db")
	s, err := sqlite.Open(p, sqlite.WithMaxBatch(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1_800_000_000, 0)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := s.PutRecord(ctx, &wallet.Record{Key: fmt.Sprint("k", i), Kind: wallet.KindPayment, Created: now}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for i := range 20 {
		if r, err := s.Record(ctx, fmt.Sprint("k", i)); err != nil || r == nil {
			t.Fatalf("record k%d: %+v %v", i, r, err)
		}
	}
}

// A student's version changes with every change to their row or their
// devices, by any statement (triggers), and only then; PutPayment with a
// PayerCheck of another version writes nothing.
func TestStudentVersion(t *testing.T) {
	s, _ := open(t)
	u := &wallet.User{StudentNo: "1", Name: "张三", State: wallet.StateActive, LimitPerTx: 100_00, LimitDaily: 200_00}
	if _, err := s.UpsertRosterUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	version := func() int64 {
		t.Helper()
		got, err := s.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Version
	}
	d := &wallet.Device{UserID: u.ID, Key: make([]byte, 32), Created: time.Unix(1_800_000_000, 0), Expires: time.Unix(1_900_000_000, 0)}
	last := version()
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"device added", func() error { return s.AddDevice(ctx, d) }},
		{"frozen", func() error { return s.SetFrozen(ctx, u.ID, true) }},
		{"unfrozen", func() error { return s.SetFrozen(ctx, u.ID, false) }},
		{"limits lowered", func() error {
			got, err := s.User(ctx, u.ID)
			if err != nil {
				return err
			}
			got.LimitDaily = 1_00
			return s.UpdateUser(ctx, got)
		}},
		{"device revoked", func() error { return s.RevokeDevice(ctx, d.ID, time.Unix(1_800_000_100, 0)) }},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		v := version()
		if v == last {
			t.Fatalf("%s: version still %d", step.name, v)
		}
		last = v
	}
	// Read, nothing changed: the same version.
	if v := version(); v != last {
		t.Fatalf("version %d after reads alone, want %d", v, last)
	}
}
