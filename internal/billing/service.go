package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Sources of a plan, as stored in users.plan_source and shown in Status.
const (
	SourceLocal = "local"
	SourceKinde = "kinde"
)

// DefaultRefreshMaxAge is how old a cached plan may get before EnsureFresh
// asks the provider again (BILLING_REFRESH_MAX_AGE).
const DefaultRefreshMaxAge = 10 * time.Minute

// retryAfterFailure keeps EnsureFresh from asking a failing provider again
// on every create: one attempt per user per minute. Refresh always asks.
const retryAfterFailure = time.Minute

var (
	// ErrProviderUnavailable: the billing provider could not be asked
	// (unreachable, timed out, or an unexpected answer).
	ErrProviderUnavailable = errors.New("the billing provider cannot be reached")
	// ErrSignInRequired: there is no usable stored sign-in to ask the
	// provider with (none saved, or refused); the user must sign in again.
	ErrSignInRequired = errors.New("sign in again to check the plan")
	// ErrNotLocal: plans are managed by an external provider, so the
	// development checkout cannot switch them.
	ErrNotLocal = errors.New("plans are managed by the billing provider, not by this server")
	// ErrUnknownPlan: a plan name this server does not offer.
	ErrUnknownPlan = errors.New("unknown plan")
)

// Provider is where plans come from.
type Provider interface {
	// Source is SourceLocal or SourceKinde.
	Source() string
	// FetchPlan asks the provider what the user's plan is now. u is the
	// user as stored. An error wraps ErrProviderUnavailable or
	// ErrSignInRequired; the caller then keeps the last known plan.
	FetchPlan(ctx context.Context, u store.User) (store.PlanState, error)
	// UpgradeURL is where the user's browser goes to upgrade; returnURL is
	// where the provider sends it back afterwards, when it can.
	UpgradeURL(ctx context.Context, u store.User, returnURL string) (string, error)
}

// Local is the embedded default: the plan is what the store says, switched
// explicitly by the web app's development checkout (Service.SetLocalPlan).
type Local struct {
	// PublicURL is the authserver's address, without a trailing slash.
	PublicURL string
}

// Source is SourceLocal.
func (Local) Source() string { return SourceLocal }

// FetchPlan returns the stored plan: there is nothing else to ask.
func (Local) FetchPlan(_ context.Context, u store.User) (store.PlanState, error) { return u.Plan, nil }

// UpgradeURL is the authserver's /billing page, where the development
// checkout lives.
func (l Local) UpgradeURL(context.Context, store.User, string) (string, error) {
	return strings.TrimRight(l.PublicURL, "/") + "/billing", nil
}

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// FreeLimit is the free plan's limit (FREE_TODO_LIMIT).
	FreeLimit int
	// RefreshMaxAge is how old a cached plan may get before EnsureFresh
	// asks the provider again; zero means DefaultRefreshMaxAge.
	RefreshMaxAge time.Duration
	// PublicURL is the authserver's address, for the sign-in links in
	// messages.
	PublicURL string
	// Logger receives warnings about a failing provider; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is what the web app and the MCP tools ask about plans: the limit
// to enforce, the status to show, and the way to upgrade. It keeps the
// plan cached on the user (store.SetPlan) in step with its Provider.
type Service struct {
	st    *store.Store
	p     Provider
	plans Plans
	cfg   ServiceConfig
	log   *slog.Logger
	now   func() time.Time
	locks keyedLocks
	seq   atomic.Uint64 // orders refresh calls and provider calls

	mu       sync.Mutex
	failures map[int64]failure // last provider failure per user, for EnsureFresh
}

type failure struct {
	at     time.Time
	reason string
}

// NewService returns a Service over the store and the provider.
func NewService(st *store.Store, p Provider, cfg ServiceConfig) *Service {
	if cfg.RefreshMaxAge <= 0 {
		cfg.RefreshMaxAge = DefaultRefreshMaxAge
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Service{st: st, p: p, plans: Plans{FreeLimit: cfg.FreeLimit}, cfg: cfg, log: cfg.Logger,
		now: cfg.Now, failures: map[int64]failure{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Source is the provider's: SourceLocal or SourceKinde.
func (s *Service) Source() string { return s.p.Source() }

// Status is a user's plan as it stands, for the billing page and the
// refresh_billing_status tool.
type Status struct {
	// Plan is the plan's name (a Kinde plan key in Kinde mode), or "free".
	Plan string `json:"plan"`
	// Limit is how many todos the plan stores; nil means no limit.
	Limit *int `json:"limit"`
	// Used is how many todos the user stores.
	Used int `json:"used"`
	// Remaining is how many more fit; nil means no limit.
	Remaining *int `json:"remaining"`
	// RefreshedAt is when the provider last confirmed the plan; nil if never.
	RefreshedAt *time.Time `json:"refreshed_at"`
	// Source is where plans come from: "local" or "kinde".
	Source string `json:"source"`
	// Stale says the plan may be out of date; StaleReason says why, in a
	// sentence to show the user.
	Stale       bool   `json:"stale"`
	StaleReason string `json:"stale_reason,omitempty"`
}

// Unlimited reports whether the plan stores any number of todos.
func (st Status) Unlimited() bool { return st.Limit == nil }

// StoreLimit is the limit to pass to store.CreateTodo: the plan's limit,
// or store.NoLimit.
func (st Status) StoreLimit() int {
	if st.Limit == nil {
		return store.NoLimit
	}
	return *st.Limit
}

// LimitFor is the number of stored todos the user's plan allows, or
// store.NoLimit: the cached limit when there is one, otherwise the plan
// name decides (Plans.LimitFor). In Kinde mode a plan Kinde never
// confirmed (still the local default, or set locally before Kinde was
// configured) counts as free: only Kinde grants more.
func (s *Service) LimitFor(u store.User) int {
	if s.p.Source() != SourceLocal && u.Plan.Source != s.p.Source() {
		return s.plans.FreeLimit
	}
	return s.plans.LimitFor(u)
}

// Status is the user's plan from what is stored, without asking the
// provider. In Kinde mode it is marked stale when Kinde has not confirmed
// it within the refresh max age.
func (s *Service) Status(u store.User) Status {
	st := Status{Plan: u.Plan.Plan, Used: u.TodoCount, RefreshedAt: u.Plan.RefreshedAt, Source: s.p.Source()}
	confirmed := s.p.Source() == SourceLocal || u.Plan.Source == s.p.Source()
	if st.Plan == "" || !confirmed {
		st.Plan = PlanFree
	}
	if limit := s.LimitFor(u); limit != store.NoLimit {
		remaining := max(limit-u.TodoCount, 0)
		st.Limit, st.Remaining = &limit, &remaining
	}
	if s.p.Source() == SourceLocal {
		return st
	}
	switch {
	case !confirmed || u.Plan.RefreshedAt == nil:
		st.Stale = true
		st.StaleReason = "Your plan has not been checked with Kinde yet, so the free plan applies until it is."
	case s.now().Sub(*u.Plan.RefreshedAt) > s.cfg.RefreshMaxAge:
		st.Stale = true
		st.StaleReason = fmt.Sprintf("Your plan was last checked with Kinde at %s; it is checked again when you refresh it or reach the limit.",
			u.Plan.RefreshedAt.UTC().Format(time.RFC3339))
	}
	return st
}

// Refresh asks the provider for the user's plan now and stores it. When
// the provider fails (unreachable, timed out, the stored sign-in refused)
// it keeps the last known plan and returns it marked Stale, with a
// StaleReason that says what happened and what to do, and a nil error:
// the Status is usable either way. The error is for the store failing, or
// ctx ending while another refresh of the same user runs.
func (s *Service) Refresh(ctx context.Context, u store.User) (Status, error) {
	called := s.seq.Add(1)
	held, unlock, err := s.locks.lock(ctx, u.ID)
	if err != nil {
		return s.Status(u), fmt.Errorf("refresh plan: %w", err)
	}
	defer unlock()
	cur, err := s.st.GetUser(ctx, u.ID)
	if err != nil {
		return s.Status(u), fmt.Errorf("refresh plan: %w", err)
	}
	// A refresh of this user that asked the provider after this call
	// began finished while we waited for the lock: its answer is as new
	// as ours would be, so concurrent callers share one provider call
	// (and, when it failed, its failure).
	if held.lastAsked > called {
		st := s.Status(cur)
		if held.lastFailure != "" {
			st.Stale, st.StaleReason = true, held.lastFailure
		}
		return st, nil
	}
	held.lastAsked, held.lastFailure = s.seq.Add(1), ""
	plan, err := s.p.FetchPlan(ctx, cur)
	if err != nil {
		reason := s.staleReason(cur, err)
		held.lastFailure = reason
		s.log.Warn("billing: keeping the last known plan", "user_id", cur.ID, "source", s.p.Source(), "err", err)
		s.mu.Lock()
		s.failures[cur.ID] = failure{at: s.now(), reason: reason}
		s.mu.Unlock()
		st := s.Status(cur)
		st.Stale, st.StaleReason = true, reason
		return st, nil
	}
	s.mu.Lock()
	delete(s.failures, cur.ID)
	s.mu.Unlock()
	if samePlan(plan, cur.Plan) {
		return s.Status(cur), nil
	}
	updated, err := s.st.SetPlan(ctx, cur.ID, plan)
	if err != nil {
		held.lastAsked = 0 // nothing was stored: waiters ask for themselves
		return s.Status(cur), fmt.Errorf("refresh plan: %w", err)
	}
	if updated.Plan.Plan != cur.Plan.Plan || !sameLimit(updated.Plan.Limit, cur.Plan.Limit) {
		s.log.Info("billing: plan changed", "user_id", cur.ID, "source", plan.Source,
			"from", cur.Plan.Plan, "to", updated.Plan.Plan, "limit", s.LimitFor(updated))
	}
	return s.Status(updated), nil
}

// EnsureFresh refreshes the plan when the provider has not confirmed it
// within the refresh max age, and otherwise returns the stored one without
// a network call. create_todo calls it before a create that would hit the
// limit, so a user who just upgraded is not refused on a stale plan. After
// a provider failure it waits a minute before asking again, so that a
// Kinde outage does not slow every create; the Status then says why it is
// stale. Errors are as for Refresh.
func (s *Service) EnsureFresh(ctx context.Context, u store.User) (Status, error) {
	if !s.needsRefresh(u) {
		return s.Status(u), nil
	}
	s.mu.Lock()
	f, failed := s.failures[u.ID]
	s.mu.Unlock()
	if failed && s.now().Sub(f.at) < retryAfterFailure {
		st := s.Status(u)
		st.Stale, st.StaleReason = true, f.reason
		return st, nil
	}
	return s.Refresh(ctx, u)
}

func (s *Service) needsRefresh(u store.User) bool {
	if s.p.Source() == SourceLocal {
		return false
	}
	rt := u.Plan.RefreshedAt
	return u.Plan.Source != s.p.Source() || rt == nil || s.now().Sub(*rt) > s.cfg.RefreshMaxAge
}

// UpgradeURL is where to send the user's browser to upgrade. Local: the
// authserver's /billing page. Kinde: a one-time link to Kinde's plan
// selection that comes back to returnURL (an absolute URL, normally the
// authserver's /billing/return); for a user without a usable Kinde sign-in,
// the authserver's sign-in with plan_interest, since signing in stores one.
// Portal links are one-time and short-lived: make one per click (the web
// app's /billing/upgrade), do not hand one out to keep.
func (s *Service) UpgradeURL(ctx context.Context, u store.User, returnURL string) (string, error) {
	link, err := s.p.UpgradeURL(ctx, u, returnURL)
	if err != nil {
		return "", fmt.Errorf("upgrade link: %w", err)
	}
	return link, nil
}

// SetLocalPlan switches the plan in local mode (the development checkout:
// no payment). It refuses with ErrNotLocal in Kinde mode, and with
// ErrUnknownPlan for anything but PlanFree and PlanPro. Downgrading keeps
// every todo; creation is refused while above the new limit.
func (s *Service) SetLocalPlan(ctx context.Context, u store.User, plan string) (Status, error) {
	if s.p.Source() != SourceLocal {
		return s.Status(u), ErrNotLocal
	}
	if plan != PlanFree && plan != PlanPro {
		return s.Status(u), fmt.Errorf("%w %q: choose %s or %s", ErrUnknownPlan, plan, PlanFree, PlanPro)
	}
	now := s.now()
	updated, err := s.st.SetPlan(ctx, u.ID, store.PlanState{Plan: plan, Source: SourceLocal, RefreshedAt: &now})
	if err != nil {
		return s.Status(u), fmt.Errorf("set local plan: %w", err)
	}
	s.log.Info("billing: development checkout switched the plan", "user_id", u.ID, "plan", plan)
	return s.Status(updated), nil
}

// signInURL is the authserver's sign-in, coming back to the billing page.
func (s *Service) signInURL() string {
	return s.cfg.PublicURL + "/login?" + url.Values{"return_to": {"/billing"}}.Encode()
}

// staleReason explains a provider failure to the user.
func (s *Service) staleReason(u store.User, err error) string {
	kept := "Until then the free plan applies."
	if u.Plan.Source == s.p.Source() && u.Plan.RefreshedAt != nil {
		kept = fmt.Sprintf("Until then your last known plan (%s, checked %s) applies.",
			displayPlan(u.Plan.Plan), u.Plan.RefreshedAt.UTC().Format(time.RFC3339))
	}
	switch {
	case errors.Is(err, ErrSignInRequired):
		return fmt.Sprintf("Your plan could not be checked with Kinde because the saved Kinde sign-in is missing, expired or was refused: sign in again at %s. %s",
			s.signInURL(), kept)
	case errors.Is(err, context.DeadlineExceeded):
		return "Kinde did not answer in time, so your plan could not be checked; try again in a few minutes. " + kept
	default:
		return "Kinde could not be reached or answered with an error, so your plan could not be checked; try again in a few minutes. " + kept
	}
}

func displayPlan(p string) string {
	if p == "" {
		return PlanFree
	}
	return p
}

func samePlan(a, b store.PlanState) bool {
	return a.Plan == b.Plan && a.Source == b.Source && sameLimit(a.Limit, b.Limit) &&
		(a.RefreshedAt == nil) == (b.RefreshedAt == nil) && (a.RefreshedAt == nil || a.RefreshedAt.Equal(*b.RefreshedAt))
}

func sameLimit(a, b *int) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// keyedLocks serialises work per user (refreshes rotate the user's refresh
// token) while letting a waiter give up when its context ends.
type keyedLocks struct {
	mu sync.Mutex
	m  map[int64]*keyedLock
}

type keyedLock struct {
	ch      chan struct{}
	waiters int
	// lastAsked and lastFailure describe the last provider call made
	// under this lock; only the holder reads or writes them. They live as
	// long as someone holds or waits for the lock, which is when they
	// matter.
	lastAsked   uint64
	lastFailure string
}

func (k *keyedLocks) lock(ctx context.Context, id int64) (held *keyedLock, unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[int64]*keyedLock{}
	}
	l := k.m[id]
	if l == nil {
		l = &keyedLock{ch: make(chan struct{}, 1)}
		k.m[id] = l
	}
	l.waiters++
	k.mu.Unlock()
	release := func() {
		k.mu.Lock()
		l.waiters--
		if l.waiters == 0 {
			delete(k.m, id)
		}
		k.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return l, func() { <-l.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, nil, ctx.Err()
	}
}

// FromConfig builds the Service both processes use: Kinde billing when an
// identity provider is configured (KINDE_ISSUER_URL), the local plans
// otherwise. oidc is the authserver's sign-in client, to share its
// discovery; nil builds one from cfg (the mcpserver).
func FromConfig(cfg *config.Config, st *store.Store, oidc *authn.OIDC, log *slog.Logger) (*Service, error) {
	sc := ServiceConfig{FreeLimit: cfg.FreeTodoLimit, RefreshMaxAge: cfg.BillingRefreshMaxAge, PublicURL: cfg.PublicURL, Logger: log}
	if cfg.BillingProvider != SourceKinde {
		return NewService(st, Local{PublicURL: cfg.PublicURL}, sc), nil
	}
	sealer, err := authn.NewSealer(cfg.Secret)
	if err != nil {
		return nil, fmt.Errorf("kinde billing: %w", err)
	}
	if oidc == nil {
		oidc = authn.NewOIDC(authn.OIDCConfig{IssuerURL: cfg.Kinde.IssuerURL, ClientID: cfg.Kinde.ClientID,
			ClientSecret: cfg.Kinde.ClientSecret, RedirectURL: cfg.PublicURL + "/callback",
			Scopes: cfg.Kinde.Scopes, Audience: cfg.Kinde.Audience})
	}
	k := NewKinde(KindeConfig{OIDC: oidc, Sealer: sealer, Store: st, PublicURL: cfg.PublicURL,
		FeatureKey: cfg.Kinde.BillingFeatureKey, ProPlanKeys: cfg.Kinde.ProPlanKeys, Logger: log})
	return NewService(st, k, sc), nil
}
