package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ProviderCredential is a user's identity-provider refresh token, sealed by
// the caller (internal/authn encrypts it); the store never sees it in clear.
type ProviderCredential struct {
	UserID    int64
	Provider  string
	Sealed    []byte
	UpdatedAt time.Time
}

// SaveProviderCredential stores or replaces the sealed refresh token of a
// user for a provider. Providers that rotate refresh tokens call it on
// every refresh.
func (s *Store) SaveProviderCredential(ctx context.Context, userID int64, provider string, sealed []byte) error {
	if provider == "" || len(sealed) == 0 {
		return invalid("credential", "provider and sealed token must be set")
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO provider_credentials (user_id, provider, refresh_token, updated_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, provider) DO UPDATE
		SET refresh_token = excluded.refresh_token, updated_at = excluded.updated_at`,
		userID, provider, sealed, s.timeArg(s.now()))
	if err != nil {
		return fmt.Errorf("save provider credential: %w", err)
	}
	return nil
}

// GetProviderCredential returns the sealed refresh token, or ErrNotFound.
func (s *Store) GetProviderCredential(ctx context.Context, userID int64, provider string) (ProviderCredential, error) {
	c := ProviderCredential{UserID: userID, Provider: provider}
	var upd dbTime
	err := s.db.QueryRowContext(ctx, `SELECT refresh_token, updated_at FROM provider_credentials
		WHERE user_id = $1 AND provider = $2`, userID, provider).Scan(&c.Sealed, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return ProviderCredential{}, ErrNotFound
	}
	if err != nil {
		return ProviderCredential{}, fmt.Errorf("get provider credential: %w", err)
	}
	c.UpdatedAt = upd.Time
	return c, nil
}

// RecordBillingEvent remembers a webhook delivery. It reports false when
// that webhook id was seen before, so a retried delivery has no second
// effect. userID 0 means the event named no known user.
func (s *Store) RecordBillingEvent(ctx context.Context, webhookID, eventType string, userID int64) (bool, error) {
	if webhookID == "" {
		return false, invalid("webhook_id", "must not be empty")
	}
	var user any
	if userID != 0 {
		user = userID
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO billing_events (webhook_id, event_type, user_id, received_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (webhook_id) DO NOTHING`,
		webhookID, eventType, user, s.timeArg(s.now()))
	if err != nil {
		return false, fmt.Errorf("record billing event: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ForgetBillingEvent removes a recorded delivery, so that the provider's
// retry of a delivery that could not be processed is not taken for a replay.
func (s *Store) ForgetBillingEvent(ctx context.Context, webhookID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM billing_events WHERE webhook_id = $1`, webhookID); err != nil {
		return fmt.Errorf("forget billing event: %w", err)
	}
	return nil
}
