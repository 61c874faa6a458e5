package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Session keys.
const (
	sessionUserID = "user_id"
	sessionCSRF   = "csrf"
	sessionFlash  = "flash"
	// The pending sign-in, kept between the redirect and the callback.
	sessionAuthState    = "auth_state"
	sessionAuthNonce    = "auth_nonce"
	sessionAuthVerifier = "auth_verifier"
	sessionAuthReturn   = "auth_return"
	sessionAuthStarted  = "auth_started"
)

type ctxKey int

const userKey ctxKey = iota

// userFrom returns the signed-in user, or nil.
func userFrom(r *http.Request) *store.User {
	u, _ := r.Context().Value(userKey).(*store.User)
	return u
}

// loadUser puts the session's user, if any, in the request context. A
// session whose user was deleted is treated as signed out.
func (a *App) loadUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := a.Sessions.GetInt64(r.Context(), sessionUserID)
		if id == 0 {
			next.ServeHTTP(w, r)
			return
		}
		u, err := a.Store.GetUser(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			a.Sessions.Remove(r.Context(), sessionUserID)
		case err != nil:
			a.internalError(w, r, "load session user", err)
			return
		default:
			r = r.WithContext(context.WithValue(r.Context(), userKey, &u))
		}
		next.ServeHTTP(w, r)
	})
}

// requireUser sends signed-out visitors to sign in, and back here after.
func (a *App) requireUser(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if userFrom(r) != nil {
			h(w, r)
			return
		}
		if r.Method != http.MethodGet {
			a.fail(w, r, http.StatusUnauthorized, "Please sign in", "Your session has ended.", "Sign in, then try again.")
			return
		}
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	}
}

// csrfToken returns the session's form token, creating it on first use.
func (a *App) csrfToken(r *http.Request) string {
	tok := a.Sessions.GetString(r.Context(), sessionCSRF)
	if tok == "" {
		var b [32]byte
		_, _ = rand.Read(b[:])
		tok = base64.RawURLEncoding.EncodeToString(b[:])
		a.Sessions.Put(r.Context(), sessionCSRF, tok)
	}
	return tok
}

// checkCSRF refuses any state-changing request without the session's form
// token. net/http's CrossOriginProtection (in Routes) already refuses
// cross-origin browser requests; the token also covers browsers that send
// neither Sec-Fetch-Site nor Origin.
func (a *App) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		want := a.Sessions.GetString(r.Context(), sessionCSRF)
		got := r.PostFormValue("csrf_token")
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			a.Log.Warn("refused a form without a valid CSRF token", "route", routePattern(r))
			a.fail(w, r, http.StatusForbidden, "This form has expired",
				"The page you sent it from is too old, or it did not come from this site.", "Go back, reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders: a CSP without inline script or style, no framing, no
// sniffing, no referrer leaving the site.
func securityHeaders(formAction string) func(http.Handler) http.Handler {
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"form-action 'self'" + formAction + "; frame-ancestors 'none'; base-uri 'none'"
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "same-origin")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
			if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
				h.Set("Strict-Transport-Security", "max-age=63072000")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// cspFormAction allows the sign-out form's redirect to the provider's logout
// page (browsers apply form-action to the redirects that follow a POST).
func (a *App) cspFormAction() string {
	if a.OIDC == nil {
		return ""
	}
	u, err := url.Parse(a.OIDC.Issuer())
	if err != nil {
		return ""
	}
	return " " + u.Scheme + "://" + u.Host
}

// logRequests logs one line per request: the route pattern, never the raw
// path or query (which can hold codes, states and connect ids).
func (a *App) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		a.Log.Info("request", "method", r.Method, "route", routePattern(r), "status", ww.Status(),
			"duration", time.Since(start).Round(time.Microsecond))
	})
}

func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "(unmatched)"
}

// safeReturn keeps redirects after sign-in on this site.
// Browsers drop tabs and newlines from URLs and read a backslash as a
// slash, so "/\t/evil.example" would become "//evil.example": any control
// character or backslash sends the user home instead.
func safeReturn(s string) string {
	if s == "" || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") ||
		strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' }) >= 0 {
		return "/"
	}
	return s
}

// clientIP is the address rate limits count by: the peer, or the client a
// trusted proxy names in X-Forwarded-For (see Routes).
func clientIP(r *http.Request) (string, error) {
	if ip := middleware.GetClientIP(r.Context()); ip != "" {
		return ip, nil
	}
	return "unknown", nil
}
