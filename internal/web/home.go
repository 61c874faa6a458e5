package web

import (
	"errors"
	"html/template"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/clientconfig"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// clientSetup is the ready-to-paste configuration of each editor.
type clientSetup struct {
	Cursor, Claude, VSCode             string
	CursorPath, ClaudePath, VSCodePath string
	CursorInstallURL                   template.URL
}

func (a *App) clientSetup() clientSetup {
	s := clientconfig.For(a.MCPServerPath, a.Config)
	where := func(e clientconfig.Editor) string { return clientconfig.Locations(e, runtime.GOOS)[0] }
	return clientSetup{
		Cursor: clientconfig.Cursor(s), Claude: clientconfig.Claude(s), VSCode: clientconfig.VSCode(s),
		CursorPath: where(clientconfig.EditorCursor), ClaudePath: where(clientconfig.EditorClaude), VSCodePath: where(clientconfig.EditorVSCode),
		// html/template refuses unknown URL schemes; this one is built here, from our own values.
		CursorInstallURL: template.URL(clientconfig.CursorInstallURL(s)),
	}
}

type homeData struct {
	Plan   billing.Status
	Tokens []store.APIToken
	Setup  clientSetup
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	if u == nil {
		a.render(w, r, http.StatusOK, "home", "Your to-do list, in your AI editor", nil)
		return
	}
	tokens, err := a.Store.ListAPITokens(r.Context(), u.ID)
	if err != nil {
		a.internalError(w, r, "list tokens", err)
		return
	}
	a.render(w, r, http.StatusOK, "home", "Your account", homeData{Plan: a.Billing.Status(*u), Tokens: tokens, Setup: a.clientSetup()})
}

type tokenData struct {
	Token, ClientName string
	ExpiresAt         time.Time
}

// createToken mints a token and shows it once.
func (a *App) createToken(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	name := strings.TrimSpace(r.PostFormValue("client_name"))
	if err := store.ValidateClientName(name); err != nil {
		a.fail(w, r, http.StatusUnprocessableEntity, "The token was not created", "Give the token a name of 1 to 100 characters, after the client that will use it.", "Go back and try again.")
		return
	}
	tok := authn.NewToken()
	saved, err := a.Store.CreateAPIToken(r.Context(), store.NewAPIToken{
		UserID: u.ID, ClientName: name, Hash: tok.Hash, Prefix: tok.Prefix, ExpiresAt: a.Now().Add(authn.TokenLifetime),
	})
	if err != nil {
		a.internalError(w, r, "create token", err)
		return
	}
	a.Log.Info("token created", "user_id", u.ID, "token_id", saved.ID)
	a.render(w, r, http.StatusOK, "token", "Your new token", tokenData{Token: tok.Plain, ClientName: saved.ClientName, ExpiresAt: saved.ExpiresAt})
}

func (a *App) revokeToken(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil {
		err = store.ErrNotFound
	} else {
		err = a.Store.RevokeAPIToken(r.Context(), u.ID, id)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "No such token", "That token does not exist or is not yours.", "")
		return
	case err != nil:
		a.internalError(w, r, "revoke token", err)
		return
	}
	a.Log.Info("token revoked", "user_id", u.ID, "token_id", id)
	a.Sessions.Put(r.Context(), sessionFlash, "Token revoked: that client can no longer act as you.")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
