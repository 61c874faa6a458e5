package web

import (
	"net/http"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/sqlite3store"
	"github.com/alexedwards/scs/v2"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Session lifetimes: a week of inactivity or 30 days in all, whichever
// comes first.
const (
	sessionLifetime    = 30 * 24 * time.Hour
	sessionIdleTimeout = 7 * 24 * time.Hour
)

// NewSessions keeps sessions in the database (the sessions table of our
// migrations), so they survive restarts and are shared by every replica.
// secure marks the cookie Secure; set it whenever the public URL is https.
func NewSessions(st *store.Store, secure bool) *scs.SessionManager {
	sm := scs.New()
	if pool := st.Pool(); pool != nil {
		sm.Store = pgxstore.New(pool)
	} else {
		sm.Store = sqlite3store.New(st.DB())
	}
	sm.Lifetime = sessionLifetime
	sm.IdleTimeout = sessionIdleTimeout
	sm.Cookie.Name = "todo_mcp_session"
	if secure {
		// The __Host- prefix makes browsers refuse the cookie from a sibling
		// subdomain or without Secure and Path=/.
		sm.Cookie.Name = "__Host-todo_mcp_session"
	}
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = secure
	sm.Cookie.Path = "/"
	return sm
}
