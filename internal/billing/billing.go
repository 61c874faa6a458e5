// Package billing decides what a user's plan allows. This first version
// knows the local plans only (free with a configurable limit, pro without
// one); the billing issue adds Kinde as the source of truth.
package billing

import (
	"strings"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Plan names, as stored in users.plan.
const (
	PlanFree = "free"
	PlanPro  = "pro"
)

// Plans holds the limits of the local plans.
type Plans struct {
	// FreeLimit is how many todos the free plan stores (FREE_TODO_LIMIT).
	FreeLimit int
}

// LimitFor is the number of stored todos the user's plan allows, or
// store.NoLimit. A limit cached on the user by the billing provider wins;
// otherwise the plan name decides, and a plan this version does not know
// gets the free limit, so that an unknown plan never grants more than
// free.
func (p Plans) LimitFor(u store.User) int {
	if u.Plan.Limit != nil {
		return *u.Plan.Limit
	}
	if strings.EqualFold(u.Plan.Plan, PlanPro) {
		return store.NoLimit
	}
	return p.FreeLimit
}

// UpgradeURL is the authserver page where a user upgrades.
func UpgradeURL(publicURL string) string {
	return strings.TrimRight(publicURL, "/") + "/billing/upgrade"
}
