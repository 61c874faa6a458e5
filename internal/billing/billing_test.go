package billing_test

import (
	"testing"

	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

func TestLimitFor(t *testing.T) {
	seven, zero := 7, 0
	plans := billing.Plans{FreeLimit: 5}
	tests := []struct {
		name string
		plan store.PlanState
		want int
	}{
		{"the free plan gets the configured free limit", store.PlanState{Plan: "free"}, 5},
		{"the pro plan has no limit", store.PlanState{Plan: "pro"}, store.NoLimit},
		{"a limit cached by the provider wins over the plan name", store.PlanState{Plan: "pro", Limit: &seven}, 7},
		{"a cached limit of zero is kept, not mistaken for unset", store.PlanState{Plan: "free", Limit: &zero}, 0},
		{"a plan this version does not know gets no more than free", store.PlanState{Plan: "enterprise-trial"}, 5},
		{"an empty plan gets the free limit", store.PlanState{}, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := plans.LimitFor(store.User{Plan: tt.plan}); got != tt.want {
				t.Fatalf("LimitFor(%+v) = %d, want %d", tt.plan, got, tt.want)
			}
		})
	}
}

func TestUpgradeURL(t *testing.T) {
	for _, base := range []string{"http://localhost:3000", "http://localhost:3000/"} {
		t.Run("from "+base, func(t *testing.T) {
			if got := billing.UpgradeURL(base); got != "http://localhost:3000/billing/upgrade" {
				t.Fatalf("UpgradeURL(%q) = %q", base, got)
			}
		})
	}
}
