package mcptools

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/billing"
)

// PlanStatus is the user's plan and how much of it is used.
type PlanStatus struct {
	Plan        string `json:"plan" jsonschema:"The plan: free, pro, or the billing provider's plan key."`
	Limit       *int   `json:"limit" jsonschema:"How many todos the plan stores; null when unlimited."`
	Used        int    `json:"used" jsonschema:"How many todos the user stores."`
	Remaining   *int   `json:"remaining" jsonschema:"How many more todos fit; null when unlimited."`
	Source      string `json:"source" jsonschema:"Where plans come from: local (this server's own plans) or kinde."`
	RefreshedAt string `json:"refreshed_at,omitempty" jsonschema:"When the billing provider last confirmed the plan (RFC 3339); absent if never."`
	Stale       bool   `json:"stale,omitempty" jsonschema:"True when the plan may be out of date; stale_reason says why and what to do."`
	StaleReason string `json:"stale_reason,omitempty" jsonschema:"Why the plan may be out of date, to relay to the user."`
	UpgradeURL  string `json:"upgrade_url,omitempty" jsonschema:"Where the user upgrades; absent when the plan is unlimited."`
}

func (ts *Toolset) planStatus(st billing.Status) PlanStatus {
	s := PlanStatus{Plan: st.Plan, Limit: st.Limit, Used: st.Used, Remaining: st.Remaining, Source: st.Source,
		Stale: st.Stale, StaleReason: st.StaleReason}
	if !st.Unlimited() {
		s.UpgradeURL = billing.UpgradeURL(ts.cfg.PublicURL)
	}
	if st.RefreshedAt != nil {
		s.RefreshedAt = rfc3339(*st.RefreshedAt)
	}
	return s
}

// summary says the plan in a sentence or two.
func (s PlanStatus) summary() string {
	out := fmt.Sprintf("Plan %s: %d todos stored, no limit.", s.Plan, s.Used)
	if s.Limit != nil {
		out = fmt.Sprintf("Plan %s: %d of %d todos stored, %d left.", s.Plan, s.Used, *s.Limit, *s.Remaining)
	}
	if s.Stale {
		out += " " + s.StaleReason
	}
	return out
}

// RefreshBillingStatusArgs takes nothing.
type RefreshBillingStatusArgs struct{}

// RefreshBillingStatusResult is the plan as it stands now.
type RefreshBillingStatusResult struct {
	Plan    PlanStatus `json:"plan" jsonschema:"The plan and its usage."`
	Message string     `json:"message" jsonschema:"What was checked, to relay to the user."`
}

func refreshBillingStatusTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "refresh_billing_status",
		Description: `Check the user's plan again, for instance after they upgraded in the browser, and return it with its usage.
Call it when the user says they upgraded, or when a plan limit error seems out of date.`,
		InputSchema: inputSchema[RefreshBillingStatusArgs](nil),
		Annotations: hints{idempotent: true, openWorld: true}.annotations("Refresh the plan"),
	}, ts.refreshBillingStatus)
}

func (ts *Toolset) refreshBillingStatus(ctx context.Context, _ *mcp.CallToolRequest, _ RefreshBillingStatusArgs) (*mcp.CallToolResult, RefreshBillingStatusResult, error) {
	acct, err := ts.signedIn(ctx)
	if err != nil {
		return nil, RefreshBillingStatusResult{}, err
	}
	st, err := ts.billing.Refresh(ctx, acct.user)
	if err != nil {
		return nil, RefreshBillingStatusResult{}, ts.fail(ctx, "check your plan", err)
	}
	status := ts.planStatus(st)
	msg := status.summary()
	switch {
	case status.Stale:
	case status.Source == billing.SourceLocal:
		msg += " Plans are managed by this todo-mcp server (development billing), so this is the current plan."
	default:
		msg += " Checked with " + status.Source + " just now."
	}
	return nil, RefreshBillingStatusResult{Plan: status, Message: msg}, nil
}

// UpgradePlanArgs takes nothing.
type UpgradePlanArgs struct{}

// UpgradePlanResult says where to upgrade.
type UpgradePlanResult struct {
	Plan       PlanStatus `json:"plan" jsonschema:"The plan now."`
	UpgradeURL string     `json:"upgrade_url,omitempty" jsonschema:"The page where the user upgrades; absent when the plan is already unlimited."`
	Message    string     `json:"message" jsonschema:"What to tell the user."`
}

const openUpgradeKey = "open_upgrade_page"

func upgradePlanTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "upgrade_plan",
		Description: `Give the user the page where they upgrade to the pro plan (unlimited todos), and ask the editor to open it where it can. The upgrade happens in the browser; afterwards call refresh_billing_status.
Call it when the user wants more todos than the free plan allows.`,
		InputSchema: inputSchema[UpgradePlanArgs](nil),
		Annotations: hints{readOnly: true, idempotent: true, openWorld: true}.annotations("Upgrade the plan"),
	}, ts.upgradePlan)
}

func (ts *Toolset) upgradePlan(ctx context.Context, req *mcp.CallToolRequest, _ UpgradePlanArgs) (*mcp.CallToolResult, UpgradePlanResult, error) {
	acct, err := ts.signedIn(ctx)
	if err != nil {
		return nil, UpgradePlanResult{}, err
	}
	status := ts.planStatus(ts.billing.Status(acct.user))
	if status.Limit == nil {
		msg := status.summary() + " Nothing to upgrade."
		return textResult(msg), UpgradePlanResult{Plan: status, Message: msg}, nil
	}
	open := openURL{key: openUpgradeKey, state: "upgrade", url: status.UpgradeURL,
		message: "Upgrade your todo-mcp plan to store unlimited todos."}
	answer := open.answer(req)
	if answer == nil && !isRetry(req) {
		if ask := open.ask(req); ask != nil {
			return ask, UpgradePlanResult{}, nil
		}
	}
	msg := fmt.Sprintf("%s To upgrade, open %s in a browser; then call refresh_billing_status.", status.summary(), status.UpgradeURL)
	if answer != nil && answer.Action == "accept" {
		msg = fmt.Sprintf("%s The upgrade page (%s) was opened; once done there, call refresh_billing_status.", status.summary(), status.UpgradeURL)
	}
	return textResult(msg), UpgradePlanResult{Plan: status, UpgradeURL: status.UpgradeURL, Message: msg}, nil
}
