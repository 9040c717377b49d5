package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"campuspay/protocol"
	"campuspay/server/ledger"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/wallet"
)

// The ledger inside the wallet's database: a data folder made by this
// release keeps the ledger's tables in wallet.db, written by the wallet's
// writer (ledgersqlite.OpenIn), so that a balance payment — its code's
// mark, the daily-limit check, its transfer and its record — is one
// transaction and one fsync (PutPayment) instead of three commits one
// after another, and a crash leaves all of it or none.

// Path implements ledgersqlite.Host.
func (s *Store) Path() string { return s.path }

// WriterConn implements ledgersqlite.Host: the writer's connection.
func (s *Store) WriterConn() *sql.Conn { return s.wconn }

// Write implements ledgersqlite.Host: f runs in the writer's transaction
// in a savepoint of its own, group-committed with the wallet's writes.
func (s *Store) Write(ctx context.Context, f func(writeTx) error) error {
	return s.write(ctx, f)
}

// OpenLedger opens the ledger inside this database (its tables beside the
// wallet's) and returns it; PutPayment posts to it. Call it once, before
// serving; Close closes it.
func (s *Store) OpenLedger(opt ledgersqlite.Options) (*ledgersqlite.Store, error) {
	if s.led != nil {
		return nil, errors.New("wallet/sqlite: the ledger is open already")
	}
	s.wmu.Lock() // the ledger's migrations run their own transactions on the writer's connection
	l, err := ledgersqlite.OpenIn(s, opt)
	s.wmu.Unlock()
	if err != nil {
		return nil, err
	}
	s.led = l
	return l, nil
}

// PaysInto implements wallet.PaymentStore.
func (s *Store) PaysInto(l ledger.Store) bool {
	ls, ok := l.(*ledgersqlite.Store)
	return ok && s.led != nil && ls == s.led
}

// recordedOr is, in the writer's transaction, wallet.ErrRecordExists if
// key is recorded (the payment's transfer was posted by its first try,
// which a retry not looked up first reaches), else err.
func (s *Store) recordedOr(tx writeTx, key string, err error) error {
	var one int
	switch rerr := s.txQueryRow(context.Background(), tx, qRecordExists, key).Scan(&one); {
	case rerr == nil:
		return wallet.ErrRecordExists
	case !errors.Is(rerr, sql.ErrNoRows):
		return rerr
	}
	return err
}

// PutPayment implements wallet.PaymentStore: one write, in a savepoint (a
// refused transfer undoes the code's mark).
func (s *Store) PutPayment(ctx context.Context, r *wallet.Record, c *wallet.CodeUse, lim *wallet.DailyLimit, payer *wallet.PayerCheck, t ledger.Transfer, answer func(available int64)) (string, error) {
	if s.led == nil {
		return "", errors.New("wallet/sqlite: PutPayment without the ledger inside (OpenLedger)")
	}
	owner, err := s.putChecked(ctx, r, c, lim, payer, func(tx writeTx) error {
		if err := ctx.Err(); err != nil {
			return err // ended (the request's deadline) before the writer reached it: the savepoint undoes the mark
		}
		res, available, err := s.led.PostIn(tx, t)
		switch {
		case errors.Is(err, ledger.ErrKeyConflict):
			return s.recordedOr(tx, r.Key, err)
		case err != nil:
			return err
		case res.Duplicate:
			// Posted before: never answer approved on it (nothing would
			// move); the savepoint undoes the code mark.
			return s.recordedOr(tx, r.Key, fmt.Errorf("transfer %s posted before", t.Key))
		}
		if answer != nil {
			answer(available) // r's final state, written next
		}
		return nil
	}, r.ID == 0)
	switch {
	case errors.Is(err, protocol.ErrLimitDaily), errors.Is(err, ledger.ErrInsufficient), errors.Is(err, wallet.ErrRecordExists),
		errors.Is(err, wallet.ErrPayerChanged),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "", err
	case err != nil:
		return "", fmt.Errorf("wallet/sqlite: put payment %s: %w", r.Key, err)
	}
	return owner, nil
}
