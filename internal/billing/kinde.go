package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Kinde defaults.
const (
	// DefaultFeatureKey is the entitlement that carries the todo limit
	// (KINDE_BILLING_FEATURE_KEY).
	DefaultFeatureKey = "todos"
	// DefaultKindeTimeout bounds each call to Kinde.
	DefaultKindeTimeout = 10 * time.Second
	defaultPageSize     = 50
	defaultMaxPages     = 20
	// maxResponseBytes bounds what is read from one Kinde answer.
	maxResponseBytes = 1 << 20
)

// DefaultProPlanKeys are the Kinde plan keys that mean unlimited when no
// entitlement says otherwise (KINDE_PRO_PLAN_KEYS).
var DefaultProPlanKeys = []string{"pro"}

// KindeConfig configures the Kinde provider.
type KindeConfig struct {
	// OIDC trades the stored refresh token for an access token.
	OIDC *authn.OIDC
	// Sealer opens and seals the stored refresh token.
	Sealer *authn.Sealer
	// Store holds the sealed refresh tokens.
	Store *store.Store
	// PublicURL is the authserver's address, for the sign-in link given
	// to users without a usable Kinde sign-in.
	PublicURL string
	// FeatureKey is the entitlement whose entitlement_limit_max is the
	// todo limit; empty means DefaultFeatureKey.
	FeatureKey string
	// ProPlanKeys are plan keys that mean unlimited when the plan carries
	// no FeatureKey entitlement; nil means DefaultProPlanKeys. The first
	// is sent as plan_interest to users who must sign in to upgrade.
	ProPlanKeys []string
	// HTTPClient calls the Account API; nil means OIDC.HTTPClient().
	HTTPClient *http.Client
	// Timeout bounds each call to Kinde (token refresh, each page of
	// entitlements, the portal link); zero means DefaultKindeTimeout.
	Timeout time.Duration
	// PageSize and MaxPages bound the entitlement listing; zero means 50
	// entitlements a page and at most 20 pages.
	PageSize, MaxPages int
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Kinde is the provider for which Kinde is the source of truth. It asks
// the Account API with the user's own access token, obtained from the
// stored, sealed refresh token; Kinde rotates refresh tokens, so every
// refresh stores the new one.
type Kinde struct {
	cfg    KindeConfig
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	locks  keyedLocks
}

// NewKinde returns the Kinde provider.
func NewKinde(cfg KindeConfig) *Kinde {
	if cfg.FeatureKey == "" {
		cfg.FeatureKey = DefaultFeatureKey
	}
	if len(cfg.ProPlanKeys) == 0 {
		cfg.ProPlanKeys = DefaultProPlanKeys
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultKindeTimeout
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = defaultPageSize
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = defaultMaxPages
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	k := &Kinde{cfg: cfg, client: cfg.HTTPClient, log: cfg.Logger, now: cfg.Now}
	if k.client == nil {
		k.client = cfg.OIDC.HTTPClient()
	}
	if k.log == nil {
		k.log = slog.New(slog.DiscardHandler)
	}
	if k.now == nil {
		k.now = time.Now
	}
	return k
}

// Source is SourceKinde.
func (k *Kinde) Source() string { return SourceKinde }

// FetchPlan reads the user's plans and entitlements from the Account API
// and maps them to a plan: the FeatureKey entitlement's maximum is the
// limit (none, or Kinde's 2147483647, is unlimited); without one, a plan
// in ProPlanKeys is unlimited; otherwise free. RefreshedAt is the time
// before Kinde was asked, so that a change Kinde made while we asked is
// never taken as already seen.
func (k *Kinde) FetchPlan(ctx context.Context, u store.User) (store.PlanState, error) {
	asked := k.now()
	token, err := k.accessToken(ctx, u)
	if err != nil {
		return store.PlanState{}, err
	}
	plans, ents, err := k.entitlements(ctx, token)
	if err != nil {
		return store.PlanState{}, err
	}
	p := k.mapPlan(plans, ents)
	p.Source, p.RefreshedAt = SourceKinde, &asked
	return p, nil
}

// UpgradeURL asks Kinde for a one-time link to the self-serve portal's
// plan selection that comes back to returnURL. A user without a usable
// Kinde sign-in gets the authserver's sign-in with plan_interest instead.
func (k *Kinde) UpgradeURL(ctx context.Context, u store.User, returnURL string) (string, error) {
	token, err := k.accessToken(ctx, u)
	if errors.Is(err, ErrSignInRequired) {
		return k.signInURL(returnURL), nil
	}
	if err != nil {
		return "", err
	}
	q := url.Values{"subnav": {"plan_selection"}, "sub_nav": {"plan_selection"}}
	if returnURL != "" {
		q.Set("return_url", returnURL)
	}
	var body struct {
		URL string `json:"url"`
	}
	if err := k.get(ctx, token, "/account_api/v1/portal_link?"+q.Encode(), &body); err != nil {
		return "", fmt.Errorf("portal link: %w", err)
	}
	link, err := url.Parse(body.URL)
	if err != nil || (link.Scheme != "https" && link.Scheme != "http") || link.Host == "" {
		return "", fmt.Errorf("%w: portal link: Kinde answered no usable URL", ErrProviderUnavailable)
	}
	return link.String(), nil
}

// signInURL sends the user through the authserver's sign-in with the pro
// plan pre-selected; the sign-in stores a fresh refresh token.
func (k *Kinde) signInURL(returnURL string) string {
	q := url.Values{"plan_interest": {k.cfg.ProPlanKeys[0]}, "return_to": {"/billing"}}
	if rest, ok := strings.CutPrefix(returnURL, k.cfg.PublicURL); ok && strings.HasPrefix(rest, "/") && !strings.HasPrefix(rest, "//") {
		q.Set("return_to", rest)
	}
	return k.cfg.PublicURL + "/login?" + q.Encode()
}

// accessToken trades the user's stored refresh token for an access token
// and stores the rotated refresh token. One at a time per user: two
// concurrent rotations would leave the second with a spent token.
func (k *Kinde) accessToken(ctx context.Context, u store.User) (string, error) {
	_, unlock, err := k.locks.lock(ctx, u.ID)
	if err != nil {
		return "", err
	}
	defer unlock()
	cred, err := k.cfg.Store.GetProviderCredential(ctx, u.ID, authn.CredentialProvider)
	if errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: no Kinde refresh token is stored for this user", ErrSignInRequired)
	}
	if err != nil {
		return "", err
	}
	refresh, err := k.cfg.Sealer.Open(cred.Sealed, authn.CredentialAD(u.ID))
	if err != nil {
		// Sealed under another JWT_SECRET, or tampered with.
		return "", fmt.Errorf("%w: the stored refresh token cannot be opened", ErrSignInRequired)
	}
	cctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	tok, err := k.cfg.OIDC.Refresh(cctx, string(refresh))
	var sie *authn.SignInError
	switch {
	case errors.As(err, &sie):
		return "", fmt.Errorf("%w: %s", ErrSignInRequired, sie.Reason)
	case err != nil && cctx.Err() != nil:
		return "", fmt.Errorf("%w: token refresh: %w", ErrProviderUnavailable, cctx.Err())
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrProviderUnavailable, err)
	case tok.AccessToken == "":
		return "", fmt.Errorf("%w: the token endpoint returned no access token", ErrProviderUnavailable)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != string(refresh) {
		sealed := k.cfg.Sealer.Seal([]byte(tok.RefreshToken), authn.CredentialAD(u.ID))
		// The old token is spent: losing the new one means signing in again.
		if err := k.cfg.Store.SaveProviderCredential(ctx, u.ID, authn.CredentialProvider, sealed); err != nil {
			return "", fmt.Errorf("store the rotated refresh token: %w", err)
		}
	}
	return tok.AccessToken, nil
}

type kindeEntitlement struct {
	FeatureKey string       `json:"feature_key"`
	LimitMax   *json.Number `json:"entitlement_limit_max"`
}

type entitlementsPage struct {
	Data struct {
		Plans []struct {
			Key string `json:"key"`
		} `json:"plans"`
		Entitlements []kindeEntitlement `json:"entitlements"`
	} `json:"data"`
	Metadata struct {
		HasMore bool    `json:"has_more"`
		Next    *string `json:"next_page_starting_after"`
	} `json:"metadata"`
}

// entitlements lists every page of the user's entitlements, and the plan
// keys in the order Kinde gives them.
func (k *Kinde) entitlements(ctx context.Context, token string) (plans []string, ents []kindeEntitlement, err error) {
	after := ""
	for page := 0; ; page++ {
		if page == k.cfg.MaxPages {
			return nil, nil, fmt.Errorf("%w: entitlements: more than %d pages", ErrProviderUnavailable, k.cfg.MaxPages)
		}
		q := url.Values{"page_size": {fmt.Sprint(k.cfg.PageSize)}}
		if after != "" {
			q.Set("starting_after", after)
		}
		var p entitlementsPage
		if err := k.get(ctx, token, "/account_api/v1/entitlements?"+q.Encode(), &p); err != nil {
			return nil, nil, fmt.Errorf("entitlements: %w", err)
		}
		for _, pl := range p.Data.Plans {
			if pl.Key != "" && !slices.Contains(plans, pl.Key) {
				plans = append(plans, pl.Key)
			}
		}
		ents = append(ents, p.Data.Entitlements...)
		if !p.Metadata.HasMore {
			return plans, ents, nil
		}
		if p.Metadata.Next == nil || *p.Metadata.Next == "" || *p.Metadata.Next == after {
			return nil, nil, fmt.Errorf("%w: entitlements: has_more without a new next_page_starting_after", ErrProviderUnavailable)
		}
		after = *p.Metadata.Next
	}
}

// mapPlan turns Kinde's answer into our plan. Several entitlements for the
// feature (several plans) give the most generous.
func (k *Kinde) mapPlan(plans []string, ents []kindeEntitlement) store.PlanState {
	name := PlanFree
	if len(plans) > 0 {
		name = plans[0]
	}
	var limit *int
	found := false
	for _, e := range ents {
		if e.FeatureKey != k.cfg.FeatureKey {
			continue
		}
		n := entitlementLimit(e.LimitMax)
		if !found || n > *limit {
			limit = &n
		}
		found = true
	}
	if found {
		return store.PlanState{Plan: name, Limit: limit}
	}
	for _, p := range plans {
		if slices.ContainsFunc(k.cfg.ProPlanKeys, func(key string) bool { return strings.EqualFold(key, p) }) {
			unlimited := UnlimitedLimit
			return store.PlanState{Plan: p, Limit: &unlimited}
		}
	}
	// No cached limit: FREE_TODO_LIMIT decides, and keeps deciding if it
	// changes.
	return store.PlanState{Plan: name}
}

// entitlementLimit reads entitlement_limit_max: null, or Kinde's 2^31-1,
// means unlimited; a negative or unreadable maximum allows nothing more
// than zero, never more than Kinde said.
func entitlementLimit(limitMax *json.Number) int {
	if limitMax == nil {
		return UnlimitedLimit
	}
	f, err := limitMax.Float64()
	switch {
	case err != nil || math.IsNaN(f) || f < 0:
		return 0
	case f >= UnlimitedLimit:
		return UnlimitedLimit
	default:
		return int(math.Floor(f))
	}
}

// get calls the Account API with the user's access token, within the
// per-call timeout, and decodes a 200 answer into out.
func (k *Kinde) get(ctx context.Context, token, pathAndQuery string, out any) error {
	cctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, strings.TrimRight(k.cfg.OIDC.Issuer(), "/")+pathAndQuery, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProviderUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		if cctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrProviderUnavailable, cctx.Err())
		}
		return fmt.Errorf("%w: %v", ErrProviderUnavailable, redactURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		if cctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrProviderUnavailable, cctx.Err())
		}
		return fmt.Errorf("%w: reading the answer: %v", ErrProviderUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: Kinde answered %d", ErrProviderUnavailable, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%w: unreadable answer: %v", ErrProviderUnavailable, err)
	}
	return nil
}

// redactURLError drops the URL from a transport error: it holds nothing
// secret today, but query strings are no place to audit.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
