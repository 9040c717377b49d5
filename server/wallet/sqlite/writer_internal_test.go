package sqlite

import (
	"context"
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
