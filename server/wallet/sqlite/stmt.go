package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements by their SQL text. The money path
// runs the same few statements thousands of times a second, and preparing
// one costs SQLite more than running it. Statement texts are constants of
// this package, so the cache stays small.
type stmtCache struct {
	db interface { // the read pool, or the writer's connection
		PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	}
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st, nil
}

func (c *stmtCache) close() {
	c.mu.Lock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
	c.mu.Unlock()
}

// queryRow runs a read through the read pool with a prepared statement.
//
// Reads are not cancelled with the caller's context: they take
// microseconds, and a cancellable context costs database/sql a goroutine
// per result set, more than the read itself on the money path.
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = context.WithoutCancel(ctx)
	st, err := s.rst.get(ctx, q)
	if err != nil {
		return s.rdb.QueryRowContext(ctx, q, args...) // reports the error
	}
	return st.QueryRowContext(ctx, args...)
}

// query runs a read through the read pool with a prepared statement, not
// cancelled with ctx (see queryRow).
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	ctx = context.WithoutCancel(ctx)
	st, err := s.rst.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Statements the writer runs for every payment, prepared once at Open on
// the writer's connection (the writer reads their map without a lock, so
// the set is fixed).
const (
	qBegin      = "BEGIN IMMEDIATE"
	qCommit     = "COMMIT"
	qSavepoint  = "SAVEPOINT op"
	qRollbackTo = "ROLLBACK TO op"
	qRelease    = "RELEASE op"
	qSeenExpire = `DELETE FROM seen_codes WHERE expires < ?`
	// An expired entry not yet swept is taken over by the new owner. One
	// row changed: the mark is the new owner's; none: the code is still
	// held (then qSeenOwner says by whom). One statement in the common
	// case, and no RETURNING on the money path: SQLite runs a statement
	// with RETURNING through a temporary table, three to four times the
	// cost of the statement alone (docs/money-path.md item 7).
	//
	// Code IDs ("<device>-<unix time>-<seq>") and record keys (a sale's
	// ends with its ULID, time first) are unique through indexes that start
	// with their time (migration 11): a commit's new marks and records land
	// at the indexes' right edge, not in one leaf page per device or
	// terminal. A lookup names both of the index's columns as one row value:
	// with "key=?" beside the time SQLite would fold the time into a
	// constant and scan the table.
	qSeenInsert = `INSERT INTO seen_codes (id, owner, expires) VALUES (?1,?2,?3)
		ON CONFLICT(substr(id, instr(id, '-') + 1), id) DO UPDATE SET owner=excluded.owner, expires=excluded.expires WHERE seen_codes.expires < ?4`
	qUserVersion = `SELECT version FROM users WHERE id = ?`
	qSeenOwner   = `SELECT owner FROM seen_codes WHERE (substr(id, instr(id, '-') + 1), id) = (substr(?1, instr(?1, '-') + 1), ?1)`
	// qRecordInsert adds a record not written before (its ID from the row
	// count and the last rowid); a key already there is rewritten by
	// qRecordRewrite, which is rare and may keep RETURNING.
	qRecordInsert = `INSERT INTO records (key, kind, user_id, terminal, tx, merchant, amount, channel, bank_code, bank_card,
		bank_card_last4, status, code, req_hash, response, qr_seq, created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(substr(key, -26), key) DO NOTHING`
	qRecordRewrite = `UPDATE records SET kind=?, user_id=?, amount=?, channel=?, bank_code=?, bank_card=?, bank_card_last4=?,
		status=?, code=?, response=?, qr_seq=?, updated=?12 WHERE (substr(key, -26), key) = (substr(?13, -26), ?13) RETURNING id`
	// qRecordUpdate updates a record the store has written before (its ID
	// known) with what a later step may change. It names only those
	// columns, so SQLite leaves the indexes on the others alone.
	qRecordUpdate = `UPDATE records SET amount=?, channel=?, bank_code=?, bank_card=?, bank_card_last4=?, status=?, code=?,
		response=?, qr_seq=?, updated=? WHERE id=? AND key=? AND kind=? AND user_id=?`
	// qPaidBetween is what the daily limit counts (wallet.Store.PaidBetween),
	// read by PaidBetween and inside PutIntent's write. ORs, not IN lists:
	// SQLite builds a table for each IN list on every run. Offline payments
	// count whatever funded them (their created is the till's time).
	qRecordFinish = `UPDATE records SET amount=?, channel=?, status=?, code=?, response=?, updated=?6
		WHERE (substr(key, -26), key) = (substr(?7, -26), ?7) AND status='processing'`
	// qPayer reads a paying student with whether the code's device is
	// theirs and live (Payer).
	qPayer = `SELECT EXISTS (SELECT 1 FROM devices WHERE id = ? AND user_id = users.id AND revoked = 0), ` + userCols + `
		FROM users WHERE id = ?`
	// qUserRecords and qUserOpenRecords (after "WHERE") list a student's
	// records newest first and those still in doubt: both through
	// records_user_day, the one index by student (migration 12).
	qUserRecords     = `user_id=? AND id<? AND ` + visible + ` ORDER BY id DESC LIMIT ?`
	qUserOpenRecords = `user_id=? AND (status='processing' OR status='pending' OR status='reversing') ORDER BY id`
	qPaidBetween     = `SELECT COALESCE(SUM(amount), 0) FROM records WHERE user_id=? AND created>=? AND created<?
		AND (((kind='payment' OR kind='scan_pay' OR kind='shower') AND (status='approved' OR status='processing' OR status='pending')
				AND (channel='balance' OR channel='bank_card'))
			OR (kind='shower' AND status='held')
			OR (kind='offline' AND (status='approved' OR status='processing')))`
)

// A record by its key (through records_key, as the statements above), to
// read and to set a shower's litres.
const (
	qRecordByKey  = `SELECT ` + recordCols + ` FROM records WHERE (substr(key, -26), key) = (substr(?1, -26), ?1)`
	qRecordExists = `SELECT 1 FROM records WHERE (substr(key, -26), key) = (substr(?1, -26), ?1)`
	qRecordML     = `UPDATE records SET ml=?1 WHERE (substr(key, -26), key) = (substr(?2, -26), ?2) AND kind='shower'`
)

var hotWrites = []string{qBegin, qCommit, qSavepoint, qRollbackTo, qRelease, qSeenExpire, qSeenInsert, qSeenOwner, qRecordInsert, qRecordUpdate, qRecordFinish, qPaidBetween, qUserVersion}

// prepareWrites prepares hotWrites on the writer's connection (at Open,
// before the writer goroutine starts).
func (s *Store) prepareWrites() error {
	s.wst.m = map[string]*sql.Stmt{}
	for _, q := range hotWrites {
		st, err := s.wconn.PrepareContext(context.Background(), q)
		if err != nil {
			return err
		}
		s.wst.m[q] = st
	}
	return nil
}

// txExec runs a write in the writer's transaction, with its prepared
// statement when it is one of hotWrites.
//
// The caller's context is not passed down: a write the writer has started
// runs to its end (its outcome must be known before the caller goes on),
// and the driver runs every statement with a cancellable context on a
// goroutine of its own, which costs the money path more than the write.
func (s *Store) txExec(_ context.Context, tx writeTx, q string, args ...any) (sql.Result, error) {
	ctx := context.Background()
	if st, ok := s.wst.m[q]; ok { // read-only after Open; prepared on tx's connection
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// txQueryRow runs a read inside the writer's transaction, prepared when
// it is one of hotWrites.
func (s *Store) txQueryRow(_ context.Context, tx writeTx, q string, args ...any) *sql.Row {
	ctx := context.Background()
	if st, ok := s.wst.m[q]; ok {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}
