package billing

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Webhook defaults.
const (
	// DefaultWebhookMaxAge refuses events issued longer ago. Kinde retries
	// a delivery for up to 36 h and does not say whether it signs it
	// again, so the window covers the whole schedule; replays inside it
	// are caught by webhook-id and event_id.
	DefaultWebhookMaxAge = 48 * time.Hour
	// DefaultWebhookTimeout bounds the work done for one delivery.
	DefaultWebhookTimeout = 15 * time.Second
	maxWebhookBytes       = 64 << 10
	// clockSkew tolerates clocks that disagree on exp and iat.
	clockSkew = time.Minute
	// maxWebhookUsers bounds how many users one event may name.
	maxWebhookUsers = 5
)

// billingEvents are the Kinde events after which a user's plan is read
// again; every other event is acknowledged and ignored.
var billingEvents = map[string]bool{
	"customer.plan_assigned":       true,
	"customer.plan_changed":        true,
	"customer.agreement_created":   true,
	"customer.agreement_cancelled": true,
}

// WebhookConfig configures NewWebhookHandler.
type WebhookConfig struct {
	// IssuerURL is Kinde's (KINDE_ISSUER_URL): its openid-configuration
	// names the JWKS that signs webhooks.
	IssuerURL string
	// HTTPClient fetches discovery and the JWKS; nil means a client with
	// a 10 s timeout.
	HTTPClient *http.Client
	// MaxAge refuses events issued longer ago; zero means
	// DefaultWebhookMaxAge.
	MaxAge time.Duration
	// Timeout bounds the plan refresh done for one delivery; zero means
	// DefaultWebhookTimeout.
	Timeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// WebhookHandler receives Kinde's webhooks at POST /webhooks/kinde. The
// body is a JWT (Content-Type application/jwt) that must be signed RS256
// by a key of Kinde's JWKS, unexpired and recent; anything else is 401 and
// changes nothing. Each delivery is recorded by its webhook-id header and
// its signed event_id, so a retry or a replay has no second effect. For
// the billing events it finds the user the event names and re-reads that
// user's plan from Kinde (Service.Refresh): the payload is trusted for
// nothing else.
type WebhookHandler struct {
	svc    *Service
	cfg    WebhookConfig
	log    *slog.Logger
	now    func() time.Time
	keys   *keySet
	client *http.Client
}

// NewWebhookHandler returns the handler for svc, which must be in Kinde
// mode; in local mode the handler answers 404.
func NewWebhookHandler(svc *Service, cfg WebhookConfig) *WebhookHandler {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultWebhookMaxAge
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	h := &WebhookHandler{svc: svc, cfg: cfg, log: cfg.Logger, now: cfg.Now, client: cfg.HTTPClient}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.client == nil {
		h.client = &http.Client{Timeout: 10 * time.Second}
	}
	h.keys = &keySet{issuer: strings.TrimRight(cfg.IssuerURL, "/"), client: h.client, now: h.now}
	return h
}

// webhookClaims is the envelope Kinde signs.
type webhookClaims struct {
	Type           string          `json:"type"`
	EventID        string          `json:"event_id"`
	Timestamp      string          `json:"timestamp"`
	EventTimestamp string          `json:"event_timestamp"`
	IssuedAt       *float64        `json:"iat"`
	Expiry         *float64        `json:"exp"`
	Data           json.RawMessage `json:"data"`
}

var errWebhookRefused = errors.New("webhook refused")

func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.svc.Source() != SourceKinde {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		webhookAnswer(w, http.StatusMethodNotAllowed, "method_not_allowed")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/jwt" {
		webhookAnswer(w, http.StatusUnsupportedMediaType, "content_type_must_be_application_jwt")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		webhookAnswer(w, http.StatusRequestEntityTooLarge, "body_too_large")
		return
	case err != nil:
		webhookAnswer(w, http.StatusBadRequest, "unreadable_body")
		return
	}
	claims, err := h.verify(r.Context(), strings.TrimSpace(string(body)))
	switch {
	case errors.Is(err, errKeysUnavailable):
		h.log.Error("kinde webhook: cannot fetch Kinde's signing keys", "err", err)
		webhookAnswer(w, http.StatusServiceUnavailable, "signing_keys_unavailable")
		return
	case err != nil:
		h.log.Warn("kinde webhook refused", "reason", err)
		webhookAnswer(w, http.StatusUnauthorized, "invalid_webhook")
		return
	}
	if !billingEvents[claims.Type] {
		h.log.Debug("kinde webhook ignored", "type", claims.Type)
		webhookAnswer(w, http.StatusOK, "ignored")
		return
	}
	webhookID := r.Header.Get("webhook-id")
	if webhookID == "" && claims.EventID == "" {
		webhookAnswer(w, http.StatusBadRequest, "webhook_id_missing")
		return
	}
	if len(webhookID) > 255 || len(claims.EventID) > 200 {
		webhookAnswer(w, http.StatusBadRequest, "webhook_id_too_long")
		return
	}

	// The delivery is recorded before the plan is read again, and the
	// refresh is not cut short if Kinde hangs up: a replay must have no
	// second effect, so the first must finish.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.Timeout)
	defer cancel()
	users, err := h.users(ctx, claims.Data)
	if err != nil {
		h.log.Error("kinde webhook: find the user", "err", err)
		webhookAnswer(w, http.StatusInternalServerError, "internal_error")
		return
	}
	var first int64
	if len(users) > 0 {
		first = users[0].ID
	}
	fresh, err := h.record(ctx, webhookID, claims, first)
	if err != nil {
		h.log.Error("kinde webhook: record the delivery", "err", err)
		webhookAnswer(w, http.StatusInternalServerError, "internal_error")
		return
	}
	if !fresh {
		h.log.Info("kinde webhook: duplicate delivery ignored", "type", claims.Type, "webhook_id", webhookID)
		webhookAnswer(w, http.StatusOK, "duplicate")
		return
	}
	if len(users) == 0 {
		h.log.Info("kinde webhook names no user of ours", "type", claims.Type, "webhook_id", webhookID)
		webhookAnswer(w, http.StatusOK, "no_user")
		return
	}
	failed := false
	for _, u := range users {
		st, err := h.svc.Refresh(ctx, u)
		switch {
		case err != nil:
			failed = true
			h.log.Error("kinde webhook: refresh the plan", "user_id", u.ID, "err", err)
		case st.Stale:
			failed = true
			h.log.Error("kinde webhook: the plan could not be read again", "user_id", u.ID, "type", claims.Type, "reason", st.StaleReason)
		default:
			h.log.Info("kinde webhook: plan read again", "user_id", u.ID, "type", claims.Type, "plan", st.Plan)
		}
	}
	if failed {
		// Forget the delivery and ask Kinde to retry it (5 s, 30 s, 2 min,
		// … up to 36 h): refreshing again is harmless, the plan is re-read,
		// never taken from the payload.
		if err := h.forget(ctx, webhookID, claims); err != nil {
			h.log.Error("kinde webhook: forget the delivery for a retry", "err", err)
			webhookAnswer(w, http.StatusOK, "processed_with_errors")
			return
		}
		webhookAnswer(w, http.StatusServiceUnavailable, "retry_later")
		return
	}
	webhookAnswer(w, http.StatusOK, "processed")
}

// forget undoes record.
func (h *WebhookHandler) forget(ctx context.Context, webhookID string, c webhookClaims) error {
	if webhookID != "" {
		if err := h.svc.st.ForgetBillingEvent(ctx, webhookID); err != nil {
			return err
		}
	}
	if c.EventID != "" {
		return h.svc.st.ForgetBillingEvent(ctx, "kinde-event:"+c.EventID)
	}
	return nil
}

func webhookAnswer(w http.ResponseWriter, status int, result string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "{\"result\":%q}\n", result)
}

// record remembers the delivery under its webhook-id and its signed
// event_id: a retry carries the same webhook-id, and the event_id also
// catches the same signed event posted under another (unsigned) header.
func (h *WebhookHandler) record(ctx context.Context, webhookID string, c webhookClaims, userID int64) (bool, error) {
	st := h.svc.st
	if webhookID != "" {
		fresh, err := st.RecordBillingEvent(ctx, webhookID, c.Type, userID)
		if err != nil || !fresh {
			return false, err
		}
	}
	if c.EventID != "" {
		return st.RecordBillingEvent(ctx, "kinde-event:"+c.EventID, c.Type, userID)
	}
	return true, nil
}

// verify checks the JWT and its times and returns its claims.
func (h *WebhookHandler) verify(ctx context.Context, raw string) (webhookClaims, error) {
	var c webhookClaims
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return c, fmt.Errorf("%w: not an RS256 JWT: %v", errWebhookRefused, err)
	}
	if len(jws.Signatures) != 1 {
		return c, fmt.Errorf("%w: want exactly one signature", errWebhookRefused)
	}
	keys, err := h.keys.forKeyID(ctx, jws.Signatures[0].Header.KeyID)
	if err != nil {
		return c, err
	}
	var payload []byte
	for _, k := range keys {
		if payload, err = jws.Verify(k.Key); err == nil {
			break
		}
	}
	if payload == nil {
		return c, fmt.Errorf("%w: the signature does not verify", errWebhookRefused)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("%w: claims are not a JSON object", errWebhookRefused)
	}
	now := h.now()
	if c.Expiry != nil && now.After(unixTime(*c.Expiry).Add(clockSkew)) {
		return c, fmt.Errorf("%w: expired", errWebhookRefused)
	}
	issued, ok := c.issuedAt()
	switch {
	case !ok:
		return c, fmt.Errorf("%w: no iat or timestamp", errWebhookRefused)
	case issued.After(now.Add(clockSkew)):
		return c, fmt.Errorf("%w: issued in the future", errWebhookRefused)
	case now.Sub(issued) > h.cfg.MaxAge:
		return c, fmt.Errorf("%w: issued %s ago, more than %s", errWebhookRefused, now.Sub(issued).Round(time.Second), h.cfg.MaxAge)
	}
	if c.Type == "" {
		return c, fmt.Errorf("%w: no event type", errWebhookRefused)
	}
	return c, nil
}

// issuedAt is iat, or else the envelope's timestamp.
func (c webhookClaims) issuedAt() (time.Time, bool) {
	if c.IssuedAt != nil {
		return unixTime(*c.IssuedAt), true
	}
	for _, s := range []string{c.Timestamp, c.EventTimestamp} {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func unixTime(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

// userIDPaths are where billing events are expected to name the Kinde
// user; Kinde does not document the shape, so any string that looks like a
// Kinde user ID (kp_…) anywhere in data is taken too.
var userIDPaths = [][]string{
	{"user", "id"}, {"user_id"}, {"customer", "user_id"}, {"customer", "user", "id"},
	{"subscriber", "user_id"}, {"agreement", "user_id"}, {"agreement", "customer", "user_id"},
}

// kindeUserID is compiled on first use: a webhook is rare, and compiling
// at package init cost every mcpserver start about a millisecond.
var kindeUserID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^kp_[0-9A-Za-z]{1,64}$`) })

// users finds the users of ours an event's data names, by their Kinde
// subject.
func (h *WebhookHandler) users(ctx context.Context, raw json.RawMessage) ([]store.User, error) {
	var data any
	if len(raw) == 0 || json.Unmarshal(raw, &data) != nil {
		return nil, nil
	}
	var candidates []string
	add := func(s string) {
		if s != "" && len(s) <= 255 && !slices.Contains(candidates, s) && len(candidates) < 2*maxWebhookUsers {
			candidates = append(candidates, s)
		}
	}
	for _, path := range userIDPaths {
		if s, ok := lookupPath(data, path).(string); ok {
			add(s)
		}
	}
	budget := 2000
	walkStrings(data, 0, &budget, func(s string) {
		if kindeUserID().MatchString(s) {
			add(s)
		}
	})
	var users []store.User
	for _, subject := range candidates {
		u, err := h.svc.st.GetUserBySubject(ctx, subject)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		users = append(users, u)
		if len(users) == maxWebhookUsers {
			break
		}
	}
	return users, nil
}

func lookupPath(v any, path []string) any {
	for _, key := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[key]
	}
	return v
}

// walkStrings visits the string values of v, depth-first, within a budget
// of nodes and a depth of 8.
func walkStrings(v any, depth int, budget *int, visit func(string)) {
	*budget--
	if *budget < 0 || depth > 8 {
		return
	}
	switch x := v.(type) {
	case string:
		visit(x)
	case map[string]any:
		for _, e := range x {
			walkStrings(e, depth+1, budget, visit)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, depth+1, budget, visit)
		}
	}
}

// keySet caches Kinde's JWKS, found through the issuer's discovery
// document. An unknown key ID fetches the set again, at most once a
// minute, so that a key rotation is picked up and forged key IDs cannot
// make us hammer Kinde.
type keySet struct {
	issuer string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	jwksURL   string
	keys      []jose.JSONWebKey
	fetchedAt time.Time
	triedAt   time.Time
}

const (
	keysMaxAge     = time.Hour
	keysMinRefetch = time.Minute
	maxKeysBytes   = 1 << 20
)

var (
	errKeysUnavailable = errors.New("kinde's signing keys cannot be fetched")
	errUnknownKey      = fmt.Errorf("%w: signed by a key Kinde does not publish", errWebhookRefused)
)

// forKeyID returns the RS256 signing keys that may have made a signature
// with that kid (every one when kid is empty).
func (k *keySet) forKeyID(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	match := k.match(kid)
	if len(match) > 0 && now.Sub(k.fetchedAt) < keysMaxAge {
		return match, nil
	}
	if !k.triedAt.IsZero() && now.Sub(k.triedAt) < keysMinRefetch && !k.fetchedAt.IsZero() {
		if len(match) > 0 {
			return match, nil
		}
		return nil, errUnknownKey
	}
	k.triedAt = now
	if err := k.fetch(ctx); err != nil {
		if len(match) > 0 {
			return match, nil
		}
		return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
	}
	k.fetchedAt = now
	if match = k.match(kid); len(match) == 0 {
		return nil, errUnknownKey
	}
	return match, nil
}

func (k *keySet) match(kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, key := range k.keys {
		if _, ok := key.Key.(*rsa.PublicKey); !ok {
			continue
		}
		if (kid != "" && key.KeyID != kid) || (key.Use != "" && key.Use != "sig") ||
			(key.Algorithm != "" && key.Algorithm != string(jose.RS256)) {
			continue
		}
		out = append(out, key)
	}
	return out
}

func (k *keySet) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if k.jwksURL == "" {
		var meta struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := k.getJSON(ctx, k.issuer+"/.well-known/openid-configuration", &meta); err != nil {
			return fmt.Errorf("discovery: %w", err)
		}
		u, err := url.Parse(meta.JWKSURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("discovery names no usable jwks_uri")
		}
		k.jwksURL = u.String()
	}
	var set jose.JSONWebKeySet
	if err := k.getJSON(ctx, k.jwksURL, &set); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	k.keys = set.Keys
	return nil
}

func (k *keySet) getJSON(ctx context.Context, target string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d", target, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxKeysBytes)).Decode(out)
}
