package mcptools_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/kindetest"
	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// kindeSecret looks like the output of openssl rand -base64 32.
const kindeSecret = "q3Vt9Lx2ZpR7mK1cW8bN4yHs6JdF0gTa5Ue+Qo/ArIk="

// TestTheFreePlanStoryWithKinde is issue 5's user story through the MCP
// tools, with Kinde (the Kinde-shaped server) as the source of truth: five
// todos, the sixth refused with the upgrade page, the upgrade done at
// Kinde, "refresh my billing status", creating again; then a cancelled
// subscription back to the free limit with nothing lost.
func TestTheFreePlanStoryWithKinde(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		k := kindetest.New(t)
		e := newEnv(t, backend, withVar("KINDE_ISSUER_URL", k.URL), withVar("KINDE_CLIENT_ID", k.ClientID),
			withVar("KINDE_CLIENT_SECRET", k.ClientSecret), withVar("JWT_SECRET", kindeSecret))
		k.AllowRedirect(e.cfg.PublicURL + "/callback")

		// Sign in at Kinde as the authserver does, keeping the sealed refresh token.
		ku := kindetest.NewUser("grace@example.com", "Grace Hopper")
		u := kindeSignIn(t, e, k, ku)
		if err := e.creds.Save(e.token(u)); err != nil {
			t.Fatal(err)
		}
		cs := e.session()

		for i := range 5 {
			callOK(t, cs, "create_todo", map[string]any{"title": fmt.Sprintf("todo %d", i)}, nil)
		}
		t.Run("the sixth todo is refused with the upgrade page", func(t *testing.T) {
			msg := callErr(t, cs, "create_todo", map[string]any{"title": "one too many"})
			mustContain(t, msg, "limit reached (5/5)", e.cfg.PublicURL+"/billing/upgrade")
		})
		t.Run("upgrade_plan gives the upgrade page", func(t *testing.T) {
			var res mcptools.UpgradePlanResult
			callOK(t, cs, "upgrade_plan", map[string]any{}, &res)
			if res.UpgradeURL != e.cfg.PublicURL+"/billing/upgrade" || res.Plan.Source != "kinde" {
				t.Fatalf("%+v", res)
			}
		})
		t.Run("after the upgrade at Kinde, refreshing shows pro and creating works again", func(t *testing.T) {
			k.SetPlan(ku.Subject, []kindetest.Plan{{Key: "pro", Name: "Pro", SubscribedOn: time.Now()}}, nil)
			var res mcptools.RefreshBillingStatusResult
			callOK(t, cs, "refresh_billing_status", map[string]any{}, &res)
			st := res.Plan
			if st.Plan != "pro" || st.Limit != nil || st.Stale || st.Source != "kinde" || st.Used != 5 {
				t.Fatalf("status %+v", st)
			}
			callOK(t, cs, "create_todo", map[string]any{"title": "the sixth, on pro"}, nil)
		})
		t.Run("Kinde failing keeps the plan and says it may be stale", func(t *testing.T) {
			k.SetFailure("/account_api/v1/entitlements", http.StatusInternalServerError)
			defer k.SetFailure("/account_api/v1/entitlements", 0)
			var res mcptools.RefreshBillingStatusResult
			callOK(t, cs, "refresh_billing_status", map[string]any{}, &res)
			st := res.Plan
			if st.Plan != "pro" || !st.Stale || st.StaleReason == "" {
				t.Fatalf("status %+v", st)
			}
		})
		t.Run("a cancelled subscription returns to the free limit without losing data", func(t *testing.T) {
			k.SetPlan(ku.Subject, nil, nil)
			var res mcptools.RefreshBillingStatusResult
			callOK(t, cs, "refresh_billing_status", map[string]any{}, &res)
			st := res.Plan
			if st.Plan != "free" || st.Limit == nil || *st.Limit != 5 || st.Used != 6 {
				t.Fatalf("status %+v", st)
			}
			mustContain(t, callErr(t, cs, "create_todo", map[string]any{"title": "above the limit"}), "limit reached (6/5)")
			var list mcptools.ListTodosResult
			callOK(t, cs, "list_todos", map[string]any{}, &list)
			if len(list.Todos) != 6 {
				t.Fatalf("%d todos listed", len(list.Todos))
			}
		})
	})
}

// kindeSignIn runs Kinde's authorization-code flow through authn.OIDC and
// stores the sealed refresh token, as the authserver's callback does.
func kindeSignIn(t *testing.T, e *env, k *kindetest.Server, ku kindetest.User) store.User {
	t.Helper()
	ctx := t.Context()
	oidc := authn.NewOIDC(authn.OIDCConfig{IssuerURL: k.URL, ClientID: k.ClientID, ClientSecret: k.ClientSecret, RedirectURL: e.cfg.PublicURL + "/callback"})
	start := authn.NewAuthStart()
	authURL, err := oidc.AuthCodeURL(ctx, start, nil)
	if err != nil {
		t.Fatal(err)
	}
	k.SetNextUser(ku)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize answered %d, Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	in, err := oidc.Exchange(ctx, loc.Query().Get("code"), start)
	if err != nil || in.RefreshToken == "" {
		t.Fatalf("exchange: %v (refresh token %v)", err, in != nil && in.RefreshToken != "")
	}
	u, err := e.st.UpsertUser(ctx, store.Identity{Subject: in.Subject, Email: in.Email, Name: strings.TrimSpace(in.Name)})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := authn.NewSealer(e.cfg.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.SaveProviderCredential(ctx, u.ID, authn.CredentialProvider, sealer.Seal([]byte(in.RefreshToken), authn.CredentialAD(u.ID))); err != nil {
		t.Fatal(err)
	}
	return u
}
