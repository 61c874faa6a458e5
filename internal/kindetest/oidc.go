package kindetest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleDiscovery)
	mux.HandleFunc("GET /.well-known/jwks", s.handleJWKS)
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /oauth2/auth", s.handleAuthorize)
	mux.HandleFunc("POST /oauth2/token", s.handleToken)
	mux.HandleFunc("GET /oauth2/v2/user_profile", s.handleUserProfile)
	mux.HandleFunc("POST /oauth2/revoke", s.handleRevoke)
	mux.HandleFunc("GET /logout", s.handleLogout)
	mux.HandleFunc("GET /account_api/v1/entitlements", s.handleEntitlements)
	mux.HandleFunc("GET /account_api/v1/entitlement/{key}", s.handleEntitlement)
	mux.HandleFunc("GET /account_api/v1/portal_link", s.handlePortalLink)
	mux.HandleFunc("GET /portal_redirect", s.handlePortalRedirect)
	return s.faults(mux)
}

// faults applies SetDelay and SetFailure before any handler runs.
func (s *Server) faults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		d := s.delays[r.URL.Path]
		s.mu.Unlock()
		if d > 0 {
			t := time.NewTimer(d)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		s.mu.Lock()
		status := s.failures[r.URL.Path]
		s.mu.Unlock()
		if status != 0 {
			writeJSON(w, status, map[string]string{
				"error":             "server_error",
				"error_description": "failure injected by kindetest.SetFailure",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleDiscovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.URL,
		"authorization_endpoint":                s.URL + "/oauth2/auth",
		"token_endpoint":                        s.URL + "/oauth2/token",
		"userinfo_endpoint":                     s.URL + "/oauth2/v2/user_profile",
		"jwks_uri":                              s.URL + "/.well-known/jwks",
		"end_session_endpoint":                  s.URL + "/logout",
		"revocation_endpoint":                   s.URL + "/oauth2/revoke",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported": []string{
			"aud", "auth_time", "azp", "email", "exp", "family_name", "given_name",
			"iat", "iss", "jti", "name", "nonce", "org_codes", "picture", "sub",
		},
		"request_parameter_supported":     false,
		"request_uri_parameter_supported": false,
	})
}

func (s *Server) handleJWKS(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	var set jose.JSONWebKeySet
	for i := len(s.keys) - 1; i >= 0; i-- { // newest first
		k := s.keys[i]
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig",
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

// codeChallengePattern is an S256 code challenge: base64url of 32 bytes.
var codeChallengePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// codeVerifierPattern is RFC 7636's code_verifier.
var codeVerifierPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.authorizeReqs = append(s.authorizeReqs, cloneValues(q))
	redirects := slices.Clone(s.cfg.redirects)
	s.mu.Unlock()

	// Without a trustworthy client and redirect URI, errors are shown here,
	// never redirected (RFC 6749 §4.1.2.1).
	if len(q["client_id"]) != 1 || q.Get("client_id") != s.ClientID {
		http.Error(w, "invalid_client: unknown client_id", http.StatusBadRequest)
		return
	}
	redirectURI := q.Get("redirect_uri")
	if len(q["redirect_uri"]) != 1 || !slices.Contains(redirects, redirectURI) {
		http.Error(w, "invalid_request: redirect_uri is not an allowed callback URL for this application", http.StatusBadRequest)
		return
	}
	back, err := url.Parse(redirectURI)
	if err != nil {
		http.Error(w, "invalid_request: redirect_uri does not parse", http.StatusBadRequest)
		return
	}
	state := q.Get("state")
	fail := func(code, description string) {
		params := url.Values{"error": {code}, "error_description": {description}}
		if state != "" {
			params.Set("state", state)
		}
		redirectTo(w, r, back, params)
	}

	s.mu.Lock()
	injected := s.failNext
	s.failNext = nil
	s.mu.Unlock()
	if injected != nil {
		fail(injected.code, injected.description)
		return
	}

	for k, v := range q {
		if len(v) > 1 {
			fail("invalid_request", "parameter "+k+" is repeated")
			return
		}
	}
	if rt := q.Get("response_type"); rt != "code" {
		fail("unsupported_response_type", "response_type must be code")
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	if !slices.Contains(scopes, "openid") {
		fail("invalid_scope", "scope must include openid")
		return
	}
	if len(state) < 8 {
		fail("invalid_request", "state is missing or shorter than 8 characters")
		return
	}
	if q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	if !codeChallengePattern.MatchString(q.Get("code_challenge")) {
		fail("invalid_request", "code_challenge is missing or is not an S256 challenge")
		return
	}
	prompts := strings.Fields(q.Get("prompt"))
	for _, p := range prompts {
		if !slices.Contains([]string{"none", "login", "create", "consent", "select_account"}, p) {
			fail("invalid_request", "unsupported prompt "+p)
			return
		}
	}
	promptNone := slices.Contains(prompts, "none")
	if promptNone && len(prompts) > 1 {
		fail("invalid_request", "prompt=none cannot be combined with other values")
		return
	}

	s.mu.Lock()
	user := s.nextUser
	if user != nil {
		s.nextUser = nil
	}
	s.mu.Unlock()
	if user == nil {
		if promptNone {
			fail("login_required", "the user is not signed in")
		} else {
			fail("access_denied", "no user signed in (call kindetest.Server.SetNextUser)")
		}
		return
	}

	var audience []string
	for _, a := range strings.Fields(q.Get("audience")) {
		if slices.Contains(s.cfg.audiences, a) && !slices.Contains(audience, a) {
			audience = append(audience, a)
		}
	}
	orgCode := s.OrgCode
	if oc := q.Get("org_code"); oc != "" {
		orgCode = oc
	}
	now := s.now()
	code := randomToken()
	s.mu.Lock()
	s.codes[code] = &authCode{
		clientID:    s.ClientID,
		redirectURI: redirectURI,
		challenge:   q.Get("code_challenge"),
		nonce:       q.Get("nonce"),
		scopes:      scopes,
		audience:    audience,
		orgCode:     orgCode,
		user:        *user,
		authTime:    now,
		expiresAt:   now.Add(authCodeTTL),
	}
	s.users[user.Subject] = *user
	s.mu.Unlock()
	redirectTo(w, r, back, url.Values{"code": {code}, "scope": {strings.Join(scopes, " ")}, "state": {state}})
}

func redirectTo(w http.ResponseWriter, r *http.Request, base *url.URL, params url.Values) {
	u := *base
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, ok := readForm(w, r)
	if !ok {
		return
	}
	clientID, ok := s.authenticateClient(w, r, form)
	if !ok {
		return
	}
	switch form.Get("grant_type") {
	case "authorization_code":
		s.exchangeCode(w, form, clientID)
	case "refresh_token":
		s.refresh(w, form, clientID)
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is missing")
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+form.Get("grant_type")+" is not supported for this application")
	}
}

// readForm parses a form-encoded POST body, refusing other content types
// and repeated parameters.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "body must be application/x-www-form-urlencoded")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "form does not parse")
		return nil, false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "parameter "+k+" is repeated")
			return nil, false
		}
	}
	return r.PostForm, true
}

// authenticateClient accepts client_secret_post or client_secret_basic,
// not both at once (RFC 6749 §2.3).
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request, form url.Values) (string, bool) {
	id, secret := form.Get("client_id"), form.Get("client_secret")
	user, pass, basic := r.BasicAuth()
	if basic {
		if form.Has("client_secret") {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "client authenticated with both HTTP Basic and client_secret")
			return "", false
		}
		bid, err1 := url.QueryUnescape(user)
		bsecret, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil || (id != "" && id != bid) {
			w.Header().Set("WWW-Authenticate", `Basic realm="kinde"`)
			writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return "", false
		}
		id, secret = bid, bsecret
	}
	if id == "" || secret == "" ||
		subtle.ConstantTimeCompare([]byte(id), []byte(s.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.ClientSecret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="kinde"`)
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return "", false
	}
	return id, true
}

func (s *Server) exchangeCode(w http.ResponseWriter, form url.Values, clientID string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[form.Get("code")]
	if c == nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code is unknown")
		return
	}
	if c.used {
		// A replayed code may have been stolen: revoke what it produced
		// (RFC 6749 §4.1.2).
		if g := s.grants[c.grantID]; g != nil {
			g.revoked = true
		}
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code has already been used")
		return
	}
	c.used = true // any attempt consumes the code
	if !now.Before(c.expiresAt) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code has expired")
		return
	}
	if c.clientID != clientID {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the authorization code was issued to another client")
		return
	}
	if form.Get("redirect_uri") != c.redirectURI {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		return
	}
	verifier := form.Get("code_verifier")
	if !codeVerifierPattern.MatchString(verifier) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier is missing or malformed")
		return
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.challenge)) != 1 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match code_challenge")
		return
	}
	g := &grant{
		id:       randomHex(16),
		clientID: clientID,
		user:     c.user,
		scopes:   c.scopes,
		audience: c.audience,
		orgCode:  c.orgCode,
		authTime: c.authTime,
	}
	s.grants[g.id] = g
	c.grantID = g.id
	s.issueLocked(w, g, c.nonce, now)
}

func (s *Server) refresh(w http.ResponseWriter, form url.Values, clientID string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.refreshTokens[form.Get("refresh_token")]
	if rt == nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token is unknown")
		return
	}
	g := s.grants[rt.grantID]
	switch {
	case g == nil || g.revoked:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token has been revoked")
		return
	case g.clientID != clientID:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token was issued to another client")
		return
	case !now.Before(rt.expiresAt):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token has expired")
		return
	case !rt.usedAt.IsZero() && !now.Before(rt.usedAt.Add(s.cfg.overlap)):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "the refresh token has already been used")
		return
	}
	if sc := form.Get("scope"); sc != "" {
		for _, x := range strings.Fields(sc) {
			if !slices.Contains(g.scopes, x) {
				writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "scope "+x+" was not granted")
				return
			}
		}
	}
	if rt.usedAt.IsZero() {
		rt.usedAt = now
	}
	// The OIDC spec says a refreshed ID token carries no nonce.
	s.issueLocked(w, g, "", now)
}

// issueLocked writes a token response for g; s.mu must be held.
func (s *Server) issueLocked(w http.ResponseWriter, g *grant, nonce string, now time.Time) {
	atClaims := s.accessTokenClaims(g, now)
	at, err := s.signLocked(atClaims)
	if err != nil {
		writeOAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	s.accessGrants[atClaims["jti"].(string)] = g.id
	resp := map[string]any{
		"access_token": at,
		"token_type":   "bearer",
		"expires_in":   int64(s.cfg.accessTTL / time.Second),
		"scope":        strings.Join(g.scopes, " "),
	}
	if slices.Contains(g.scopes, "openid") {
		idc := s.idTokenClaims(g.clientID, g.user, []string{g.orgCode}, nonce, g.authTime, now)
		idc["at_hash"] = atHash(at)
		id, err := s.signLocked(idc)
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", err.Error())
			return
		}
		resp["id_token"] = id
	}
	// Kinde's scope is "offline"; "offline_access" is accepted but yields
	// no refresh token.
	if slices.Contains(g.scopes, "offline") {
		tok := randomToken()
		s.refreshTokens[tok] = &refreshToken{grantID: g.id, expiresAt: now.Add(s.cfg.refreshTTL)}
		s.refreshIssued[g.user.Subject]++
		resp["refresh_token"] = tok
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, ok := readForm(w, r)
	if !ok {
		return
	}
	clientID, ok := s.authenticateClient(w, r, form)
	if !ok {
		return
	}
	rec := cloneValues(form)
	rec.Del("client_secret")
	token := form.Get("token")
	var accessJTI string
	if token != "" {
		if claims, err := s.verifyAccessToken(token); err == nil {
			accessJTI, _ = claims["jti"].(string)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeReqs = append(s.revokeReqs, rec)
	if token == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is missing")
		return
	}
	// RFC 7009: an unknown token, or another client's, still answers 200.
	grantID := s.accessGrants[accessJTI]
	if rt := s.refreshTokens[token]; rt != nil {
		grantID = rt.grantID
	}
	if g := s.grants[grantID]; g != nil && g.clientID == clientID {
		g.revoked = true
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleUserProfile(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.bearer(w, r)
	if !ok {
		return
	}
	sub, _ := claims["sub"].(string)
	s.mu.Lock()
	u, known := s.users[sub]
	s.mu.Unlock()
	if !known {
		writeBearerError(w, "the token's subject is not a user of this business")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":             u.Subject,
		"sub":            u.Subject,
		"name":           u.Name,
		"given_name":     u.GivenName,
		"family_name":    u.FamilyName,
		"email":          u.Email,
		"email_verified": u.EmailVerified,
		"picture":        u.Picture,
	})
}

// bearer verifies the request's access token, answering 401 if it fails.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kinde"`)
		writeJSON(w, http.StatusUnauthorized, apiErrors("UNAUTHORIZED", "a bearer access token is required"))
		return nil, false
	}
	claims, err := s.verifyAccessToken(token)
	if err != nil {
		writeBearerError(w, err.Error())
		return nil, false
	}
	return claims, true
}

func writeBearerError(w http.ResponseWriter, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="kinde", error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, apiErrors("INVALID_TOKEN", description))
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	s.logoutReqs = append(s.logoutReqs, cloneValues(q))
	allowed := slices.Clone(s.cfg.logoutRedirects)
	s.mu.Unlock()
	target := q.Get("redirect")
	if target == "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("You are signed out.\n"))
		return
	}
	if len(q["redirect"]) != 1 || !slices.Contains(allowed, target) {
		http.Error(w, "invalid_request: redirect is not an allowed logout redirect URL", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, oauthError{Error: code, Description: description})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// randomToken is an opaque credential (codes, refresh tokens, portal keys).
func randomToken() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}
