package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"campuspay/server/operator"
	"campuspay/server/wallet"
	"campuspay/server/wallet/fieldcrypt"
)

// The back office's tables (migration 6): operators, their console
// sessions and the audit log, which triggers keep append-only; beside
// them the users' frozen flag and the blind index of their phones
// (fieldcrypt.Cipher.Index), filled here for the users already present.

var _ operator.Store = (*Store)(nil)

func backOffice(ctx context.Context, tx *sql.Tx, fc *fieldCipher) error {
	if _, err := tx.ExecContext(ctx, `
	CREATE TABLE operators (
		id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, role INTEGER NOT NULL,
		merchant TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL, totp_secret TEXT NOT NULL DEFAULT '',
		totp_last INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);
	CREATE TABLE operator_sessions (
		token_hash TEXT PRIMARY KEY, operator_id INTEGER NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL);
	CREATE INDEX operator_sessions_expires ON operator_sessions(expires);
	CREATE INDEX operator_sessions_operator ON operator_sessions(operator_id);
	CREATE TABLE audit_log (
		id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, operator_id INTEGER NOT NULL, operator TEXT NOT NULL,
		role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, reason TEXT NOT NULL,
		before TEXT NOT NULL, after TEXT NOT NULL, remote TEXT NOT NULL);
	CREATE INDEX audit_target ON audit_log(target, id);
	CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
	CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
	ALTER TABLE users ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE users ADD COLUMN phone_index TEXT NOT NULL DEFAULT '';
	CREATE INDEX users_phone_index ON users(phone_index) WHERE phone_index <> '';`); err != nil {
		return err
	}
	type row struct {
		id    int64
		phone string
	}
	var rs []row
	rows, err := tx.QueryContext(ctx, `SELECT id, phone FROM users WHERE phone <> ''`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.phone); err != nil {
			rows.Close()
			return err
		}
		rs = append(rs, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	for _, r := range rs {
		phone, err := fc.Open(colUserPhone, r.phone)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET phone_index=? WHERE id=?`, fc.Index(colUserPhone, phone), r.id); err != nil {
			return err
		}
	}
	return nil
}

// SearchUsers implements wallet.Store.
func (s *Store) SearchUsers(ctx context.Context, text string, limit int) ([]wallet.User, error) {
	rows, err := s.query(ctx, `SELECT `+userCols+` FROM users
		WHERE student_no LIKE ? ESCAPE '\' OR card_uid = ? OR phone_index = ? OR name LIKE ? ESCAPE '\'
		ORDER BY student_no LIMIT ?`,
		wallet.LikeEscape(text)+"%", strings.ToUpper(text), s.fc.Index(colUserPhone, text), "%"+wallet.LikeEscape(text)+"%", limit)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: search users: %w", err)
	}
	defer rows.Close()
	var out []wallet.User
	for rows.Next() {
		u, err := s.scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *u)
	}
	return out, rows.Err()
}

// SetFrozen implements wallet.Store.
func (s *Store) SetFrozen(ctx context.Context, user uint32, frozen bool) error {
	if err := s.exec(ctx, `UPDATE users SET frozen=? WHERE id=?`, b2i(frozen), user); err != nil {
		return fmt.Errorf("wallet/sqlite: set frozen %d: %w", user, err)
	}
	return nil
}

// UserLostCards implements wallet.Store.
func (s *Store) UserLostCards(ctx context.Context, user uint32) ([]wallet.LostCard, error) {
	rows, err := s.query(ctx, `SELECT uid, user_id, at FROM lost_cards WHERE user_id=? ORDER BY at, uid`, user)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: lost cards of %d: %w", user, err)
	}
	defer rows.Close()
	var out []wallet.LostCard
	for rows.Next() {
		var c wallet.LostCard
		var at int64
		if err := rows.Scan(&c.UID, &c.UserID, &at); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: lost cards of %d: %w", user, err)
		}
		c.At = fromNanos(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

const operatorCols = `id, name, role, merchant, password_hash, totp_secret, totp_last, disabled, created`

func (s *Store) scanOperator(row interface{ Scan(...any) error }) (*operator.Operator, error) {
	var o operator.Operator
	var secret string
	var disabled int
	var created int64
	err := row.Scan(&o.ID, &o.Name, &o.Role, &o.Merchant, &o.PasswordHash, &secret, &o.TOTPLast, &disabled, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, operator.ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: read operator: %w", err)
	}
	o.Disabled, o.Created = disabled != 0, fromNanos(created)
	if o.TOTPSecret, err = openTOTP(s.fc, secret); err != nil {
		return nil, fmt.Errorf("wallet/sqlite: operator %s: %w", o.Name, err)
	}
	return &o, nil
}

// openTOTP and sealTOTP keep an operator's TOTP secret encrypted like the
// other secrets of the database (fieldcrypt, column ColOperatorTOTP).
func openTOTP(fc *fieldCipher, v string) ([]byte, error) {
	t, err := fc.Open(fieldcrypt.ColOperatorTOTP, v)
	if err != nil || t == "" {
		return nil, err
	}
	return []byte(t), nil
}

func sealTOTP(fc *fieldCipher, secret []byte) (string, error) {
	return fc.Seal(fieldcrypt.ColOperatorTOTP, string(secret))
}

// AddOperator implements operator.Store.
func (s *Store) AddOperator(ctx context.Context, o *operator.Operator) error {
	secret, err := sealTOTP(s.fc, o.TOTPSecret)
	if err != nil {
		return err
	}
	var id int64
	err = s.write(ctx, func(tx writeTx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM operators WHERE name=?`, o.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return operator.ErrNameTaken
		}
		return tx.QueryRowContext(ctx, `INSERT INTO operators (name, role, merchant, password_hash, totp_secret, totp_last, disabled, created)
			VALUES (?,?,?,?,?,?,?,?) RETURNING id`, o.Name, int(o.Role), o.Merchant, o.PasswordHash, secret, o.TOTPLast,
			b2i(o.Disabled), nanos(o.Created)).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: add operator %s: %w", o.Name, err)
	}
	o.ID = id
	return nil
}

// UpdateOperator implements operator.Store.
func (s *Store) UpdateOperator(ctx context.Context, o *operator.Operator) error {
	secret, err := sealTOTP(s.fc, o.TOTPSecret)
	if err != nil {
		return err
	}
	if err := s.exec(ctx, `UPDATE operators SET role=?, merchant=?, password_hash=?, totp_secret=?, totp_last=?, disabled=? WHERE id=?`,
		int(o.Role), o.Merchant, o.PasswordHash, secret, o.TOTPLast, b2i(o.Disabled), o.ID); err != nil {
		return fmt.Errorf("wallet/sqlite: update operator %s: %w", o.Name, err)
	}
	return nil
}

// Operator implements operator.Store.
func (s *Store) Operator(ctx context.Context, id int64) (*operator.Operator, error) {
	return s.scanOperator(s.queryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE id=?`, id))
}

// OperatorByName implements operator.Store.
func (s *Store) OperatorByName(ctx context.Context, name string) (*operator.Operator, error) {
	return s.scanOperator(s.queryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE name=?`, name))
}

// Operators implements operator.Store.
func (s *Store) Operators(ctx context.Context) ([]operator.Operator, error) {
	rows, err := s.query(ctx, `SELECT `+operatorCols+` FROM operators ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: operators: %w", err)
	}
	defer rows.Close()
	var out []operator.Operator
	for rows.Next() {
		o, err := s.scanOperator(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *o)
	}
	return out, rows.Err()
}

// PutOperatorSession implements operator.Store.
func (s *Store) PutOperatorSession(ctx context.Context, ses operator.Session, now time.Time) error {
	err := s.write(ctx, func(tx writeTx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM operator_sessions WHERE expires <= ?`, nanos(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO operator_sessions (token_hash, operator_id, created, expires) VALUES (?,?,?,?)`,
			ses.TokenHash, ses.Operator, nanos(ses.Created), nanos(ses.Expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: put operator session: %w", err)
	}
	return nil
}

// OperatorSession implements operator.Store.
func (s *Store) OperatorSession(ctx context.Context, tokenHash string, now time.Time) (*operator.Session, error) {
	ses := operator.Session{TokenHash: tokenHash}
	var created, expires int64
	err := s.queryRow(ctx, `SELECT operator_id, created, expires FROM operator_sessions WHERE token_hash=? AND expires > ?`,
		tokenHash, nanos(now)).Scan(&ses.Operator, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: operator session: %w", err)
	}
	ses.Created, ses.Expires = fromNanos(created), fromNanos(expires)
	return &ses, nil
}

// DeleteOperatorSession implements operator.Store.
func (s *Store) DeleteOperatorSession(ctx context.Context, tokenHash string) error {
	if err := s.exec(ctx, `DELETE FROM operator_sessions WHERE token_hash=?`, tokenHash); err != nil {
		return fmt.Errorf("wallet/sqlite: delete operator session: %w", err)
	}
	return nil
}

// DeleteOperatorSessions implements operator.Store.
func (s *Store) DeleteOperatorSessions(ctx context.Context, op int64) error {
	if err := s.exec(ctx, `DELETE FROM operator_sessions WHERE operator_id=?`, op); err != nil {
		return fmt.Errorf("wallet/sqlite: delete sessions of operator %d: %w", op, err)
	}
	return nil
}

// AppendAudit implements operator.Store.
func (s *Store) AppendAudit(ctx context.Context, e *operator.AuditEntry) error {
	var id int64
	err := s.write(ctx, func(tx writeTx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO audit_log (at, operator_id, operator, role, action, target, reason, before, after, remote)
			VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id`, nanos(e.At), e.Operator, e.Name, e.Role, e.Action, e.Target, e.Reason,
			jsonText(e.Before), jsonText(e.After), e.Remote).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("wallet/sqlite: append audit: %w", err)
	}
	e.ID = id
	return nil
}

// jsonText is a JSON value as stored: "null" for none.
func jsonText(v json.RawMessage) string {
	if len(v) == 0 {
		return "null"
	}
	return string(v)
}

// AuditLog implements operator.Store.
func (s *Store) AuditLog(ctx context.Context, q operator.AuditQuery) ([]operator.AuditEntry, error) {
	q, text, actionPrefix := operator.AuditPatterns(q, wallet.LikeEscape)
	rows, err := s.query(ctx, `SELECT id, at, operator_id, operator, role, action, target, reason, before, after, remote FROM audit_log
		WHERE id < ? AND (? = '' OR operator = ?) AND (? = '' OR action = ?) AND (? = '' OR action LIKE ? ESCAPE '\')
		AND (? = '' OR target = ?)
		AND (? = '' OR operator LIKE ? ESCAPE '\' OR action LIKE ? ESCAPE '\' OR target LIKE ? ESCAPE '\' OR reason LIKE ? ESCAPE '\')
		ORDER BY id DESC LIMIT ?`,
		q.BeforeID, q.Operator, q.Operator, q.Action, q.Action, actionPrefix, actionPrefix, q.Target, q.Target,
		text, text, text, text, text, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("wallet/sqlite: audit log: %w", err)
	}
	defer rows.Close()
	var out []operator.AuditEntry
	for rows.Next() {
		var e operator.AuditEntry
		var at int64
		var before, after string
		if err := rows.Scan(&e.ID, &at, &e.Operator, &e.Name, &e.Role, &e.Action, &e.Target, &e.Reason, &before, &after, &e.Remote); err != nil {
			return nil, fmt.Errorf("wallet/sqlite: audit log: %w", err)
		}
		e.At, e.Before, e.After = fromNanos(at), json.RawMessage(before), json.RawMessage(after)
		out = append(out, e)
	}
	return out, rows.Err()
}
