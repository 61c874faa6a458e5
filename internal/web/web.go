// Package web is the authserver's HTTP application: routes, handlers and
// the server's lifecycle.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// App holds what the handlers share.
type App struct {
	cfg   *config.Config
	store *store.Store
	log   *slog.Logger
}

// New builds the application.
func New(cfg *config.Config, st *store.Store, log *slog.Logger) *App {
	return &App{cfg: cfg, store: st, log: log}
}

// Routes lists every route of the web app in one place.
func (a *App) Routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/healthz", a.healthz)
	return r
}

// healthz answers 200 when the database does, 503 otherwise.
func (a *App) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, body := http.StatusOK, map[string]string{"status": "ok", "database": a.store.Backend()}
	if err := a.store.Ping(ctx); err != nil {
		a.log.Error("health check: database unreachable", "err", err)
		status, body = http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": a.store.Backend()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Serve listens on addr until ctx is cancelled, then lets requests in flight
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
