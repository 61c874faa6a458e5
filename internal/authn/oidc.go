package authn

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig configures the sign-in client for Kinde or any OpenID Connect
// provider.
type OIDCConfig struct {
	IssuerURL    string
	ClientID     string
	ClientSecret string
	// RedirectURL is the authserver's /callback.
	RedirectURL string
	// Scopes default to Kinde's "openid profile email offline" (Kinde names
	// it offline, not offline_access; with the latter no refresh token comes).
	Scopes []string
	// Audience, when set, is sent as audience= on the authorize request.
	Audience string
	// HTTPClient talks to the provider; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
}

// discoveryBackoff is how long a failed discovery is not retried.
const discoveryBackoff = 5 * time.Second

// DefaultScopes are Kinde's.
var DefaultScopes = []string{oidc.ScopeOpenID, "profile", "email", "offline"}

// OIDC signs people in with the authorization-code flow: PKCE S256, state,
// nonce, a verified ID token and a userinfo subject that must match.
// Discovery happens on first use and is retried until it succeeds, so the
// authserver starts even while the provider is unreachable.
type OIDC struct {
	cfg OIDCConfig

	mu          sync.Mutex
	lastErr     error // the last failed discovery, retried after discoveryBackoff
	lastFailure time.Time
	provider    *oidc.Provider
	verifier    *oidc.IDTokenVerifier
	oauth       *oauth2.Config
	endSession  string
}

// NewOIDC returns a client; nothing is fetched yet.
func NewOIDC(cfg OIDCConfig) *OIDC {
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &OIDC{cfg: cfg}
}

// ErrProviderUnavailable wraps failures to reach the identity provider.
var ErrProviderUnavailable = errors.New("the identity provider cannot be reached")

// SignInError is a sign-in that must not complete: a bad state, nonce or
// token. Its message is safe to show.
type SignInError struct{ Reason string }

func (e *SignInError) Error() string { return "sign-in refused: " + e.Reason }

func (o *OIDC) clientContext(ctx context.Context) context.Context {
	ctx = oidc.ClientContext(ctx, o.cfg.HTTPClient)
	return context.WithValue(ctx, oauth2.HTTPClient, o.cfg.HTTPClient)
}

// discover fetches the provider's metadata once.
func (o *OIDC) discover(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, o.oauth, nil
	}
	// Callers queue on the mutex while one discovery runs; after a failure
	// they get its error at once for a few seconds instead of each waiting
	// out another timeout against a provider that is down.
	if o.lastErr != nil && time.Since(o.lastFailure) < discoveryBackoff {
		return nil, nil, o.lastErr
	}
	// The key set fetches JWKS lazily with this context's client; it must
	// outlive the request that happened to trigger discovery.
	bg := o.clientContext(context.Background())
	dctx, cancel := context.WithTimeout(o.clientContext(ctx), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, o.cfg.IssuerURL)
	if err != nil {
		o.lastErr, o.lastFailure = fmt.Errorf("%w: discovery at %s: %v", ErrProviderUnavailable, o.cfg.IssuerURL, err), time.Now()
		return nil, nil, o.lastErr
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&meta)
	o.provider = p
	o.verifier = p.VerifierContext(bg, &oidc.Config{ClientID: o.cfg.ClientID})
	o.oauth = &oauth2.Config{
		ClientID:     o.cfg.ClientID,
		ClientSecret: o.cfg.ClientSecret,
		RedirectURL:  o.cfg.RedirectURL,
		Scopes:       o.cfg.Scopes,
		Endpoint:     p.Endpoint(),
	}
	// Kinde takes the client secret in the form body.
	o.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	o.endSession = meta.EndSession
	return p, o.oauth, nil
}

// AuthStart is what one sign-in attempt keeps in the session between the
// redirect to the provider and the callback.
type AuthStart struct {
	State    string
	Nonce    string
	Verifier string
}

// NewAuthStart draws a fresh state, nonce and PKCE verifier.
func NewAuthStart() AuthStart {
	return AuthStart{State: randomString(32), Nonce: randomString(32), Verifier: oauth2.GenerateVerifier()}
}

// AuthCodeURL is where to send the browser. extra adds provider parameters
// such as prompt=create or plan_interest.
func (o *OIDC) AuthCodeURL(ctx context.Context, start AuthStart, extra url.Values) (string, error) {
	_, oc, err := o.discover(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(start.Verifier), oidc.Nonce(start.Nonce)}
	if o.cfg.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", o.cfg.Audience))
	}
	for k, vs := range extra {
		for _, v := range vs {
			opts = append(opts, oauth2.SetAuthURLParam(k, v))
		}
	}
	return oc.AuthCodeURL(start.State, opts...), nil
}

// CheckState compares the state that came back with the one sent, in
// constant time.
func CheckState(got, want string) error {
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return &SignInError{Reason: "the sign-in request is unknown, expired or already used"}
	}
	return nil
}

// SignIn is a completed sign-in.
type SignIn struct {
	Subject string
	Email   string
	Name    string
	// RefreshToken is empty unless the provider issued one (Kinde: scope offline).
	RefreshToken string
	AccessToken  string
	Expiry       time.Time
}

// Exchange trades the code for tokens and verifies them: the ID token's
// signature, issuer, audience and expiry (go-oidc, which refuses alg none),
// the nonce, and that userinfo speaks of the same subject.
func (o *OIDC) Exchange(ctx context.Context, code string, start AuthStart) (*SignIn, error) {
	p, oc, err := o.discover(ctx)
	if err != nil {
		return nil, err
	}
	ctx = o.clientContext(ctx)
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(start.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, &SignInError{Reason: "the provider refused the sign-in code (" + re.ErrorCode + ")"}
		}
		return nil, fmt.Errorf("%w: token exchange: %v", ErrProviderUnavailable, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, &SignInError{Reason: "the provider returned no ID token"}
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, &SignInError{Reason: "the ID token is not valid: " + err.Error()}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(start.Nonce)) != 1 {
		return nil, &SignInError{Reason: "the ID token's nonce does not match this sign-in"}
	}
	var claims struct {
		Email      string `json:"email"`
		Name       string `json:"name"`
		GivenName  string `json:"given_name"`
		FamilyName string `json:"family_name"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, &SignInError{Reason: "the ID token's claims cannot be read"}
	}
	in := &SignIn{
		Subject:      idt.Subject,
		Email:        claims.Email,
		Name:         displayName(claims.Name, claims.GivenName, claims.FamilyName),
		RefreshToken: tok.RefreshToken,
		AccessToken:  tok.AccessToken,
		Expiry:       tok.Expiry,
	}
	if p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fmt.Errorf("%w: userinfo: %v", ErrProviderUnavailable, err)
		}
		if ui.Subject != idt.Subject {
			return nil, &SignInError{Reason: "userinfo speaks of another subject than the ID token"}
		}
		var uc struct {
			Name       string `json:"name"`
			GivenName  string `json:"given_name"`
			FamilyName string `json:"family_name"`
		}
		_ = ui.Claims(&uc)
		if in.Email == "" {
			in.Email = ui.Email
		}
		if in.Name == "" {
			in.Name = displayName(uc.Name, uc.GivenName, uc.FamilyName)
		}
	}
	return in, nil
}

func displayName(name, given, family string) string {
	if name != "" {
		return name
	}
	return strings.TrimSpace(given + " " + family)
}

// LogoutURL ends the provider's session too, then comes back to returnTo.
// Kinde reads redirect=; standard providers post_logout_redirect_uri=.
// It returns "" when the provider has no logout endpoint.
func (o *OIDC) LogoutURL(ctx context.Context, returnTo string) string {
	if _, _, err := o.discover(ctx); err != nil {
		return ""
	}
	if o.endSession == "" {
		return ""
	}
	u, err := url.Parse(o.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("redirect", returnTo)
	q.Set("post_logout_redirect_uri", returnTo)
	q.Set("client_id", o.cfg.ClientID)
	u.RawQuery = q.Encode()
	return u.String()
}

// Issuer is the configured issuer URL.
func (o *OIDC) Issuer() string { return o.cfg.IssuerURL }

// HTTPClient is the client used to talk to the provider.
func (o *OIDC) HTTPClient() *http.Client { return o.cfg.HTTPClient }

// Refresh trades a refresh token for fresh tokens. Kinde rotates refresh
// tokens: callers must store the returned RefreshToken whenever it differs
// from the one they sent. A refused refresh token is a *SignInError (the
// user must sign in again); anything else wraps ErrProviderUnavailable.
func (o *OIDC) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	_, oc, err := o.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := oc.TokenSource(o.clientContext(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, &SignInError{Reason: "the provider refused the refresh token (" + re.ErrorCode + "): sign in again"}
		}
		return nil, fmt.Errorf("%w: refresh: %v", ErrProviderUnavailable, err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = refreshToken
	}
	return tok, nil
}
