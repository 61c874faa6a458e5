package mcptools

import (
	"context"
	"errors"

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

// signedIn authenticates the call with the saved token (checked against the
// store on every call; the store records the use at most once a minute).
// With no usable token, a login approved since the last call is picked up
// here. Every failure is a tool error that says what to do.
func (ts *Toolset) signedIn(ctx context.Context) (account, error) {
	acct, authErr := ts.authenticate(ctx)
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
	return ts.authenticate(ctx)
}

// authenticate checks the token in use, without looking at a pending login.
func (ts *Toolset) authenticate(ctx context.Context) (account, error) {
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
	hash := authn.HashToken(tok)
	t, u, err := ts.st.AuthenticateToken(ctx, hash)
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
	return account{user: u, token: t, hash: hash, source: source}, nil
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
