package kindetest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/todo-mcp/todo-mcp/internal/kindetest"
)

const callback = "http://127.0.0.1:1/auth/callback"

// fakeClock is a settable clock shared by the server and the verifiers.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// noRedirect is a browser that stops at the first redirect.
var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

type harness struct {
	srv      *kindetest.Server
	clock    *fakeClock
	provider *oidc.Provider
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func setup(t *testing.T, opts ...kindetest.Option) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Now()}
	opts = append([]kindetest.Option{kindetest.WithAllowedRedirect(callback), kindetest.WithClock(clock.Now)}, opts...)
	srv := kindetest.New(t, opts...)
	provider, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	ep := provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &harness{
		srv:      srv,
		clock:    clock,
		provider: provider,
		conf: &oauth2.Config{
			ClientID:     srv.ClientID,
			ClientSecret: srv.ClientSecret,
			Endpoint:     ep,
			RedirectURL:  callback,
			Scopes:       []string{oidc.ScopeOpenID, "profile", "email", "offline"},
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: srv.ClientID, Now: clock.Now}),
	}
}

// visit GETs u without following redirects.
func visit(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// callbackQuery follows /oauth2/auth to the redirect and returns the
// callback's query.
func callbackQuery(t *testing.T, authURL string) url.Values {
	t.Helper()
	resp := visit(t, authURL)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("Location: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != callback {
		t.Fatalf("redirected to %s, want %s", got, callback)
	}
	return loc.Query()
}

type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: "st-" + oauth2.GenerateVerifier()[:20], nonce: "n-" + oauth2.GenerateVerifier()[:20], verifier: oauth2.GenerateVerifier()}
}

func (h *harness) authURL(f flow, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, extra...)
	return h.conf.AuthCodeURL(f.state, opts...)
}

// code signs u in and returns the authorization code.
func (h *harness) code(t *testing.T, u kindetest.User, f flow, extra ...oauth2.AuthCodeOption) string {
	t.Helper()
	h.srv.SetNextUser(u)
	q := callbackQuery(t, h.authURL(f, extra...))
	if q.Get("state") != f.state {
		t.Fatalf("state = %q, want %q", q.Get("state"), f.state)
	}
	if q.Get("error") != "" {
		t.Fatalf("authorize error %s: %s", q.Get("error"), q.Get("error_description"))
	}
	return q.Get("code")
}

// signIn runs the whole authorization-code flow and verifies the ID token.
func (h *harness) signIn(t *testing.T, u kindetest.User, extra ...oauth2.AuthCodeOption) (*oauth2.Token, *oidc.IDToken) {
	t.Helper()
	f := newFlow()
	code := h.code(t, u, f, extra...)
	tok, err := h.conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := h.verifier.Verify(t.Context(), rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != f.nonce {
		t.Fatalf("nonce = %q, want %q", idt.Nonce, f.nonce)
	}
	return tok, idt
}

func (h *harness) refresh(t *testing.T, rt string) (*oauth2.Token, error) {
	t.Helper()
	return h.conf.TokenSource(t.Context(), &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}).Token()
}

// oauthErr returns the OAuth error code and HTTP status of err.
func oauthErr(t *testing.T, err error) (string, int) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *oauth2.RetrieveError", err)
	}
	return re.ErrorCode, re.Response.StatusCode
}

// payload decodes a JWT's claims without verifying it.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload: %v", err)
	}
	return m
}

// getJSON GETs u with an optional bearer token and decodes a JSON answer.
func getJSON(t *testing.T, ctx context.Context, u, bearer string, into any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if into != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("decode %s: %v", u, err)
		}
	}
	return resp.StatusCode
}

func postForm(t *testing.T, u string, form url.Values) int {
	t.Helper()
	resp, err := noRedirect.PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestDiscovery(t *testing.T) {
	h := setup(t)
	var doc map[string]any
	if st := getJSON(t, t.Context(), h.srv.URL+"/.well-known/openid-configuration", "", &doc); st != http.StatusOK {
		t.Fatalf("discovery answered %d", st)
	}
	for key, want := range map[string]string{
		"issuer":                 h.srv.URL,
		"authorization_endpoint": h.srv.URL + "/oauth2/auth",
		"token_endpoint":         h.srv.URL + "/oauth2/token",
		"userinfo_endpoint":      h.srv.URL + "/oauth2/v2/user_profile",
		"jwks_uri":               h.srv.URL + "/.well-known/jwks",
		"end_session_endpoint":   h.srv.URL + "/logout",
		"revocation_endpoint":    h.srv.URL + "/oauth2/revoke",
	} {
		t.Run("the document names "+key, func(t *testing.T) {
			if doc[key] != want {
				t.Errorf("%s = %v, want %s", key, doc[key], want)
			}
		})
	}
	t.Run("the document lists offline, S256 and RS256", func(t *testing.T) {
		has := func(key, v string) bool {
			list, _ := doc[key].([]any)
			return slices.Contains(list, any(v))
		}
		if !has("scopes_supported", "offline") || !has("code_challenge_methods_supported", "S256") ||
			!has("id_token_signing_alg_values_supported", "RS256") {
			t.Errorf("discovery document lacks offline, S256 or RS256: %v", doc)
		}
	})
	t.Run("both JWKS paths serve the signing key", func(t *testing.T) {
		for _, p := range []string{"/.well-known/jwks", "/.well-known/jwks.json"} {
			var set jose.JSONWebKeySet
			if st := getJSON(t, t.Context(), h.srv.URL+p, "", &set); st != http.StatusOK {
				t.Fatalf("%s answered %d", p, st)
			}
			if len(set.Keys) != 1 || set.Keys[0].KeyID != h.srv.KeyID() || set.Keys[0].Algorithm != "RS256" || !set.Keys[0].IsPublic() {
				t.Errorf("%s = %+v", p, set.Keys)
			}
		}
	})
}

func TestAuthorizationCodeFlow(t *testing.T) {
	h := setup(t)
	alice := kindetest.NewUser("alice@example.com", "Alice Liddell")
	tok, idt := h.signIn(t, alice,
		oauth2.SetAuthURLParam("prompt", "create"),
		oauth2.SetAuthURLParam("plan_interest", "pro"),
		oauth2.SetAuthURLParam("pricing_table_key", "default"),
		oauth2.SetAuthURLParam("login_hint", alice.Email))

	t.Run("the subject is a Kinde user ID", func(t *testing.T) {
		if !strings.HasPrefix(alice.Subject, "kp_") || len(alice.Subject) != 35 {
			t.Errorf("subject %q is not kp_ + 32 hex", alice.Subject)
		}
	})
	t.Run("the ID token carries the user's profile", func(t *testing.T) {
		var c struct {
			Email, Name, GivenName, FamilyName, Picture string
			OrgCodes                                    []string `json:"org_codes"`
			AuthTime                                    int64    `json:"auth_time"`
		}
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if idt.Subject != alice.Subject || c.Email != alice.Email || c.Name != alice.Name ||
			!slices.Equal(c.OrgCodes, []string{h.srv.OrgCode}) || c.AuthTime == 0 {
			t.Errorf("claims = %+v, sub %s", c, idt.Subject)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
	})
	t.Run("the access token has Kinde's claims", func(t *testing.T) {
		c := payload(t, tok.AccessToken)
		if aud, ok := c["aud"].([]any); !ok || len(aud) != 0 {
			t.Errorf("aud = %#v, want an empty array without a requested audience", c["aud"])
		}
		if c["azp"] != h.srv.ClientID || c["iss"] != h.srv.URL || c["sub"] != alice.Subject || c["org_code"] != h.srv.OrgCode {
			t.Errorf("claims = %v", c)
		}
		for _, k := range []string{"exp", "iat", "jti", "scp", "permissions", "feature_flags"} {
			if _, ok := c[k]; !ok {
				t.Errorf("access token lacks %s", k)
			}
		}
		if tok.Type() != "Bearer" || tok.RefreshToken == "" || time.Until(tok.Expiry) < 23*time.Hour {
			t.Errorf("token type %q, refresh %q, expiry %v", tok.Type(), tok.RefreshToken, tok.Expiry)
		}
	})
	t.Run("the user profile answers with the access token", func(t *testing.T) {
		info, err := h.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("user profile: %v", err)
		}
		if info.Subject != alice.Subject || info.Email != alice.Email || !info.EmailVerified {
			t.Errorf("user profile = %+v", info)
		}
		var raw map[string]any
		if st := getJSON(t, t.Context(), h.srv.URL+"/oauth2/v2/user_profile", tok.AccessToken, &raw); st != http.StatusOK || raw["id"] != alice.Subject || raw["given_name"] != "Alice" || raw["family_name"] != "Liddell" {
			t.Errorf("user profile %d %v", st, raw)
		}
	})
	t.Run("the authorize request is recorded with its parameters", func(t *testing.T) {
		reqs := h.srv.AuthorizeRequests()
		if len(reqs) != 1 {
			t.Fatalf("%d authorize requests recorded", len(reqs))
		}
		q := reqs[0]
		for k, want := range map[string]string{
			"prompt": "create", "plan_interest": "pro", "pricing_table_key": "default",
			"login_hint": alice.Email, "code_challenge_method": "S256", "response_type": "code",
			"scope": "openid profile email offline",
		} {
			if q.Get(k) != want {
				t.Errorf("%s = %q, want %q", k, q.Get(k), want)
			}
		}
	})
	t.Run("HTTP Basic client authentication works too", func(t *testing.T) {
		conf := *h.conf
		conf.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		f := newFlow()
		code := h.code(t, alice, f)
		if _, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier)); err != nil {
			t.Errorf("exchange with Basic: %v", err)
		}
	})
}

func TestAuthorizeRefusals(t *testing.T) {
	bob := kindetest.NewUser("bob@example.com", "Bob")
	cases := []struct {
		name       string
		edit       func(q url.Values)
		noUser     bool
		failNext   [2]string
		wantStatus int    // when the server must not redirect
		wantError  string // error on the callback otherwise
		wantState  bool
	}{
		{name: "an unknown client_id is refused without a redirect", edit: func(q url.Values) { q.Set("client_id", "nope") }, wantStatus: http.StatusBadRequest},
		{name: "an unregistered redirect_uri is refused without a redirect", edit: func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:1/evil") }, wantStatus: http.StatusBadRequest},
		{name: "a response_type other than code is refused", edit: func(q url.Values) { q.Set("response_type", "token") }, wantError: "unsupported_response_type", wantState: true},
		{name: "a scope without openid is refused", edit: func(q url.Values) { q.Set("scope", "profile email") }, wantError: "invalid_scope", wantState: true},
		{name: "a missing state is refused", edit: func(q url.Values) { q.Del("state") }, wantError: "invalid_request"},
		{name: "a missing code_challenge is refused", edit: func(q url.Values) { q.Del("code_challenge") }, wantError: "invalid_request", wantState: true},
		{name: "the plain PKCE method is refused", edit: func(q url.Values) { q.Set("code_challenge_method", "plain") }, wantError: "invalid_request", wantState: true},
		{name: "a repeated parameter is refused", edit: func(q url.Values) { q.Add("scope", "openid") }, wantError: "invalid_request", wantState: true},
		{name: "an unknown prompt is refused", edit: func(q url.Values) { q.Set("prompt", "register") }, wantError: "invalid_request", wantState: true},
		{name: "prompt=none without a signed-in user answers login_required", edit: func(q url.Values) { q.Set("prompt", "none") }, noUser: true, wantError: "login_required", wantState: true},
		{name: "without a user to sign in the answer is access_denied", noUser: true, wantError: "access_denied", wantState: true},
		{name: "an injected failure comes back with its description", failNext: [2]string{"temporarily_unavailable", "try later"}, wantError: "temporarily_unavailable", wantState: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := setup(t)
			if !tc.noUser {
				h.srv.SetNextUser(bob)
			}
			if tc.failNext[0] != "" {
				h.srv.FailNextAuthorize(tc.failNext[0], tc.failNext[1])
			}
			f := newFlow()
			u, _ := url.Parse(h.authURL(f))
			q := u.Query()
			if tc.edit != nil {
				tc.edit(q)
			}
			u.RawQuery = q.Encode()
			if tc.wantStatus != 0 {
				if resp := visit(t, u.String()); resp.StatusCode != tc.wantStatus {
					t.Errorf("status %d, want %d (Location %q)", resp.StatusCode, tc.wantStatus, resp.Header.Get("Location"))
				}
				return
			}
			back := callbackQuery(t, u.String())
			if back.Get("error") != tc.wantError || back.Get("code") != "" {
				t.Errorf("callback %v, want error %s", back, tc.wantError)
			}
			if tc.failNext[1] != "" && back.Get("error_description") != tc.failNext[1] {
				t.Errorf("error_description = %q", back.Get("error_description"))
			}
			if tc.wantState && back.Get("state") != f.state {
				t.Errorf("state = %q, want %q", back.Get("state"), f.state)
			}
			if n := len(h.srv.AuthorizeRequests()); n != 1 {
				t.Errorf("%d authorize requests recorded, want 1", n)
			}
		})
	}
	t.Run("a user signs in only once per SetNextUser", func(t *testing.T) {
		h := setup(t)
		h.signIn(t, bob)
		back := callbackQuery(t, h.authURL(newFlow()))
		if back.Get("error") != "access_denied" {
			t.Errorf("second authorize: %v", back)
		}
	})
}

func TestTokenRefusals(t *testing.T) {
	carol := kindetest.NewUser("carol@example.com", "Carol Danvers")
	cases := []struct {
		name       string
		exchange   func(t *testing.T, h *harness, code string, f flow) error
		wantError  string
		wantStatus int
	}{
		{
			name: "a wrong PKCE verifier is refused",
			exchange: func(t *testing.T, h *harness, code string, _ flow) error {
				_, err := h.conf.Exchange(t.Context(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
				return err
			},
			wantError: "invalid_grant", wantStatus: http.StatusBadRequest,
		},
		{
			name: "a missing PKCE verifier is refused",
			exchange: func(t *testing.T, h *harness, code string, _ flow) error {
				_, err := h.conf.Exchange(t.Context(), code)
				return err
			},
			wantError: "invalid_grant", wantStatus: http.StatusBadRequest,
		},
		{
			name: "a different redirect_uri is refused",
			exchange: func(t *testing.T, h *harness, code string, f flow) error {
				conf := *h.conf
				conf.RedirectURL = callback + "/other"
				_, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
				return err
			},
			wantError: "invalid_grant", wantStatus: http.StatusBadRequest,
		},
		{
			name: "a wrong client secret is refused",
			exchange: func(t *testing.T, h *harness, code string, f flow) error {
				conf := *h.conf
				conf.ClientSecret = "wrong"
				_, err := conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
				return err
			},
			wantError: "invalid_client", wantStatus: http.StatusUnauthorized,
		},
		{
			name: "an expired code is refused",
			exchange: func(t *testing.T, h *harness, code string, f flow) error {
				h.clock.Advance(11 * time.Minute)
				_, err := h.conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
				return err
			},
			wantError: "invalid_grant", wantStatus: http.StatusBadRequest,
		},
		{
			name: "an unknown code is refused",
			exchange: func(t *testing.T, h *harness, _ string, f flow) error {
				_, err := h.conf.Exchange(t.Context(), "made-up", oauth2.VerifierOption(f.verifier))
				return err
			},
			wantError: "invalid_grant", wantStatus: http.StatusBadRequest,
		},
		{
			name: "a reused code is refused and revokes the tokens of its first use",
			exchange: func(t *testing.T, h *harness, code string, f flow) error {
				first, err := h.conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
				if err != nil {
					t.Fatalf("first exchange: %v", err)
				}
				_, err = h.conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
				if _, rerr := h.refresh(t, first.RefreshToken); rerr == nil {
					t.Error("the first exchange's refresh token still works after the replay")
				}
				return err
			},
			wantError: "invalid_grant", wantStatus: http.StatusBadRequest,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := setup(t)
			f := newFlow()
			code := h.code(t, carol, f)
			err := tc.exchange(t, h, code, f)
			if err == nil {
				t.Fatal("exchange succeeded")
			}
			if code, status := oauthErr(t, err); code != tc.wantError || status != tc.wantStatus {
				t.Errorf("got %s %d, want %s %d", code, status, tc.wantError, tc.wantStatus)
			}
		})
	}
	t.Run("an unsupported grant type is refused", func(t *testing.T) {
		h := setup(t)
		st := postForm(t, h.srv.URL+"/oauth2/token", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {h.srv.ClientID}, "client_secret": {h.srv.ClientSecret},
		})
		if st != http.StatusBadRequest {
			t.Errorf("status %d, want 400", st)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	h := setup(t, kindetest.WithRefreshOverlap(10*time.Second))
	dave := kindetest.NewUser("dave@example.com", "Dave Bowman")
	tok, _ := h.signIn(t, dave)
	rt0 := tok.RefreshToken

	rt1tok, err := h.refresh(t, rt0)
	if err != nil {
		t.Fatalf("first refresh: %v", err)
	}
	t.Run("every refresh returns a new refresh token and a fresh ID token", func(t *testing.T) {
		if rt1tok.RefreshToken == "" || rt1tok.RefreshToken == rt0 || rt1tok.AccessToken == tok.AccessToken {
			t.Fatalf("refresh did not rotate: %q", rt1tok.RefreshToken)
		}
		rawID, _ := rt1tok.Extra("id_token").(string)
		idt, err := h.verifier.Verify(t.Context(), rawID)
		if err != nil {
			t.Fatalf("refreshed ID token: %v", err)
		}
		if idt.Subject != dave.Subject || idt.Nonce != "" {
			t.Errorf("refreshed ID token sub %q nonce %q", idt.Subject, idt.Nonce)
		}
	})
	t.Run("the old refresh token still works during the overlap", func(t *testing.T) {
		h.clock.Advance(5 * time.Second)
		again, err := h.refresh(t, rt0)
		if err != nil {
			t.Fatalf("refresh within overlap: %v", err)
		}
		if again.RefreshToken == rt1tok.RefreshToken {
			t.Error("the overlap refresh returned the same token as the first refresh")
		}
	})
	t.Run("the old refresh token dies after the overlap", func(t *testing.T) {
		h.clock.Advance(6 * time.Second)
		_, err := h.refresh(t, rt0)
		if err == nil {
			t.Fatal("old refresh token still works")
		}
		if code, status := oauthErr(t, err); code != "invalid_grant" || status != http.StatusBadRequest {
			t.Errorf("got %s %d", code, status)
		}
	})
	t.Run("the newest refresh token still works", func(t *testing.T) {
		if _, err := h.refresh(t, rt1tok.RefreshToken); err != nil {
			t.Fatalf("refresh with the newest token: %v", err)
		}
	})
	t.Run("every issued refresh token is counted", func(t *testing.T) {
		if n := h.srv.RefreshTokens(dave.Subject); n != 4 {
			t.Errorf("RefreshTokens = %d, want 4", n)
		}
	})
	t.Run("an expired refresh token is refused", func(t *testing.T) {
		h2 := setup(t, kindetest.WithRefreshTokenTTL(time.Hour))
		tok, _ := h2.signIn(t, dave)
		h2.clock.Advance(time.Hour)
		if _, err := h2.refresh(t, tok.RefreshToken); err == nil {
			t.Error("expired refresh token accepted")
		}
	})
}

func TestRefreshTokenNeedsOfflineScope(t *testing.T) {
	erin := kindetest.NewUser("erin@example.com", "Erin")
	cases := []struct {
		name        string
		scopes      []string
		wantRefresh bool
	}{
		{"offline gives a refresh token", []string{"openid", "offline"}, true},
		{"offline_access gives none, as on Kinde", []string{"openid", "offline_access"}, false},
		{"no offline scope gives none", []string{"openid", "profile", "email"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := setup(t)
			h.conf.Scopes = tc.scopes
			tok, _ := h.signIn(t, erin)
			if (tok.RefreshToken != "") != tc.wantRefresh {
				t.Errorf("refresh token %q, want one: %v", tok.RefreshToken, tc.wantRefresh)
			}
		})
	}
}

func TestRevocation(t *testing.T) {
	frank := kindetest.NewUser("frank@example.com", "Frank")
	revoke := func(t *testing.T, h *harness, token, secret string) int {
		return postForm(t, h.srv.URL+"/oauth2/revoke", url.Values{
			"token": {token}, "token_type_hint": {"refresh_token"},
			"client_id": {h.srv.ClientID}, "client_secret": {secret},
		})
	}
	t.Run("a revoked refresh token no longer refreshes", func(t *testing.T) {
		h := setup(t)
		tok, _ := h.signIn(t, frank)
		if st := revoke(t, h, tok.RefreshToken, h.srv.ClientSecret); st != http.StatusOK {
			t.Fatalf("revoke answered %d", st)
		}
		_, err := h.refresh(t, tok.RefreshToken)
		if code, _ := oauthErr(t, err); code != "invalid_grant" {
			t.Errorf("refresh after revoke: %s", code)
		}
		reqs := h.srv.RevokeRequests()
		if len(reqs) != 1 || reqs[0].Get("token") != tok.RefreshToken || reqs[0].Has("client_secret") {
			t.Errorf("recorded %v", reqs)
		}
	})
	t.Run("revoking an access token revokes its grant", func(t *testing.T) {
		h := setup(t)
		tok, _ := h.signIn(t, frank)
		if st := revoke(t, h, tok.AccessToken, h.srv.ClientSecret); st != http.StatusOK {
			t.Fatalf("revoke answered %d", st)
		}
		if _, err := h.refresh(t, tok.RefreshToken); err == nil {
			t.Error("refresh works after the access token was revoked")
		}
	})
	t.Run("revocation with a wrong secret is refused", func(t *testing.T) {
		h := setup(t)
		tok, _ := h.signIn(t, frank)
		if st := revoke(t, h, tok.RefreshToken, "wrong"); st != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", st)
		}
		if _, err := h.refresh(t, tok.RefreshToken); err != nil {
			t.Errorf("refresh after refused revoke: %v", err)
		}
	})
	t.Run("revoking an unknown token answers 200", func(t *testing.T) {
		h := setup(t)
		if st := revoke(t, h, "unknown", h.srv.ClientSecret); st != http.StatusOK {
			t.Errorf("status %d, want 200", st)
		}
	})
	t.Run("RevokeUser ends every grant of the user", func(t *testing.T) {
		h := setup(t)
		tok, _ := h.signIn(t, frank)
		h.srv.RevokeUser(frank.Subject)
		if _, err := h.refresh(t, tok.RefreshToken); err == nil {
			t.Error("refresh works after RevokeUser")
		}
	})
}

func TestAudience(t *testing.T) {
	const api = "https://api.todo-mcp.test"
	h := setup(t, kindetest.WithAudience(api))
	tok, _ := h.signIn(t, kindetest.NewUser("gina@example.com", "Gina"),
		oauth2.SetAuthURLParam("audience", api+" https://unregistered.test"))
	aud, _ := payload(t, tok.AccessToken)["aud"].([]any)
	if !slices.Equal(aud, []any{api}) {
		t.Errorf("aud = %v, want only the registered audience", aud)
	}
}

func TestBearerTokenChecks(t *testing.T) {
	h := setup(t)
	hank := kindetest.NewUser("hank@example.com", "Hank")
	tok, _ := h.signIn(t, hank)
	rawID, _ := tok.Extra("id_token").(string)
	claims := func(edit func(map[string]any)) map[string]any {
		c := h.srv.DefaultAccessTokenClaims(hank, []string{"openid"})
		if edit != nil {
			edit(c)
		}
		return c
	}
	oldKeyToken := h.srv.SignAccessToken(claims(nil), kindetest.SignOptions{})
	h.srv.RotateSigningKey()
	cases := []struct {
		name  string
		token string
		want  int
	}{
		{"an issued access token is accepted", tok.AccessToken, http.StatusOK},
		{"a self-signed access token from the server key is accepted", h.srv.SignAccessToken(claims(nil), kindetest.SignOptions{}), http.StatusOK},
		{"a token signed with a rotated-out key is still accepted", oldKeyToken, http.StatusOK},
		{"no token is refused", "", http.StatusUnauthorized},
		{"an ID token is refused", rawID, http.StatusUnauthorized},
		{"an expired access token is refused", h.srv.SignAccessToken(claims(func(c map[string]any) { c["exp"] = h.clock.Now().Add(-time.Second).Unix() }), kindetest.SignOptions{}), http.StatusUnauthorized},
		{"a token without exp is refused", h.srv.SignAccessToken(claims(func(c map[string]any) { delete(c, "exp") }), kindetest.SignOptions{}), http.StatusUnauthorized},
		{"another issuer is refused", h.srv.SignAccessToken(claims(func(c map[string]any) { c["iss"] = "https://evil.kinde.com" }), kindetest.SignOptions{}), http.StatusUnauthorized},
		{"a token signed with another key is refused", h.srv.SignAccessToken(claims(nil), kindetest.SignOptions{Key: kindetest.OtherKey()}), http.StatusUnauthorized},
		{"another key claiming the server's kid is refused", h.srv.SignAccessToken(claims(nil), kindetest.SignOptions{Key: kindetest.OtherKey(), KeyID: h.srv.KeyID()}), http.StatusUnauthorized},
		{"an alg:none token is refused", h.srv.SignAccessToken(claims(nil), kindetest.SignOptions{Alg: "none"}), http.StatusUnauthorized},
		{"an HS256 token keyed with the client secret is refused", h.srv.SignAccessToken(claims(nil), kindetest.SignOptions{Alg: "HS256"}), http.StatusUnauthorized},
		{"an RS384 token is refused", h.srv.SignAccessToken(claims(nil), kindetest.SignOptions{Alg: "RS384"}), http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []string{"/oauth2/v2/user_profile", "/account_api/v1/entitlements"} {
				if st := getJSON(t, t.Context(), h.srv.URL+p, tc.token, nil); st != tc.want {
					t.Errorf("%s answered %d, want %d", p, st, tc.want)
				}
			}
		})
	}
}

func TestIDTokenVerificationWithGoOIDC(t *testing.T) {
	h := setup(t)
	ivy := kindetest.NewUser("ivy@example.com", "Ivy")
	sign := func(edit func(map[string]any), o kindetest.SignOptions) string {
		c := h.srv.DefaultIDTokenClaims(ivy, "nonce-123456")
		if edit != nil {
			edit(c)
		}
		return h.srv.SignIDToken(c, o)
	}
	beforeRotation := sign(nil, kindetest.SignOptions{})
	cases := []struct {
		name   string
		token  func() string
		accept bool
	}{
		{"the default claims verify", func() string { return sign(nil, kindetest.SignOptions{}) }, true},
		{"a token from before a key rotation still verifies", func() string { return beforeRotation }, true},
		{"a token signed with the new key verifies", func() string { h.srv.RotateSigningKey(); return sign(nil, kindetest.SignOptions{}) }, true},
		{"another key is rejected", func() string { return sign(nil, kindetest.SignOptions{Key: kindetest.OtherKey()}) }, false},
		{"another key under the server's kid is rejected", func() string {
			return sign(nil, kindetest.SignOptions{Key: kindetest.OtherKey(), KeyID: h.srv.KeyID()})
		}, false},
		{"alg:none is rejected", func() string { return sign(nil, kindetest.SignOptions{Alg: "none"}) }, false},
		{"HS256 is rejected", func() string { return sign(nil, kindetest.SignOptions{Alg: "HS256"}) }, false},
		{"another audience is rejected", func() string {
			return sign(func(c map[string]any) { c["aud"] = []string{"someone-else"} }, kindetest.SignOptions{})
		}, false},
		{"another issuer is rejected", func() string {
			return sign(func(c map[string]any) { c["iss"] = "https://evil.kinde.com" }, kindetest.SignOptions{})
		}, false},
		{"an expired token is rejected", func() string {
			return sign(func(c map[string]any) { c["exp"] = h.clock.Now().Add(-time.Minute).Unix() }, kindetest.SignOptions{})
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.verifier.Verify(t.Context(), tc.token())
			if (err == nil) != tc.accept {
				t.Errorf("Verify error %v, want accepted: %v", err, tc.accept)
			}
		})
	}
}

type entitlementsPage struct {
	Data struct {
		OrgCode string `json:"org_code"`
		Plans   []struct {
			Key          string `json:"key"`
			Name         string `json:"name"`
			SubscribedOn string `json:"subscribed_on"`
		} `json:"plans"`
		Entitlements []struct {
			ID          string `json:"id"`
			FeatureKey  string `json:"feature_key"`
			FeatureName string `json:"feature_name"`
			LimitMax    *int   `json:"entitlement_limit_max"`
			PriceName   string `json:"price_name"`
		} `json:"entitlements"`
	} `json:"data"`
	Metadata struct {
		HasMore bool    `json:"has_more"`
		Next    *string `json:"next_page_starting_after"`
	} `json:"metadata"`
}

func TestEntitlements(t *testing.T) {
	h := setup(t)
	jane := kindetest.NewUser("jane@example.com", "Jane")
	tok, _ := h.signIn(t, jane)
	five := 5
	subscribed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ents []kindetest.Entitlement
	for _, k := range []string{"todos", "tags", "reminders", "sharing", "export"} {
		ents = append(ents, kindetest.Entitlement{FeatureKey: k, FeatureName: strings.ToUpper(k), PriceName: "Pro monthly"})
	}
	ents[1].LimitMax = &five
	h.srv.SetPlan(jane.Subject, []kindetest.Plan{{Key: "pro", Name: "Pro", SubscribedOn: subscribed}}, ents)
	base := h.srv.URL + "/account_api/v1/entitlements"

	t.Run("page_size splits the entitlements into pages", func(t *testing.T) {
		var keys []string
		var hasMore []bool
		after := ""
		for range 10 {
			u := base + "?page_size=2"
			if after != "" {
				u += "&starting_after=" + url.QueryEscape(after)
			}
			var page entitlementsPage
			if st := getJSON(t, t.Context(), u, tok.AccessToken, &page); st != http.StatusOK {
				t.Fatalf("%s answered %d", u, st)
			}
			if page.Data.OrgCode != h.srv.OrgCode || len(page.Data.Plans) != 1 || page.Data.Plans[0].Key != "pro" || page.Data.Plans[0].SubscribedOn != "2026-01-02T03:04:05Z" {
				t.Errorf("page data %+v", page.Data)
			}
			for _, e := range page.Data.Entitlements {
				keys = append(keys, e.FeatureKey)
				if !strings.HasPrefix(e.ID, "entitlement_") {
					t.Errorf("id %q", e.ID)
				}
				if e.FeatureKey == "tags" && (e.LimitMax == nil || *e.LimitMax != 5) || e.FeatureKey != "tags" && e.LimitMax != nil {
					t.Errorf("%s limit max %v", e.FeatureKey, e.LimitMax)
				}
			}
			hasMore = append(hasMore, page.Metadata.HasMore)
			if !page.Metadata.HasMore {
				break
			}
			after = *page.Metadata.Next
		}
		if !slices.Equal(keys, []string{"todos", "tags", "reminders", "sharing", "export"}) || !slices.Equal(hasMore, []bool{true, true, false}) {
			t.Errorf("keys %v, has_more %v", keys, hasMore)
		}
	})
	t.Run("the default page is smaller than a long list", func(t *testing.T) {
		var many []kindetest.Entitlement
		for i := range 12 {
			many = append(many, kindetest.Entitlement{FeatureKey: "f" + string(rune('a'+i))})
		}
		kim := kindetest.NewUser("kim@example.com", "Kim")
		h.srv.SetPlan(kim.Subject, nil, many)
		kt := h.srv.SignAccessToken(h.srv.DefaultAccessTokenClaims(kim, []string{"openid"}), kindetest.SignOptions{})
		var page entitlementsPage
		getJSON(t, t.Context(), base, kt, &page)
		if len(page.Data.Entitlements) != 10 || !page.Metadata.HasMore || page.Data.Plans == nil {
			t.Errorf("%d entitlements, has_more %v, plans %v", len(page.Data.Entitlements), page.Metadata.HasMore, page.Data.Plans)
		}
	})
	t.Run("a user without a plan gets empty lists", func(t *testing.T) {
		leo := kindetest.NewUser("leo@example.com", "Leo")
		lt := h.srv.SignAccessToken(h.srv.DefaultAccessTokenClaims(leo, []string{"openid"}), kindetest.SignOptions{})
		var raw map[string]map[string]any
		getJSON(t, t.Context(), base, lt, &raw)
		if plans, ok := raw["data"]["plans"].([]any); !ok || len(plans) != 0 {
			t.Errorf("plans = %#v", raw["data"]["plans"])
		}
		if raw["metadata"]["has_more"] != false {
			t.Errorf("metadata = %v", raw["metadata"])
		}
	})
	for _, tc := range []struct {
		name, query string
		want        int
	}{
		{"a bad page_size is refused", "?page_size=0", http.StatusBadRequest},
		{"an unknown starting_after is refused", "?starting_after=entitlement_nope", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st := getJSON(t, t.Context(), base+tc.query, tok.AccessToken, nil); st != tc.want {
				t.Errorf("status %d, want %d", st, tc.want)
			}
		})
	}
	t.Run("one entitlement is found by its key", func(t *testing.T) {
		var one struct {
			Data struct {
				OrgCode     string `json:"org_code"`
				Entitlement struct {
					FeatureKey string `json:"feature_key"`
					LimitMax   *int   `json:"entitlement_limit_max"`
				} `json:"entitlement"`
			} `json:"data"`
		}
		st := getJSON(t, t.Context(), h.srv.URL+"/account_api/v1/entitlement/tags", tok.AccessToken, &one)
		if st != http.StatusOK || one.Data.Entitlement.FeatureKey != "tags" || one.Data.Entitlement.LimitMax == nil || one.Data.OrgCode == "" {
			t.Errorf("status %d, body %+v", st, one)
		}
	})
	t.Run("an entitlement the plan lacks is 404", func(t *testing.T) {
		if st := getJSON(t, t.Context(), h.srv.URL+"/account_api/v1/entitlement/teams", tok.AccessToken, nil); st != http.StatusNotFound {
			t.Errorf("status %d, want 404", st)
		}
	})
}

func TestPortalLink(t *testing.T) {
	h := setup(t)
	mia := kindetest.NewUser("mia@example.com", "Mia")
	tok, _ := h.signIn(t, mia)
	const returnURL = "http://127.0.0.1:1/billing/return"
	link := func(t *testing.T, subnav string) (string, int) {
		q := url.Values{"subnav": {subnav}, "sub_nav": {subnav}, "return_url": {returnURL}}
		var body struct{ URL string }
		st := getJSON(t, t.Context(), h.srv.URL+"/account_api/v1/portal_link?"+q.Encode(), tok.AccessToken, &body)
		return body.URL, st
	}
	u, st := link(t, "plan_selection")
	t.Run("the link points at the portal redirect and the query is recorded", func(t *testing.T) {
		if st != http.StatusOK || !strings.HasPrefix(u, h.srv.URL+"/portal_redirect?key=") {
			t.Fatalf("status %d, url %q", st, u)
		}
		reqs := h.srv.PortalLinkRequests()
		if len(reqs) != 1 || reqs[0].Get("subnav") != "plan_selection" || reqs[0].Get("sub_nav") != "plan_selection" || reqs[0].Get("return_url") != returnURL {
			t.Errorf("recorded %v", reqs)
		}
	})
	t.Run("the first visit redirects to return_url", func(t *testing.T) {
		resp := visit(t, u)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != returnURL {
			t.Errorf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("the second visit is refused", func(t *testing.T) {
		if resp := visit(t, u); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("an unknown subnav is refused", func(t *testing.T) {
		if _, st := link(t, "upgrade"); st != http.StatusBadRequest {
			t.Errorf("status %d, want 400", st)
		}
	})
	t.Run("a request without a token is refused", func(t *testing.T) {
		if st := getJSON(t, t.Context(), h.srv.URL+"/account_api/v1/portal_link", "", nil); st != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", st)
		}
	})
}

func TestLogout(t *testing.T) {
	const home = "http://127.0.0.1:1/"
	h := setup(t, kindetest.WithAllowedLogoutRedirect(home))
	cases := []struct {
		name, redirect string
		want           int
	}{
		{"an allowed redirect is followed", home, http.StatusFound},
		{"another redirect is refused", "http://127.0.0.1:1/elsewhere", http.StatusBadRequest},
		{"no redirect shows Kinde's page", "", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := h.srv.URL + "/logout"
			if tc.redirect != "" {
				u += "?redirect=" + url.QueryEscape(tc.redirect)
			}
			resp := visit(t, u)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusFound && resp.Header.Get("Location") != tc.redirect {
				t.Errorf("Location %q", resp.Header.Get("Location"))
			}
		})
	}
	t.Run("every logout is recorded", func(t *testing.T) {
		reqs := h.srv.LogoutRequests()
		if len(reqs) != 3 || reqs[0].Get("redirect") != home {
			t.Errorf("recorded %v", reqs)
		}
	})
}

// verifyWebhook checks a webhook body the way a receiver should: RS256,
// key found by kid in the JWKS, signature valid, not expired.
func verifyWebhook(t *testing.T, jwksURL string, body []byte, now time.Time) (map[string]any, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if st := getJSON(t, t.Context(), jwksURL, "", &set); st != http.StatusOK {
		t.Fatalf("JWKS answered %d", st)
	}
	tok, err := jwt.ParseSigned(string(body), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		return nil, errors.New("unknown kid")
	}
	var std jwt.Claims
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &std, &claims); err != nil {
		return nil, err
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Time: now}, 0); err != nil {
		return nil, err
	}
	return claims, nil
}

func TestWebhook(t *testing.T) {
	h := setup(t)
	jwksURL := h.srv.URL + "/.well-known/jwks"
	data := map[string]any{"customer": map[string]any{"id": "customer_1", "user_id": "kp_x"}}
	t.Run("a webhook body verifies against the JWKS", func(t *testing.T) {
		body, id := h.srv.Webhook("customer.plan_assigned", data, kindetest.WebhookOptions{})
		claims, err := verifyWebhook(t, jwksURL, body, h.clock.Now())
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		if claims["type"] != "customer.plan_assigned" || claims["source"] == nil || claims["timestamp"] == nil || claims["event_timestamp"] == nil ||
			!strings.HasPrefix(claims["event_id"].(string), "event_") || claims["data"] == nil || id == "" {
			t.Errorf("claims %v, id %q", claims, id)
		}
		req, err := kindetest.NewWebhookRequest(t.Context(), "http://127.0.0.1:1/webhooks/kinde", body, id)
		if err != nil || req.Header.Get("Content-Type") != "application/jwt" || req.Header.Get("webhook-id") != id || req.Method != http.MethodPost {
			t.Errorf("request %v, err %v", req, err)
		}
	})
	forged := []struct {
		name string
		o    kindetest.WebhookOptions
	}{
		{"a webhook signed with another key does not verify", kindetest.WebhookOptions{Key: kindetest.OtherKey()}},
		{"another key under the tenant's kid does not verify", kindetest.WebhookOptions{Key: kindetest.OtherKey(), KeyID: h.srv.KeyID()}},
		{"an alg:none webhook does not verify", kindetest.WebhookOptions{Alg: "none"}},
		{"an expired webhook does not verify", kindetest.WebhookOptions{IssuedAt: h.clock.Now().Add(-time.Hour), ExpiresAt: h.clock.Now().Add(-time.Minute)}},
	}
	for _, tc := range forged {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := h.srv.Webhook("customer.plan_changed", data, tc.o)
			if _, err := verifyWebhook(t, jwksURL, body, h.clock.Now()); err == nil {
				t.Error("forged webhook verified")
			}
		})
	}
	t.Run("webhook IDs differ per event", func(t *testing.T) {
		_, a := h.srv.Webhook("customer.agreement_cancelled", nil, kindetest.WebhookOptions{})
		_, b := h.srv.Webhook("customer.agreement_cancelled", nil, kindetest.WebhookOptions{})
		if a == b {
			t.Error("same webhook-id twice")
		}
	})
}

func TestFaultInjection(t *testing.T) {
	h := setup(t)
	nina := kindetest.NewUser("nina@example.com", "Nina")
	t.Run("SetFailure makes a path fail until cleared", func(t *testing.T) {
		f := newFlow()
		code := h.code(t, nina, f)
		h.srv.SetFailure("/oauth2/token", http.StatusInternalServerError)
		_, err := h.conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier))
		if _, status := oauthErr(t, err); status != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", status)
		}
		h.srv.SetFailure("/oauth2/token", 0)
		if _, err := h.conf.Exchange(t.Context(), code, oauth2.VerifierOption(f.verifier)); err != nil {
			t.Errorf("exchange after clearing the failure: %v", err)
		}
	})
	t.Run("SetDelay outlasts a client timeout and honours cancellation", func(t *testing.T) {
		h.srv.SetDelay("/.well-known/jwks", time.Minute)
		defer h.srv.SetDelay("/.well-known/jwks", 0)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+"/.well-known/jwks", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			t.Fatal("request finished despite the delay")
		}
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("err %v after %v", err, time.Since(start))
		}
	})
	t.Run("a short delay only slows the answer", func(t *testing.T) {
		h.srv.SetDelay("/.well-known/jwks.json", 100*time.Millisecond)
		start := time.Now()
		if st := getJSON(t, t.Context(), h.srv.URL+"/.well-known/jwks.json", "", nil); st != http.StatusOK || time.Since(start) < 100*time.Millisecond {
			t.Errorf("status %d after %v", st, time.Since(start))
		}
	})
}
