package kindetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &signingKey{kid: keyID(&priv.PublicKey), priv: priv}, nil
}

// keyID derives a kid from the public key, colon-separated hex like the
// key IDs in Kinde's JWKS.
func keyID(pub *rsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(fmt.Sprintf("kindetest: marshal public key: %v", err))
	}
	sum := sha256.Sum256(der)
	parts := make([]string, 16)
	for i := range parts {
		parts[i] = hex.EncodeToString(sum[i : i+1])
	}
	return strings.Join(parts, ":")
}

var otherKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("kindetest: generate other key: %v", err))
	}
	return k
})

// OtherKey returns an RSA key that no Server publishes, for forging tokens
// and webhooks. It is the same key for the whole test binary.
func OtherKey() *rsa.PrivateKey { return otherKey() }

// RotateSigningKey makes a new key the signing key. The old keys stay in
// the JWKS, as in a real rotation, so tokens they signed still verify.
func (s *Server) RotateSigningKey() {
	k, err := newSigningKey()
	if err != nil {
		panic(fmt.Sprintf("kindetest: %v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
}

// KeyID returns the kid of the current signing key, e.g. to forge a token
// with OtherKey that claims to come from the server's key.
func (s *Server) KeyID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1].kid
}

// SignOptions tunes SignIDToken, SignAccessToken and Webhook for negative
// tests. The zero value signs like the server does.
type SignOptions struct {
	// Key signs the token; nil means the server's current signing key.
	// Use OtherKey for a signature no JWKS key verifies.
	Key *rsa.PrivateKey
	// Alg is the JWS algorithm: "" or "RS256" (what Kinde uses); "RS384",
	// "RS512" or "PS256" sign with Key under an algorithm clients must not
	// accept; "HS256" signs with ClientSecret as an HMAC key (the classic
	// algorithm confusion); "none" produces an unsigned alg:none token.
	Alg string
	// KeyID is the kid header; "" means Key's own kid (for the server key,
	// the kid the JWKS publishes).
	KeyID string
}

// SignIDToken signs arbitrary claims as an ID token. Start from
// DefaultIDTokenClaims and change one field to build a negative test.
func (s *Server) SignIDToken(claims map[string]any, o SignOptions) string {
	return s.mustSign(claims, o)
}

// SignAccessToken signs arbitrary claims as an access token. Start from
// DefaultAccessTokenClaims. A correctly signed one is accepted by the user
// profile endpoint and the Account API like an issued one.
func (s *Server) SignAccessToken(claims map[string]any, o SignOptions) string {
	return s.mustSign(claims, o)
}

// DefaultIDTokenClaims returns the claims the server would put in an ID
// token for u signing in now with that nonce (none when empty), except
// at_hash, which depends on the access token issued alongside.
func (s *Server) DefaultIDTokenClaims(u User, nonce string) map[string]any {
	s.rememberUser(u)
	now := s.now()
	return s.idTokenClaims(s.ClientID, u, []string{s.OrgCode}, nonce, now, now)
}

// DefaultAccessTokenClaims returns the claims the server would put in an
// access token for u with those scopes, issued now, with no audience.
func (s *Server) DefaultAccessTokenClaims(u User, scopes []string) map[string]any {
	s.rememberUser(u)
	return s.accessTokenClaims(&grant{clientID: s.ClientID, user: u, scopes: scopes, orgCode: s.OrgCode}, s.now())
}

func (s *Server) idTokenClaims(clientID string, u User, orgCodes []string, nonce string, authTime, now time.Time) map[string]any {
	c := map[string]any{
		"iss":         s.URL,
		"sub":         u.Subject,
		"aud":         []string{clientID},
		"azp":         clientID,
		"iat":         now.Unix(),
		"exp":         now.Add(s.cfg.idTTL).Unix(),
		"auth_time":   authTime.Unix(),
		"jti":         newUUID(),
		"email":       u.Email,
		"name":        u.Name,
		"given_name":  u.GivenName,
		"family_name": u.FamilyName,
		"picture":     u.Picture,
		"org_codes":   orgCodes,
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return c
}

func (s *Server) accessTokenClaims(g *grant, now time.Time) map[string]any {
	aud := g.audience
	if aud == nil {
		aud = []string{}
	}
	scopes := g.scopes
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]any{
		"aud":           aud,
		"azp":           g.clientID,
		"exp":           now.Add(s.cfg.accessTTL).Unix(),
		"iat":           now.Unix(),
		"iss":           s.URL,
		"jti":           newUUID(),
		"scp":           scopes,
		"sub":           g.user.Subject,
		"org_code":      g.orgCode,
		"permissions":   []string{},
		"feature_flags": map[string]any{},
	}
}

// atHash is the OpenID Connect at_hash of an RS256-signed ID token.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

func (s *Server) mustSign(claims map[string]any, o SignOptions) string {
	key, kid := o.Key, o.KeyID
	if key == nil {
		s.mu.Lock()
		k := s.keys[len(s.keys)-1]
		s.mu.Unlock()
		key = k.priv
		if kid == "" {
			kid = k.kid
		}
	} else if kid == "" {
		kid = keyID(&key.PublicKey)
	}
	tok, err := signJWT(claims, o.Alg, key, kid, []byte(s.ClientSecret))
	if err != nil {
		panic(fmt.Sprintf("kindetest: sign: %v", err))
	}
	return tok
}

// signLocked signs with the current key; s.mu must be held.
func (s *Server) signLocked(claims map[string]any) (string, error) {
	k := s.keys[len(s.keys)-1]
	return signJWT(claims, "", k.priv, k.kid, nil)
}

func signJWT(claims map[string]any, alg string, key *rsa.PrivateKey, kid string, hmacKey []byte) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshal claims: %w", err)
	}
	if alg == "" {
		alg = string(jose.RS256)
	}
	if alg == "none" {
		header := `{"alg":"none","typ":"JWT"}`
		enc := base64.RawURLEncoding
		return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(payload) + ".", nil
	}
	sk := jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key}
	if alg == string(jose.HS256) {
		sk.Key = hmacKey
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		return "", fmt.Errorf("signer for %s: %w", alg, err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return jws.CompactSerialize()
}

var errInvalidToken = errors.New("invalid token")

// verifyAccessToken checks a bearer token the way Kinde's APIs do: RS256,
// signed by a published key named by kid, issued by this server, not
// expired, and an access token (it has scp) rather than an ID token.
func (s *Server) verifyAccessToken(raw string) (map[string]any, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("%w: want one signature", errInvalidToken)
	}
	kid := tok.Headers[0].KeyID
	var pub *rsa.PublicKey
	s.mu.Lock()
	for _, k := range s.keys {
		if k.kid == kid {
			pub = &k.priv.PublicKey
		}
	}
	s.mu.Unlock()
	if pub == nil {
		return nil, fmt.Errorf("%w: unknown kid %q", errInvalidToken, kid)
	}
	var std jwt.Claims
	var claims map[string]any
	if err := tok.Claims(pub, &std, &claims); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidToken, err)
	}
	if std.Expiry == nil {
		return nil, fmt.Errorf("%w: no exp", errInvalidToken)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: s.URL, Time: s.now()}, 0); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidToken, err)
	}
	if std.Subject == "" {
		return nil, fmt.Errorf("%w: no sub", errInvalidToken)
	}
	if _, ok := claims["scp"]; !ok {
		return nil, fmt.Errorf("%w: not an access token", errInvalidToken)
	}
	return claims, nil
}

// WebhookOptions tunes Webhook for forged, expired or back-dated events.
// The zero value signs like Kinde does.
type WebhookOptions struct {
	// Key, Alg and KeyID are as in SignOptions.
	Key   *rsa.PrivateKey
	Alg   string
	KeyID string
	// IssuedAt sets iat, event_timestamp and timestamp; zero means now.
	IssuedAt time.Time
	// ExpiresAt adds an exp claim; zero means none.
	ExpiresAt time.Time
}

// Webhook returns the body Kinde would POST for an event: a JWT signed
// with the tenant key (kid in the header, verifiable with the JWKS) whose
// claims are type, event_id, event_timestamp, timestamp, source ("api"),
// iat and data. webhookID is the value of the webhook-id header that goes
// with it; NewWebhookRequest builds the whole request.
func (s *Server) Webhook(eventType string, data map[string]any, o WebhookOptions) (body []byte, webhookID string) {
	at := o.IssuedAt
	if at.IsZero() {
		at = s.now()
	}
	if data == nil {
		data = map[string]any{}
	}
	claims := map[string]any{
		"type":            eventType,
		"event_id":        "event_" + randomHex(16),
		"event_timestamp": at.Format(time.RFC3339Nano),
		"timestamp":       at.Format(time.RFC3339Nano),
		"source":          "api",
		"iat":             at.Unix(),
		"data":            data,
	}
	if !o.ExpiresAt.IsZero() {
		claims["exp"] = o.ExpiresAt.Unix()
	}
	tok := s.mustSign(claims, SignOptions{Key: o.Key, Alg: o.Alg, KeyID: o.KeyID})
	return []byte(tok), "msg_" + randomAlnum(27)
}

// NewWebhookRequest builds the POST Kinde sends to a webhook endpoint:
// Content-Type application/jwt, header webhook-id, body the JWT.
func NewWebhookRequest(ctx context.Context, target string, body []byte, webhookID string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/jwt")
	req.Header.Set("webhook-id", webhookID)
	return req, nil
}
