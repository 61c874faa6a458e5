// Package web is the authserver's HTTP application: sign-in with an OpenID
// Connect provider (or the development sign-in), sessions in the database,
// the account page, tokens, and the page that approves an MCP client's
// connect request. Routes are listed in Routes; one file per concern.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/httprate"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/web/static"
)

// Deps is what the web app is built from.
type Deps struct {
	Config *config.Config
	Store  *store.Store
	Log    *slog.Logger
	// OIDC signs people in; nil means the development sign-in.
	OIDC *authn.OIDC
	// Sealer encrypts the provider refresh token before it is stored.
	Sealer   *authn.Sealer
	Sessions *scs.SessionManager
	// Billing decides plans and limits (local plans, or Kinde's).
	Billing *billing.Service
	// Webhooks receives Kinde's billing webhooks; nil in local mode.
	Webhooks http.Handler
	// MCPServerPath is the absolute path of the mcpserver binary, for the
	// ready-to-paste editor configuration.
	MCPServerPath string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// App holds what the handlers share.
type App struct {
	Deps
	views *views
}

// New builds the application; templates are parsed here, once.
func New(d Deps) (*App, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Billing == nil {
		return nil, errors.New("web: Billing is required")
	}
	v, err := parseViews()
	if err != nil {
		return nil, err
	}
	return &App{Deps: d, views: v}, nil
}

// Routes lists every route of the web app in one place.
func (a *App) Routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, a.logRequests, securityHeaders(a.cspFormAction()))
	// Behind a reverse proxy every request comes from the proxy: believe its
	// X-Forwarded-For only when TRUSTED_PROXIES names it.
	if len(a.Config.TrustedProxies) > 0 {
		r.Use(middleware.ClientIPFromXFF(a.Config.TrustedProxies...))
	} else {
		r.Use(middleware.ClientIPFromRemoteAddr)
	}
	r.Handle("/static/*", http.StripPrefix("/static/", staticFiles()))
	r.Get("/healthz", a.healthz)
	if a.Webhooks != nil {
		// Server to server: no session, no form token; the body is a signed JWT.
		r.With(httprate.LimitBy(600, time.Minute, clientIP)).Post("/webhooks/kinde", a.Webhooks.ServeHTTP)
	}

	r.Group(func(r chi.Router) {
		r.Use(a.Sessions.LoadAndSave, a.loadUser, a.checkCSRF)

		r.Get("/", a.home)
		r.Get("/billing", a.requireUser(a.billingPage))
		r.Get("/billing/upgrade", a.requireUser(a.upgrade))
		r.Get("/billing/return", a.requireUser(a.billingReturn))
		r.Post("/billing/refresh", a.requireUser(a.refreshBilling))
		r.Post("/billing/checkout", a.requireUser(a.checkout))
		r.Post("/tokens", a.requireUser(a.createToken))
		r.Post("/tokens/{id}/revoke", a.requireUser(a.revokeToken))
		r.Post("/logout", a.logout)

		r.Group(func(r chi.Router) {
			// Sign-in and connect pages: a small budget per address.
			r.Use(httprate.LimitBy(30, time.Minute, clientIP))
			r.Get("/login", a.login)
			r.Get("/signup", a.signup)
			r.Get("/callback", a.callback)
			r.Post("/login/dev", a.devSignIn)
			r.Get("/connect/{id}", a.requireUser(a.connectPage))
			r.Post("/connect/{id}/approve", a.requireUser(a.approveConnect))
			r.Post("/connect/{id}/deny", a.requireUser(a.denyConnect))
		})
	})
	r.NotFound(a.Sessions.LoadAndSave(http.HandlerFunc(a.notFound)).ServeHTTP)
	return http.NewCrossOriginProtection().Handler(r)
}

// healthz answers 200 when the database does, 503 otherwise.
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, body := http.StatusOK, map[string]string{"status": "ok", "database": a.Store.Backend()}
	if err := a.Store.Ping(ctx); err != nil {
		a.Log.Error("health check: database unreachable", "err", err)
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": a.Store.Backend()}
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, body)
}

func staticFiles() http.Handler {
	fs := http.FileServerFS(static.FS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fs.ServeHTTP(w, r)
	})
}

// Serve answers on ln until ctx is cancelled, then lets requests in flight
// finish for up to ten seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
