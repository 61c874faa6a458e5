package web_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/kindetest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

func TestDevelopmentBilling(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend, nil)
			h.devSignIn("ada@example.com", "Ada")
			u := mustUser(t, h, "dev:ada@example.com")
			for i := range 5 {
				if _, err := h.store.CreateTodo(t.Context(), u.ID, 5, store.NewTodo{Title: fmt.Sprintf("todo %d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			t.Run("the plan page shows the free plan full, and the plans, labelled as development billing", func(t *testing.T) {
				res := h.get("/billing")
				mustContain(t, res.body, "5</strong> of <strong>5</strong> todos", "development billing, no payment", "Upgrade to Pro")
			})
			t.Run("upgrade leads to a development checkout that asks for an explicit confirmation", func(t *testing.T) {
				res := h.get("/billing/upgrade")
				mustContain(t, res.body, "Development billing — no payment.", `id="confirm-upgrade"`)
				if got := mustUser(t, h, "dev:ada@example.com"); got.Plan.Plan != "free" {
					t.Fatalf("a GET changed the plan to %s", got.Plan.Plan)
				}
			})
			t.Run("the checkout without its CSRF token changes nothing", func(t *testing.T) {
				res := h.post("/billing/checkout", url.Values{"plan": {"pro"}})
				if res.status != http.StatusForbidden || mustUser(t, h, "dev:ada@example.com").Plan.Plan != "free" {
					t.Fatalf("status %d, plan %s", res.status, mustUser(t, h, "dev:ada@example.com").Plan.Plan)
				}
			})
			t.Run("confirming switches to pro, and a sixth todo fits", func(t *testing.T) {
				page := h.get("/billing/upgrade")
				res := h.post("/billing/checkout", url.Values{"csrf_token": {h.csrf(page)}, "plan": {"pro"}})
				mustContain(t, res.body, "You are on the pro plan", "unlimited todos stored on the <strong>pro</strong> plan")
				u := mustUser(t, h, "dev:ada@example.com")
				if _, err := h.store.CreateTodo(t.Context(), u.ID, h.billing.LimitFor(u), store.NewTodo{Title: "the sixth"}); err != nil {
					t.Fatalf("create on pro: %v", err)
				}
			})
			t.Run("downgrading keeps every todo and blocks creation above the limit", func(t *testing.T) {
				res := h.post("/billing/checkout", url.Values{"csrf_token": {h.csrf(h.get("/billing"))}, "plan": {"free"}})
				mustContain(t, res.body, "Nothing was deleted", "6</strong> of <strong>5</strong> todos")
				u := mustUser(t, h, "dev:ada@example.com")
				if u.TodoCount != 6 {
					t.Fatalf("%d todos after the downgrade", u.TodoCount)
				}
				if _, err := h.store.CreateTodo(t.Context(), u.ID, h.billing.LimitFor(u), store.NewTodo{Title: "the seventh"}); !errors.Is(err, store.ErrLimitReached) {
					t.Fatalf("create above the limit: %v", err)
				}
			})
			t.Run("an unknown plan is refused", func(t *testing.T) {
				res := h.post("/billing/checkout", url.Values{"csrf_token": {h.csrf(h.get("/billing"))}, "plan": {"platinum"}})
				if res.status != http.StatusUnprocessableEntity {
					t.Fatalf("status %d", res.status)
				}
			})
		})
	}
}

func TestKindeBillingThroughThePages(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			k := kindetest.New(t)
			grace := kindetest.NewUser("grace@example.com", "Grace Hopper")
			h := newHarnessWith(t, backend, func(redirect string) *authn.OIDC {
				return kindeClient(k, strings.TrimSuffix(redirect, "/callback"))(redirect)
			}, k)
			k.SetNextUser(grace)
			if res := h.get("/login"); res.status != http.StatusOK {
				t.Fatalf("sign-in: %d %s", res.status, res.body)
			}
			t.Run("a new user is on the free plan, checked with Kinde at sign-in", func(t *testing.T) {
				res := h.get("/billing")
				mustContain(t, res.body, "0</strong> of <strong>5</strong> todos", "Plans and payments are handled by Kinde", "Checked just now")
				mustNotContain(t, res.body, "development billing")
			})
			t.Run("upgrade goes to Kinde's plan selection and comes back to a refreshed plan", func(t *testing.T) {
				k.SetPlan(grace.Subject, []kindetest.Plan{{Key: "pro", Name: "Pro"}}, nil)
				res := h.get("/billing/upgrade")
				if res.url.Path != "/billing" {
					t.Fatalf("ended at %s", res.url)
				}
				mustContain(t, res.body, "Plan checked: you are on the pro plan", "unlimited todos stored on the <strong>pro</strong> plan")
				reqs := k.PortalLinkRequests()
				if len(reqs) != 1 || reqs[0].Get("subnav") != "plan_selection" || reqs[0].Get("sub_nav") != "plan_selection" ||
					reqs[0].Get("return_url") != h.url+"/billing/return" {
					t.Fatalf("portal link requests: %v", reqs)
				}
			})
			t.Run("a cancellation webhook brings the plan back to free, keeping the data", func(t *testing.T) {
				u := mustUser(t, h, grace.Subject)
				for i := range 7 {
					if _, err := h.store.CreateTodo(t.Context(), u.ID, store.NoLimit, store.NewTodo{Title: fmt.Sprintf("t%d", i)}); err != nil {
						t.Fatal(err)
					}
				}
				k.SetPlan(grace.Subject, nil, nil)
				body, id := k.Webhook("customer.agreement_cancelled", map[string]any{"user": map[string]any{"id": grace.Subject}}, kindetest.WebhookOptions{})
				req, err := kindetest.NewWebhookRequest(t.Context(), h.url+"/webhooks/kinde", body, id)
				if err != nil {
					t.Fatal(err)
				}
				if res := h.do(req); res.status != http.StatusOK {
					t.Fatalf("webhook: %d %s", res.status, res.body)
				}
				mustContain(t, h.get("/billing").body, "7</strong> of <strong>5</strong> todos stored on the <strong>free</strong> plan")
			})
			t.Run("a forged webhook is refused and changes nothing", func(t *testing.T) {
				k.SetPlan(grace.Subject, []kindetest.Plan{{Key: "pro", Name: "Pro"}}, nil)
				body, id := k.Webhook("customer.plan_assigned", map[string]any{"user": map[string]any{"id": grace.Subject}}, kindetest.WebhookOptions{Key: kindetest.OtherKey()})
				req, _ := kindetest.NewWebhookRequest(t.Context(), h.url+"/webhooks/kinde", body, id)
				if res := h.do(req); res.status != http.StatusUnauthorized {
					t.Fatalf("forged webhook: %d", res.status)
				}
				if u := mustUser(t, h, grace.Subject); u.Plan.Plan != "free" {
					t.Fatalf("plan %s after a forged webhook", u.Plan.Plan)
				}
			})
			t.Run("the checkout of development billing is refused in Kinde mode", func(t *testing.T) {
				res := h.post("/billing/checkout", url.Values{"csrf_token": {h.csrf(h.get("/billing"))}, "plan": {"pro"}})
				if res.status != http.StatusConflict {
					t.Fatalf("status %d", res.status)
				}
				if u := mustUser(t, h, grace.Subject); u.Plan.Plan != "free" {
					t.Fatalf("plan %s", u.Plan.Plan)
				}
			})
			t.Run("Kinde failing keeps the last known plan and says so", func(t *testing.T) {
				k.SetFailure("/account_api/v1/entitlements", http.StatusInternalServerError)
				res := h.post("/billing/refresh", url.Values{"csrf_token": {h.csrf(h.get("/billing"))}})
				mustContain(t, res.body, "free</strong> plan")
				if u := mustUser(t, h, grace.Subject); u.Plan.Plan != "free" {
					t.Fatalf("plan %s while Kinde fails", u.Plan.Plan)
				}
				k.SetFailure("/account_api/v1/entitlements", 0)
			})
		})
	}
}

func TestInProductionWithoutABillingProviderNobodyUpgradesForFree(t *testing.T) {
	h := newHarness(t, store.BackendSQLite, nil)
	h.devSignIn("ada@example.com", "Ada")
	form := h.csrf(h.get("/billing"))
	h.cfg.Env = config.Production
	h.restart() // the session lives in the database
	t.Run("the plan page offers no checkout", func(t *testing.T) {
		res := h.get("/billing")
		mustContain(t, res.body, "offers no paid plan")
		mustNotContain(t, res.body, "Upgrade to Pro", "development billing")
	})
	for path, do := range map[string]func() response{
		"GET /billing/upgrade":   func() response { return h.get("/billing/upgrade") },
		"POST /billing/checkout": func() response { return h.post("/billing/checkout", url.Values{"csrf_token": {form}, "plan": {"pro"}}) },
	} {
		t.Run(path+" is refused", func(t *testing.T) {
			if res := do(); res.status != http.StatusForbidden {
				t.Fatalf("status %d", res.status)
			}
			if u := mustUser(t, h, "dev:ada@example.com"); u.Plan.Plan != "free" {
				t.Fatalf("plan %s", u.Plan.Plan)
			}
		})
	}
}
