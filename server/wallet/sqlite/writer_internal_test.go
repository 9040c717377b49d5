package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// A plain write whose failure makes SQLite end the whole transaction
// (here an OR ROLLBACK conflict; on a box, disk full or an I/O error)
// fails its batch: the writes after it are not committed one by one
// outside it while their callers are told that the batch failed.
func TestPlainFailureEndingTheTransactionFailsTheBatch(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.write(ctx, func(tx writeTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('x', 1)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	newOp := func(plain bool, f func(writeTx) error) *op {
		return &op{ctx: ctx, f: f, done: make(chan error, 1), plain: plain}
	}
	batch := []*op{
		newOp(true, func(tx writeTx) error { // ends the transaction
			_, err := tx.ExecContext(ctx, `INSERT OR ROLLBACK INTO meta (k, v) VALUES ('x', 2)`)
			return err
		}),
		newOp(true, func(tx writeTx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('plain', 1)`)
			return err
		}),
		newOp(false, func(tx writeTx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('savepoint', 1)`)
			return err
		}),
	}
	s.commit(batch) // the writer goroutine is idle: this is its next batch
	for i, o := range batch {
		if err := <-o.done; err == nil {
			t.Errorf("op %d: no error from a batch that was rolled back", i)
		}
	}
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM meta WHERE k IN ('plain', 'savepoint')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d writes of the failed batch committed (%v)", n, err)
	}
	// The writer goes on.
	if err := s.write(ctx, func(tx writeTx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('after', 1)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// The writer's connection has its tuning after Open, on a new file and
// on a reopened one: statement journals (one per payment's
// savepoint) in memory, checkpoints every walCheckpointPages pages.
func TestWriterConnectionSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wallet.db")
	for _, name := range []string{"new", "reopened"} {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var tempStore, autocheckpoint int
		if err := s.wconn.QueryRowContext(context.Background(), "PRAGMA temp_store").Scan(&tempStore); err != nil {
			t.Fatal(err)
		}
		if err := s.wconn.QueryRowContext(context.Background(), "PRAGMA wal_autocheckpoint").Scan(&autocheckpoint); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if tempStore != 2 || autocheckpoint != walCheckpointPages {
			t.Fatalf("%s: temp_store %d (want 2, memory), wal_autocheckpoint %d (want %d)", name, tempStore, autocheckpoint, walCheckpointPages)
		}
	}
}

// A write runs without its caller's context once the writer has started
// it: an ended context must not interrupt a statement (SQLite would then
// roll back the whole batch, everyone's writes with it).
func TestEndedContextDoesNotInterruptTheBatch(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "wallet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	ctx := context.Background()
	newOp := func(f func(writeTx) error) *op {
		return &op{ctx: ctx, f: f, done: make(chan error, 1)}
	}
	batch := []*op{
		newOp(func(tx writeTx) error { // long enough for an interrupt to land
			_, err := tx.ExecContext(ended, `INSERT INTO meta (k, v)
				WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
				SELECT 'bulk-' || i, i FROM n`)
			return err
		}),
		newOp(func(tx writeTx) error {
			var n int
			if err := tx.QueryRowContext(ended, `SELECT count(*) FROM meta WHERE k LIKE 'bulk-%'`).Scan(&n); err != nil || n != 50000 {
				return fmt.Errorf("read in the batch: %d rows, %v", n, err)
			}
			_, err := tx.ExecContext(ended, `INSERT INTO meta (k, v) VALUES ('other', 1)`)
			return err
		}),
	}
	s.commit(batch) // the writer goroutine is idle: this is its next batch
	for i, o := range batch {
		if err := <-o.done; err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	var n int
	if err := s.rdb.QueryRow(`SELECT count(*) FROM meta WHERE k LIKE 'bulk-%' OR k = 'other'`).Scan(&n); err != nil || n != 50001 {
		t.Fatalf("%d rows committed, want 50001 (%v)", n, err)
	}
}
