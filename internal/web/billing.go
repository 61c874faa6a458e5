package web

import (
	"errors"
	"net/http"

	"github.com/todo-mcp/todo-mcp/internal/billing"
)

type billingData struct {
	Status billing.Status
	// Local: plans switch on this server (development billing, no payment).
	Local     bool
	FreeLimit int
	// Checkout: the development checkout is offered (never in production).
	Checkout bool
}

// billingPage shows the plan, usage, and the way to upgrade or manage it.
func (a *App) billingPage(w http.ResponseWriter, r *http.Request) {
	st := a.Billing.Status(*userFrom(r))
	a.render(w, r, http.StatusOK, "billing", "Your plan", billingData{
		Status: st, Local: a.Billing.Source() == billing.SourceLocal, FreeLimit: a.Config.FreeTodoLimit,
		Checkout: !a.Config.IsProduction(),
	})
}

// upgrade sends the browser where upgrading happens: Kinde's plan
// selection (a one-time link made for this click), or, on the embedded
// defaults, the development checkout.
func (a *App) upgrade(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	if a.Billing.Source() == billing.SourceLocal {
		if a.Config.IsProduction() {
			a.noCheckout(w, r)
			return
		}
		a.render(w, r, http.StatusOK, "checkout", "Development checkout", billingData{Status: a.Billing.Status(*u), Local: true, FreeLimit: a.Config.FreeTodoLimit})
		return
	}
	target, err := a.Billing.UpgradeURL(r.Context(), *u, a.Config.PublicURL+"/billing/return")
	if err != nil {
		a.Log.Warn("upgrade link", "user_id", u.ID, "err", err)
		a.fail(w, r, http.StatusBadGateway, "The billing service cannot be reached",
			"Kinde did not give us a link to its plan selection just now. Your plan is unchanged.", "Try again in a minute.")
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// billingReturn is where Kinde's portal sends the user back: check the plan
// with Kinde now, then show it.
func (a *App) billingReturn(w http.ResponseWriter, r *http.Request) {
	a.refreshAndShow(w, r)
}

func (a *App) refreshBilling(w http.ResponseWriter, r *http.Request) {
	a.refreshAndShow(w, r)
}

func (a *App) refreshAndShow(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	st, err := a.Billing.Refresh(r.Context(), *u)
	switch {
	case err != nil:
		a.internalError(w, r, "refresh billing", err)
		return
	case st.Stale:
		a.Sessions.Put(r.Context(), sessionFlash, st.StaleReason)
	default:
		a.Sessions.Put(r.Context(), sessionFlash, "Plan checked: you are on the "+st.Plan+" plan.")
	}
	http.Redirect(w, r, "/billing", http.StatusSeeOther)
}

// checkout switches the plan on the embedded defaults, after an explicit
// POST: development billing, no payment.
func (a *App) checkout(w http.ResponseWriter, r *http.Request) {
	if a.Config.IsProduction() {
		a.noCheckout(w, r)
		return
	}
	u := userFrom(r)
	plan := r.PostFormValue("plan")
	_, err := a.Billing.SetLocalPlan(r.Context(), *u, plan)
	switch {
	case errors.Is(err, billing.ErrNotLocal):
		a.fail(w, r, http.StatusConflict, "Plans are managed by Kinde", "This server takes plan changes from Kinde, not from this page.", "Use “Upgrade” on your plan page.")
		return
	case errors.Is(err, billing.ErrUnknownPlan):
		a.fail(w, r, http.StatusUnprocessableEntity, "Unknown plan", "Choose the free or the pro plan.", "")
		return
	case err != nil:
		a.internalError(w, r, "set local plan", err)
		return
	}
	msg := "You are on the pro plan: no limit on todos (development billing, no payment)."
	if plan == billing.PlanFree {
		msg = "You are on the free plan. Nothing was deleted; above the limit, new todos wait until you delete some."
	}
	a.Sessions.Put(r.Context(), sessionFlash, msg)
	http.Redirect(w, r, "/billing", http.StatusSeeOther)
}

// noCheckout: in production the development checkout would hand out plans
// for free, so a server without a billing provider sells nothing.
func (a *App) noCheckout(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, http.StatusForbidden, "Plans cannot be changed here",
		"This server has no billing provider configured, so it offers no paid plan.", "Ask the server's operator.")
}
