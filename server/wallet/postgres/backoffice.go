package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"campuspay/server/operator"
	"campuspay/server/wallet"
	"campuspay/server/wallet/fieldcrypt"
)

// The back office's tables (migration 0005): operators, console sessions,
// the append-only audit log, the users' frozen flag and phone index.

var _ operator.Store = (*Store)(nil)

// indexPhones fills the blind index of the phones of users from before
// migration 0005 (the database cannot: the key is not there). Idempotent;
// several authorizers starting at once write the same values.
func (s *Store) indexPhones(ctx context.Context, c *pgx.Conn) error {
	rows, err := c.Query(ctx, `SELECT id, phone FROM users WHERE phone <> '' AND phone_index = ''`)
	if err != nil {
		return fmt.Errorf("index phones: %w", err)
	}
	type row struct {
		id    int64
		phone string
	}
	rs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.phone)
	})
	if err != nil {
		return fmt.Errorf("index phones: %w", err)
	}
	for _, r := range rs {
		phone, err := s.fc.Open(fieldcrypt.ColUserPhone, r.phone)
		if err != nil {
			return fmt.Errorf("index phones: user %d: %w", r.id, err)
		}
		if _, err := c.Exec(ctx, `UPDATE users SET phone_index=$1 WHERE id=$2`, s.fc.Index(fieldcrypt.ColUserPhone, phone), r.id); err != nil {
			return fmt.Errorf("index phones: %w", err)
		}
	}
	return nil
}

// SearchUsers implements wallet.Store.
func (s *Store) SearchUsers(ctx context.Context, text string, limit int) ([]wallet.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users
		WHERE student_no LIKE $1 ESCAPE '\' OR card_uid = $2 OR phone_index = $3 OR name ILIKE $4 ESCAPE '\'
		ORDER BY student_no LIMIT $5`,
		wallet.LikeEscape(text)+"%", strings.ToUpper(text), s.fc.Index(fieldcrypt.ColUserPhone, text), "%"+wallet.LikeEscape(text)+"%", limit)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: search users: %w", s.fail(err))
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("wallet/postgres: search users: %w", s.fail(err))
	}
	return out, nil
}

// SetFrozen implements wallet.Store.
func (s *Store) SetFrozen(ctx context.Context, user uint32, frozen bool) error {
	if err := s.exec(ctx, `UPDATE users SET frozen=$1 WHERE id=$2`, frozen, int64(user)); err != nil {
		return fmt.Errorf("wallet/postgres: set frozen %d: %w", user, err)
	}
	return nil
}

// UserLostCards implements wallet.Store.
func (s *Store) UserLostCards(ctx context.Context, user uint32) ([]wallet.LostCard, error) {
	rows, err := s.pool.Query(ctx, `SELECT uid, user_id, at FROM lost_cards WHERE user_id=$1 ORDER BY at, uid`, int64(user))
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: lost cards of %d: %w", user, s.fail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (wallet.LostCard, error) {
		var c wallet.LostCard
		var at int64
		err := r.Scan(&c.UID, &c.UserID, &at)
		c.At = fromNanos(at)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: lost cards of %d: %w", user, s.fail(err))
	}
	return out, nil
}

const operatorCols = `id, name, role, merchant, password_hash, totp_secret, totp_last, disabled, created`

func (s *Store) scanOperator(row pgx.Row) (*operator.Operator, error) {
	var o operator.Operator
	var secret string
	var created int64
	err := row.Scan(&o.ID, &o.Name, &o.Role, &o.Merchant, &o.PasswordHash, &secret, &o.TOTPLast, &o.Disabled, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, operator.ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: read operator: %w", s.fail(err))
	}
	o.Created = fromNanos(created)
	t, err := s.fc.Open(fieldcrypt.ColOperatorTOTP, secret)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: operator %s: %w", o.Name, err)
	}
	if t != "" {
		o.TOTPSecret = []byte(t)
	}
	return &o, nil
}

// AddOperator implements operator.Store.
func (s *Store) AddOperator(ctx context.Context, o *operator.Operator) error {
	secret, err := s.fc.Seal(fieldcrypt.ColOperatorTOTP, string(o.TOTPSecret))
	if err != nil {
		return err
	}
	err = s.pool.QueryRow(ctx, `INSERT INTO operators (name, role, merchant, password_hash, totp_secret, totp_last, disabled, created)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id`, o.Name, int(o.Role), o.Merchant, o.PasswordHash, secret, o.TOTPLast,
		o.Disabled, nanos(o.Created)).Scan(&o.ID)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return fmt.Errorf("wallet/postgres: add operator %s: %w", o.Name, operator.ErrNameTaken)
	}
	if err != nil {
		return fmt.Errorf("wallet/postgres: add operator %s: %w", o.Name, s.fail(err))
	}
	return nil
}

// UpdateOperator implements operator.Store.
func (s *Store) UpdateOperator(ctx context.Context, o *operator.Operator) error {
	secret, err := s.fc.Seal(fieldcrypt.ColOperatorTOTP, string(o.TOTPSecret))
	if err != nil {
		return err
	}
	if err := s.exec(ctx, `UPDATE operators SET role=$1, merchant=$2, password_hash=$3, totp_secret=$4, totp_last=$5, disabled=$6 WHERE id=$7`,
		int(o.Role), o.Merchant, o.PasswordHash, secret, o.TOTPLast, o.Disabled, o.ID); err != nil {
		return fmt.Errorf("wallet/postgres: update operator %s: %w", o.Name, err)
	}
	return nil
}

// Operator implements operator.Store.
func (s *Store) Operator(ctx context.Context, id int64) (*operator.Operator, error) {
	return s.scanOperator(s.pool.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE id=$1`, id))
}

// OperatorByName implements operator.Store.
func (s *Store) OperatorByName(ctx context.Context, name string) (*operator.Operator, error) {
	return s.scanOperator(s.pool.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE name=$1`, name))
}

// Operators implements operator.Store.
func (s *Store) Operators(ctx context.Context) ([]operator.Operator, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+operatorCols+` FROM operators ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: operators: %w", s.fail(err))
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("wallet/postgres: operators: %w", s.fail(err))
	}
	return out, nil
}

// PutOperatorSession implements operator.Store.
func (s *Store) PutOperatorSession(ctx context.Context, ses operator.Session, now time.Time) error {
	if err := s.exec(ctx, `DELETE FROM operator_sessions WHERE expires <= $1`, nanos(now)); err != nil {
		return fmt.Errorf("wallet/postgres: sweep operator sessions: %w", err)
	}
	if err := s.exec(ctx, `INSERT INTO operator_sessions (token_hash, operator_id, created, expires) VALUES ($1,$2,$3,$4)`,
		ses.TokenHash, ses.Operator, nanos(ses.Created), nanos(ses.Expires)); err != nil {
		return fmt.Errorf("wallet/postgres: put operator session: %w", err)
	}
	return nil
}

// OperatorSession implements operator.Store.
func (s *Store) OperatorSession(ctx context.Context, tokenHash string, now time.Time) (*operator.Session, error) {
	ses := operator.Session{TokenHash: tokenHash}
	var created, expires int64
	err := s.pool.QueryRow(ctx, `SELECT operator_id, created, expires FROM operator_sessions WHERE token_hash=$1 AND expires > $2`,
		tokenHash, nanos(now)).Scan(&ses.Operator, &created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: operator session: %w", s.fail(err))
	}
	ses.Created, ses.Expires = fromNanos(created), fromNanos(expires)
	return &ses, nil
}

// DeleteOperatorSession implements operator.Store.
func (s *Store) DeleteOperatorSession(ctx context.Context, tokenHash string) error {
	if err := s.exec(ctx, `DELETE FROM operator_sessions WHERE token_hash=$1`, tokenHash); err != nil {
		return fmt.Errorf("wallet/postgres: delete operator session: %w", err)
	}
	return nil
}

// DeleteOperatorSessions implements operator.Store.
func (s *Store) DeleteOperatorSessions(ctx context.Context, op int64) error {
	if err := s.exec(ctx, `DELETE FROM operator_sessions WHERE operator_id=$1`, op); err != nil {
		return fmt.Errorf("wallet/postgres: delete sessions of operator %d: %w", op, err)
	}
	return nil
}

// jsonValue is a JSON value as stored: null for none.
func jsonValue(v json.RawMessage) string {
	if len(v) == 0 {
		return "null"
	}
	return string(v)
}

// AppendAudit implements operator.Store.
func (s *Store) AppendAudit(ctx context.Context, e *operator.AuditEntry) error {
	err := s.pool.QueryRow(ctx, `INSERT INTO audit_log (at, operator_id, operator, role, action, target, reason, before, after, remote)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8::jsonb,$9::jsonb,$10) RETURNING id`, nanos(e.At), e.Operator, e.Name, e.Role, e.Action, e.Target,
		e.Reason, jsonValue(e.Before), jsonValue(e.After), e.Remote).Scan(&e.ID)
	if err != nil {
		return fmt.Errorf("wallet/postgres: append audit: %w", s.fail(err))
	}
	return nil
}

// AuditLog implements operator.Store.
func (s *Store) AuditLog(ctx context.Context, q operator.AuditQuery) ([]operator.AuditEntry, error) {
	q, text, actionPrefix := operator.AuditPatterns(q, wallet.LikeEscape)
	rows, err := s.pool.Query(ctx, `SELECT id, at, operator_id, operator, role, action, target, reason, before::text, after::text, remote
		FROM audit_log
		WHERE id < $1 AND ($2 = '' OR operator = $2) AND ($3 = '' OR action = $3) AND ($4 = '' OR action LIKE $4 ESCAPE '\')
		AND ($5 = '' OR target = $5)
		AND ($6 = '' OR operator ILIKE $6 ESCAPE '\' OR action ILIKE $6 ESCAPE '\' OR target ILIKE $6 ESCAPE '\' OR reason ILIKE $6 ESCAPE '\')
		ORDER BY id DESC LIMIT $7`,
		q.BeforeID, q.Operator, q.Action, actionPrefix, q.Target, text, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: audit log: %w", s.fail(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (operator.AuditEntry, error) {
		var e operator.AuditEntry
		var at int64
		var before, after string
		err := r.Scan(&e.ID, &at, &e.Operator, &e.Name, &e.Role, &e.Action, &e.Target, &e.Reason, &before, &after, &e.Remote)
		e.At, e.Before, e.After = fromNanos(at), json.RawMessage(before), json.RawMessage(after)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("wallet/postgres: audit log: %w", s.fail(err))
	}
	return out, nil
}
