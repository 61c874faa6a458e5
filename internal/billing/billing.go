// Package billing decides what a user's plan allows: the local plans (free
// with a configurable limit, pro without one), and the Service that keeps
// each user's plan in step with its provider, either this server's own
// development billing (Local) or Kinde as the source of truth (Kinde, with
// its webhooks).
package billing

import (
	"math"
	"strings"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Plan names, as stored in users.plan.
const (
	PlanFree = "free"
	PlanPro  = "pro"
)

// UnlimitedLimit is the cached limit that means "no limit". The store
// keeps a missing limit as "decided by the plan name", so a provider that
// grants an unlimited plan under any name caches this value; it is also
// the value Kinde itself uses for "unlimited" (2^31-1).
const UnlimitedLimit = math.MaxInt32

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
		if *u.Plan.Limit >= UnlimitedLimit {
			return store.NoLimit
		}
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
