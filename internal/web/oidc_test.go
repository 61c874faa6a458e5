package web_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

// tokenRewriter sits in mockoidc's middleware chain: it remembers the nonce
// of the last authorize request and, when armed, replaces the ID token of
// the next token response with one it builds, so tests can hand our
// callback every kind of bad ID token through the real protocol.
type tokenRewriter struct {
	m *mockoidc.MockOIDC

	mu      sync.Mutex
	nonce   string
	rewrite func(claims jwt.MapClaims) string
}

func (tr *tokenRewriter) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case mockoidc.AuthorizationEndpoint:
			tr.mu.Lock()
			tr.nonce = r.URL.Query().Get("nonce")
			tr.mu.Unlock()
		case mockoidc.TokenEndpoint:
			tr.mu.Lock()
			rewrite := tr.rewrite
			tr.rewrite = nil
			nonce := tr.nonce
			tr.mu.Unlock()
			if rewrite != nil {
				rec := &recorder{header: http.Header{}}
				next.ServeHTTP(rec, r)
				var body map[string]any
				if err := json.Unmarshal(rec.body.Bytes(), &body); err == nil && body["id_token"] != nil {
					now := time.Now()
					body["id_token"] = rewrite(jwt.MapClaims{
						"iss": tr.m.Issuer(), "aud": tr.m.ClientID, "sub": "mock-user-1", "email": "grace@example.com",
						"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": nonce,
					})
				}
				out, _ := json.Marshal(body)
				for k, v := range rec.header {
					w.Header()[k] = v
				}
				w.Header().Del("Content-Length")
				w.WriteHeader(rec.status)
				_, _ = w.Write(out)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type recorder struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func (tr *tokenRewriter) arm(f func(jwt.MapClaims) string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.rewrite = f
}

func startMockOIDC(t *testing.T) (*mockoidc.MockOIDC, *tokenRewriter) {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &tokenRewriter{m: m}
	if err := m.AddMiddleware(tr.middleware); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m, tr
}

func mockOIDCClient(m *mockoidc.MockOIDC) func(string) *authn.OIDC {
	return func(redirect string) *authn.OIDC {
		// A standard provider: the scopes are configured (mockoidc knows no "offline").
		return authn.NewOIDC(authn.OIDCConfig{IssuerURL: m.Issuer(), ClientID: m.ClientID, ClientSecret: m.ClientSecret,
			RedirectURL: redirect, Scopes: []string{"openid", "profile", "email"}})
	}
}

func signWith(kp *mockoidc.Keypair) func(jwt.MapClaims) string {
	return func(c jwt.MapClaims) string {
		s, err := kp.SignJWT(c)
		if err != nil {
			panic(err)
		}
		return s
	}
}

// callbackURL walks the sign-in up to the callback without following it.
func callbackURL(t *testing.T, h *harness) *url.URL {
	t.Helper()
	c := h.noRedirects()
	next := h.url + "/login"
	for range 5 {
		res, err := c.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		loc, err := res.Location()
		if err != nil {
			t.Fatalf("no redirect from %s (%d)", next, res.StatusCode)
		}
		if strings.HasPrefix(loc.String(), h.url+"/callback") {
			return loc
		}
		next = loc.String()
	}
	t.Fatal("never reached the callback")
	return nil
}

func TestSignInWithAStandardOIDCProvider(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			m, tr := startMockOIDC(t)
			h := newHarness(t, backend, mockOIDCClient(m))

			t.Run("the full authorization-code flow signs the user in and upserts them", func(t *testing.T) {
				m.QueueUser(&mockoidc.MockUser{Subject: "mock-user-1", Email: "grace@example.com", EmailVerified: true})
				res := h.get("/login?return_to=/billing")
				if res.status != http.StatusOK || res.url.Path != "/billing" {
					t.Fatalf("status %d at %s:\n%s", res.status, res.url, res.body)
				}
				u, err := h.store.GetUserBySubject(t.Context(), "mock-user-1")
				if err != nil || u.Email != "grace@example.com" || u.Name != "grace" {
					t.Fatalf("user %+v, %v", u, err)
				}
				mustNotContain(t, h.get("/").body, "Development sign-in.")
			})
			t.Run("the authorize request carries PKCE S256, state and nonce", func(t *testing.T) {
				h.signOut()
				c := h.noRedirects()
				res, err := c.Get(h.url + "/login")
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				loc, _ := res.Location()
				q := loc.Query()
				if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) < 43 || len(q.Get("state")) < 40 ||
					len(q.Get("nonce")) < 40 || q.Get("scope") != "openid profile email" || q.Get("redirect_uri") != h.url+"/callback" {
					t.Fatalf("authorize request %v", q)
				}
			})
			t.Run("a tampered state is refused", func(t *testing.T) {
				m.QueueUser(&mockoidc.MockUser{Subject: "mock-user-1", Email: "grace@example.com"})
				cb := callbackURL(t, h)
				q := cb.Query()
				q.Set("state", q.Get("state")+"x")
				cb.RawQuery = q.Encode()
				res := h.get(cb.String())
				if res.status != http.StatusBadRequest {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, res.body, "Sign-in did not complete", "unknown, expired or already used")
				mustContain(t, h.get("/").body, `href="/login"`)
			})
			t.Run("a replayed callback is refused", func(t *testing.T) {
				m.QueueUser(&mockoidc.MockUser{Subject: "mock-user-1", Email: "grace@example.com"})
				cb := callbackURL(t, h)
				if res := h.get(cb.String()); res.status != http.StatusOK {
					t.Fatalf("first use: %d %s", res.status, res.body)
				}
				h.signOut()
				res := h.get(cb.String())
				if res.status != http.StatusBadRequest {
					t.Fatalf("replay: %d", res.status)
				}
				mustContain(t, h.get("/").body, `href="/login"`)
			})

			other, err := mockoidc.RandomKeypair(2048)
			if err != nil {
				t.Fatal(err)
			}
			unsigned := func(c jwt.MapClaims) string {
				head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
				body, _ := json.Marshal(c)
				return head + "." + base64.RawURLEncoding.EncodeToString(body) + "."
			}
			for _, tc := range []struct {
				name   string
				mutate func(jwt.MapClaims)
				sign   func(jwt.MapClaims) string
				ok     bool
				why    string // what the refusal must be logged for
			}{
				{"an ID token built like the provider's is accepted (the harness itself changes nothing)", func(jwt.MapClaims) {}, signWith(m.Keypair), true, ""},
				{"an ID token with another nonce is refused", func(c jwt.MapClaims) { c["nonce"] = "not-the-nonce-we-sent" }, signWith(m.Keypair), false, "nonce does not match"},
				{"an expired ID token is refused", func(c jwt.MapClaims) {
					c["exp"] = time.Now().Add(-time.Hour).Unix()
					c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
				}, signWith(m.Keypair), false, "token is expired"},
				{"an ID token for another audience is refused", func(c jwt.MapClaims) { c["aud"] = "another-client" }, signWith(m.Keypair), false, "expected audience"},
				{"an ID token from another issuer is refused", func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }, signWith(m.Keypair), false, "issued by a different provider"},
				{"an ID token signed by another key is refused", func(jwt.MapClaims) {}, signWith(other), false, "failed to verify signature"},
				{"an unsigned alg-none ID token is refused", func(jwt.MapClaims) {}, unsigned, false, "unexpected signature algorithm"},
				{"an ID token whose subject userinfo does not confirm is refused", func(c jwt.MapClaims) { c["sub"] = "someone-else" }, signWith(m.Keypair), false, "userinfo speaks of another subject"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					h.signOut()
					m.QueueUser(&mockoidc.MockUser{Subject: "mock-user-1", Email: "grace@example.com"})
					tr.arm(func(c jwt.MapClaims) string { tc.mutate(c); return tc.sign(c) })
					res := h.get("/login")
					home := h.get("/").body
					if tc.ok {
						if res.status != http.StatusOK || !strings.Contains(home, "Hello, grace") {
							t.Fatalf("status %d:\n%s", res.status, res.body)
						}
						return
					}
					if res.status != http.StatusBadRequest {
						t.Fatalf("status %d:\n%s", res.status, res.body)
					}
					mustContain(t, res.body, "Sign-in did not complete", "could not be verified")
					if !strings.Contains(h.logs.String(), tc.why) {
						t.Fatalf("refused, but not because %q:\n%s", tc.why, h.logs.String())
					}
					mustContain(t, home, `href="/login"`)
					if _, err := h.store.GetUserBySubject(t.Context(), "someone-else"); err == nil {
						t.Fatal("a user was created from a refused token")
					}
				})
			}
			t.Run("an error with a state this browser never sent reflects nothing", func(t *testing.T) {
				res := h.get("/callback?error=access_denied&error_description=" + url.QueryEscape("Your account is locked, call <script>x</script>") + "&state=forged")
				if res.status != http.StatusBadRequest {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, res.body, "unknown, expired or already used")
				mustNotContain(t, res.body, "Your account is locked", "<script>x")
			})
			t.Run("codes, states and tokens stay out of the logs", func(t *testing.T) {
				logs := h.logs.String()
				mustNotContain(t, logs, "code=", "state=", "eyJ")
				mustContain(t, logs, "signed in", "sign-in refused")
			})
		})
	}
}

func TestAnUnreachableProviderGivesAClearPage(t *testing.T) {
	h := newHarness(t, store.BackendSQLite, func(redirect string) *authn.OIDC {
		return authn.NewOIDC(authn.OIDCConfig{IssuerURL: "http://127.0.0.1:1", ClientID: "x", ClientSecret: "y", RedirectURL: redirect})
	})
	res := h.get("/login")
	if res.status != http.StatusBadGateway {
		t.Fatalf("status %d", res.status)
	}
	mustContain(t, res.body, "The sign-in service cannot be reached", "Try again in a minute")
	if res := h.get("/healthz"); res.status != http.StatusOK {
		t.Fatalf("healthz %d", res.status)
	}
}
