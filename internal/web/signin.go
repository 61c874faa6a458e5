package web

import (
	"errors"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// signInTTL bounds how long a started sign-in may take to come back.
const signInTTL = 10 * time.Minute

func (a *App) login(w http.ResponseWriter, r *http.Request)  { a.startSignIn(w, r, false) }
func (a *App) signup(w http.ResponseWriter, r *http.Request) { a.startSignIn(w, r, true) }

// startSignIn sends the browser to the provider (prompt=create for sign-up),
// or shows the development sign-in form.
func (a *App) startSignIn(w http.ResponseWriter, r *http.Request, signUp bool) {
	q := r.URL.Query()
	returnTo := safeReturn(q.Get("return_to"))
	choosingPlan := q.Get("plan_interest") != "" || q.Get("pricing_table_key") != ""
	// A signed-in user goes on, unless they come to pick a plan at Kinde
	// (billing sends users without a usable Kinde sign-in here).
	if userFrom(r) != nil && (a.OIDC == nil || !choosingPlan) {
		http.Redirect(w, r, returnTo, http.StatusSeeOther)
		return
	}
	if a.OIDC == nil {
		if !a.devSignInAllowed(r) {
			a.fail(w, r, http.StatusForbidden, "Sign-in is not available here", "The development sign-in only answers on this machine.", "Open the page from the machine that runs the authserver.")
			return
		}
		a.render(w, r, http.StatusOK, "devsignin", "Sign in", devSignInForm{SignUp: signUp, ReturnTo: returnTo})
		return
	}
	start := authn.NewAuthStart()
	extra := url.Values{}
	if signUp {
		extra.Set("prompt", "create")
	}
	for _, k := range []string{"plan_interest", "pricing_table_key", "login_hint"} {
		if v := q.Get(k); v != "" && len(v) <= 200 {
			extra.Set(k, v)
		}
	}
	target, err := a.OIDC.AuthCodeURL(r.Context(), start, extra)
	if err != nil {
		a.Log.Error("start sign-in", "err", err)
		a.fail(w, r, http.StatusBadGateway, "The sign-in service cannot be reached",
			"The identity provider did not answer.", "Try again in a minute.")
		return
	}
	ctx := r.Context()
	a.Sessions.Put(ctx, sessionAuthState, start.State)
	a.Sessions.Put(ctx, sessionAuthNonce, start.Nonce)
	a.Sessions.Put(ctx, sessionAuthVerifier, start.Verifier)
	a.Sessions.Put(ctx, sessionAuthReturn, returnTo)
	a.Sessions.Put(ctx, sessionAuthStarted, a.Now().Unix())
	http.Redirect(w, r, target, http.StatusFound)
}

// callback finishes a provider sign-in. The pending state is taken out of
// the session before anything else, so it can never be used twice.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	start := authn.AuthStart{
		State:    a.Sessions.PopString(ctx, sessionAuthState),
		Nonce:    a.Sessions.PopString(ctx, sessionAuthNonce),
		Verifier: a.Sessions.PopString(ctx, sessionAuthVerifier),
	}
	returnTo := safeReturn(a.Sessions.PopString(ctx, sessionAuthReturn))
	started := time.Unix(a.Sessions.GetInt64(ctx, sessionAuthStarted), 0)
	a.Sessions.Remove(ctx, sessionAuthStarted)
	if a.OIDC == nil {
		a.notFound(w, r)
		return
	}
	q := r.URL.Query()
	if err := authn.CheckState(q.Get("state"), start.State); err != nil || a.Now().Sub(started) > signInTTL {
		a.Log.Warn("sign-in callback with an unknown, replayed or stale state")
		a.fail(w, r, http.StatusBadRequest, "Sign-in did not complete",
			"This sign-in link is unknown, expired or already used.", "Start again from the sign-in button.")
		return
	}
	if e := q.Get("error"); e != "" {
		// Only a provider answering our own request gets here (the state
		// matched); its words go to the log, the page says it in ours.
		a.Log.Info("provider refused the sign-in", "error", truncate(e, 64), "description", truncate(q.Get("error_description"), 300))
		a.fail(w, r, http.StatusBadRequest, "Sign-in did not complete", providerErrorText(e), "Try signing in again.")
		return
	}
	signIn, err := a.OIDC.Exchange(ctx, q.Get("code"), start)
	var sie *authn.SignInError
	switch {
	case errors.As(err, &sie):
		a.Log.Warn("sign-in refused", "reason", sie.Reason)
		a.fail(w, r, http.StatusBadRequest, "Sign-in did not complete", "The sign-in could not be verified, so it was refused.", "Start again from the sign-in button.")
		return
	case err != nil:
		a.Log.Error("sign-in exchange", "err", err)
		a.fail(w, r, http.StatusBadGateway, "The sign-in service cannot be reached", "The identity provider did not answer.", "Try again in a minute.")
		return
	}
	name := signIn.Name
	if name == "" {
		name, _, _ = strings.Cut(signIn.Email, "@")
	}
	u, err := a.Store.UpsertUser(ctx, store.Identity{Subject: signIn.Subject, Email: signIn.Email, Name: name})
	if err != nil {
		a.internalError(w, r, "upsert user", err)
		return
	}
	if signIn.RefreshToken != "" && a.Sealer != nil {
		sealed := a.Sealer.Seal([]byte(signIn.RefreshToken), authn.CredentialAD(u.ID))
		if err := a.Store.SaveProviderCredential(ctx, u.ID, authn.CredentialProvider, sealed); err != nil {
			a.internalError(w, r, "save provider credential", err)
			return
		}
	}
	// The plan is checked at every sign-in; a failure leaves the last known
	// plan, marked stale on the billing page.
	if _, err := a.Billing.Refresh(ctx, u); err != nil {
		a.Log.Warn("refresh the plan at sign-in", "user_id", u.ID, "err", err)
	}
	if err := a.establishSession(r, u); err != nil {
		a.internalError(w, r, "renew session", err)
		return
	}
	a.Log.Info("signed in", "user_id", u.ID)
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

// providerErrorText explains the standard OAuth error codes in plain words.
func providerErrorText(code string) string {
	switch code {
	case "access_denied":
		return "The sign-in was cancelled or refused at the identity provider (access_denied)."
	case "login_required", "interaction_required", "consent_required":
		return "The identity provider needs you to sign in again (" + code + ")."
	case "temporarily_unavailable", "server_error":
		return "The identity provider had a problem (" + code + ")."
	default:
		return "The identity provider refused the sign-in."
	}
}

// establishSession gives the browser a new session token (no fixation) for u.
func (a *App) establishSession(r *http.Request, u store.User) error {
	if err := a.Sessions.RenewToken(r.Context()); err != nil {
		return err
	}
	a.Sessions.Put(r.Context(), sessionUserID, u.ID)
	a.Sessions.Remove(r.Context(), sessionCSRF) // a fresh form token for the new session
	return nil
}

// logout ends the session here and, with a provider, there too.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.Sessions.Destroy(r.Context()); err != nil {
		a.internalError(w, r, "destroy session", err)
		return
	}
	if a.OIDC != nil {
		if target := a.OIDC.LogoutURL(r.Context(), a.Config.PublicURL+"/"); target != "" {
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type devSignInForm struct {
	SignUp      bool
	ReturnTo    string
	Email, Name string
	Problem     string
}

// devSignIn signs in whoever says who they are: the development default,
// served only on loopback.
func (a *App) devSignIn(w http.ResponseWriter, r *http.Request) {
	if a.OIDC != nil {
		a.notFound(w, r)
		return
	}
	if !a.devSignInAllowed(r) {
		a.fail(w, r, http.StatusForbidden, "Sign-in is not available here", "The development sign-in only answers on this machine.", "")
		return
	}
	form := devSignInForm{
		ReturnTo: safeReturn(r.PostFormValue("return_to")),
		Email:    strings.TrimSpace(r.PostFormValue("email")),
		Name:     strings.TrimSpace(r.PostFormValue("name")),
	}
	addr, err := mail.ParseAddress(form.Email)
	switch {
	case err != nil || addr.Address != form.Email || len(form.Email) > 320:
		form.Problem = "Enter an email address such as ada@example.com."
	case form.Name == "" || utf8.RuneCountInString(form.Name) > 200 || !utf8.ValidString(form.Name):
		form.Problem = "Enter your name (up to 200 characters)."
	}
	if form.Problem != "" {
		a.render(w, r, http.StatusUnprocessableEntity, "devsignin", "Sign in", form)
		return
	}
	u, err := a.Store.UpsertUser(r.Context(), store.Identity{Subject: "dev:" + strings.ToLower(form.Email), Email: form.Email, Name: form.Name})
	if err != nil {
		a.internalError(w, r, "upsert user", err)
		return
	}
	if err := a.establishSession(r, u); err != nil {
		a.internalError(w, r, "renew session", err)
		return
	}
	a.Log.Info("signed in with the development sign-in", "user_id", u.ID)
	http.Redirect(w, r, form.ReturnTo, http.StatusSeeOther)
}

// devSignInAllowed: the development sign-in answers loopback clients only,
// unless DEV_SIGNIN_ALLOW_REMOTE says otherwise.
// It also wants the Host of PUBLIC_URL (no DNS rebinding) and no proxy
// headers (a tunnel or proxy on this machine would otherwise publish it).
func (a *App) devSignInAllowed(r *http.Request) bool {
	if a.Config.IsProduction() {
		return false
	}
	if a.Config.DevSignInAllowRemote {
		return true
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	if pub, err := url.Parse(a.Config.PublicURL); err != nil || !strings.EqualFold(r.Host, pub.Host) {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
