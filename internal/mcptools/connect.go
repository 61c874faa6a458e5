package mcptools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// pendingLogin is a connect request this process started (DESIGN.md §4).
// The secret that trades the approved request for a token never leaves
// this struct: only its hash is in the database.
type pendingLogin struct {
	id         string
	secretHash []byte
	userCode   string
	url        string
	expiresAt  time.Time
}

func (ts *Toolset) currentPending() *pendingLogin {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.pending != nil && !time.Now().Before(ts.pending.expiresAt) {
		ts.pending = nil
	}
	return ts.pending
}

// dropPending forgets p, unless another login has replaced it already.
func (ts *Toolset) dropPending(p *pendingLogin) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.pending == p {
		ts.pending = nil
	}
}

// startLogin creates a connect request, after checking that the authserver
// that will show its page answers.
func (ts *Toolset) startLogin(ctx context.Context, req *mcp.CallToolRequest) (*pendingLogin, error) {
	if err := ts.checkAuthserver(ctx); err != nil {
		return nil, err
	}
	cr := authn.NewConnectRequest()
	expires := time.Now().Add(authn.ConnectLifetime)
	stored, err := ts.st.CreateConnectRequest(ctx, store.NewConnectRequest{
		ID:         cr.ID,
		SecretHash: cr.SecretHash,
		UserCode:   cr.UserCode,
		ClientName: clientName(req),
		ExpiresAt:  expires,
	})
	if err != nil {
		return nil, ts.fail(ctx, "start the sign-in", err)
	}
	p := &pendingLogin{
		id:         stored.ID,
		secretHash: cr.SecretHash,
		userCode:   stored.UserCode,
		url:        ts.cfg.PublicURL + "/connect/" + stored.ID,
		expiresAt:  stored.ExpiresAt,
	}
	ts.mu.Lock()
	ts.pending = p
	ts.mu.Unlock()
	ts.log.InfoContext(ctx, "login started", "client", stored.ClientName, "expires_at", stored.ExpiresAt)
	return p, nil
}

// checkAuthserver makes sure the web app that shows the connect page is up
// before sending anyone to it.
func (ts *Toolset) checkAuthserver(ctx context.Context) error {
	url := ts.cfg.PublicURL + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ts.fail(ctx, "reach the todo-mcp web app", err)
	}
	res, err := ts.http.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			return nil
		}
		err = fmt.Errorf("it answered %s", res.Status)
	}
	ts.log.WarnContext(ctx, "authserver unreachable", "url", url, "err", err)
	return actionable("The todo-mcp web app at %s is not answering (%s), and login needs it to show the sign-in page. Start it: `make dev` in the todo-mcp repository, or `bin/authserver` (it listens on port 3000 by default; PUBLIC_URL must match). Then call login again.",
		ts.cfg.PublicURL, shortNetError(err))
}

// shortNetError keeps the part of a network error a person can act on.
func shortNetError(err error) string {
	msg := err.Error()
	for _, known := range []string{"connection refused", "no such host", "i/o timeout", "context deadline exceeded"} {
		if strings.Contains(msg, known) {
			return known
		}
	}
	return clip(msg, 160)
}

// clientName is how the web page and the list of connected clients will
// name this client: what it told us at initialisation.
func clientName(req *mcp.CallToolRequest) string {
	name := "MCP client"
	if info := req.ClientInfo(); info != nil {
		switch {
		case strings.TrimSpace(info.Title) != "":
			name = info.Title
		case strings.TrimSpace(info.Name) != "":
			name = info.Name
		}
	}
	name = strings.ToValidUTF8(strings.ReplaceAll(strings.TrimSpace(name), "\x00", ""), "")
	if utf8.RuneCountInString(name) > 100 {
		name = clip(name, 99)
	}
	if name == "" {
		name = "MCP client"
	}
	return name
}

type consumeOutcome int

const (
	consumePending consumeOutcome = iota
	consumeSignedIn
)

// tryConsume asks the store once whether p was approved and, if so, trades
// it for a new token in the same transaction and saves the token. A
// request that can no longer succeed is forgotten and reported as a tool
// error saying how to start again.
func (ts *Toolset) tryConsume(ctx context.Context, p *pendingLogin) (consumeOutcome, error) {
	tok := authn.NewToken()
	_, err := ts.st.ConsumeConnectRequest(ctx, p.id, p.secretHash, store.NewAPIToken{
		Hash:      tok.Hash,
		Prefix:    tok.Prefix,
		ExpiresAt: time.Now().Add(authn.TokenLifetime),
	})
	switch {
	case err == nil:
		ts.dropPending(p)
		if err := ts.creds.Save(tok.Plain); err != nil {
			ts.log.ErrorContext(ctx, "login approved but the credential could not be saved", "err", err)
			return consumeSignedIn, &notSavedError{err}
		}
		ts.log.InfoContext(ctx, "login approved; credential saved", "path", ts.creds.Path())
		return consumeSignedIn, nil
	case errors.Is(err, store.ErrConflict):
		cr, gerr := ts.st.GetConnectRequest(ctx, p.id)
		if gerr != nil {
			return consumePending, ts.fail(ctx, "check the sign-in", gerr)
		}
		switch cr.State(time.Now()) {
		case store.ConnectPending, store.ConnectApproved:
			return consumePending, nil
		case store.ConnectDenied:
			ts.dropPending(p)
			return consumePending, actionable("The sign-in was denied on the web page. If that was a mistake, call login again for a new link.")
		case store.ConnectConsumed:
			// Another call of this process traded it already; its token is saved.
			ts.dropPending(p)
			return consumeSignedIn, nil
		}
		ts.dropPending(p)
		return consumePending, errLoginExpired
	case errors.Is(err, store.ErrExpired):
		ts.dropPending(p)
		return consumePending, errLoginExpired
	case errors.Is(err, store.ErrNotFound):
		ts.dropPending(p)
		return consumePending, actionable("The sign-in request no longer exists. Call login again for a new link.")
	}
	return consumePending, ts.fail(ctx, "check the sign-in", err)
}

// notSavedError: the login succeeded and the token works in this process,
// but it could not be written to disk.
type notSavedError struct{ err error }

func (e *notSavedError) Error() string {
	return fmt.Sprintf("the credential could not be saved (%v); it works until this server stops: fix that, then call login again to keep it", e.err)
}

var errLoginExpired = actionable("The sign-in link expired before it was approved. Call login again for a new link.")
