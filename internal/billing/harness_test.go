package billing_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/kindetest"
	"github.com/todo-mcp/todo-mcp/internal/proctest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

const (
	publicURL = "http://todo.test"
	callback  = "http://127.0.0.1:1/callback"
	freeLimit = 5
	// kindeTimeout is the client's per-call timeout in these tests; the
	// delays injected to simulate a hanging Kinde are far beyond it.
	kindeTimeout = 750 * time.Millisecond
	hang         = 3 * time.Second
)

// fakeClock is shared by Kinde, the service and the webhook handler.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The logs go to a proctest.Buffer, to check that no token ever reaches them.

// harness is a Kinde-mode billing service over a real store and a
// Kinde-shaped server, with users signed in through the real OIDC flow.
type harness struct {
	k      *kindetest.Server
	st     *store.Store
	sealer *authn.Sealer
	oidc   *authn.OIDC
	svc    *billing.Service
	clock  *fakeClock
	logs   *proctest.Buffer
	log    *slog.Logger

	mu     sync.Mutex
	tokens []string // every token seen, none of which may be logged
}

type tuning struct {
	kinde   func(*billing.KindeConfig)
	service func(*billing.ServiceConfig)
}

func newHarness(t *testing.T, backend string, tune ...tuning) *harness {
	t.Helper()
	clock := &fakeClock{t: time.Now()}
	// No overlap: a refresh token works exactly once, so any refresh that
	// did not store the rotated token fails the next one.
	k := kindetest.New(t, kindetest.WithAllowedRedirect(callback), kindetest.WithClock(clock.Now), kindetest.WithRefreshOverlap(0))
	sealer, err := authn.NewSealer([]byte(strings.Repeat("s", 32)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &proctest.Buffer{}
	h := &harness{
		k:      k,
		st:     storetest.Open(t, backend, store.Options{}),
		sealer: sealer,
		oidc: authn.NewOIDC(authn.OIDCConfig{IssuerURL: k.URL, ClientID: k.ClientID, ClientSecret: k.ClientSecret,
			RedirectURL: callback, HTTPClient: &http.Client{Timeout: 10 * time.Second}}),
		clock: clock,
		logs:  logs,
		log:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	kc := billing.KindeConfig{OIDC: h.oidc, Sealer: sealer, Store: h.st, PublicURL: publicURL,
		Timeout: kindeTimeout, PageSize: 2, Logger: h.log, Now: clock.Now}
	sc := billing.ServiceConfig{FreeLimit: freeLimit, PublicURL: publicURL, Logger: h.log, Now: clock.Now}
	for _, tn := range tune {
		if tn.kinde != nil {
			tn.kinde(&kc)
		}
		if tn.service != nil {
			tn.service(&sc)
		}
	}
	h.svc = billing.NewService(h.st, billing.NewKinde(kc), sc)
	t.Cleanup(func() {
		logged := logs.String()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, tok := range h.tokens {
			if tok != "" && strings.Contains(logged, tok) {
				t.Errorf("a token was logged:\n%s", logged)
				return
			}
		}
	})
	return h
}

func (h *harness) remember(tokens ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tokens = append(h.tokens, tokens...)
}

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       10 * time.Second,
}

// signIn runs Kinde's authorization-code flow for ku through authn.OIDC,
// as the authserver does, and stores the sealed refresh token.
func (h *harness) signIn(t *testing.T, ku kindetest.User) store.User {
	t.Helper()
	ctx := t.Context()
	start := authn.NewAuthStart()
	authURL, err := h.oidc.AuthCodeURL(ctx, start, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.k.SetNextUser(ku)
	resp, err := noRedirect.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	in, err := h.oidc.Exchange(ctx, loc.Query().Get("code"), start)
	if err != nil {
		t.Fatal(err)
	}
	if in.RefreshToken == "" {
		t.Fatal("Kinde issued no refresh token")
	}
	h.remember(in.RefreshToken, in.AccessToken)
	u, err := h.st.UpsertUser(ctx, store.Identity{Subject: in.Subject, Email: in.Email, Name: in.Name})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.SaveProviderCredential(ctx, u.ID, authn.CredentialProvider, h.sealer.Seal([]byte(in.RefreshToken), authn.CredentialAD(u.ID))); err != nil {
		t.Fatal(err)
	}
	return u
}

// newUser signs in a fresh Kinde user.
func (h *harness) newUser(t *testing.T, name string) (store.User, kindetest.User) {
	t.Helper()
	ku := kindetest.NewUser(strings.ToLower(strings.ReplaceAll(name, " ", "."))+"@example.com", name)
	return h.signIn(t, ku), ku
}

// storedRefreshToken opens the user's stored refresh token.
func (h *harness) storedRefreshToken(t *testing.T, u store.User) (token string, sealed []byte) {
	t.Helper()
	cred, err := h.st.GetProviderCredential(t.Context(), u.ID, authn.CredentialProvider)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := h.sealer.Open(cred.Sealed, authn.CredentialAD(u.ID))
	if err != nil {
		t.Fatal(err)
	}
	h.remember(string(raw))
	return string(raw), cred.Sealed
}

func (h *harness) refresh(t *testing.T, u store.User) billing.Status {
	t.Helper()
	st, err := h.svc.Refresh(t.Context(), u)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return st
}

func (h *harness) reload(t *testing.T, u store.User) store.User {
	t.Helper()
	u, err := h.st.GetUser(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// setPro makes Kinde list the pro plan for ku.
func (h *harness) setPro(ku kindetest.User) {
	h.k.SetPlan(ku.Subject, []kindetest.Plan{{Key: "pro", Name: "Pro", SubscribedOn: h.clock.Now()}}, nil)
}

// setLimit makes Kinde list a plan whose todos entitlement allows n.
func (h *harness) setLimit(ku kindetest.User, plan string, n int) {
	h.k.SetPlan(ku.Subject, []kindetest.Plan{{Key: plan, Name: plan, SubscribedOn: h.clock.Now()}},
		[]kindetest.Entitlement{{FeatureKey: "todos", FeatureName: "Todos", LimitMax: &n}})
}

// create stores a todo under the limit the service gives the user now.
func (h *harness) create(t *testing.T, u store.User, title string) error {
	t.Helper()
	u = h.reload(t, u)
	_, err := h.st.CreateTodo(context.Background(), u.ID, h.svc.LimitFor(u), store.NewTodo{Title: title})
	if err != nil && !errors.Is(err, store.ErrLimitReached) {
		t.Fatalf("create %q: %v", title, err)
	}
	return err
}

func limitString(st billing.Status) string {
	if st.Limit == nil {
		return "unlimited"
	}
	return strconv.Itoa(*st.Limit)
}
