package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// APIToken is an MCP token as stored: its hash, never the token itself.
type APIToken struct {
	ID         int64
	UserID     int64
	ClientName string
	// Prefix is the first characters of the token, shown to tell tokens apart.
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
}

// NewAPIToken is what CreateAPIToken and ConsumeConnectRequest store.
type NewAPIToken struct {
	UserID     int64
	ClientName string
	Hash       []byte
	Prefix     string
	ExpiresAt  time.Time
}

// touchInterval bounds how often last_used_at is written: a busy client
// does not turn every tool call into a database write.
const touchInterval = time.Minute

const tokenColumns = `api_tokens.id, api_tokens.user_id, api_tokens.client_name, api_tokens.prefix,
	api_tokens.created_at, api_tokens.last_used_at, api_tokens.expires_at, api_tokens.revoked_at`

func scanToken(row interface{ Scan(...any) error }) (APIToken, error) {
	var (
		t                          APIToken
		cre, used, expires, revoke dbTime
	)
	if err := row.Scan(&t.ID, &t.UserID, &t.ClientName, &t.Prefix, &cre, &used, &expires, &revoke); err != nil {
		return APIToken{}, err
	}
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt, t.RevokedAt = cre.Time, used.ptr(), expires.Time, revoke.ptr()
	return t, nil
}

// ValidateClientName checks the name a client gives itself.
func ValidateClientName(name string) error {
	if strings.TrimSpace(name) == "" {
		return invalid("client_name", "must not be empty")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > 100 || strings.ContainsRune(name, 0) {
		return invalid("client_name", "must be valid text of at most 100 characters")
	}
	return nil
}

func (n NewAPIToken) validate() error {
	if err := n.validateSecret(); err != nil {
		return err
	}
	return ValidateClientName(n.ClientName)
}

// validateSecret checks the parts a caller always supplies; the user and
// client name may come from a connect request instead.
func (n NewAPIToken) validateSecret() error {
	switch {
	case len(n.Hash) < 32:
		return invalid("token", "hash must be at least 32 bytes")
	case n.Prefix == "":
		return invalid("token", "prefix must not be empty")
	case n.ExpiresAt.IsZero():
		return invalid("expires_at", "must be set")
	}
	return nil
}

func insertToken(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, s *Store, n NewAPIToken) (APIToken, error) {
	return scanToken(q.QueryRowContext(ctx, `
		INSERT INTO api_tokens (user_id, client_name, token_hash, prefix, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+tokenColumns,
		n.UserID, n.ClientName, n.Hash, n.Prefix, s.timeArg(s.now()), s.timeArg(n.ExpiresAt)))
}

// CreateAPIToken stores a token's hash for a user.
func (s *Store) CreateAPIToken(ctx context.Context, n NewAPIToken) (APIToken, error) {
	if err := n.validate(); err != nil {
		return APIToken{}, err
	}
	t, err := insertToken(ctx, s.db, s, n)
	if err != nil {
		return APIToken{}, fmt.Errorf("create token: %w", err)
	}
	return t, nil
}

// AuthenticateToken finds the live token with that hash and its user. It
// returns ErrNotFound for an unknown hash, ErrRevoked or ErrExpired for a
// dead one, and records the use at most once per touchInterval.
func (s *Store) AuthenticateToken(ctx context.Context, hash []byte) (APIToken, User, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+`, `+userColumns+`
		FROM api_tokens JOIN users ON users.id = api_tokens.user_id
		WHERE api_tokens.token_hash = $1`, hash)
	var (
		t                          APIToken
		cre, used, expires, revoke dbTime
		u                          User
		limit                      sql.NullInt64
		refreshed, ucre, uupd      dbTime
	)
	err := row.Scan(&t.ID, &t.UserID, &t.ClientName, &t.Prefix, &cre, &used, &expires, &revoke,
		&u.ID, &u.Subject, &u.Email, &u.Name, &u.Plan.Plan, &limit, &u.Plan.Source, &refreshed,
		&u.TodoCount, &ucre, &uupd)
	if errors.Is(err, sql.ErrNoRows) {
		return APIToken{}, User{}, ErrNotFound
	}
	if err != nil {
		return APIToken{}, User{}, fmt.Errorf("authenticate token: %w", err)
	}
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt, t.RevokedAt = cre.Time, used.ptr(), expires.Time, revoke.ptr()
	if limit.Valid {
		l := int(limit.Int64)
		u.Plan.Limit = &l
	}
	u.Plan.RefreshedAt = refreshed.ptr()
	u.CreatedAt, u.UpdatedAt = ucre.Time, uupd.Time
	now := s.now()
	switch {
	case t.RevokedAt != nil:
		return t, u, ErrRevoked
	case !now.Before(t.ExpiresAt):
		return t, u, ErrExpired
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchInterval {
		if _, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $2
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)`,
			t.ID, s.timeArg(now), s.timeArg(now.Add(-touchInterval))); err != nil {
			return APIToken{}, User{}, fmt.Errorf("record token use: %w", err)
		}
		t.LastUsedAt = &now
	}
	return t, u, nil
}

// ListAPITokens returns the user's tokens that are neither revoked nor
// expired, newest first.
func (s *Store) ListAPITokens(ctx context.Context, userID int64) ([]APIToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
		ORDER BY created_at DESC, id DESC`, userID, s.timeArg(s.now()))
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeAPIToken revokes one of the user's tokens by id.
func (s *Store) RevokeAPIToken(ctx context.Context, userID, tokenID int64) error {
	return s.revoke(ctx, "user_id = $2 AND id = $3", userID, tokenID)
}

// RevokeAPITokenByHash revokes the token with that hash (logout from the
// MCP side, where only the token is known).
func (s *Store) RevokeAPITokenByHash(ctx context.Context, hash []byte) error {
	return s.revoke(ctx, "token_hash = $2", hash)
}

// RevokeAllAPITokens revokes every live token of a user and says how many.
func (s *Store) RevokeAllAPITokens(ctx context.Context, userID int64) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1
		WHERE user_id = $2 AND revoked_at IS NULL`, s.timeArg(s.now()), userID)
	if err != nil {
		return 0, fmt.Errorf("revoke tokens: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (s *Store) revoke(ctx context.Context, where string, args ...any) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE `+where,
		append([]any{s.timeArg(s.now())}, args...)...)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// ConnectRequest is the handoff of a token from the web app to an MCP
// client: the client holds a secret, the signed-in user approves the
// request in the browser, and the client then trades the secret for a token.
type ConnectRequest struct {
	ID         string
	UserCode   string
	ClientName string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	// UserID is who approved or denied it; 0 while pending.
	UserID     int64
	ApprovedAt *time.Time
	DeniedAt   *time.Time
	ConsumedAt *time.Time
}

// ConnectState names where a request stands, given the time now.
type ConnectState string

// The states of a connect request.
const (
	ConnectPending  ConnectState = "pending"
	ConnectApproved ConnectState = "approved"
	ConnectDenied   ConnectState = "denied"
	ConnectConsumed ConnectState = "consumed"
	ConnectExpired  ConnectState = "expired"
)

// State of the request at time now.
func (c ConnectRequest) State(now time.Time) ConnectState {
	switch {
	case c.ConsumedAt != nil:
		return ConnectConsumed
	case c.DeniedAt != nil:
		return ConnectDenied
	case !now.Before(c.ExpiresAt):
		return ConnectExpired
	case c.ApprovedAt != nil:
		return ConnectApproved
	default:
		return ConnectPending
	}
}

// NewConnectRequest is what the MCP side creates.
type NewConnectRequest struct {
	ID         string
	SecretHash []byte
	UserCode   string
	ClientName string
	ExpiresAt  time.Time
}

const connectColumns = `id, user_code, client_name, created_at, expires_at, user_id, approved_at, denied_at, consumed_at`

func scanConnect(row interface{ Scan(...any) error }) (ConnectRequest, error) {
	var (
		c                                    ConnectRequest
		cre, exp, approved, denied, consumed dbTime
		userID                               sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.UserCode, &c.ClientName, &cre, &exp, &userID, &approved, &denied, &consumed); err != nil {
		return ConnectRequest{}, err
	}
	c.CreatedAt, c.ExpiresAt = cre.Time, exp.Time
	c.UserID = userID.Int64
	c.ApprovedAt, c.DeniedAt, c.ConsumedAt = approved.ptr(), denied.ptr(), consumed.ptr()
	return c, nil
}

// CreateConnectRequest stores a pending request.
func (s *Store) CreateConnectRequest(ctx context.Context, n NewConnectRequest) (ConnectRequest, error) {
	switch {
	case n.ID == "" || len(n.ID) > 64:
		return ConnectRequest{}, invalid("id", "must be 1 to 64 characters")
	case len(n.SecretHash) < 32:
		return ConnectRequest{}, invalid("secret", "hash must be at least 32 bytes")
	case n.UserCode == "":
		return ConnectRequest{}, invalid("user_code", "must not be empty")
	case n.ExpiresAt.IsZero():
		return ConnectRequest{}, invalid("expires_at", "must be set")
	}
	if err := ValidateClientName(n.ClientName); err != nil {
		return ConnectRequest{}, err
	}
	c, err := scanConnect(s.db.QueryRowContext(ctx, `
		INSERT INTO connect_requests (id, secret_hash, user_code, client_name, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+connectColumns,
		n.ID, n.SecretHash, n.UserCode, n.ClientName, s.timeArg(s.now()), s.timeArg(n.ExpiresAt)))
	if err != nil {
		return ConnectRequest{}, fmt.Errorf("create connect request: %w", err)
	}
	return c, nil
}

// GetConnectRequest returns a request by id.
func (s *Store) GetConnectRequest(ctx context.Context, id string) (ConnectRequest, error) {
	c, err := scanConnect(s.db.QueryRowContext(ctx, `SELECT `+connectColumns+` FROM connect_requests WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ConnectRequest{}, ErrNotFound
	}
	if err != nil {
		return ConnectRequest{}, fmt.Errorf("get connect request: %w", err)
	}
	return c, nil
}

// ApproveConnectRequest lets the user's client trade its secret for a
// token. Only a pending, unexpired request can be approved.
func (s *Store) ApproveConnectRequest(ctx context.Context, id string, userID int64) (ConnectRequest, error) {
	return s.decideConnect(ctx, "approved_at", id, userID)
}

// DenyConnectRequest refuses a pending request for good.
func (s *Store) DenyConnectRequest(ctx context.Context, id string, userID int64) (ConnectRequest, error) {
	return s.decideConnect(ctx, "denied_at", id, userID)
}

func (s *Store) decideConnect(ctx context.Context, column, id string, userID int64) (ConnectRequest, error) {
	now := s.timeArg(s.now())
	c, err := scanConnect(s.db.QueryRowContext(ctx, `UPDATE connect_requests
		SET `+column+` = $3, user_id = $2
		WHERE id = $1 AND approved_at IS NULL AND denied_at IS NULL AND consumed_at IS NULL AND expires_at > $3
		RETURNING `+connectColumns, id, userID, now))
	if errors.Is(err, sql.ErrNoRows) {
		return s.whyNotPending(ctx, id)
	}
	if err != nil {
		return ConnectRequest{}, fmt.Errorf("decide connect request: %w", err)
	}
	return c, nil
}

// whyNotPending explains a refused change: ErrNotFound, ErrExpired, or
// ErrConflict with the request as it stands.
func (s *Store) whyNotPending(ctx context.Context, id string) (ConnectRequest, error) {
	c, err := s.GetConnectRequest(ctx, id)
	if err != nil {
		return ConnectRequest{}, err
	}
	if c.State(s.now()) == ConnectExpired {
		return c, ErrExpired
	}
	return c, ErrConflict
}

// ConsumeConnectRequest trades an approved request's secret for a token, in
// one transaction: the request is marked consumed and the token stored, or
// neither. A pending request returns ErrConflict with its state, so the
// caller can keep polling; a wrong secret is ErrNotFound.
func (s *Store) ConsumeConnectRequest(ctx context.Context, id string, secretHash []byte, n NewAPIToken) (APIToken, error) {
	if err := n.validateSecret(); err != nil {
		return APIToken{}, err
	}
	errNotConsumable := errors.New("not consumable")
	var token APIToken
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			userID     sql.NullInt64
			clientName string
		)
		now := s.timeArg(s.now())
		err := tx.QueryRowContext(ctx, `UPDATE connect_requests SET consumed_at = $3
			WHERE id = $1 AND secret_hash = $2 AND approved_at IS NOT NULL AND denied_at IS NULL
			  AND consumed_at IS NULL AND expires_at > $3
			RETURNING user_id, client_name`, id, secretHash, now).Scan(&userID, &clientName)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotConsumable
		}
		if err != nil {
			return err
		}
		n.UserID, n.ClientName = userID.Int64, clientName
		if token, err = insertToken(ctx, tx, s, n); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE connect_requests SET token_id = $2 WHERE id = $1`, id, token.ID)
		return err
	})
	if errors.Is(err, errNotConsumable) {
		return APIToken{}, s.whyNotConsumable(ctx, id, secretHash)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("consume connect request: %w", err)
	}
	return token, nil
}

// whyNotConsumable tells a client holding the wrong secret only
// ErrNotFound; the right one learns whether to keep waiting (ErrConflict
// while pending), give up (ErrConflict when denied or consumed) or start
// again (ErrExpired).
func (s *Store) whyNotConsumable(ctx context.Context, id string, secretHash []byte) error {
	var stored []byte
	err := s.db.QueryRowContext(ctx, `SELECT secret_hash FROM connect_requests WHERE id = $1`, id).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return fmt.Errorf("consume connect request: %w", err)
	case subtle.ConstantTimeCompare(stored, secretHash) != 1:
		return ErrNotFound
	}
	_, err = s.whyNotPending(ctx, id)
	return err
}

// DeleteExpiredConnectRequests removes requests that expired before cutoff.
func (s *Store) DeleteExpiredConnectRequests(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM connect_requests WHERE expires_at < $1`, s.timeArg(cutoff))
	if err != nil {
		return 0, fmt.Errorf("delete expired connect requests: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
