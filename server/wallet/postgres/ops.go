package postgres

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"campuspay/protocol"
	"campuspay/server/wallet"
	"campuspay/server/wallet/fieldcrypt"
)

// exec runs one statement, its own transaction. A statement refused by a
// read-only server changed nothing: it is sent once more on a fresh
// connection, which a multi-host connection string takes to the primary.
func (s *Store) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.execRows(ctx, q, args...)
	return err
}

// execRows is exec that also reports the rows the statement touched.
func (s *Store) execRows(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := s.pool.Exec(ctx, q, args...)
	if readOnly(err) {
		s.pool.Reset()
		tag, err = s.pool.Exec(ctx, q, args...)
	}
	return tag.RowsAffected(), s.fail(err)
}

const userCols = `id, student_no, name, id_number, phone, category, campus, card_uid, login_hash, state, reopens, unbinds,
	bank_code, bank_card, password_free, wechat_openid, pay_hash, pay_fails, pay_locked, water_hash, water_fails, water_locked,
	limit_per_tx, limit_daily, frozen`

// scanUser reads userCols after the given leading destinations.
func (s *Store) scanUser(row pgx.Row, lead ...any) (*wallet.User, error) {
	var u wallet.User
	var state int
	var payLocked, waterLocked int64
	dest := append(lead, &u.ID, &u.StudentNo, &u.Name, &u.IDNumber, &u.Phone, &u.Category, &u.Campus, &u.CardUID, &u.LoginHash,
		&state, &u.Reopens, &u.Unbinds, &u.BankCode, &u.BankCard, &u.PasswordFree, &u.WeChatOpenID, &u.PayHash, &u.PayFails, &payLocked,
		&u.WaterHash, &u.WaterFails, &waterLocked, &u.LimitPerTx, &u.LimitDaily, &u.Frozen)
	err := row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, protocol.ErrUserUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: read user: %w", s.fail(err))
	}
	u.State = wallet.State(state)
	u.PayLockedUntil, u.WaterLockedUntil = fromNanos(payLocked), fromNanos(waterLocked)
	var e1, e2, e3 error
	u.BankCard, e1 = s.fc.Open(fieldcrypt.ColUserCard, u.BankCard)
	u.IDNumber, e2 = s.fc.Open(fieldcrypt.ColUserID, u.IDNumber)
	u.Phone, e3 = s.fc.Open(fieldcrypt.ColUserPhone, u.Phone)
	if err := errors.Join(e1, e2, e3); err != nil {
		return nil, fmt.Errorf("wallet/postgres: user %d: %w", u.ID, err)
	}
	return &u, nil
}

func (s *Store) userWhere(ctx context.Context, where string, arg any) (*wallet.User, error) {
	return s.scanUser(s.pool.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE "+where, arg))
}

// User implements wallet.Store.
func (s *Store) User(ctx context.Context, id uint32) (*wallet.User, error) {
	return s.userWhere(ctx, "id = $1", int64(id))
}

// Payer implements wallet.Store.
func (s *Store) Payer(ctx context.Context, id, device uint32) (*wallet.User, bool, error) {
	var ok bool
	u, err := s.scanUser(s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1 AND user_id = users.id AND NOT revoked), `+
		userCols+` FROM users WHERE id = $2`, int64(device), int64(id)), &ok)
	return u, ok, err
}

// UserByStudentNo implements wallet.Store.
func (s *Store) UserByStudentNo(ctx context.Context, no string) (*wallet.User, error) {
	return s.userWhere(ctx, "student_no = $1", no)
}

// UserByCard implements wallet.Store.
func (s *Store) UserByCard(ctx context.Context, uid string) (*wallet.User, error) {
	u, err := s.userWhere(ctx, "card_uid = $1 AND card_uid <> '' ORDER BY id LIMIT 1", uid)
	if errors.Is(err, protocol.ErrUserUnknown) {
		return nil, protocol.ErrCardUnknown
	}
	return u, err
}

// UserByOpenID implements wallet.Store.
func (s *Store) UserByOpenID(ctx context.Context, openID string) (*wallet.User, error) {
	return s.userWhere(ctx, "wechat_openid = $1 AND wechat_openid <> '' ORDER BY id LIMIT 1", openID)
}

// UpsertRosterUser implements wallet.Store: one statement, so two
// authorizers importing the same student make one user.
func (s *Store) UpsertRosterUser(ctx context.Context, u *wallet.User) (bool, error) {
	idNo, err1 := s.fc.Seal(fieldcrypt.ColUserID, u.IDNumber)
	phone, err2 := s.fc.Seal(fieldcrypt.ColUserPhone, u.Phone)
	if err := errors.Join(err1, err2); err != nil {
		return false, err
	}
	var created bool
	got, err := s.scanUser(s.pool.QueryRow(ctx, `INSERT INTO users AS x (student_no, name, id_number, phone, category, campus, card_uid, login_hash, state, limit_per_tx, limit_daily, phone_index)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
		ON CONFLICT (student_no) DO UPDATE SET name=excluded.name, id_number=excluded.id_number, phone=excluded.phone,
			category=excluded.category, campus=excluded.campus, card_uid=excluded.card_uid, phone_index=excluded.phone_index
		RETURNING (xmax = 0), `+userCols,
		u.StudentNo, u.Name, idNo, phone, u.Category, u.Campus, u.CardUID, u.LoginHash, int(u.State), u.LimitPerTx, u.LimitDaily,
		s.fc.Index(fieldcrypt.ColUserPhone, u.Phone)), &created)
	if err != nil {
		return false, fmt.Errorf("wallet/postgres: upsert user %s: %w", u.StudentNo, err)
	}
	*u = *got
	return created, nil
}

// UpdateUser implements wallet.Store.
func (s *Store) UpdateUser(ctx context.Context, u *wallet.User) error {
	card, err1 := s.fc.Seal(fieldcrypt.ColUserCard, u.BankCard)
	idNo, err2 := s.fc.Seal(fieldcrypt.ColUserID, u.IDNumber)
	phone, err3 := s.fc.Seal(fieldcrypt.ColUserPhone, u.Phone)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	err := s.exec(ctx, `UPDATE users SET name=$1, id_number=$2, phone=$3, category=$4, campus=$5, card_uid=$6, login_hash=$7,
		state=$8, reopens=$9, unbinds=$10, bank_code=$11, bank_card=$12, bank_card_last4=$13, password_free=$14, wechat_openid=$15,
		pay_hash=$16, pay_fails=$17, pay_locked=$18, water_hash=$19, water_fails=$20, water_locked=$21, limit_per_tx=$22, limit_daily=$23,
		phone_index=$25 WHERE id=$24`,
		u.Name, idNo, phone, u.Category, u.Campus, u.CardUID, u.LoginHash, int(u.State), u.Reopens, u.Unbinds, u.BankCode, card,
		fieldcrypt.Last4(u.BankCard), u.PasswordFree, u.WeChatOpenID, u.PayHash, u.PayFails, nanos(u.PayLockedUntil), u.WaterHash,
		u.WaterFails, nanos(u.WaterLockedUntil), u.LimitPerTx, u.LimitDaily, int64(u.ID), s.fc.Index(fieldcrypt.ColUserPhone, u.Phone))
	if err != nil {
		return fmt.Errorf("wallet/postgres: update user %d: %w", u.ID, err)
	}
	return nil
}

// AddDevice implements wallet.Store.
func (s *Store) AddDevice(ctx context.Context, d *wallet.Device) error {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO devices (user_id, key, created, expires) VALUES ($1,$2,$3,$4) RETURNING id`,
		int64(d.UserID), []byte(d.Key), nanos(d.Created), nanos(d.Expires)).Scan(&id)
	if err != nil {
		return fmt.Errorf("wallet/postgres: add device: %w", s.fail(err))
	}
	d.ID = uint32(id)
	return nil
}

// Device implements wallet.Store.
func (s *Store) Device(ctx context.Context, id uint32) (*wallet.Device, error) {
	var d wallet.Device
	var key []byte
	var created, expires, revokedAt int64
	err := s.pool.QueryRow(ctx, `SELECT id, user_id, key, created, expires, revoked, revoked_at FROM devices WHERE id=$1`, int64(id)).
		Scan(&d.ID, &d.UserID, &key, &created, &expires, &d.Revoked, &revokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, protocol.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: device %d: %w", id, s.fail(err))
	}
	d.Key, d.Created, d.Expires, d.RevokedAt = ed25519.PublicKey(key), fromNanos(created), fromNanos(expires), fromNanos(revokedAt)
	return &d, nil
}

// Devices implements wallet.Store.
func (s *Store) Devices(ctx context.Context, user uint32) ([]wallet.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, user_id, key, created, expires, revoked, revoked_at FROM devices WHERE user_id=$1 ORDER BY id`, int64(user))
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: devices of %d: %w", user, s.fail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wallet.Device, error) {
		var d wallet.Device
		var key []byte
		var created, expires, revokedAt int64
		err := r.Scan(&d.ID, &d.UserID, &key, &created, &expires, &d.Revoked, &revokedAt)
		d.Key, d.Created, d.Expires, d.RevokedAt = ed25519.PublicKey(key), fromNanos(created), fromNanos(expires), fromNanos(revokedAt)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: devices of %d: %w", user, s.fail(err))
	}
	return out, nil
}

// RevokeDevice implements wallet.Store.
func (s *Store) RevokeDevice(ctx context.Context, id uint32, at time.Time) error {
	if err := s.exec(ctx, `UPDATE devices SET revoked=true, revoked_at=$2 WHERE id=$1 AND NOT revoked`, int64(id), nanos(at)); err != nil {
		return fmt.Errorf("wallet/postgres: revoke device %d: %w", id, err)
	}
	return nil
}

// RevokedDevices implements wallet.Store: an expired certificate is
// refused anyway, so it no longer needs listing.
func (s *Store) RevokedDevices(ctx context.Context, now time.Time) ([]uint32, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM devices WHERE revoked AND expires > $1 ORDER BY id`, nanos(now))
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: revoked devices: %w", s.fail(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: revoked devices: %w", s.fail(err))
	}
	return out, nil
}

// ReportCardLost implements wallet.Store.
func (s *Store) ReportCardLost(ctx context.Context, uid string, user uint32, at time.Time) error {
	if err := s.exec(ctx, `INSERT INTO lost_cards (uid, user_id, at) VALUES ($1,$2,$3) ON CONFLICT (uid) DO NOTHING`,
		uid, int64(user), nanos(at)); err != nil {
		return fmt.Errorf("wallet/postgres: lost card: %w", err)
	}
	return nil
}

// ClearCardLost implements wallet.Store.
func (s *Store) ClearCardLost(ctx context.Context, uid string) error {
	if err := s.exec(ctx, `DELETE FROM lost_cards WHERE uid=$1`, uid); err != nil {
		return fmt.Errorf("wallet/postgres: clear lost card: %w", err)
	}
	return nil
}

// CardLost implements wallet.Store.
func (s *Store) CardLost(ctx context.Context, uid string) (bool, error) {
	var lost bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM lost_cards WHERE uid=$1)`, uid).Scan(&lost); err != nil {
		return false, fmt.Errorf("wallet/postgres: lost card: %w", s.fail(err))
	}
	return lost, nil
}

// LostCards implements wallet.Store.
func (s *Store) LostCards(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT uid FROM lost_cards ORDER BY uid`)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: lost cards: %w", s.fail(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: lost cards: %w", s.fail(err))
	}
	return out, nil
}

// PutMerchant implements wallet.Store.
func (s *Store) PutMerchant(ctx context.Context, m *wallet.Merchant) error {
	if err := s.exec(ctx, `INSERT INTO merchants (id, name, campus) VALUES ($1,$2,$3)
		ON CONFLICT (id) DO UPDATE SET name=excluded.name, campus=excluded.campus`, m.ID, m.Name, m.Campus); err != nil {
		return fmt.Errorf("wallet/postgres: put merchant %s: %w", m.ID, err)
	}
	return nil
}

// Merchant implements wallet.Store.
func (s *Store) Merchant(ctx context.Context, id string) (*wallet.Merchant, error) {
	var m wallet.Merchant
	err := s.pool.QueryRow(ctx, `SELECT id, name, campus FROM merchants WHERE id=$1`, id).Scan(&m.ID, &m.Name, &m.Campus)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, protocol.ErrMerchantUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: merchant %s: %w", id, s.fail(err))
	}
	return &m, nil
}

// Merchants implements wallet.Store.
func (s *Store) Merchants(ctx context.Context) ([]wallet.Merchant, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, campus FROM merchants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: merchants: %w", s.fail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wallet.Merchant, error) {
		var m wallet.Merchant
		return m, r.Scan(&m.ID, &m.Name, &m.Campus)
	})
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: merchants: %w", s.fail(err))
	}
	return out, nil
}

// PutTerminal implements wallet.Store.
func (s *Store) PutTerminal(ctx context.Context, t *wallet.Terminal) error {
	if err := s.exec(ctx, `INSERT INTO terminals (id, merchant, campus, mode, fixed_amount, password_hash, merchant_qr, created, name)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (id) DO UPDATE SET merchant=excluded.merchant, campus=excluded.campus,
		mode=excluded.mode, fixed_amount=excluded.fixed_amount, password_hash=excluded.password_hash,
		merchant_qr=excluded.merchant_qr, created=excluded.created, name=excluded.name`,
		t.ID, t.Merchant, t.Campus, string(t.Mode), t.FixedAmount, t.PasswordHash, t.MerchantQR, nanos(t.Created), t.Name); err != nil {
		return fmt.Errorf("wallet/postgres: put terminal %s: %w", t.ID, err)
	}
	return nil
}

const terminalCols = `id, merchant, campus, mode, fixed_amount, password_hash, merchant_qr, created, name`

func scanTerminal(row pgx.Row) (wallet.Terminal, error) {
	var t wallet.Terminal
	var mode string
	var created int64
	if err := row.Scan(&t.ID, &t.Merchant, &t.Campus, &mode, &t.FixedAmount, &t.PasswordHash, &t.MerchantQR, &created, &t.Name); err != nil {
		return t, err
	}
	t.Mode, t.Created = protocol.Mode(mode), fromNanos(created)
	return t, nil
}

// Terminal implements wallet.Store.
func (s *Store) Terminal(ctx context.Context, id string) (*wallet.Terminal, error) {
	t, err := scanTerminal(s.pool.QueryRow(ctx, `SELECT `+terminalCols+` FROM terminals WHERE id=$1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, protocol.ErrTerminalUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: terminal %s: %w", id, s.fail(err))
	}
	return &t, nil
}

// Terminals implements wallet.Store.
func (s *Store) Terminals(ctx context.Context) ([]wallet.Terminal, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+terminalCols+` FROM terminals ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: terminals: %w", s.fail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wallet.Terminal, error) { return scanTerminal(r) })
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: terminals: %w", s.fail(err))
	}
	return out, nil
}

const recordCols = `id, key, kind, user_id, terminal, tx, merchant, amount, channel, bank_code, bank_card, status, code, req_hash, response, qr_seq, created, updated, ml`

func (s *Store) scanRecord(row pgx.Row) (wallet.Record, error) {
	var r wallet.Record
	var tx, status string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.Key, &r.Kind, &r.UserID, &r.Terminal, &tx, &r.Merchant, &r.Amount, &r.Channel, &r.BankCode,
		&r.BankCard, &status, &r.Code, &r.ReqHash, &r.Response, &r.QRSeq, &created, &updated, &r.ML); err != nil {
		return r, err
	}
	r.Tx, r.Status, r.Created, r.Updated = protocol.TxID(tx), protocol.Status(status), fromNanos(created), fromNanos(updated)
	var err error
	if r.BankCard, err = s.fc.Open(fieldcrypt.ColRecordCard, r.BankCard); err != nil {
		return r, fmt.Errorf("record %s: %w", r.Key, err)
	}
	return r, nil
}

// Record implements wallet.Store.
func (s *Store) Record(ctx context.Context, key string) (*wallet.Record, error) {
	r, err := s.scanRecord(s.pool.QueryRow(ctx, `SELECT `+recordCols+` FROM records WHERE key=$1`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: record %s: %w", key, s.fail(err))
	}
	return &r, nil
}

// recordArgs are wallet_put_record's arguments after the key, card sealed.
func recordArgs(r *wallet.Record, card string) []any {
	return []any{r.Kind, int64(r.UserID), r.Terminal, string(r.Tx), r.Merchant, r.Amount, r.Channel, r.BankCode, card,
		fieldcrypt.Last4(r.BankCard), string(r.Status), r.Code, r.ReqHash, r.Response, int64(r.QRSeq), nanos(r.Created), nanos(r.Updated)}
}

const (
	qPutRecord = `SELECT o_id, o_seq FROM wallet_put_record($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)`
	qPutIntent = `SELECT o_over, o_owner, o_id, o_seq FROM wallet_put_intent($1::bigint,$2::bigint,$3::bigint,$4::text,$5::bigint,$6::bigint,
		$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)`
	// qFinish is FinishRecord; it returns a row like the others.
	qFinish = `WITH u AS (UPDATE records SET amount = $2, channel = $3, status = $4, code = $5, response = $6, updated = $7
		WHERE key = $1 AND status = 'processing' RETURNING 1) SELECT count(*) FROM u`
	// qSweep deletes expired marks; it returns a row like the others.
	qSweep = `WITH d AS (DELETE FROM seen_codes WHERE expires < $1 RETURNING 1) SELECT count(*) FROM d`
)

// PutRecord implements wallet.Store. An approved scan-to-pay record gets
// the next cursor value of its terminal in the same transaction.
func (s *Store) PutRecord(ctx context.Context, r *wallet.Record) error {
	card, err := s.fc.Seal(fieldcrypt.ColRecordCard, r.BankCard)
	if err != nil {
		return err
	}
	var id, seq int64
	args := append([]any{r.Key}, recordArgs(r, card)...)
	if err := s.submit(ctx, &op{sql: qPutRecord, args: args, dest: []any{&id, &seq}}); err != nil {
		return fmt.Errorf("wallet/postgres: put record %s: %w", r.Key, err)
	}
	r.ID, r.QRSeq = id, uint64(seq)
	return nil
}

// FinishRecord implements wallet.Store.
func (s *Store) FinishRecord(ctx context.Context, r *wallet.Record) (bool, error) {
	var n int64
	if err := s.submit(ctx, &op{sql: qFinish, args: []any{r.Key, r.Amount, r.Channel, string(r.Status), r.Code, r.Response, nanos(r.Updated)},
		dest: []any{&n}}); err != nil {
		return false, fmt.Errorf("wallet/postgres: finish record %s: %w", r.Key, err)
	}
	return n == 1, nil
}

// PutIntent implements wallet.Store: the checks and the record are one
// statement of one transaction (wallet_put_intent), the limit read under
// the user's row lock.
func (s *Store) PutIntent(ctx context.Context, r *wallet.Record, c *wallet.CodeUse, lim *wallet.DailyLimit) (string, error) {
	card, err := s.fc.Seal(fieldcrypt.ColRecordCard, r.BankCard)
	if err != nil {
		return "", err
	}
	var code, expires, now, from, to, max any // NULL unless given
	if c != nil {
		// Expired marks are swept at most once a second per store, not by
		// every payment (an expired mark still present is taken over).
		last := s.codeSweep.Load()
		if c.Now.UnixNano()-last >= int64(time.Second) && s.codeSweep.CompareAndSwap(last, c.Now.UnixNano()) {
			var n int64
			if err := s.submit(ctx, &op{sql: qSweep, args: []any{nanos(c.Now)}, dest: []any{&n}}); err != nil {
				return "", fmt.Errorf("wallet/postgres: sweep seen codes: %w", err)
			}
		}
		code, expires, now = c.ID, nanos(c.Expires), nanos(c.Now)
	}
	if lim != nil {
		from, to, max = nanos(lim.From), nanos(lim.To), lim.Max
	}
	var over bool
	var owner *string
	var id, seq *int64
	args := append([]any{from, to, max, code, expires, now, r.Key}, recordArgs(r, card)...)
	if err := s.submit(ctx, &op{sql: qPutIntent, args: args, dest: []any{&over, &owner, &id, &seq}}); err != nil {
		return "", fmt.Errorf("wallet/postgres: put intent %s: %w", r.Key, err)
	}
	if over {
		return "", protocol.ErrLimitDaily
	}
	if owner == nil {
		return "", fmt.Errorf("wallet/postgres: put intent %s: no owner", r.Key)
	}
	if *owner == r.Key && id != nil && seq != nil {
		r.ID, r.QRSeq = *id, uint64(*seq)
	}
	return *owner, nil
}

func (s *Store) records(ctx context.Context, q string, args ...any) ([]wallet.Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+recordCols+` FROM records WHERE `+q, args...)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: records: %w", s.fail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wallet.Record, error) { return s.scanRecord(r) })
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: records: %w", s.fail(err))
	}
	return out, nil
}

// Visible records: tombstones are not the student's business.
const visible = `kind <> 'tombstone'`

// Records implements wallet.Store.
func (s *Store) Records(ctx context.Context, user uint32, beforeID int64, limit int) ([]wallet.Record, error) {
	if beforeID <= 0 {
		beforeID = 1 << 62
	}
	return s.records(ctx, `user_id=$1 AND id<$2 AND `+visible+` ORDER BY id DESC LIMIT $3`, int64(user), beforeID, limit)
}

// RecordsBetween implements wallet.Store.
func (s *Store) RecordsBetween(ctx context.Context, user uint32, from, to time.Time, limit int) ([]wallet.Record, error) {
	return s.records(ctx, `user_id=$1 AND created>=$2 AND created<$3 AND `+visible+` ORDER BY created, id LIMIT $4`,
		int64(user), nanos(from), nanos(to), limit)
}

// SetRecordML implements wallet.Store.
func (s *Store) SetRecordML(ctx context.Context, key string, ml int64) error {
	n, err := s.execRows(ctx, `UPDATE records SET ml=$1 WHERE key=$2 AND kind='shower'`, ml, key)
	if err != nil {
		return fmt.Errorf("wallet/postgres: set ml of %s: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("wallet/postgres: set ml of %s: %w", key, protocol.ErrHoldUnknown)
	}
	return nil
}

// AllRecords implements wallet.Store.
func (s *Store) AllRecords(ctx context.Context, beforeID int64, limit int) ([]wallet.Record, error) {
	if beforeID <= 0 {
		beforeID = 1 << 62
	}
	return s.records(ctx, `id<$1 ORDER BY id DESC LIMIT $2`, beforeID, limit)
}

// ScanPays implements wallet.Store.
func (s *Store) ScanPays(ctx context.Context, terminal string, after uint64) ([]wallet.Record, error) {
	return s.records(ctx, `terminal=$1 AND qr_seq>$2 ORDER BY qr_seq`, terminal, int64(after))
}

// Unfinished implements wallet.Store.
func (s *Store) Unfinished(ctx context.Context, before time.Time, limit int) ([]wallet.Record, error) {
	return s.records(ctx, `status IN ('processing', 'pending', 'reversing') AND updated < $1 ORDER BY updated LIMIT $2`, nanos(before), limit)
}

// PaidBetween implements wallet.Store. Besides approved payments it counts
// what is committed but not final: active shower holds (at the hold) and
// wallet-funded payments still processing or pending; and settled offline
// payments. The same condition is in wallet_put_intent (migrations 0010).
func (s *Store) PaidBetween(ctx context.Context, user uint32, from, to time.Time) (int64, error) {
	var sum int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(SUM(amount), 0)::bigint FROM records WHERE user_id=$1 AND created>=$2 AND created<$3
		AND ((kind IN ('payment', 'scan_pay', 'shower') AND status IN ('approved', 'processing', 'pending')
				AND channel IN ('balance', 'bank_card'))
			OR (kind='shower' AND status='held')
			OR (kind='offline' AND status IN ('approved', 'processing')))`,
		int64(user), nanos(from), nanos(to)).Scan(&sum)
	if err != nil {
		return 0, fmt.Errorf("wallet/postgres: paid between: %w", s.fail(err))
	}
	return sum, nil
}

// Unsettled implements wallet.Store.
func (s *Store) Unsettled(ctx context.Context, user uint32) ([]wallet.Record, error) {
	return s.records(ctx, `user_id=$1 AND status IN ('processing', 'pending', 'reversing') ORDER BY id`, int64(user))
}

// ClearWeChat implements wallet.Store.
func (s *Store) ClearWeChat(ctx context.Context, user uint32, openID string) error {
	if err := s.exec(ctx, `UPDATE users SET wechat_openid='' WHERE id=$1 AND wechat_openid=$2`, int64(user), openID); err != nil {
		return fmt.Errorf("wallet/postgres: clear wechat of user %d: %w", user, err)
	}
	return nil
}

// JournalEntry implements wallet.Store.
func (s *Store) JournalEntry(ctx context.Context, terminal string, seq uint64) (string, error) {
	var h string
	err := s.pool.QueryRow(ctx, `SELECT hash FROM journal WHERE terminal=$1 AND seq=$2`, terminal, int64(seq)).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("wallet/postgres: journal %s/%d: %w", terminal, seq, s.fail(err))
	}
	return h, nil
}

// PutJournalEntry implements wallet.Store: the first application stays.
func (s *Store) PutJournalEntry(ctx context.Context, terminal string, seq uint64, tx protocol.TxID, hash string, at time.Time) error {
	if err := s.exec(ctx, `INSERT INTO journal (terminal, seq, tx, hash, at) VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING`,
		terminal, int64(seq), string(tx), hash, nanos(at)); err != nil {
		return fmt.Errorf("wallet/postgres: journal %s/%d: %w", terminal, seq, err)
	}
	return nil
}

// BumpRevision implements wallet.Store: an increment in place, so bumps
// from several authorizers all count.
func (s *Store) BumpRevision(ctx context.Context) (uint64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `INSERT INTO meta AS m (k, v) VALUES ('config_revision', 1)
		ON CONFLICT (k) DO UPDATE SET v = m.v + 1 RETURNING v`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("wallet/postgres: bump revision: %w", s.fail(err))
	}
	return uint64(v), nil
}

// Revision implements wallet.Store.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT v FROM meta WHERE k='config_revision'`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("wallet/postgres: revision: %w", s.fail(err))
	}
	return uint64(v), nil
}

// APIResponse returns the response stored for (user, key), or nil.
func (s *Store) APIResponse(ctx context.Context, user uint32, key string) (*wallet.APIResponse, error) {
	var i wallet.APIResponse
	err := s.pool.QueryRow(ctx, `SELECT hash, status, body FROM api_idem WHERE user_id=$1 AND key=$2`, int64(user), key).
		Scan(&i.Hash, &i.Status, &i.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: api response: %w", s.fail(err))
	}
	return &i, nil
}

// PutAPIResponse stores the response for (user, key); the first one stays.
func (s *Store) PutAPIResponse(ctx context.Context, user uint32, key string, i wallet.APIResponse, at time.Time) error {
	body := i.Body
	if body == nil {
		body = []byte{}
	}
	if err := s.exec(ctx, `INSERT INTO api_idem (user_id, key, hash, status, body, at) VALUES ($1,$2,$3,$4,$5,$6)
		ON CONFLICT (user_id, key) DO NOTHING`, int64(user), key, i.Hash, i.Status, body, nanos(at)); err != nil {
		return fmt.Errorf("wallet/postgres: put api response: %w", err)
	}
	return nil
}

// PutSession stores an app session by its token's hash and sweeps the
// expired ones.
func (s *Store) PutSession(ctx context.Context, tokenHash string, user uint32, expires, now time.Time) error {
	if err := s.exec(ctx, `DELETE FROM sessions WHERE expires <= $1`, nanos(now)); err != nil {
		return fmt.Errorf("wallet/postgres: sweep sessions: %w", err)
	}
	if err := s.exec(ctx, `INSERT INTO sessions (token_hash, user_id, expires) VALUES ($1,$2,$3)`, tokenHash, int64(user), nanos(expires)); err != nil {
		return fmt.Errorf("wallet/postgres: put session: %w", err)
	}
	return nil
}

// Session returns the user of a session that has not expired at now.
func (s *Store) Session(ctx context.Context, tokenHash string, now time.Time) (uint32, bool, error) {
	var user int64
	err := s.pool.QueryRow(ctx, `SELECT user_id FROM sessions WHERE token_hash=$1 AND expires > $2`, tokenHash, nanos(now)).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("wallet/postgres: session: %w", s.fail(err))
	}
	return uint32(user), true, nil
}

// DeleteSession ends a session (log out); an unknown one is no error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	if err := s.exec(ctx, `DELETE FROM sessions WHERE token_hash=$1`, tokenHash); err != nil {
		return fmt.Errorf("wallet/postgres: delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of user except the one whose
// token hash is keep ("" for none): log out everywhere.
func (s *Store) DeleteUserSessions(ctx context.Context, user uint32, keep string) error {
	if err := s.exec(ctx, `DELETE FROM sessions WHERE user_id=$1 AND token_hash<>$2`, int64(user), keep); err != nil {
		return fmt.Errorf("wallet/postgres: delete sessions of %d: %w", user, err)
	}
	return nil
}
