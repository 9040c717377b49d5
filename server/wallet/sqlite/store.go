// Package sqlite is the wallet's state store (wallet.Store) on one SQLite
// file: users and their wallets, devices and revocations, lost cards,
// merchants, terminals (broker credentials hashed), seen payment codes,
// transaction records, journal entries applied, the config revision and the
// app API's idempotency records. WAL with synchronous=FULL: every method is
// durable when it returns. Writes go through one writer goroutine that
// commits whatever is queued in one transaction (group commit: concurrent
// payments share an fsync), each write in its own savepoint; reads use a
// pool of query-only connections. The authorizer is the only process
// writing the file.
//
// Bank card numbers, resident ID numbers and phones are encrypted under a
// key kept outside the database (fields.go); the schema is versioned by
// numbered migrations (migrate.go).
package sqlite

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // database/sql driver "sqlite3"

	"campuspay/protocol"
	ledgersqlite "campuspay/server/ledger/sqlite"
	"campuspay/server/pcache"
	"campuspay/server/walbuf"
	"campuspay/server/wallet"
)

// walCheckpointPages is the WAL size (pages) at which a commit checkpoints.
const walCheckpointPages = 10000

// readConns is the size of the read-only connection pool.
const readConns = 4

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	student_no TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL, id_number TEXT NOT NULL, phone TEXT NOT NULL,
	category TEXT NOT NULL, campus TEXT NOT NULL, card_uid TEXT NOT NULL,
	login_hash TEXT NOT NULL,
	state INTEGER NOT NULL, reopens INTEGER NOT NULL DEFAULT 0, unbinds INTEGER NOT NULL DEFAULT 0,
	bank_code TEXT NOT NULL DEFAULT '', bank_card TEXT NOT NULL DEFAULT '',
	password_free INTEGER NOT NULL DEFAULT 0, wechat_openid TEXT NOT NULL DEFAULT '',
	pay_hash TEXT NOT NULL DEFAULT '', pay_fails INTEGER NOT NULL DEFAULT 0, pay_locked INTEGER NOT NULL DEFAULT 0,
	water_hash TEXT NOT NULL DEFAULT '', water_fails INTEGER NOT NULL DEFAULT 0, water_locked INTEGER NOT NULL DEFAULT 0,
	limit_per_tx INTEGER NOT NULL, limit_daily INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS users_card ON users(card_uid) WHERE card_uid <> '';
CREATE INDEX IF NOT EXISTS users_openid ON users(wechat_openid) WHERE wechat_openid <> '';
CREATE TABLE IF NOT EXISTS devices (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id INTEGER NOT NULL REFERENCES users(id),
	key BLOB NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,
	revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lost_cards (uid TEXT PRIMARY KEY, user_id INTEGER NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS merchants (id TEXT PRIMARY KEY, name TEXT NOT NULL, campus TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS terminals (
	id TEXT PRIMARY KEY, merchant TEXT NOT NULL REFERENCES merchants(id), campus TEXT NOT NULL,
	mode TEXT NOT NULL, fixed_amount INTEGER NOT NULL, password_hash TEXT NOT NULL,
	merchant_qr TEXT NOT NULL, created INTEGER NOT NULL
);
-- seen_codes and records as the first release made them: migration 11
-- rebuilds both with their keys unique through time-first indexes.
CREATE TABLE IF NOT EXISTS seen_codes (id TEXT PRIMARY KEY, owner TEXT NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS seen_codes_expires ON seen_codes(expires);
CREATE TABLE IF NOT EXISTS records (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, user_id INTEGER NOT NULL,
	terminal TEXT NOT NULL, tx TEXT NOT NULL, merchant TEXT NOT NULL,
	amount INTEGER NOT NULL, channel TEXT NOT NULL, bank_code TEXT NOT NULL, bank_card TEXT NOT NULL,
	status TEXT NOT NULL, code TEXT NOT NULL, req_hash TEXT NOT NULL, response BLOB,
	qr_seq INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, updated INTEGER NOT NULL
);
-- records_user as the first release made it: migration 12 drops it.
CREATE INDEX IF NOT EXISTS records_user ON records(user_id, id);
-- Covers PaidBetween (the daily limit, read on every payment) without
-- touching the table rows.
DROP INDEX IF EXISTS records_user_created;
CREATE INDEX IF NOT EXISTS records_user_day ON records(user_id, created, kind, status, channel, amount);
CREATE INDEX IF NOT EXISTS records_qr ON records(terminal, qr_seq) WHERE qr_seq > 0;
-- Records still in doubt. Its condition is ORs, not an IN list: SQLite
-- evaluates it on every write of a record, building a table per IN list.
DROP INDEX IF EXISTS records_unfinished;
CREATE INDEX IF NOT EXISTS records_open ON records(updated) WHERE status='processing' OR status='pending' OR status='reversing';
CREATE TABLE IF NOT EXISTS journal (
	terminal TEXT NOT NULL, seq INTEGER NOT NULL, tx TEXT NOT NULL, hash TEXT NOT NULL, at INTEGER NOT NULL,
	PRIMARY KEY (terminal, seq)
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_idem (
	user_id INTEGER NOT NULL, key TEXT NOT NULL, hash TEXT NOT NULL, status INTEGER NOT NULL, body BLOB NOT NULL,
	at INTEGER NOT NULL, PRIMARY KEY (user_id, key)
);
`

// Store is a wallet.Store on one SQLite file: writes go through one
// group-committing writer (writer.go), reads through a read-only pool.
type Store struct {
	wdb *sql.DB // one connection, wconn
	// wconn is wdb's connection, held by the writer for the store's
	// lifetime: its transaction is the connection itself (writeTx). wmu
	// is held by the writer while it commits a batch, and by OpenLedger
	// while the ledger migrates and prepares on wconn.
	wconn *sql.Conn
	wmu   sync.Mutex
	rdb   *sql.DB
	rst   stmtCache // prepared reads on rdb
	// codeSweep is when MarkCode last deleted expired codes (unix nanos).
	codeSweep atomic.Int64
	wst       stmtCache // prepared hot writes on wconn (writer only)
	maxBatch  int       // writes per transaction at most

	fc *fieldCipher // personal data columns

	mu      sync.RWMutex // guards closed against sends on queue
	closed  bool
	queue   chan *op
	stopped chan struct{}

	path string
	led  *ledgersqlite.Store // the ledger inside this database (OpenLedger), or nil
}

var (
	_ wallet.Store        = (*Store)(nil)
	_ wallet.PaymentStore = (*Store)(nil)
	_ ledgersqlite.Host   = (*Store)(nil)
)

// Option configures Open.
type Option func(*options)

type options struct {
	key      []byte
	maxBatch int
	progress func(string)
}

// WithMaxBatch bounds how many writes one transaction commits (default
// 128; 0 keeps the default).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// WithFieldKey gives the key (FieldKeySize bytes) the personal data
// columns are encrypted under. Without it, Open uses KeyFile beside the
// database, creating it (mode 0600) on first use.
func WithFieldKey(key []byte) Option { return func(o *options) { o.key = key } }

// WithProgress has Open report each schema migration it applies, before
// and after: one that rebuilds a table takes about ten seconds a million
// rows.
func WithProgress(f func(msg string)) Option { return func(o *options) { o.progress = f } }

// Open opens (creating if needed) the wallet store at path and applies
// the migrations it lacks. A database whose personal data is under another
// key is refused.
func Open(path string, opts ...Option) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("wallet/sqlite: open %q: path must be non-empty without '?' or '#'", path)
	}
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.maxBatch <= 0 {
		o.maxBatch = defaultMaxBatch
	}
	if o.key == nil {
		k, err := LoadOrCreateFieldKey(filepath.Join(filepath.Dir(path), KeyFile))
		if err != nil {
			return nil, err
		}
		o.key = k
	}
	fc, err := newFieldCipher(o.key)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	// secure_delete: a value rewritten (encrypted by a migration, a card
	// unbound) is overwritten in the file, not left in a free page.
	// cache_size: the writer's page cache (64 MiB, SQLite's default is
	// 2 MiB) holds the indexes a payment writes into at random (record
	// keys, code IDs, transfer keys), which otherwise are read back from
	// the OS on every write.
	// vfs=walbuf: the writer's WAL frames reach the file in one write per
	// commit, not two per page (server/walbuf; checkPragmas below makes
	// sure of the synchronous=FULL it needs).
	// pcache: a commit does not walk the whole 64 MiB cache after an
	// insert that split a page (server/pcache).
	if err := pcache.Err(); err != nil {
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	if err := walbuf.Register(); err != nil {
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	wdb, err := sql.Open("sqlite3", path+"?vfs="+walbuf.Name+"&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate&_busy_timeout=5000&_secure_delete=on&_cache_size=-65536")
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if err := checkPragmas(wdb); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	// Checkpoints every walCheckpointPages pages, not SQLite's 1000: the
	// money path rewrites the same hot pages (accounts, index roots) in
	// every commit, and a checkpoint copies each of them once however often
	// it changed since the last one.
	if _, err := wdb.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", walCheckpointPages)); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	ctx := context.Background()
	progress := o.progress
	if made, err := madeBefore(ctx, wdb); err != nil || !made {
		progress = nil // a new database (or none readable: migrate says why)
	}
	ran, err := migrate(ctx, wdb, fc, progress)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: schema %s: %w", path, err)
	}
	var check string
	if err := wdb.QueryRowContext(ctx, `SELECT check_value FROM field_key WHERE id = 1`).Scan(&check); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: open %s: field key check: %w", path, err)
	}
	if check != fc.Check() {
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: open %s: its personal data is encrypted under another key than the one given (%s in the data folder)", path, KeyFile)
	}
	if ran {
		// Pages written before the migration (clear values) leave the WAL,
		// and VACUUM rewrites the file: secure_delete zeroes what a
		// migration deletes, but free pages left by an older release (which
		// ran without it) would still hold clear values.
		start := time.Now()
		if progress != nil {
			progress("wallet.db: VACUUM after the migrations (the file is rewritten; it needs its size again in free space)")
		}
		for _, q := range []string{`PRAGMA wal_checkpoint(TRUNCATE)`, `VACUUM`, `PRAGMA wal_checkpoint(TRUNCATE)`} {
			if _, err := wdb.ExecContext(ctx, q); err != nil {
				wdb.Close()
				return nil, fmt.Errorf("wallet/sqlite: %s %s: %w", q, path, err)
			}
		}
		if progress != nil {
			progress(fmt.Sprintf("wallet.db: VACUUM done in %s", time.Since(start).Round(time.Millisecond)))
		}
	}
	// temp_store=MEMORY, set after the wallet's migrations so that their
	// VACUUM's copy stays on disk (the ledger's, run later on this
	// connection by ledgersqlite.OpenIn, build no large temporary
	// structure; a future one that does should lower it again): each payment of a batch runs in its own savepoint,
	// and SQLite saves the pages a savepoint changes in a statement
	// journal, a temporary file once past 64 KiB. On disk that was two
	// pwrite calls for every page of every payment, more than the WAL's
	// own writes; in memory it is a copy.
	if _, err := wdb.ExecContext(ctx, "PRAGMA temp_store=MEMORY"); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite3", path+"?_query_only=1&_foreign_keys=1&_busy_timeout=5000")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	rdb.SetMaxOpenConns(readConns)
	rdb.SetMaxIdleConns(readConns)
	wconn, err := wdb.Conn(ctx)
	if err != nil {
		rdb.Close()
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: open %s: %w", path, err)
	}
	s := &Store{path: path, wdb: wdb, wconn: wconn, rdb: rdb, fc: fc, rst: stmtCache{db: rdb}, wst: stmtCache{db: wconn}, maxBatch: o.maxBatch, queue: make(chan *op, 4*o.maxBatch), stopped: make(chan struct{})}
	if err := s.prepareWrites(); err != nil {
		s.wst.close()
		wconn.Close()
		rdb.Close()
		wdb.Close()
		return nil, fmt.Errorf("wallet/sqlite: prepare %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

// checkPragmas makes sure the durability settings took: a DSN typo would
// otherwise give a store that loses commits on power loss.
func checkPragmas(db *sql.DB) error {
	var mode string
	var sync, fk int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		return err
	}
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") || sync != 2 || fk != 1 {
		return fmt.Errorf("pragmas not applied: journal_mode=%s synchronous=%d foreign_keys=%d", mode, sync, fk)
	}
	return nil
}

// Close stops accepting writes, lets the writer finish the queue and
// closes the database.
func (s *Store) Close() error {
	if s.led != nil {
		s.led.Close() // its statements live on the writer's connection (nil if closed before)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	<-s.stopped
	s.rst.close()
	s.wst.close()
	return errors.Join(s.wconn.Close(), s.rdb.Close(), s.wdb.Close())
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

const userCols = `id, student_no, name, id_number, phone, category, campus, card_uid, login_hash, state, reopens, unbinds,
	bank_code, bank_card, password_free, wechat_openid, pay_hash, pay_fails, pay_locked, water_hash, water_fails, water_locked,
	limit_per_tx, limit_daily, frozen, version`

// scanUser reads userCols after the given leading destinations.
func (s *Store) scanUser(row interface{ Scan(...any) error }, lead ...any) (*wallet.User, error) {
	var u wallet.User
	var pf, frozen int
	var payLocked, waterLocked int64
	err := row.Scan(append(lead, &u.ID, &u.StudentNo, &u.Name, &u.IDNumber, &u.Phone, &u.Category, &u.Campus, &u.CardUID, &u.LoginHash,
		&u.State, &u.Reopens, &u.Unbinds, &u.BankCode, &u.BankCard, &pf, &u.WeChatOpenID, &u.PayHash, &u.PayFails, &payLocked,
		&u.WaterHash, &u.WaterFails, &waterLocked, &u.LimitPerTx, &u.LimitDaily, &frozen, &u.Version)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, protocol.ErrUserUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: read user: %w", err)
	}
	u.PasswordFree, u.Frozen = pf != 0, frozen != 0
	u.PayLockedUntil, u.WaterLockedUntil = fromNanos(payLocked), fromNanos(waterLocked)
	var e1, e2, e3 error
	u.BankCard, e1 = s.fc.Open(colUserCard, u.BankCard)
	u.IDNumber, e2 = s.fc.Open(colUserID, u.IDNumber)
	u.Phone, e3 = s.fc.Open(colUserPhone, u.Phone)
	if err := errors.Join(e1, e2, e3); err != nil {
		return nil, fmt.Errorf("wallet/sqlite: user %d: %w", u.ID, err)
	}
	return &u, nil
}

func (s *Store) userWhere(ctx context.Context, where string, arg any) (*wallet.User, error) {
	return s.scanUser(s.queryRow(ctx, "SELECT "+userCols+" FROM users WHERE "+where, arg))
}

// User implements wallet.Store.
func (s *Store) User(ctx context.Context, id uint32) (*wallet.User, error) {
	return s.userWhere(ctx, "id = ?", id)
}

// Payer implements wallet.Store.
func (s *Store) Payer(ctx context.Context, id, device uint32) (*wallet.User, bool, error) {
	var ok bool
	u, err := s.scanUser(s.queryRow(ctx, qPayer, device, id), &ok)
	return u, ok, err
}

// UserByStudentNo implements wallet.Store.
func (s *Store) UserByStudentNo(ctx context.Context, no string) (*wallet.User, error) {
	return s.userWhere(ctx, "student_no = ?", no)
}

// exec runs one statement through the writer.
func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	return s.write(ctx, func(tx writeTx) error {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	})
}

// UserByCard implements wallet.Store.
func (s *Store) UserByCard(ctx context.Context, uid string) (*wallet.User, error) {
	u, err := s.userWhere(ctx, "card_uid = ? AND card_uid <> ''", uid)
	if errors.Is(err, protocol.ErrUserUnknown) {
		return nil, protocol.ErrCardUnknown
	}
	return u, err
}

// UserByOpenID implements wallet.Store.
func (s *Store) UserByOpenID(ctx context.Context, openID string) (*wallet.User, error) {
	return s.userWhere(ctx, "wechat_openid = ? AND wechat_openid <> ''", openID)
}

// UpsertRosterUser implements wallet.Store.
func (s *Store) UpsertRosterUser(ctx context.Context, u *wallet.User) (bool, error) {
	var n int
	var got *wallet.User
	idNo, err1 := s.fc.Seal(colUserID, u.IDNumber)
	phone, err2 := s.fc.Seal(colUserPhone, u.Phone)
	if err := errors.Join(err1, err2); err != nil {
		return false, err
	}
	err := s.write(ctx, func(tx writeTx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE student_no=?`, u.StudentNo).Scan(&n); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (student_no, name, id_number, phone, category, campus, card_uid, login_hash, state, limit_per_tx, limit_daily, phone_index)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(student_no) DO UPDATE SET name=excluded.name, id_number=excluded.id_number, phone=excluded.phone,
			category=excluded.category, campus=excluded.campus, card_uid=excluded.card_uid, phone_index=excluded.phone_index`,
			u.StudentNo, u.Name, idNo, phone, u.Category, u.Campus, u.CardUID, u.LoginHash, u.State, u.LimitPerTx, u.LimitDaily,
			s.fc.Index(colUserPhone, u.Phone)); err != nil {
			return err
		}
		var err error
		got, err = s.scanUser(tx.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE student_no=?", u.StudentNo))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("wallet/sqlite: upsert user %s: %w", u.StudentNo, err)
	}
	*u = *got
	return n == 0, nil
}

// UpdateUser implements wallet.Store.
func (s *Store) UpdateUser(ctx context.Context, u *wallet.User) error {
	card, err1 := s.fc.Seal(colUserCard, u.BankCard)
	idNo, err2 := s.fc.Seal(colUserID, u.IDNumber)
	phone, err3 := s.fc.Seal(colUserPhone, u.Phone)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	err := s.exec(ctx, `UPDATE users SET name=?, id_number=?, phone=?, category=?, campus=?, card_uid=?, login_hash=?,
		state=?, reopens=?, unbinds=?, bank_code=?, bank_card=?, bank_card_last4=?, password_free=?, wechat_openid=?, pay_hash=?, pay_fails=?, pay_locked=?,
		water_hash=?, water_fails=?, water_locked=?, limit_per_tx=?, limit_daily=?, phone_index=? WHERE id=?`,
		u.Name, idNo, phone, u.Category, u.Campus, u.CardUID, u.LoginHash, u.State, u.Reopens, u.Unbinds, u.BankCode, card, last4(u.BankCard),
		b2i(u.PasswordFree), u.WeChatOpenID, u.PayHash, u.PayFails, nanos(u.PayLockedUntil), u.WaterHash, u.WaterFails,
		nanos(u.WaterLockedUntil), u.LimitPerTx, u.LimitDaily, s.fc.Index(colUserPhone, u.Phone), u.ID)
	if err != nil {
		return fmt.Errorf("wallet/sqlite: update user %d: %w", u.ID, err)
	}
	return nil
}

// AddDevice implements wallet.Store.
func (s *Store) AddDevice(ctx context.Context, d *wallet.Device) error {
	var id int64
	err := s.write(ctx, func(tx writeTx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO devices (user_id, key, created, expires) VALUES (?,?,?,?)`,
			d.UserID, []byte(d.Key), nanos(d.Created), nanos(d.Expires))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: add device: %w", err)
	}
	d.ID = uint32(id)
	return nil
}

// Device implements wallet.Store.
func (s *Store) Device(ctx context.Context, id uint32) (*wallet.Device, error) {
	var d wallet.Device
	var key []byte
	var created, expires, revokedAt int64
	var revoked int
	err := s.queryRow(ctx, `SELECT id, user_id, key, created, expires, revoked, revoked_at FROM devices WHERE id=?`, id).
		Scan(&d.ID, &d.UserID, &key, &created, &expires, &revoked, &revokedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, protocol.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: device %d: %w", id, err)
	}
	d.Key, d.Created, d.Expires, d.Revoked, d.RevokedAt = ed25519.PublicKey(key), fromNanos(created), fromNanos(expires), revoked != 0, fromNanos(revokedAt)
	return &d, nil
}

// Devices implements wallet.Store.
func (s *Store) Devices(ctx context.Context, user uint32) ([]wallet.Device, error) {
	rows, err := s.query(ctx, `SELECT id, user_id, key, created, expires, revoked, revoked_at FROM devices WHERE user_id=? ORDER BY id`, user)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: devices of %d: %w", user, err)
	}
	defer rows.Close()
	var out []wallet.Device
	for rows.Next() {
		var d wallet.Device
		var key []byte
		var created, expires, revokedAt int64
		var revoked int
		if err := rows.Scan(&d.ID, &d.UserID, &key, &created, &expires, &revoked, &revokedAt); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: devices of %d: %w", user, err)
		}
		d.Key, d.Created, d.Expires, d.Revoked, d.RevokedAt = ed25519.PublicKey(key), fromNanos(created), fromNanos(expires), revoked != 0, fromNanos(revokedAt)
		out = append(out, d)
	}
	return out, rows.Err()
}

// RevokeDevice implements wallet.Store.
func (s *Store) RevokeDevice(ctx context.Context, id uint32, at time.Time) error {
	if err := s.exec(ctx, `UPDATE devices SET revoked=1, revoked_at=? WHERE id=? AND revoked=0`, nanos(at), id); err != nil {
		return fmt.Errorf("wallet/sqlite: revoke device %d: %w", id, err)
	}
	return nil
}

// RevokedDevices implements wallet.Store: an expired certificate is refused
// anyway, so it no longer needs listing.
func (s *Store) RevokedDevices(ctx context.Context, now time.Time) ([]uint32, error) {
	rows, err := s.query(ctx, `SELECT id FROM devices WHERE revoked=1 AND expires > ? ORDER BY id`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: revoked devices: %w", err)
	}
	defer rows.Close()
	var out []uint32
	for rows.Next() {
		var id uint32
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: revoked devices: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// ReportCardLost implements wallet.Store.
func (s *Store) ReportCardLost(ctx context.Context, uid string, user uint32, at time.Time) error {
	if err := s.exec(ctx, `INSERT OR IGNORE INTO lost_cards (uid, user_id, at) VALUES (?,?,?)`, uid, user, nanos(at)); err != nil {
		return fmt.Errorf("wallet/sqlite: lost card: %w", err)
	}
	return nil
}

// ClearCardLost implements wallet.Store.
func (s *Store) ClearCardLost(ctx context.Context, uid string) error {
	if err := s.exec(ctx, `DELETE FROM lost_cards WHERE uid=?`, uid); err != nil {
		return fmt.Errorf("wallet/sqlite: clear lost card: %w", err)
	}
	return nil
}

// CardLost implements wallet.Store.
func (s *Store) CardLost(ctx context.Context, uid string) (bool, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM lost_cards WHERE uid=?`, uid).Scan(&n); err != nil {
		return false, fmt.Errorf("wallet/sqlite: lost card: %w", err)
	}
	return n > 0, nil
}

// LostCards implements wallet.Store.
func (s *Store) LostCards(ctx context.Context) ([]string, error) {
	return s.strings(ctx, `SELECT uid FROM lost_cards ORDER BY uid`)
}

func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: %w", err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// PutMerchant implements wallet.Store.
func (s *Store) PutMerchant(ctx context.Context, m *wallet.Merchant) error {
	if err := s.exec(ctx, `INSERT INTO merchants (id, name, campus) VALUES (?,?,?)
		ON CONFLICT(id) DO UPDATE SET name=excluded.name, campus=excluded.campus`, m.ID, m.Name, m.Campus); err != nil {
		return fmt.Errorf("wallet/sqlite: put merchant %s: %w", m.ID, err)
	}
	return nil
}

// Merchant implements wallet.Store.
func (s *Store) Merchant(ctx context.Context, id string) (*wallet.Merchant, error) {
	var m wallet.Merchant
	err := s.queryRow(ctx, `SELECT id, name, campus FROM merchants WHERE id=?`, id).Scan(&m.ID, &m.Name, &m.Campus)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, protocol.ErrMerchantUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: merchant %s: %w", id, err)
	}
	return &m, nil
}

// Merchants implements wallet.Store.
func (s *Store) Merchants(ctx context.Context) ([]wallet.Merchant, error) {
	rows, err := s.query(ctx, `SELECT id, name, campus FROM merchants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: merchants: %w", err)
	}
	defer rows.Close()
	var out []wallet.Merchant
	for rows.Next() {
		var m wallet.Merchant
		if err := rows.Scan(&m.ID, &m.Name, &m.Campus); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: merchants: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// PutTerminal implements wallet.Store.
func (s *Store) PutTerminal(ctx context.Context, t *wallet.Terminal) error {
	if err := s.exec(ctx, `INSERT INTO terminals (id, merchant, campus, mode, fixed_amount, password_hash, merchant_qr, created, name)
		VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET merchant=excluded.merchant, campus=excluded.campus, mode=excluded.mode,
		fixed_amount=excluded.fixed_amount, password_hash=excluded.password_hash, merchant_qr=excluded.merchant_qr, created=excluded.created,
		name=excluded.name`,
		t.ID, t.Merchant, t.Campus, string(t.Mode), t.FixedAmount, t.PasswordHash, t.MerchantQR, nanos(t.Created), t.Name); err != nil {
		return fmt.Errorf("wallet/sqlite: put terminal %s: %w", t.ID, err)
	}
	return nil
}

const terminalCols = `id, merchant, campus, mode, fixed_amount, password_hash, merchant_qr, created, name`

func scanTerminal(row interface{ Scan(...any) error }) (*wallet.Terminal, error) {
	var t wallet.Terminal
	var mode string
	var created int64
	if err := row.Scan(&t.ID, &t.Merchant, &t.Campus, &mode, &t.FixedAmount, &t.PasswordHash, &t.MerchantQR, &created, &t.Name); err != nil {
		return nil, err
	}
	t.Mode, t.Created = protocol.Mode(mode), fromNanos(created)
	return &t, nil
}

// Terminal implements wallet.Store.
func (s *Store) Terminal(ctx context.Context, id string) (*wallet.Terminal, error) {
	t, err := scanTerminal(s.queryRow(ctx, `SELECT `+terminalCols+` FROM terminals WHERE id=?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, protocol.ErrTerminalUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: terminal %s: %w", id, err)
	}
	return t, nil
}

// Terminals implements wallet.Store.
func (s *Store) Terminals(ctx context.Context) ([]wallet.Terminal, error) {
	rows, err := s.query(ctx, `SELECT `+terminalCols+` FROM terminals ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: terminals: %w", err)
	}
	defer rows.Close()
	var out []wallet.Terminal
	for rows.Next() {
		t, err := scanTerminal(rows)
		if err != nil {
			return nil, fmt.Errorf("wallet/sqlite: terminals: %w", err)
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

const recordCols = `id, key, kind, user_id, terminal, tx, merchant, amount, channel, bank_code, bank_card, status, code, req_hash, response, qr_seq, created, updated, ml`

func (s *Store) scanRecord(row interface{ Scan(...any) error }) (*wallet.Record, error) {
	var r wallet.Record
	var tx, status string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.Key, &r.Kind, &r.UserID, &r.Terminal, &tx, &r.Merchant, &r.Amount, &r.Channel, &r.BankCode,
		&r.BankCard, &status, &r.Code, &r.ReqHash, &r.Response, &r.QRSeq, &created, &updated, &r.ML); err != nil {
		return nil, err
	}
	r.Tx, r.Status, r.Created, r.Updated = protocol.TxID(tx), protocol.Status(status), fromNanos(created), fromNanos(updated)
	var err error
	if r.BankCard, err = s.fc.Open(colRecordCard, r.BankCard); err != nil {
		return nil, fmt.Errorf("record %s: %w", r.Key, err)
	}
	return &r, nil
}

// Record implements wallet.Store.
func (s *Store) Record(ctx context.Context, key string) (*wallet.Record, error) {
	r, err := s.scanRecord(s.queryRow(ctx, qRecordByKey, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: record %s: %w", key, err)
	}
	return r, nil
}

// PutRecord implements wallet.Store. An approved scan-to-pay record gets
// the next cursor value of its terminal in the same transaction.
func (s *Store) PutRecord(ctx context.Context, r *wallet.Record) error {
	var seq uint64
	var id int64
	card, err := s.fc.Seal(colRecordCard, r.BankCard)
	if err != nil {
		return err
	}
	err = s.writePlain(ctx, func(tx writeTx) error { // one upsert; the rest reads
		return s.putRecord(ctx, tx, r, card, &seq, &id, false)
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: put record %s: %w", r.Key, err)
	}
	r.ID, r.QRSeq = id, seq
	return nil
}

// FinishRecord implements wallet.Store.
func (s *Store) FinishRecord(ctx context.Context, r *wallet.Record) (bool, error) {
	var n int64
	err := s.writePlain(ctx, func(tx writeTx) error {
		res, err := s.txExec(ctx, tx, qRecordFinish, r.Amount, r.Channel, string(r.Status), r.Code, r.Response, nanos(r.Updated), r.Key)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("wallet/sqlite: finish record %s: %w", r.Key, err)
	}
	return n == 1, nil
}

// PutIntent implements wallet.Store. The writer is the only one: the
// daily total it reads cannot change before its commit.
func (s *Store) PutIntent(ctx context.Context, r *wallet.Record, c *wallet.CodeUse, lim *wallet.DailyLimit) (string, error) {
	owner, err := s.putChecked(ctx, r, c, lim, nil, nil, false)
	if err != nil && !errors.Is(err, protocol.ErrLimitDaily) {
		return "", fmt.Errorf("wallet/sqlite: put intent %s: %w", r.Key, err)
	}
	return owner, err
}

// putChecked writes r in one write after its intent's checks
// (intentChecks), running also between those and the record's write. It
// returns the code's owner; r is written only when that is r.Key. Without
// also the write is plain: the checks only read, and should the record's
// write fail after the code's mark, the mark is this key's, which the
// transaction's retry takes again. With also (which may fail after the
// mark, and PutPayment's post after its own first writes) it has a
// savepoint of its own. fresh: as putRecord's.
func (s *Store) putChecked(ctx context.Context, r *wallet.Record, c *wallet.CodeUse, lim *wallet.DailyLimit, payer *wallet.PayerCheck, also func(writeTx) error, fresh bool) (string, error) {
	var seq uint64
	var id int64
	owner := r.Key
	card, err := s.fc.Seal(colRecordCard, r.BankCard)
	if err != nil {
		return "", err
	}
	sweep := s.sweepDue(c)
	f := func(tx writeTx) error {
		if err := s.intentChecks(ctx, tx, r, c, lim, payer, sweep, &owner); err != nil || owner != r.Key {
			return err
		}
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		return s.putRecord(ctx, tx, r, card, &seq, &id, fresh)
	}
	if also == nil {
		err = s.writePlain(ctx, f)
	} else {
		err = s.write(ctx, f)
	}
	if err != nil {
		return "", err
	}
	if owner == r.Key {
		r.ID, r.QRSeq = id, seq
	}
	return owner, nil
}

// sweepDue reports whether this write should delete the expired code
// marks: at most once a second, not by every payment (an expired mark
// still present is taken over by qSeenInsert).
func (s *Store) sweepDue(c *wallet.CodeUse) bool {
	if c == nil {
		return false
	}
	last := s.codeSweep.Load()
	return c.Now.UnixNano()-last >= int64(time.Second) && s.codeSweep.CompareAndSwap(last, c.Now.UnixNano())
}

// intentChecks runs, in the writer's transaction, the checks of a
// payment's intent: the student's version (wallet.ErrPayerChanged), the
// daily limit (protocol.ErrLimitDaily), then the code's single-use mark,
// setting *owner to the code's owner (r.Key when the mark is r's).
func (s *Store) intentChecks(ctx context.Context, tx writeTx, r *wallet.Record, c *wallet.CodeUse, lim *wallet.DailyLimit, payer *wallet.PayerCheck, sweep bool, owner *string) error {
	if payer != nil {
		var v int64
		switch err := s.txQueryRow(ctx, tx, qUserVersion, payer.UserID).Scan(&v); {
		case errors.Is(err, sql.ErrNoRows):
			return wallet.ErrPayerChanged
		case err != nil:
			return fmt.Errorf("student version: %w", err)
		case v != payer.Version:
			return wallet.ErrPayerChanged
		}
	}
	if lim != nil {
		var spent int64
		if err := s.txQueryRow(ctx, tx, qPaidBetween, r.UserID, nanos(lim.From), nanos(lim.To)).Scan(&spent); err != nil {
			return fmt.Errorf("daily total: %w", err)
		}
		if spent+r.Amount > lim.Max {
			return protocol.ErrLimitDaily
		}
	}
	if c == nil {
		return nil
	}
	if sweep {
		if _, err := s.txExec(ctx, tx, qSeenExpire, nanos(c.Now)); err != nil {
			return err
		}
	}
	res, err := s.txExec(ctx, tx, qSeenInsert, c.ID, r.Key, nanos(c.Expires), nanos(c.Now))
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return err
	case n == 1:
		*owner = r.Key
		return nil
	}
	// Held by a transaction still within its validity.
	return s.txQueryRow(ctx, tx, qSeenOwner, c.ID).Scan(owner)
}

// putRecord upserts r in the writer's transaction.
// card is r.BankCard sealed by the field cipher (outside the writer).
// fresh: r is new (ID 0) and must not write over a record of its key: one
// there already is wallet.ErrRecordExists, found by the insert itself.
func (s *Store) putRecord(ctx context.Context, tx writeTx, r *wallet.Record, card string, seq *uint64, id *int64, fresh bool) error {
	*seq = r.QRSeq
	if r.Kind == wallet.KindScanPay && r.Status == protocol.StatusApproved && *seq == 0 {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(qr_seq), 0) + 1 FROM records WHERE terminal=? AND qr_seq > 0`, r.Terminal).Scan(seq); err != nil {
			return fmt.Errorf("next cursor: %w", err)
		}
	}
	if r.ID != 0 {
		// Written before (read back or put): update what may change, by ID.
		res, err := s.txExec(ctx, tx, qRecordUpdate, r.Amount, r.Channel, r.BankCode, card, last4(r.BankCard),
			string(r.Status), r.Code, r.Response, *seq, nanos(r.Updated), r.ID, r.Key, r.Kind, r.UserID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			*id = r.ID
			return err
		}
		// Not that row (another kind or user now, or an ID from another
		// database): insert or update by key.
	}
	res, err := s.txExec(ctx, tx, qRecordInsert,
		r.Key, r.Kind, r.UserID, r.Terminal, string(r.Tx), r.Merchant, r.Amount, r.Channel, r.BankCode, card, last4(r.BankCard),
		string(r.Status), r.Code, r.ReqHash, r.Response, *seq, nanos(r.Created), nanos(r.Updated))
	if err != nil {
		return err
	}
	if *id, err = ledgersqlite.InsertedID(res); err != nil || *id != 0 {
		return err
	}
	if fresh {
		return wallet.ErrRecordExists
	}
	return s.txQueryRow(ctx, tx, qRecordRewrite, r.Kind, r.UserID, r.Amount, r.Channel, r.BankCode, card, last4(r.BankCard),
		string(r.Status), r.Code, r.Response, *seq, nanos(r.Updated), r.Key).Scan(id)
}

func (s *Store) records(ctx context.Context, q string, args ...any) ([]wallet.Record, error) {
	rows, err := s.query(ctx, `SELECT `+recordCols+` FROM records WHERE `+q, args...)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: records: %w", err)
	}
	defer rows.Close()
	var out []wallet.Record
	for rows.Next() {
		r, err := s.scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("wallet/sqlite: records: %w", err)
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

// Visible records: tombstones and nothing-happened declines of unknown
// users are not the student's business.
const visible = `kind <> 'tombstone'`

// Records implements wallet.Store.
func (s *Store) Records(ctx context.Context, user uint32, beforeID int64, limit int) ([]wallet.Record, error) {
	if beforeID <= 0 {
		beforeID = 1 << 62
	}
	return s.records(ctx, qUserRecords, user, beforeID, limit)
}

// AllRecords implements wallet.Store.
func (s *Store) AllRecords(ctx context.Context, beforeID int64, limit int) ([]wallet.Record, error) {
	if beforeID <= 0 {
		beforeID = 1 << 62
	}
	return s.records(ctx, `id<? ORDER BY id DESC LIMIT ?`, beforeID, limit)
}

// RecordsBetween implements wallet.Store.
func (s *Store) RecordsBetween(ctx context.Context, user uint32, from, to time.Time, limit int) ([]wallet.Record, error) {
	return s.records(ctx, `user_id=? AND created>=? AND created<? AND `+visible+` ORDER BY created, id LIMIT ?`, user, nanos(from), nanos(to), limit)
}

// SetRecordML implements wallet.Store.
func (s *Store) SetRecordML(ctx context.Context, key string, ml int64) error {
	var n int64
	err := s.writePlain(ctx, func(tx writeTx) error {
		r, err := tx.ExecContext(ctx, qRecordML, ml, key)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: set ml of %s: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("wallet/sqlite: set ml of %s: %w", key, protocol.ErrHoldUnknown)
	}
	return nil
}

// ScanPays implements wallet.Store.
func (s *Store) ScanPays(ctx context.Context, terminal string, after uint64) ([]wallet.Record, error) {
	return s.records(ctx, `terminal=? AND qr_seq>? ORDER BY qr_seq`, terminal, after)
}

// Unfinished implements wallet.Store.
func (s *Store) Unfinished(ctx context.Context, before time.Time, limit int) ([]wallet.Record, error) {
	return s.records(ctx, `(status='processing' OR status='pending' OR status='reversing') AND updated < ? ORDER BY updated LIMIT ?`, nanos(before), limit)
}

// PaidBetween implements wallet.Store. Besides approved payments it counts
// what is committed but not final: active shower holds (at the hold) and
// wallet-funded payments still processing or pending; and settled offline
// payments.
func (s *Store) PaidBetween(ctx context.Context, user uint32, from, to time.Time) (int64, error) {
	var sum int64
	err := s.queryRow(ctx, qPaidBetween, user, nanos(from), nanos(to)).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("wallet/sqlite: paid between: %w", err)
	}
	return sum, nil
}

// Unsettled implements wallet.Store.
func (s *Store) Unsettled(ctx context.Context, user uint32) ([]wallet.Record, error) {
	return s.records(ctx, qUserOpenRecords, user)
}

// ClearWeChat implements wallet.Store.
func (s *Store) ClearWeChat(ctx context.Context, user uint32, openID string) error {
	if err := s.exec(ctx, `UPDATE users SET wechat_openid='' WHERE id=? AND wechat_openid=?`, user, openID); err != nil {
		return fmt.Errorf("wallet/sqlite: clear wechat of user %d: %w", user, err)
	}
	return nil
}

// JournalEntry implements wallet.Store.
func (s *Store) JournalEntry(ctx context.Context, terminal string, seq uint64) (string, error) {
	var h string
	err := s.queryRow(ctx, `SELECT hash FROM journal WHERE terminal=? AND seq=?`, terminal, seq).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("wallet/sqlite: journal %s/%d: %w", terminal, seq, err)
	}
	return h, nil
}

// PutJournalEntry implements wallet.Store.
func (s *Store) PutJournalEntry(ctx context.Context, terminal string, seq uint64, tx protocol.TxID, hash string, at time.Time) error {
	if err := s.exec(ctx, `INSERT OR IGNORE INTO journal (terminal, seq, tx, hash, at) VALUES (?,?,?,?,?)`,
		terminal, seq, string(tx), hash, nanos(at)); err != nil {
		return fmt.Errorf("wallet/sqlite: journal %s/%d: %w", terminal, seq, err)
	}
	return nil
}

// BumpRevision implements wallet.Store.
func (s *Store) BumpRevision(ctx context.Context) (uint64, error) {
	var v uint64
	err := s.write(ctx, func(tx writeTx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO meta (k, v) VALUES ('config_revision', 1)
			ON CONFLICT(k) DO UPDATE SET v = v + 1 RETURNING v`).Scan(&v)
	})
	if err != nil {
		return 0, fmt.Errorf("wallet/sqlite: bump revision: %w", err)
	}
	return v, nil
}

// Revision implements wallet.Store.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	var v uint64
	err := s.queryRow(ctx, `SELECT v FROM meta WHERE k='config_revision'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("wallet/sqlite: revision: %w", err)
	}
	return v, nil
}

// APIResponse returns the response stored for (user, key), or nil.
func (s *Store) APIResponse(ctx context.Context, user uint32, key string) (*wallet.APIResponse, error) {
	var i wallet.APIResponse
	err := s.queryRow(ctx, `SELECT hash, status, body FROM api_idem WHERE user_id=? AND key=?`, user, key).Scan(&i.Hash, &i.Status, &i.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: api response: %w", err)
	}
	return &i, nil
}

// PutAPIResponse stores the response for (user, key); the first one stays.
func (s *Store) PutAPIResponse(ctx context.Context, user uint32, key string, i wallet.APIResponse, at time.Time) error {
	body := i.Body
	if body == nil {
		body = []byte{} // NOT NULL: INSERT OR IGNORE would drop the row silently
	}
	if err := s.exec(ctx, `INSERT OR IGNORE INTO api_idem (user_id, key, hash, status, body, at) VALUES (?,?,?,?,?,?)`,
		user, key, i.Hash, i.Status, body, nanos(at)); err != nil {
		return fmt.Errorf("wallet/sqlite: put api response: %w", err)
	}
	return nil
}

// PutSession stores an app session by its token's hash and sweeps the
// expired ones.
func (s *Store) PutSession(ctx context.Context, tokenHash string, user uint32, expires, now time.Time) error {
	err := s.write(ctx, func(tx writeTx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ?`, nanos(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, expires) VALUES (?,?,?)`, tokenHash, user, nanos(expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: put session: %w", err)
	}
	return nil
}

// Session returns the user of a session that has not expired at now.
func (s *Store) Session(ctx context.Context, tokenHash string, now time.Time) (uint32, bool, error) {
	var user uint32
	err := s.queryRow(ctx, `SELECT user_id FROM sessions WHERE token_hash=? AND expires > ?`, tokenHash, nanos(now)).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("wallet/sqlite: session: %w", err)
	}
	return user, true, nil
}

// DeleteSession ends a session (log out); an unknown one is no error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	if err := s.exec(ctx, `DELETE FROM sessions WHERE token_hash=?`, tokenHash); err != nil {
		return fmt.Errorf("wallet/sqlite: delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of user except the one whose
// token hash is keep ("" for none): log out everywhere.
func (s *Store) DeleteUserSessions(ctx context.Context, user uint32, keep string) error {
	if err := s.exec(ctx, `DELETE FROM sessions WHERE user_id=? AND token_hash<>?`, user, keep); err != nil {
		return fmt.Errorf("wallet/sqlite: delete sessions of %d: %w", user, err)
	}
	return nil
}
