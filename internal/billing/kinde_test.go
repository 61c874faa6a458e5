package billing_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/kindetest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

func intp(n int) *int { return &n }

func TestKindeEntitlementsDecideTheLimit(t *testing.T) {
	others := func(n int) []kindetest.Entitlement {
		var ents []kindetest.Entitlement
		for i := range n {
			ents = append(ents, kindetest.Entitlement{FeatureKey: fmt.Sprintf("feature_%d", i), LimitMax: intp(3)})
		}
		return ents
	}
	plan := func(keys ...string) []kindetest.Plan {
		var ps []kindetest.Plan
		for _, k := range keys {
			ps = append(ps, kindetest.Plan{Key: k, Name: k, SubscribedOn: time.Now()})
		}
		return ps
	}
	tests := []struct {
		name      string
		plans     []kindetest.Plan
		ents      []kindetest.Entitlement
		wantPlan  string
		wantLimit string
	}{
		{"a user with no plan at all gets the free limit", nil, nil, "free", "5"},
		{"the pro plan without a todos entitlement is unlimited", plan("pro"), nil, "pro", "unlimited"},
		{"a todos entitlement without a maximum is unlimited", plan("team"), []kindetest.Entitlement{{FeatureKey: "todos"}}, "team", "unlimited"},
		{"Kinde's 2147483647 maximum means unlimited", plan("team"), []kindetest.Entitlement{{FeatureKey: "todos", LimitMax: intp(2147483647)}}, "team", "unlimited"},
		{"a todos entitlement with a maximum of 25 gives 25", plan("starter"), []kindetest.Entitlement{{FeatureKey: "todos", LimitMax: intp(25)}}, "starter", "25"},
		{"the todos entitlement wins over a pro plan key", plan("pro"), []kindetest.Entitlement{{FeatureKey: "todos", LimitMax: intp(100)}}, "pro", "100"},
		{"a plan that is not pro and has no todos entitlement is free", plan("hobby"), nil, "hobby", "5"},
		{"other features' limits are not the todo limit", plan("hobby"), others(3), "hobby", "5"},
		{"the todos entitlement is found on the fourth page", plan("starter"),
			append(others(7), kindetest.Entitlement{FeatureKey: "todos", LimitMax: intp(40)}), "starter", "40"},
		{"a pro plan listed second still counts", plan("addon", "pro"), others(1), "pro", "unlimited"},
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			for i, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					u, ku := h.newUser(t, fmt.Sprintf("User %d", i))
					h.k.SetPlan(ku.Subject, tc.plans, tc.ents)
					st := h.refresh(t, u)
					if st.Stale || st.Plan != tc.wantPlan || limitString(st) != tc.wantLimit || st.Source != "kinde" {
						t.Fatalf("status %+v (limit %s), want plan %s with limit %s", st, limitString(st), tc.wantPlan, tc.wantLimit)
					}
					stored := h.reload(t, u)
					if stored.Plan.Source != "kinde" || stored.Plan.RefreshedAt == nil || stored.Plan.Plan != tc.wantPlan {
						t.Fatalf("stored plan %+v", stored.Plan)
					}
					if got := limitString(h.svc.Status(stored)); got != tc.wantLimit {
						t.Fatalf("the stored plan gives limit %s, want %s", got, tc.wantLimit)
					}
				})
			}
			t.Run("more pages than the bound keep the last known plan", func(t *testing.T) {
				u, ku := h.newUser(t, "Many Features")
				h.setPro(ku)
				h.refresh(t, u)
				h.k.SetPlan(ku.Subject, plan("hobby"), others(60)) // 30 pages of 2 > 20
				st := h.refresh(t, u)
				if !st.Stale || !st.Unlimited() || !strings.Contains(st.StaleReason, "try again") {
					t.Fatalf("status %+v", st)
				}
			})
		})
	}
}

func TestUpgradeThenRefreshLiftsTheLimit(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			u, ku := h.newUser(t, "Ada Lovelace")
			if st := h.refresh(t, u); st.Plan != "free" || limitString(st) != "5" {
				t.Fatalf("before the upgrade: %+v", st)
			}
			for i := range freeLimit {
				if err := h.create(t, u, fmt.Sprintf("todo %d", i)); err != nil {
					t.Fatalf("create %d: %v", i, err)
				}
			}
			if err := h.create(t, u, "one too many"); !errors.Is(err, store.ErrLimitReached) {
				t.Fatalf("the 6th todo on the free plan: %v", err)
			}
			h.setPro(ku) // what Kinde's portal does when the user pays
			st := h.refresh(t, u)
			if st.Plan != "pro" || !st.Unlimited() || st.Remaining != nil || st.Used != freeLimit || st.Stale {
				t.Fatalf("after the upgrade: %+v", st)
			}
			for i := range 3 {
				if err := h.create(t, u, fmt.Sprintf("pro todo %d", i)); err != nil {
					t.Fatalf("create on pro: %v", err)
				}
			}
		})
	}
}

func TestTheRefreshTokenIsRotatedAndStoredSealed(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			u, ku := h.newUser(t, "Grace Hopper")
			h.setPro(ku)
			previous, _ := h.storedRefreshToken(t, u)
			for i := range 3 {
				t.Run(fmt.Sprintf("refresh %d stores a new token that Kinde then accepts", i+1), func(t *testing.T) {
					if st := h.refresh(t, u); st.Stale || !st.Unlimited() {
						t.Fatalf("status %+v", st)
					}
					token, sealed := h.storedRefreshToken(t, u)
					if token == previous {
						t.Fatal("the stored refresh token was not rotated")
					}
					if strings.Contains(string(sealed), token) {
						t.Fatal("the refresh token is stored in clear")
					}
					if _, err := h.sealer.Open(sealed, authn.CredentialAD(u.ID+1)); err == nil {
						t.Fatal("the sealed token opens for another user's row")
					}
					if got := h.k.RefreshTokens(ku.Subject); got != i+2 {
						t.Fatalf("Kinde issued %d refresh tokens, want %d", got, i+2)
					}
					previous = token
				})
			}
		})
	}
}

func TestARefusedRefreshTokenKeepsThePlanAndAsksToSignInAgain(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			u, ku := h.newUser(t, "Alan Turing")
			h.setPro(ku)
			h.refresh(t, u)
			before := h.reload(t, u)
			h.k.RevokeUser(ku.Subject)
			h.k.SetPlan(ku.Subject, nil, nil)
			st := h.refresh(t, u)
			if !st.Stale || !st.Unlimited() || st.Plan != "pro" {
				t.Fatalf("status %+v: want the last known pro plan, marked stale", st)
			}
			for _, want := range []string{"sign in again at " + publicURL + "/login", "last known plan (pro"} {
				if !strings.Contains(st.StaleReason, want) {
					t.Errorf("reason %q lacks %q", st.StaleReason, want)
				}
			}
			after := h.reload(t, u)
			if !after.Plan.RefreshedAt.Equal(*before.Plan.RefreshedAt) || after.Plan.Plan != "pro" {
				t.Fatalf("the stored plan changed: %+v", after.Plan)
			}
			t.Run("and its upgrade link is the sign-in with the pro plan pre-selected", func(t *testing.T) {
				link, err := h.svc.UpgradeURL(t.Context(), u, publicURL+"/billing/return")
				if err != nil || link != publicURL+"/login?plan_interest=pro&return_to=%2Fbilling%2Freturn" {
					t.Fatalf("link %q, %v", link, err)
				}
			})
		})
	}
}

func TestAUserWithoutAKindeSignIn(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			ku := kindetest.NewUser("nobody@example.com", "No Token")
			h.setPro(ku)
			u, err := h.st.UpsertUser(t.Context(), store.Identity{Subject: ku.Subject, Email: ku.Email, Name: ku.Name})
			if err != nil {
				t.Fatal(err)
			}
			t.Run("is free until Kinde confirms more, and told to sign in", func(t *testing.T) {
				st := h.refresh(t, u)
				if !st.Stale || st.Plan != "free" || limitString(st) != "5" || !strings.Contains(st.StaleReason, "sign in again") {
					t.Fatalf("status %+v", st)
				}
			})
			t.Run("gets the sign-in URL with plan_interest as the upgrade link", func(t *testing.T) {
				link, err := h.svc.UpgradeURL(t.Context(), u, publicURL+"/billing/return")
				if err != nil {
					t.Fatal(err)
				}
				parsed, _ := url.Parse(link)
				if parsed.Scheme+"://"+parsed.Host+parsed.Path != publicURL+"/login" ||
					parsed.Query().Get("plan_interest") != "pro" || parsed.Query().Get("return_to") != "/billing/return" {
					t.Fatalf("link %q", link)
				}
				if n := len(h.k.PortalLinkRequests()); n != 0 {
					t.Fatalf("%d portal links were requested", n)
				}
			})
			t.Run("a return URL elsewhere comes back to the billing page", func(t *testing.T) {
				link, _ := h.svc.UpgradeURL(t.Context(), u, "https://evil.example/steal")
				if !strings.HasSuffix(link, "return_to=%2Fbilling") {
					t.Fatalf("link %q", link)
				}
			})
		})
	}
}

func TestWhenKindeFailsTheLastKnownPlanIsKept(t *testing.T) {
	failures := []struct {
		name       string
		path       string
		status     int
		delay      time.Duration
		wantReason string
	}{
		{"the token endpoint answers 500", "/oauth2/token", http.StatusInternalServerError, 0, "could not be reached or answered with an error"},
		{"the entitlements answer 500", "/account_api/v1/entitlements", http.StatusInternalServerError, 0, "could not be reached or answered with an error"},
		{"the entitlements answer 401", "/account_api/v1/entitlements", http.StatusUnauthorized, 0, "could not be reached or answered with an error"},
		{"the token endpoint hangs", "/oauth2/token", 0, hang, "did not answer in time"},
		{"the entitlements hang", "/account_api/v1/entitlements", 0, hang, "did not answer in time"},
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			for _, f := range failures {
				t.Run("when "+f.name, func(t *testing.T) {
					inject := func() {
						if f.status != 0 {
							h.k.SetFailure(f.path, f.status)
						}
						if f.delay != 0 {
							h.k.SetDelay(f.path, f.delay)
						}
					}
					t.Cleanup(func() { h.k.SetFailure(f.path, 0); h.k.SetDelay(f.path, 0) })

					t.Run("a pro user stays pro, marked stale with a clear message", func(t *testing.T) {
						u, ku := h.newUser(t, "Pro "+f.name)
						h.setPro(ku)
						h.refresh(t, u)
						before := h.reload(t, u)
						h.k.SetPlan(ku.Subject, nil, nil)
						inject()
						defer func() { h.k.SetFailure(f.path, 0); h.k.SetDelay(f.path, 0) }()
						began := time.Now()
						st := h.refresh(t, u)
						if took := time.Since(began); took > hang/2 {
							t.Fatalf("the refresh took %s: the client timeout did not apply", took)
						}
						if !st.Stale || st.Plan != "pro" || !st.Unlimited() {
							t.Fatalf("status %+v", st)
						}
						if !strings.Contains(st.StaleReason, f.wantReason) || !strings.Contains(st.StaleReason, "last known plan (pro") {
							t.Fatalf("reason %q, want it to say %q and name the kept plan", st.StaleReason, f.wantReason)
						}
						after := h.reload(t, u)
						if after.Plan.Plan != "pro" || !after.Plan.RefreshedAt.Equal(*before.Plan.RefreshedAt) {
							t.Fatalf("the stored plan changed: %+v", after.Plan)
						}
					})
					t.Run("a free user is not upgraded on a plan Kinde never confirmed", func(t *testing.T) {
						u, ku := h.newUser(t, "Free "+f.name)
						h.refresh(t, u)
						h.setPro(ku)
						inject()
						defer func() { h.k.SetFailure(f.path, 0); h.k.SetDelay(f.path, 0) }()
						st := h.refresh(t, u)
						if !st.Stale || st.Plan != "free" || limitString(st) != "5" {
							t.Fatalf("status %+v", st)
						}
						if got := h.svc.LimitFor(h.reload(t, u)); got != freeLimit {
							t.Fatalf("limit %d", got)
						}
					})
				})
			}
			t.Run("once Kinde answers again the plan follows it", func(t *testing.T) {
				u, ku := h.newUser(t, "Recovered")
				h.k.SetFailure("/account_api/v1/entitlements", http.StatusInternalServerError)
				h.setPro(ku)
				if st := h.refresh(t, u); !st.Stale {
					t.Fatalf("status %+v", st)
				}
				h.k.SetFailure("/account_api/v1/entitlements", 0)
				if st := h.refresh(t, u); st.Stale || !st.Unlimited() {
					t.Fatalf("status %+v", st)
				}
			})
		})
	}
}

func TestEnsureFreshAsksKindeOnlyWhenThePlanIsOld(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend, tuning{service: func(c *billing.ServiceConfig) { c.RefreshMaxAge = 10 * time.Minute }})
			u, ku := h.newUser(t, "Katherine Johnson")
			h.setLimit(ku, "starter", 10)
			h.refresh(t, u)
			calls := func() int { return h.k.RefreshTokens(ku.Subject) }

			t.Run("a plan checked a minute ago is used without asking Kinde", func(t *testing.T) {
				h.clock.Advance(time.Minute)
				before := calls()
				st, err := h.svc.EnsureFresh(t.Context(), h.reload(t, u))
				if err != nil || st.Stale || limitString(st) != "10" || calls() != before {
					t.Fatalf("status %+v, %v, Kinde called %d times", st, err, calls()-before)
				}
			})
			t.Run("a plan older than the max age is checked again and follows Kinde", func(t *testing.T) {
				h.setLimit(ku, "starter", 20)
				h.clock.Advance(10 * time.Minute)
				if st := h.svc.Status(h.reload(t, u)); !st.Stale || !strings.Contains(st.StaleReason, "last checked with Kinde") {
					t.Fatalf("the old plan is not marked stale: %+v", st)
				}
				before := calls()
				st, err := h.svc.EnsureFresh(t.Context(), h.reload(t, u))
				if err != nil || st.Stale || limitString(st) != "20" || calls() != before+1 {
					t.Fatalf("status %+v, %v, Kinde called %d times", st, err, calls()-before)
				}
			})
			t.Run("after a failure Kinde is not asked again for a minute", func(t *testing.T) {
				h.k.SetFailure("/account_api/v1/entitlements", http.StatusBadGateway)
				defer h.k.SetFailure("/account_api/v1/entitlements", 0)
				h.clock.Advance(11 * time.Minute)
				before := calls()
				first, _ := h.svc.EnsureFresh(t.Context(), h.reload(t, u))
				second, _ := h.svc.EnsureFresh(t.Context(), h.reload(t, u))
				if !first.Stale || !second.Stale || second.StaleReason != first.StaleReason || limitString(second) != "20" {
					t.Fatalf("first %+v, second %+v", first, second)
				}
				if calls() != before+1 {
					t.Fatalf("Kinde was asked %d times, want once", calls()-before)
				}
				h.clock.Advance(2 * time.Minute)
				_, _ = h.svc.EnsureFresh(t.Context(), h.reload(t, u))
				if calls() != before+2 {
					t.Fatalf("Kinde was not asked again after the pause")
				}
			})
		})
	}
}

func TestTheUpgradeLinkIsAOneTimePortalLink(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			u, _ := h.newUser(t, "Hedy Lamarr")
			returnURL := publicURL + "/billing/return"
			link, err := h.svc.UpgradeURL(t.Context(), u, returnURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Run("asked with subnav and sub_nav both plan_selection and the return URL", func(t *testing.T) {
				reqs := h.k.PortalLinkRequests()
				if len(reqs) != 1 {
					t.Fatalf("%d portal link requests", len(reqs))
				}
				q := reqs[0]
				if q.Get("subnav") != "plan_selection" || q.Get("sub_nav") != "plan_selection" || q.Get("return_url") != returnURL {
					t.Fatalf("query %v", q)
				}
			})
			t.Run("it leads to Kinde's portal, which comes back to the return URL once", func(t *testing.T) {
				if !strings.HasPrefix(link, h.k.URL+"/portal_redirect?key=") {
					t.Fatalf("link %q", link)
				}
				resp, err := noRedirect.Get(link)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != returnURL {
					t.Fatalf("portal answered %d to %q", resp.StatusCode, resp.Header.Get("Location"))
				}
			})
			t.Run("getting it rotated the refresh token too", func(t *testing.T) {
				if st := h.refresh(t, u); st.Stale {
					t.Fatalf("the refresh after the portal link failed: %+v", st)
				}
			})
			t.Run("Kinde failing to make one is an error, not a wrong link", func(t *testing.T) {
				h.k.SetFailure("/account_api/v1/portal_link", http.StatusInternalServerError)
				defer h.k.SetFailure("/account_api/v1/portal_link", 0)
				link, err := h.svc.UpgradeURL(t.Context(), u, returnURL)
				if !errors.Is(err, billing.ErrProviderUnavailable) || link != "" {
					t.Fatalf("link %q, err %v", link, err)
				}
			})
		})
	}
}

func TestConcurrentRefreshesOfOneUserAllSucceed(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			u, ku := h.newUser(t, "Margaret Hamilton")
			h.setPro(ku)
			errs := make(chan error, 8)
			for range 8 {
				go func() {
					st, err := h.svc.Refresh(t.Context(), u)
					if err == nil && (st.Stale || !st.Unlimited()) {
						err = fmt.Errorf("status %+v", st)
					}
					errs <- err
				}()
			}
			for range 8 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			// With no refresh-token overlap, a lost rotation fails here.
			if st := h.refresh(t, u); st.Stale {
				t.Fatalf("after the concurrent refreshes: %+v", st)
			}
		})
	}
}
