package billing_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

func TestServiceLimitFor(t *testing.T) {
	seven, unlimited := 7, billing.UnlimitedLimit
	kinde := billing.NewService(nil, billing.NewKinde(billing.KindeConfig{OIDC: authn.NewOIDC(authn.OIDCConfig{IssuerURL: "https://todo.kinde.com"})}),
		billing.ServiceConfig{FreeLimit: 5})
	local := billing.NewService(nil, billing.Local{}, billing.ServiceConfig{FreeLimit: 5})
	tests := []struct {
		name string
		svc  *billing.Service
		plan store.PlanState
		want int
	}{
		{"locally, free gets the configured free limit", local, store.PlanState{Plan: "free", Source: "local"}, 5},
		{"locally, pro has no limit", local, store.PlanState{Plan: "pro", Source: "local"}, store.NoLimit},
		{"locally, an unknown plan gets no more than free", local, store.PlanState{Plan: "enterprise", Source: "local"}, 5},
		{"a limit Kinde cached wins", kinde, store.PlanState{Plan: "pro", Limit: &seven, Source: "kinde"}, 7},
		{"Kinde's unlimited value means no limit", kinde, store.PlanState{Plan: "team", Limit: &unlimited, Source: "kinde"}, store.NoLimit},
		{"a free plan from Kinde without a cached limit follows FREE_TODO_LIMIT", kinde, store.PlanState{Plan: "free", Source: "kinde"}, 5},
		{"in Kinde mode a pro plan Kinde never confirmed counts as free", kinde, store.PlanState{Plan: "pro", Source: "local"}, 5},
		{"in Kinde mode an unlimited limit Kinde never confirmed counts as free", kinde, store.PlanState{Plan: "pro", Limit: &unlimited, Source: "local"}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.svc.LimitFor(store.User{Plan: tt.plan}); got != tt.want {
				t.Fatalf("LimitFor(%+v) = %d, want %d", tt.plan, got, tt.want)
			}
		})
	}
}

func TestStatusSaysWhatIsLeft(t *testing.T) {
	local := billing.NewService(nil, billing.Local{}, billing.ServiceConfig{FreeLimit: 5})
	tests := []struct {
		name          string
		user          store.User
		wantLimit     string
		wantRemaining string
	}{
		{"two of five used leaves three", store.User{Plan: store.PlanState{Plan: "free", Source: "local"}, TodoCount: 2}, "5", "3"},
		{"above the limit after a downgrade leaves none, not a negative number", store.User{Plan: store.PlanState{Plan: "free", Source: "local"}, TodoCount: 8}, "5", "0"},
		{"pro has neither limit nor remaining", store.User{Plan: store.PlanState{Plan: "pro", Source: "local"}, TodoCount: 80}, "unlimited", "unlimited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := local.Status(tt.user)
			remaining := "unlimited"
			if st.Remaining != nil {
				remaining = fmt.Sprint(*st.Remaining)
			}
			if limitString(st) != tt.wantLimit || remaining != tt.wantRemaining || st.Used != tt.user.TodoCount || st.Source != "local" || st.Stale {
				t.Fatalf("status %+v", st)
			}
			if st.StoreLimit() != local.LimitFor(tt.user) {
				t.Fatalf("StoreLimit %d, LimitFor %d", st.StoreLimit(), local.LimitFor(tt.user))
			}
		})
	}
}

func TestTheLocalDevelopmentCheckout(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			st := storetest.Open(t, backend, store.Options{})
			svc := billing.NewService(st, billing.Local{PublicURL: publicURL + "/"}, billing.ServiceConfig{FreeLimit: 2, PublicURL: publicURL})
			u, err := st.UpsertUser(t.Context(), store.Identity{Subject: "dev:ada@example.com", Email: "ada@example.com", Name: "Ada"})
			if err != nil {
				t.Fatal(err)
			}
			create := func(title string) error {
				t.Helper()
				cur, err := st.GetUser(t.Context(), u.ID)
				if err != nil {
					t.Fatal(err)
				}
				_, err = st.CreateTodo(t.Context(), u.ID, svc.LimitFor(cur), store.NewTodo{Title: title})
				return err
			}
			t.Run("a new user is on the free plan, never stale", func(t *testing.T) {
				s, err := svc.Refresh(t.Context(), u)
				if err != nil || s.Plan != "free" || limitString(s) != "2" || s.Source != "local" || s.Stale {
					t.Fatalf("status %+v, %v", s, err)
				}
				if err := errors.Join(create("one"), create("two")); err != nil {
					t.Fatal(err)
				}
				if err := create("three"); !errors.Is(err, store.ErrLimitReached) {
					t.Fatalf("err = %v", err)
				}
			})
			t.Run("the upgrade link is the billing page", func(t *testing.T) {
				link, err := svc.UpgradeURL(t.Context(), u, publicURL+"/billing/return")
				if err != nil || link != publicURL+"/billing" {
					t.Fatalf("link %q, %v", link, err)
				}
			})
			t.Run("upgrading to pro lifts the limit", func(t *testing.T) {
				s, err := svc.SetLocalPlan(t.Context(), u, billing.PlanPro)
				if err != nil || s.Plan != "pro" || !s.Unlimited() || s.RefreshedAt == nil {
					t.Fatalf("status %+v, %v", s, err)
				}
				if err := errors.Join(create("three"), create("four")); err != nil {
					t.Fatal(err)
				}
			})
			t.Run("downgrading keeps every todo and blocks creating", func(t *testing.T) {
				s, err := svc.SetLocalPlan(t.Context(), u, billing.PlanFree)
				if err != nil || s.Plan != "free" || s.Used != 4 || *s.Remaining != 0 {
					t.Fatalf("status %+v, %v", s, err)
				}
				if err := create("five"); !errors.Is(err, store.ErrLimitReached) {
					t.Fatalf("err = %v", err)
				}
			})
			t.Run("a plan that does not exist is refused", func(t *testing.T) {
				if _, err := svc.SetLocalPlan(t.Context(), u, "enterprise"); !errors.Is(err, billing.ErrUnknownPlan) {
					t.Fatalf("err = %v", err)
				}
			})
			t.Run("EnsureFresh never needs the network", func(t *testing.T) {
				cur, _ := st.GetUser(t.Context(), u.ID)
				s, err := svc.EnsureFresh(t.Context(), cur)
				if err != nil || s.Stale || s.Plan != "free" {
					t.Fatalf("status %+v, %v", s, err)
				}
			})
		})
	}
}

func TestTheDevelopmentCheckoutIsRefusedInKindeMode(t *testing.T) {
	h := newHarness(t, storetest.Backends[0])
	u, _ := h.newUser(t, "Eve Checkout")
	if _, err := h.svc.SetLocalPlan(t.Context(), u, billing.PlanPro); !errors.Is(err, billing.ErrNotLocal) {
		t.Fatalf("err = %v", err)
	}
	if got := h.reload(t, u); got.Plan.Plan != "free" {
		t.Fatalf("plan %+v", got.Plan)
	}
}

func TestStatusInKindeModeSaysWhenThePlanMayBeStale(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	svc := billing.NewService(nil, billing.NewKinde(billing.KindeConfig{OIDC: authn.NewOIDC(authn.OIDCConfig{IssuerURL: "https://todo.kinde.com"})}),
		billing.ServiceConfig{FreeLimit: 5, RefreshMaxAge: 10 * time.Minute, Now: func() time.Time { return now }})
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct {
		name      string
		plan      store.PlanState
		wantStale bool
		wantPlan  string
	}{
		{"a plan Kinde confirmed a minute ago is fresh", store.PlanState{Plan: "pro", Source: "kinde", RefreshedAt: at(time.Minute)}, false, "pro"},
		{"a plan Kinde confirmed an hour ago may be stale", store.PlanState{Plan: "pro", Source: "kinde", RefreshedAt: at(time.Hour)}, true, "pro"},
		{"a plan never checked with Kinde is shown as free and stale", store.PlanState{Plan: "pro", Source: "local"}, true, "free"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := svc.Status(store.User{Plan: tt.plan})
			if st.Stale != tt.wantStale || (st.StaleReason != "") != tt.wantStale || st.Plan != tt.wantPlan || st.Source != "kinde" {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

func TestFromConfigPicksTheProvider(t *testing.T) {
	st := storetest.Open(t, storetest.Backends[0], store.Options{})
	base := config.Config{PublicURL: publicURL, FreeTodoLimit: 3, BillingRefreshMaxAge: time.Minute, Secret: []byte(strings.Repeat("k", 32))}
	kinde := config.Kinde{IssuerURL: "https://todo.kinde.com", ClientID: "id", ClientSecret: "secret",
		BillingFeatureKey: "todos", ProPlanKeys: []string{"pro"}}
	tests := []struct {
		name       string
		kinde      config.Kinde
		provider   string // BILLING_PROVIDER as config resolves it
		wantSource string
	}{
		{"without an identity provider plans are local", config.Kinde{}, "local", billing.SourceLocal},
		{"with Kinde billing Kinde decides", kinde, "kinde", billing.SourceKinde},
		{"with another OIDC provider and local billing plans are local", kinde, "local", billing.SourceLocal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.Kinde, cfg.BillingProvider = tt.kinde, tt.provider
			svc, err := billing.FromConfig(&cfg, st, nil, nil)
			if err != nil || svc.Source() != tt.wantSource {
				t.Fatalf("source %v, %v", svc, err)
			}
			if got := svc.LimitFor(store.User{Plan: store.PlanState{Plan: "free", Source: tt.wantSource}}); got != 3 {
				t.Fatalf("free limit %d, want FREE_TODO_LIMIT 3", got)
			}
		})
	}
	t.Run("Kinde billing without a secret to open tokens with is an error", func(t *testing.T) {
		cfg := base
		cfg.Secret = nil
		cfg.Kinde, cfg.BillingProvider = kinde, "kinde"
		if _, err := billing.FromConfig(&cfg, st, nil, nil); err == nil {
			t.Fatal("no error")
		}
	})
}
