package mcptools

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// jwtVerifier checks a Kinde-issued JWT completely: signature against the
// issuer's JWKS, issuer, audience and expiry (go-oidc, which also refuses
// alg "none"). Discovery happens on first use and is retried until it
// succeeds, so the server starts while Kinde is unreachable.
type jwtVerifier struct {
	issuer   string
	audience string // KINDE_AUDIENCE; empty when none is configured
	clientID string
	client   *http.Client

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

// newJWTVerifier checks tokens against the configured API audience when
// there is one; otherwise against our client id (see audienceOK).
func newJWTVerifier(k config.Kinde, client *http.Client) *jwtVerifier {
	return &jwtVerifier{issuer: k.IssuerURL, audience: k.Audience, clientID: k.ClientID, client: client}
}

var errIdentityProviderUnavailable = errors.New("identity provider unavailable")

func (v *jwtVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.verifier != nil {
		return v.verifier, nil
	}
	dctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, v.client), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(dctx, v.issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery at %s: %v", errIdentityProviderUnavailable, v.issuer, err)
	}
	// The key set fetches keys later with this context's client, so it
	// must not be the request's, which ends with the call.
	// go-oidc checks the signature (JWKS), the issuer and the expiry, and
	// refuses alg none; the audience is checked by audienceOK, because a
	// Kinde access token for no API has an empty aud and names our client
	// in azp instead.
	v.verifier = p.VerifierContext(oidc.ClientContext(context.Background(), v.client), &oidc.Config{SkipClientIDCheck: true})
	return v.verifier, nil
}

// subject verifies raw and returns its subject.
func (v *jwtVerifier) subject(ctx context.Context, raw string) (string, error) {
	ver, err := v.get(ctx)
	if err != nil {
		return "", err
	}
	tok, err := ver.Verify(ctx, raw)
	if err != nil {
		return "", err
	}
	var claims struct {
		AuthorizedParty string `json:"azp"`
	}
	if err := tok.Claims(&claims); err != nil {
		return "", fmt.Errorf("read claims: %w", err)
	}
	if !v.audienceOK(tok.Audience, claims.AuthorizedParty) {
		return "", errWrongAudience
	}
	if tok.Subject == "" {
		return "", errors.New("the token names no subject")
	}
	return tok.Subject, nil
}

var errWrongAudience = errors.New("the token's audience is not this application")

// audienceOK accepts a token meant for us: with an API audience configured
// (KINDE_AUDIENCE), its aud must name it; without one, either its aud names
// our client id (an ID token), or it has no audience and was issued to our
// client (azp; a Kinde access token requested without an API audience).
func (v *jwtVerifier) audienceOK(aud []string, azp string) bool {
	if v.audience != "" {
		return slices.Contains(aud, v.audience)
	}
	if slices.Contains(aud, v.clientID) {
		return true
	}
	return len(aud) == 0 && azp == v.clientID
}

// looksLikeJWT is true for three base64url segments separated by dots.
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		if strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}

// exchangeJWT verifies a Kinde JWT and mints a todo-mcp token for the user
// it names, who must have signed in to the web app once.
func (ts *Toolset) exchangeJWT(ctx context.Context, req *mcp.CallToolRequest, raw string) (store.User, string, store.APIToken, error) {
	if ts.jwt == nil {
		return store.User{}, "", store.APIToken{}, actionable("That looks like a JWT, but this server has no identity provider configured (KINDE_ISSUER_URL is unset), so it cannot verify one. Call login instead, or paste a todo-mcp token (%s…) from %s.", authn.TokenPrefix, ts.cfg.PublicURL)
	}
	sub, err := ts.jwt.subject(ctx, raw)
	switch {
	case errors.Is(err, errIdentityProviderUnavailable):
		ts.log.WarnContext(ctx, "save_token: identity provider unreachable", "err", err)
		return store.User{}, "", store.APIToken{}, actionable("Kinde (%s) cannot be reached to verify the token. Try again in a moment, or call login instead.", ts.cfg.Kinde.IssuerURL)
	case err != nil:
		ts.log.InfoContext(ctx, "save_token: JWT refused", "err", err)
		return store.User{}, "", store.APIToken{}, actionable("That JWT was refused: %s. Get a fresh one, or call login instead.", jwtProblem(err))
	}
	u, err := ts.st.GetUserBySubject(ctx, sub)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, "", store.APIToken{}, actionable("That JWT is valid, but its user has no todo-mcp account yet. Sign in once at %s, then call save_token again (or call login).", ts.cfg.PublicURL)
	}
	if err != nil {
		return store.User{}, "", store.APIToken{}, ts.fail(ctx, "look up the user", err)
	}
	tok := authn.NewToken()
	t, err := ts.st.CreateAPIToken(ctx, store.NewAPIToken{
		UserID:     u.ID,
		ClientName: clientName(req),
		Hash:       tok.Hash,
		Prefix:     tok.Prefix,
		ExpiresAt:  time.Now().Add(authn.TokenLifetime),
	})
	if err != nil {
		return store.User{}, "", store.APIToken{}, ts.fail(ctx, "create a token", err)
	}
	return u, tok.Plain, t, nil
}

// jwtProblem names what is wrong with a refused JWT in a few words, never
// quoting the token.
func jwtProblem(err error) string {
	var expired *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &expired):
		return "it has expired"
	case errors.Is(err, errWrongAudience):
		return "it was issued for another application (audience)"
	case strings.Contains(msg, "issued by a different provider"), strings.Contains(msg, "issuer"):
		return "it was issued by another provider (issuer)"
	case strings.Contains(msg, "signature"):
		return "its signature does not verify"
	case strings.Contains(msg, "algorithm"):
		return "it is signed with an algorithm that is not accepted"
	}
	return "it is malformed"
}
