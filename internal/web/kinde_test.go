package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/kindetest"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

const testAudience = "https://api.todo-mcp.example"

func kindeClient(k *kindetest.Server, publicURL string) func(string) *authn.OIDC {
	return func(redirect string) *authn.OIDC {
		k.AllowRedirect(redirect)
		k.AllowLogoutRedirect(publicURL + "/")
		return authn.NewOIDC(authn.OIDCConfig{IssuerURL: k.URL, ClientID: k.ClientID, ClientSecret: k.ClientSecret,
			RedirectURL: redirect, Audience: testAudience})
	}
}

func TestSignInWithKinde(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			k := kindetest.New(t, kindetest.WithAudience(testAudience))
			h := newHarness(t, backend, func(redirect string) *authn.OIDC {
				return kindeClient(k, strings.TrimSuffix(redirect, "/callback"))(redirect)
			})
			grace := kindetest.NewUser("grace@example.com", "Grace Hopper")

			t.Run("sign-up opens Kinde's sign-up screen with Kinde's scopes, PKCE and the audience", func(t *testing.T) {
				k.SetNextUser(grace)
				res := h.get("/signup?plan_interest=pro")
				if res.status != http.StatusOK || res.url.Path != "/" {
					t.Fatalf("status %d at %s:\n%s", res.status, res.url, res.body)
				}
				reqs := k.AuthorizeRequests()
				q := reqs[len(reqs)-1]
				for name, want := range map[string]string{
					"prompt": "create", "scope": "openid profile email offline", "audience": testAudience,
					"code_challenge_method": "S256", "plan_interest": "pro", "response_type": "code", "redirect_uri": h.url + "/callback",
				} {
					if q.Get(name) != want {
						t.Errorf("%s = %q, want %q", name, q.Get(name), want)
					}
				}
				mustContain(t, res.body, "Hello, Grace Hopper", "grace@example.com")
			})
			t.Run("a signed-in user sent to pick a plan goes through Kinde with plan_interest", func(t *testing.T) {
				k.SetNextUser(grace)
				before := len(k.AuthorizeRequests())
				res := h.get("/login?plan_interest=pro&return_to=/billing")
				if res.url.Path != "/billing" || len(k.AuthorizeRequests()) != before+1 {
					t.Fatalf("at %s after %d authorize requests", res.url, len(k.AuthorizeRequests())-before)
				}
				if q := k.AuthorizeRequests()[before]; q.Get("plan_interest") != "pro" {
					t.Fatalf("authorize %v", q)
				}
				// Without a plan to pick, a signed-in user is not sent to Kinde.
				h.get("/login")
				if len(k.AuthorizeRequests()) != before+1 {
					t.Fatal("a plain /login went to Kinde again")
				}
			})
			t.Run("the user is kept under Kinde's subject", func(t *testing.T) {
				u, err := h.store.GetUserBySubject(t.Context(), grace.Subject)
				if err != nil || !strings.HasPrefix(u.Subject, "kp_") || u.Email != "grace@example.com" || u.Name != "Grace Hopper" {
					t.Fatalf("user %+v, %v", u, err)
				}
			})
			t.Run("the refresh token is stored sealed, and it is Kinde's live one", func(t *testing.T) {
				u, _ := h.store.GetUserBySubject(t.Context(), grace.Subject)
				cred, err := h.store.GetProviderCredential(t.Context(), u.ID, authn.CredentialProvider)
				if err != nil {
					t.Fatal(err)
				}
				refresh, err := h.sealer.Open(cred.Sealed, authn.CredentialAD(u.ID))
				if err != nil || len(refresh) == 0 {
					t.Fatalf("unseal: %v", err)
				}
				if strings.Contains(string(cred.Sealed), string(refresh)) {
					t.Fatal("stored in clear")
				}
				oc := &oauth2.Config{ClientID: k.ClientID, ClientSecret: k.ClientSecret,
					Endpoint: oauth2.Endpoint{TokenURL: k.URL + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
				tok, err := oc.TokenSource(context.Background(), &oauth2.Token{RefreshToken: string(refresh)}).Token()
				if err != nil || tok.AccessToken == "" {
					t.Fatalf("Kinde refused the stored refresh token: %v", err)
				}
			})
			t.Run("signing out ends the Kinde session too and comes back home", func(t *testing.T) {
				res := h.post("/logout", url.Values{"csrf_token": {h.csrf(h.get("/"))}})
				if res.status != http.StatusOK || res.url.Host != strings.TrimPrefix(h.url, "http://") || res.url.Path != "/" {
					t.Fatalf("status %d at %s", res.status, res.url)
				}
				mustContain(t, res.body, `href="/login"`)
				logouts := k.LogoutRequests()
				if len(logouts) != 1 || logouts[0].Get("redirect") != h.url+"/" {
					t.Fatalf("Kinde logout requests: %v", logouts)
				}
			})
			t.Run("the sign-out form may redirect to Kinde under the CSP", func(t *testing.T) {
				csp := h.get("/").header.Get("Content-Security-Policy")
				if !strings.Contains(csp, "form-action 'self' "+k.URL) {
					t.Fatalf("CSP %q", csp)
				}
			})
			t.Run("signing in again updates the email and keeps the account", func(t *testing.T) {
				before, _ := h.store.GetUserBySubject(t.Context(), grace.Subject)
				changed := grace
				changed.Email = "grace@navy.example"
				k.SetNextUser(changed)
				if res := h.get("/login"); res.status != http.StatusOK {
					t.Fatalf("status %d", res.status)
				}
				after, err := h.store.GetUserBySubject(t.Context(), grace.Subject)
				if err != nil || after.ID != before.ID || after.Email != "grace@navy.example" {
					t.Fatalf("after: %+v, %v", after, err)
				}
			})
			t.Run("Kinde's refusal becomes a readable page", func(t *testing.T) {
				h.signOut()
				k.FailNextAuthorize("access_denied", "The user cancelled the sign-in")
				res := h.get("/login")
				if res.status != http.StatusBadRequest {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, res.body, "Sign-in did not complete", "cancelled or refused at the identity provider (access_denied)")
				mustNotContain(t, res.body, "The user cancelled the sign-in")
				mustContain(t, h.logs.String(), "The user cancelled the sign-in")
			})
		})
	}
}
