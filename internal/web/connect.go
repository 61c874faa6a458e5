package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

type connectData struct {
	Request store.ConnectRequest
	State   store.ConnectState
}

// connectPage shows a connect request to the signed-in user, with the
// user code to compare against the editor's.
func (a *App) connectPage(w http.ResponseWriter, r *http.Request) {
	c, ok := a.loadConnect(w, r)
	if !ok {
		return
	}
	a.showConnect(w, r, http.StatusOK, c)
}

func (a *App) showConnect(w http.ResponseWriter, r *http.Request, status int, c store.ConnectRequest) {
	state := c.State(a.Now())
	data := connectData{Request: c, State: state}
	if state != store.ConnectPending && c.UserID != 0 && c.UserID != userFrom(r).ID {
		// Decided from another account: the editor is not connected to this one.
		data.State = "elsewhere"
	}
	a.render(w, r, status, "connect", "Connect "+c.ClientName, data)
}

func (a *App) loadConnect(w http.ResponseWriter, r *http.Request) (store.ConnectRequest, bool) {
	id := chi.URLParam(r, "id")
	c, err := a.Store.GetConnectRequest(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound) || len(id) > 64:
		a.fail(w, r, http.StatusNotFound, "Unknown connect request",
			"This connect link does not exist: it may have been mistyped or cleaned up after expiring.", "Ask your editor to log in to todo-mcp again for a fresh link.")
		return c, false
	case err != nil:
		a.internalError(w, r, "get connect request", err)
		return c, false
	}
	return c, true
}

func (a *App) approveConnect(w http.ResponseWriter, r *http.Request) {
	a.decideConnect(w, r, a.Store.ApproveConnectRequest, "approved")
}

func (a *App) denyConnect(w http.ResponseWriter, r *http.Request) {
	a.decideConnect(w, r, a.Store.DenyConnectRequest, "denied")
}

func (a *App) decideConnect(w http.ResponseWriter, r *http.Request,
	decide func(context.Context, string, int64) (store.ConnectRequest, error), verb string) {
	c, ok := a.loadConnect(w, r)
	if !ok {
		return
	}
	u := userFrom(r)
	decided, err := decide(r.Context(), c.ID, u.ID)
	switch {
	case err == nil:
		a.Log.Info("connect request "+verb, "user_id", u.ID, "client", c.ClientName)
		a.showConnect(w, r, http.StatusOK, decided)
	case errors.Is(err, store.ErrExpired), errors.Is(err, store.ErrConflict):
		// Expired, or decided already (perhaps in another tab): show it as it stands.
		a.showConnect(w, r, http.StatusConflict, decided)
	default:
		a.internalError(w, r, "decide connect request", err)
	}
}

// PruneConnectRequests deletes, every interval until ctx ends, the connect
// requests that expired more than keep ago. Recently expired ones stay, so
// their page still says "expired" rather than "unknown".
func PruneConnectRequests(ctx context.Context, st *store.Store, log *slog.Logger, every, keep time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := st.DeleteExpiredConnectRequests(ctx, time.Now().Add(-keep))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("prune expired connect requests", "err", err)
		case n > 0:
			log.Info("pruned expired connect requests", "count", n)
		}
	}
}
