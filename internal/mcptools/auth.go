package mcptools

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// account is who a tool call acts for.
type account struct {
	user   store.User
	token  store.APIToken
	hash   []byte
	source CredentialSource
}

// signedIn authenticates the call with the saved token, checked against the
// store (which records the use at most once a minute). With no usable
// token, a login approved since the last call is picked up here. Every
// failure is a tool error that says what to do.
func (ts *Toolset) signedIn(ctx context.Context) (account, error) {
	return ts.signIn(ctx, false)
}

// signedInToRead is signedIn for the tools that only read todos
// (list_todos, get_todo): they may rely on a check of the same token made
// less than Deps.ReadAuthMaxAge ago (see recentAuth).
func (ts *Toolset) signedInToRead(ctx context.Context) (account, error) {
	return ts.signIn(ctx, true)
}

func (ts *Toolset) signIn(ctx context.Context, recentIsEnough bool) (account, error) {
	acct, authErr := ts.authenticate(ctx, recentIsEnough)
	if authErr == nil {
		return acct, nil
	}
	if ts.creds.FromEnv() {
		return account{}, authErr
	}
	p := ts.currentPending()
	if p == nil {
		return account{}, authErr
	}
	var notSaved *notSavedError
	switch outcome, err := ts.tryConsume(ctx, p); {
	case errors.As(err, &notSaved):
		// Signed in for this process; the log says why the file was not written.
	case err != nil:
		return account{}, err
	case outcome == consumePending:
		return account{}, actionable("Sign-in is not finished: open %s in a browser, check that it shows the code %s, and approve. Then call this tool again (or call login to wait for it).", p.url, p.userCode)
	}
	return ts.authenticate(ctx, false)
}

// authenticate checks the token in use, without looking at a pending
// login: against the store, or, when recentIsEnough, against the last
// successful check of the same token if it is recent enough.
func (ts *Toolset) authenticate(ctx context.Context, recentIsEnough bool) (account, error) {
	tok, source, err := ts.creds.Token()
	if err != nil {
		ts.log.WarnContext(ctx, "credential file unreadable", "err", err)
		return account{}, actionable("The saved todo-mcp credential cannot be read (%v). Call login to sign in again; it replaces the file.", err)
	}
	if tok == "" {
		return account{}, actionable("Not signed in to todo-mcp. Call the login tool: it shows a link to open in the browser and signs in by itself once the user approves.")
	}
	if !authn.LooksLikeToken(tok) {
		return account{}, ts.deadToken(source, "is not a todo-mcp token")
	}
	if recentIsEnough {
		if acct, ok := ts.recent.get(tok, source, time.Now()); ok {
			return acct, nil
		}
	}
	hash := authn.HashToken(tok)
	checked, gen := time.Now(), ts.recent.generation()
	t, u, err := ts.st.AuthenticateToken(ctx, hash)
	if err != nil {
		ts.recent.forget()
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return account{}, ts.deadToken(source, "is not known to this todo-mcp server (it may belong to another database)")
	case errors.Is(err, store.ErrRevoked):
		return account{}, ts.deadToken(source, "was revoked (signed out, or disconnected on the web page)")
	case errors.Is(err, store.ErrExpired):
		return account{}, ts.deadToken(source, "has expired")
	case err != nil:
		return account{}, ts.fail(ctx, "check the sign-in", err)
	}
	acct := account{user: u, token: t, hash: hash, source: source}
	ts.recent.put(tok, acct, checked, gen)
	return acct, nil
}

// DefaultReadAuthMaxAge is how long list_todos and get_todo may rely on a
// token check: a token revoked elsewhere (on the web page, or by another
// editor's logout) stops working for them within this time, and for every
// other tool at once.
const DefaultReadAuthMaxAge = 2 * time.Second

// recentAuth remembers the last successful check of a token against the
// store, so that a run of reads does not query the store for the same
// token each time (a third of a list_todos call, docs/benchmarks.md).
// What it bounds: only revocation by someone else is seen up to maxAge
// late, and only by the read-only tools; expiry is checked on every call,
// logout in this process forgets the token at once, and a failed check
// forgets it too. Only the user's id and the token's own fields are
// relied on: the plan and the counts (create_todo, whoami…) always come
// from a fresh check.
type recentAuth struct {
	maxAge time.Duration // <= 0: never rely on an earlier check

	mu      sync.Mutex
	token   string // the token checked, "" when none
	acct    account
	checked time.Time // when the check began
	gen     uint64    // counts forget calls
}

func (r *recentAuth) get(tok string, source CredentialSource, now time.Time) (account, bool) {
	if r.maxAge <= 0 {
		return account{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.token == "" || r.token != tok || r.acct.source != source ||
		now.Sub(r.checked) >= r.maxAge || now.Before(r.checked) || !now.Before(r.acct.token.ExpiresAt) {
		return account{}, false
	}
	return r.acct, true
}

// put remembers a successful check that began at checked, unless the
// token was forgotten since (gen is generation() from before the check):
// a check that raced with logout must not bring the token back.
func (r *recentAuth) put(tok string, acct account, checked time.Time, gen uint64) {
	if r.maxAge <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen {
		return
	}
	r.token, r.acct, r.checked = tok, acct, checked
}

func (r *recentAuth) generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

func (r *recentAuth) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.token, r.acct = "", account{}
	r.gen++
}

// deadToken explains a token that no longer works and how to replace it,
// which depends on where it came from.
func (ts *Toolset) deadToken(source CredentialSource, why string) error {
	if source == SourceEnv {
		return actionable("The token in %s %s. Replace it in your MCP client's configuration with a new one from %s (or remove it and call login), then restart the editor.",
			EnvToken, why, ts.cfg.PublicURL)
	}
	return actionable("Your todo-mcp sign-in %s. Call login again to sign in.", why)
}
