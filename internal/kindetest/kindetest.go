// Package kindetest runs a Kinde-shaped OpenID Connect and billing server
// inside a test, because Kinde itself cannot be reached from our machines.
//
// The server follows the shapes recorded in /work/shared/KINDE.md and is
// deliberately strict: it refuses what real Kinde refuses (unknown clients,
// unregistered redirect URIs, missing PKCE, reused codes, stale refresh
// tokens, forged bearer tokens), so that the sign-in and billing code under
// test is really exercised. There is no login form: the authorize endpoint
// signs in whoever SetNextUser named and redirects back at once.
//
// It is meant to be imported from _test.go files only.
package kindetest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Lifetimes. The token lifetimes are Kinde's documented defaults; the code,
// portal-link and overlap lifetimes are not documented and are guesses.
const (
	defaultAccessTokenTTL  = 24 * time.Hour
	defaultIDTokenTTL      = time.Hour
	defaultRefreshTokenTTL = 15 * 24 * time.Hour
	defaultRefreshOverlap  = 5 * time.Second
	authCodeTTL            = 10 * time.Minute
	portalLinkTTL          = 10 * time.Minute
)

// User is a Kinde user, as it appears in ID tokens and the user profile.
type User struct {
	// Subject is Kinde's user ID, "kp_" followed by 32 hex digits.
	Subject string
	// Email is the user's e-mail address.
	Email string
	// Name is the full name; GivenName and FamilyName are its parts.
	Name, GivenName, FamilyName string
	// Picture is the URL of the user's avatar.
	Picture string
	// EmailVerified reports whether Kinde has verified Email.
	EmailVerified bool
}

// NewUser returns a user with a fresh Kinde-style subject, a verified e-mail
// address, and given and family names split from name at its first space.
func NewUser(email, name string) User {
	given, family, _ := strings.Cut(name, " ")
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return User{
		Subject:       "kp_" + randomHex(16),
		Email:         email,
		Name:          name,
		GivenName:     given,
		FamilyName:    family,
		Picture:       "https://gravatar.com/avatar/" + hex.EncodeToString(sum[:]) + "?d=blank&size=200",
		EmailVerified: true,
	}
}

// Entitlement is one feature of a user's plan, as the Account API lists it.
type Entitlement struct {
	// FeatureKey is the feature's code, e.g. "todos".
	FeatureKey string
	// FeatureName is the feature's display name.
	FeatureName string
	// LimitMax and LimitMin bound the feature's usage; nil means no bound
	// (JSON null).
	LimitMax, LimitMin *int
	// PriceName is the name of the price the feature belongs to.
	PriceName string
}

// Plan is a plan a user is subscribed to.
type Plan struct {
	// Key is the plan's code, e.g. "pro".
	Key string
	// Name is the plan's display name.
	Name string
	// SubscribedOn is when the subscription started.
	SubscribedOn time.Time
}

// Server is a running Kinde-shaped server. Create it with New. Its exported
// fields are set by New and must not be changed afterwards.
type Server struct {
	// URL is the issuer, e.g. http://127.0.0.1:PORT, without a trailing
	// slash. Every endpoint lives under it.
	URL string
	// ClientID and ClientSecret identify the one registered back-end
	// application. The secret is accepted in the form body or with HTTP
	// Basic authentication.
	ClientID, ClientSecret string
	// OrgCode is the organization users sign in to when the authorize
	// request names none.
	OrgCode string

	cfg config
	now func() time.Time
	// salt makes entitlement IDs unique per server but stable across calls.
	salt string

	mu             sync.Mutex
	keys           []*signingKey // newest last; all are published
	nextUser       *User
	failNext       *authorizeFailure
	authorizeReqs  []url.Values
	logoutReqs     []url.Values
	portalLinkReqs []url.Values
	revokeReqs     []url.Values
	codes          map[string]*authCode
	grants         map[string]*grant
	refreshTokens  map[string]*refreshToken
	accessGrants   map[string]string // access-token jti → grant ID
	refreshIssued  map[string]int    // subject → refresh tokens issued
	billing        map[string]billingState
	portalKeys     map[string]*portalKey
	users          map[string]User // every user the server has seen, by subject
	failures       map[string]int
	delays         map[string]time.Duration
}

type config struct {
	redirects       []string
	logoutRedirects []string
	audiences       []string
	accessTTL       time.Duration
	idTTL           time.Duration
	refreshTTL      time.Duration
	overlap         time.Duration
	clock           func() time.Time
	clientID        string
	clientSecret    string
}

// Option configures a Server in New.
type Option func(*config)

// WithAllowedRedirect registers callback URLs. The authorize endpoint
// accepts only a redirect_uri equal to one of them (exact string match, as
// Kinde's allowed callback URLs). Server.AllowRedirect adds more later.
func WithAllowedRedirect(urls ...string) Option {
	return func(c *config) { c.redirects = append(c.redirects, urls...) }
}

// WithAllowedLogoutRedirect registers allowed logout redirect URLs for
// /logout. Server.AllowLogoutRedirect adds more later.
func WithAllowedLogoutRedirect(urls ...string) Option {
	return func(c *config) { c.logoutRedirects = append(c.logoutRedirects, urls...) }
}

// WithAccessTokenTTL sets the access token lifetime (default 24 h).
func WithAccessTokenTTL(d time.Duration) Option {
	return func(c *config) { c.accessTTL = d }
}

// WithIDTokenTTL sets the ID token lifetime (default 1 h).
func WithIDTokenTTL(d time.Duration) Option {
	return func(c *config) { c.idTTL = d }
}

// WithRefreshTokenTTL sets the refresh token lifetime (default 15 days).
func WithRefreshTokenTTL(d time.Duration) Option {
	return func(c *config) { c.refreshTTL = d }
}

// WithRefreshOverlap sets how long a refresh token keeps working after it
// has been used once (default 5 s). Kinde documents that an overlap exists
// but not its length.
func WithRefreshOverlap(d time.Duration) Option {
	return func(c *config) { c.overlap = d }
}

// WithAudience registers an API audience. When an authorize request asks
// for it with audience=, it appears in the access token's aud; audiences
// that are requested but not registered are silently left out, as on Kinde.
// It may be given several times.
func WithAudience(aud string) Option {
	return func(c *config) { c.audiences = append(c.audiences, aud) }
}

// WithClock makes the server read the time from now, for expiry tests.
// The clock must not call back into the server.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.clock = now }
}

// WithClient fixes the client ID and secret instead of generating them.
func WithClient(id, secret string) Option {
	return func(c *config) { c.clientID, c.clientSecret = id, secret }
}

// New starts a server on a loopback port. It is closed by t.Cleanup.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{
		accessTTL:    defaultAccessTokenTTL,
		idTTL:        defaultIDTokenTTL,
		refreshTTL:   defaultRefreshTokenTTL,
		overlap:      defaultRefreshOverlap,
		clock:        time.Now,
		clientID:     randomHex(16),
		clientSecret: randomAlnum(51),
	}
	for _, o := range opts {
		o(&cfg)
	}
	key, err := newSigningKey()
	if err != nil {
		t.Fatalf("kindetest: %v", err)
	}
	s := &Server{
		ClientID:      cfg.clientID,
		ClientSecret:  cfg.clientSecret,
		OrgCode:       "org_" + randomHex(6)[:11],
		cfg:           cfg,
		now:           cfg.clock,
		salt:          randomHex(16),
		keys:          []*signingKey{key},
		codes:         map[string]*authCode{},
		grants:        map[string]*grant{},
		refreshTokens: map[string]*refreshToken{},
		accessGrants:  map[string]string{},
		refreshIssued: map[string]int{},
		billing:       map[string]billingState{},
		portalKeys:    map[string]*portalKey{},
		users:         map[string]User{},
		failures:      map[string]int{},
		delays:        map[string]time.Duration{},
	}
	hs := httptest.NewServer(s.routes())
	s.URL = hs.URL
	t.Cleanup(hs.Close)
	return s
}

// AllowRedirect registers more callback URLs after New, for when the
// client's URL is known only once the server runs.
func (s *Server) AllowRedirect(urls ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.redirects = append(s.cfg.redirects, urls...)
}

// AllowLogoutRedirect registers more logout redirect URLs after New.
func (s *Server) AllowLogoutRedirect(urls ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.logoutRedirects = append(s.cfg.logoutRedirects, urls...)
}

// SetNextUser names who signs in at the next successful /oauth2/auth. It
// is used once: each sign-in needs its own call. Without one, the
// authorize endpoint answers error=login_required for prompt=none and
// error=access_denied otherwise.
func (s *Server) SetNextUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUser = &u
	s.users[u.Subject] = u
}

// rememberUser makes u known to the user profile endpoint, for tokens made
// with SignAccessToken.
func (s *Server) rememberUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Subject] = u
}

// FailNextAuthorize makes the next /oauth2/auth with a valid client and
// redirect URI redirect back with ?error=errCode&error_description=…&state=…
// instead of signing anyone in.
func (s *Server) FailNextAuthorize(errCode, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = &authorizeFailure{code: errCode, description: description}
}

// AuthorizeRequests returns every /oauth2/auth query received, in order,
// valid or not.
func (s *Server) AuthorizeRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneAll(s.authorizeReqs)
}

// LogoutRequests returns every /logout query received, in order.
func (s *Server) LogoutRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneAll(s.logoutReqs)
}

// PortalLinkRequests returns every /account_api/v1/portal_link query
// received with a valid token, in order.
func (s *Server) PortalLinkRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneAll(s.portalLinkReqs)
}

// RevokeRequests returns the form of every /oauth2/revoke request from the
// authenticated client, in order, with client_secret removed.
func (s *Server) RevokeRequests() []url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneAll(s.revokeReqs)
}

// SetPlan sets what the Account API returns for the user with that
// subject. Entitlements keep their order; each gets an ID that is stable
// for the pair (subject, FeatureKey).
func (s *Server) SetPlan(subject string, plans []Plan, ents []Entitlement) {
	st := billingState{plans: slices.Clone(plans)}
	for _, e := range ents {
		sum := sha256.Sum256([]byte(s.salt + "\x00" + subject + "\x00" + e.FeatureKey))
		st.entitlements = append(st.entitlements, storedEntitlement{
			id:          "entitlement_" + hex.EncodeToString(sum[:16]),
			Entitlement: e,
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.billing[subject] = st
}

// SetFailure makes requests to path (exact match on the URL path, e.g.
// "/oauth2/token") answer status with a small JSON error body and do
// nothing else, until called again with status 0.
func (s *Server) SetFailure(path string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status == 0 {
		delete(s.failures, path)
		return
	}
	s.failures[path] = status
}

// SetDelay makes requests to path wait d before being handled (or failed
// by SetFailure), until called again with 0. A request cancelled while
// waiting is dropped.
func (s *Server) SetDelay(path string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.delays, path)
		return
	}
	s.delays[path] = d
}

// RefreshTokens reports how many refresh tokens were issued for the user
// with that subject, for rotation checks.
func (s *Server) RefreshTokens(subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshIssued[subject]
}

// RevokeUser revokes every grant of the user with that subject, as an
// administrator revoking sessions would: their refresh tokens then fail
// with invalid_grant. Access tokens, being self-contained JWTs, stay valid
// until they expire.
func (s *Server) RevokeUser(subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.grants {
		if g.user.Subject == subject {
			g.revoked = true
		}
	}
}

type authorizeFailure struct{ code, description string }

type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	nonce       string
	scopes      []string
	audience    []string
	orgCode     string
	user        User
	authTime    time.Time
	expiresAt   time.Time
	used        bool
	grantID     string // set on the first exchange, revoked on a replay
}

// grant is what one sign-in authorised: the refresh tokens of one rotation
// chain all point at it.
type grant struct {
	id       string
	clientID string
	user     User
	scopes   []string
	audience []string
	orgCode  string
	authTime time.Time
	revoked  bool
}

type refreshToken struct {
	grantID   string
	expiresAt time.Time
	usedAt    time.Time // zero until first used
}

type billingState struct {
	plans        []Plan
	entitlements []storedEntitlement
}

type storedEntitlement struct {
	id string
	Entitlement
}

type portalKey struct {
	returnURL string
	expiresAt time.Time
	used      bool
}

func cloneAll(vs []url.Values) []url.Values {
	out := make([]url.Values, len(vs))
	for i, v := range vs {
		out[i] = cloneValues(v)
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vals := range v {
		out[k] = slices.Clone(vals)
	}
	return out
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("kindetest: random: %v", err))
	}
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func randomAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := randomBytes(n)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newUUID returns a random version-4 UUID, the shape of Kinde's jti.
func newUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
