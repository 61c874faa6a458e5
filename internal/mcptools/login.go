package mcptools

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// UserInfo is the signed-in person.
type UserInfo struct {
	Email string `json:"email" jsonschema:"E-mail address of the account."`
	Name  string `json:"name" jsonschema:"Display name; may be empty."`
}

func userInfo(u store.User) UserInfo { return UserInfo{Email: u.Email, Name: u.Name} }

// Login statuses.
const (
	statusSignedIn        = "signed_in"
	statusAlreadySignedIn = "already_signed_in"
	statusPending         = "pending"
)

// LoginArgs takes nothing: the user signs in in the browser.
type LoginArgs struct{}

// LoginResult says whether the user is signed in, or where to approve.
type LoginResult struct {
	Status    string    `json:"status" jsonschema:"signed_in, already_signed_in, or pending (not approved yet: show the url and user_code to the user)."`
	Message   string    `json:"message" jsonschema:"What happened and what to do next, to relay to the user."`
	URL       string    `json:"url,omitempty" jsonschema:"The page where the user signs in and approves this editor (while pending)."`
	UserCode  string    `json:"user_code,omitempty" jsonschema:"The code the page shows; the user checks it matches (while pending)."`
	ExpiresAt string    `json:"expires_at,omitempty" jsonschema:"When the link stops working (RFC 3339, while pending)."`
	User      *UserInfo `json:"user,omitempty" jsonschema:"Who is signed in (once signed in)."`
}

const openSignInKey = "open_sign_in_page"

func loginTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "login",
		Description: `Sign the user in to todo-mcp. Call it when another tool says the user is not signed in, or when the user asks to log in.
It shows a link and a short code: the user opens the link in a browser, signs in, checks the code and approves. The call waits (about two minutes) and returns signed_in once approved; if it returns pending, show the user the url and user_code, and the next call of any tool picks up the approval.
Nothing to pass, and no password or token ever goes through the chat.`,
		InputSchema: inputSchema[LoginArgs](nil),
		Annotations: hints{idempotent: true, openWorld: true}.annotations("Sign in"),
	}, ts.login)
}

func (ts *Toolset) login(ctx context.Context, req *mcp.CallToolRequest, _ LoginArgs) (*mcp.CallToolResult, LoginResult, error) {
	if ts.creds.FromEnv() {
		acct, err := ts.authenticate(ctx, false)
		if err != nil {
			return nil, LoginResult{}, actionable("This server uses the token in %s from your MCP client's configuration, so login cannot replace it. %v", EnvToken, err)
		}
		return ts.alreadySignedIn(acct)
	}
	if acct, err := ts.authenticate(ctx, false); err == nil {
		return ts.alreadySignedIn(acct)
	}

	// A retry after the client answered the request to open the page
	// continues that request; any other call continues the login in
	// progress, or starts one.
	var (
		p        *pendingLogin
		answered *mcp.ElicitResult
	)
	if cur := ts.currentPending(); cur != nil {
		if a := ts.openSignIn(cur).answer(req); a != nil {
			p, answered = cur, a
		} else if time.Until(cur.expiresAt) > time.Minute {
			p = cur
		}
	}
	if p == nil {
		var err error
		if p, err = ts.startLogin(ctx, req); err != nil {
			return nil, LoginResult{}, err
		}
	}
	if answered == nil && !isRetry(req) {
		if ask := ts.openSignIn(p).ask(req); ask != nil {
			return ask, LoginResult{}, nil
		}
	}
	if answered != nil && answered.Action != "accept" {
		return ts.loginPending(p, "The page was not opened. ")
	}
	return ts.waitForApproval(ctx, req, p)
}

func (ts *Toolset) openSignIn(p *pendingLogin) openURL {
	return openURL{
		key:     openSignInKey,
		state:   p.id,
		url:     p.url,
		message: fmt.Sprintf("Sign in to todo-mcp and approve this editor. Check that the page shows the code %s.", p.userCode),
	}
}

// waitForApproval polls the store about once per poll interval until the
// request is approved, fails, or the wait is over, reporting progress to
// clients that asked for it.
func (ts *Toolset) waitForApproval(ctx context.Context, req *mcp.CallToolRequest, p *pendingLogin) (*mcp.CallToolResult, LoginResult, error) {
	start := time.Now()
	deadline := start.Add(ts.loginWait)
	if deadline.After(p.expiresAt) {
		deadline = p.expiresAt
	}
	ticker := time.NewTicker(ts.pollInterval)
	defer ticker.Stop()
	progressToken := req.Params.GetProgressToken()
	for {
		outcome, err := ts.tryConsume(ctx, p)
		var notSaved *notSavedError
		switch {
		case errors.As(err, &notSaved):
			return ts.loginDone(ctx, "Signed in, but "+notSaved.Error()+".")
		case err != nil:
			return nil, LoginResult{}, err
		case outcome == consumeSignedIn:
			return ts.loginDone(ctx, "")
		}
		if !time.Now().Before(deadline) {
			return ts.loginPending(p, "")
		}
		if progressToken != nil {
			waited := time.Since(start)
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: progressToken,
				Progress:      waited.Seconds(),
				Total:         deadline.Sub(start).Seconds(),
				Message:       fmt.Sprintf("Waiting for approval at %s (code %s)", p.url, p.userCode),
			})
			if err != nil {
				ts.log.DebugContext(ctx, "progress notification failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil, LoginResult{}, ts.fail(ctx, "wait for the sign-in", ctx.Err())
		case <-ticker.C:
		}
	}
}

func (ts *Toolset) loginDone(ctx context.Context, note string) (*mcp.CallToolResult, LoginResult, error) {
	acct, err := ts.authenticate(ctx, false)
	if err != nil {
		return nil, LoginResult{}, err
	}
	u := userInfo(acct.user)
	msg := "Signed in to todo-mcp as " + who(acct.user) + "."
	if note != "" {
		msg += " " + note
	}
	return textResult(msg), LoginResult{Status: statusSignedIn, Message: msg, User: &u}, nil
}

func (ts *Toolset) alreadySignedIn(acct account) (*mcp.CallToolResult, LoginResult, error) {
	u := userInfo(acct.user)
	msg := "Already signed in to todo-mcp as " + who(acct.user) + ". To use another account, call logout first, then login."
	return textResult(msg), LoginResult{Status: statusAlreadySignedIn, Message: msg, User: &u}, nil
}

func (ts *Toolset) loginPending(p *pendingLogin, prefix string) (*mcp.CallToolResult, LoginResult, error) {
	msg := fmt.Sprintf("%sTo sign in, open %s in a browser, check that the page shows the code %s, and approve. The link works until %s. Once approved, call any todo-mcp tool (or login again): the sign-in completes by itself.",
		prefix, p.url, p.userCode, p.expiresAt.UTC().Format("15:04 UTC"))
	return textResult(msg), LoginResult{
		Status:    statusPending,
		Message:   msg,
		URL:       p.url,
		UserCode:  p.userCode,
		ExpiresAt: rfc3339(p.expiresAt),
	}, nil
}

// textResult shows message as the tool's text; the SDK adds the
// structured content.
func textResult(message string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: message}}}
}

func who(u store.User) string {
	switch {
	case u.Email != "" && u.Name != "":
		return u.Name + " <" + u.Email + ">"
	case u.Email != "":
		return u.Email
	case u.Name != "":
		return u.Name
	}
	return "user " + u.Subject
}

// SaveTokenArgs carries a token the user pasted.
type SaveTokenArgs struct {
	Token string `json:"token" jsonschema:"A todo-mcp token (starts with tmcp_) created on the todo-mcp web page, or a Kinde-issued JWT when the server is configured for Kinde. It is checked, saved, and never shown back."`
}

// SaveTokenResult says who the saved token signs in.
type SaveTokenResult struct {
	Status    string   `json:"status" jsonschema:"saved."`
	Message   string   `json:"message" jsonschema:"What happened, to relay to the user."`
	User      UserInfo `json:"user" jsonschema:"Who the token signs in."`
	ExpiresAt string   `json:"expires_at" jsonschema:"When the saved token expires (RFC 3339)."`
}

// maxPastedToken bounds what save_token reads; JWTs are a few kilobytes.
const maxPastedToken = 16 << 10

func saveTokenTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "save_token",
		Description: `Save a token the user pasted, so that the next calls act as them. Prefer login, which needs no copy-paste; use this only when the user gives you a token.
Accepts a todo-mcp token (tmcp_…, created on the todo-mcp web page) or, when the server is configured for Kinde, a Kinde-issued JWT (verified, then exchanged for a todo-mcp token). Never repeat the token back to the user.`,
		InputSchema: inputSchema[SaveTokenArgs](func(p map[string]*jsonschema.Schema) {
			p["token"].MinLength, p["token"].MaxLength = jsonschema.Ptr(1), jsonschema.Ptr(maxPastedToken)
		}),
		Annotations: hints{idempotent: true, openWorld: true}.annotations("Save a pasted token"),
	}, ts.saveToken)
}

func (ts *Toolset) saveToken(ctx context.Context, req *mcp.CallToolRequest, args SaveTokenArgs) (*mcp.CallToolResult, SaveTokenResult, error) {
	if ts.creds.FromEnv() {
		return nil, SaveTokenResult{}, actionable("This server uses the token in %s from your MCP client's configuration, so a pasted token cannot replace it. Put the new token there instead and restart the editor.", EnvToken)
	}
	tok := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(args.Token), "Bearer "))
	var (
		user    store.User
		expires time.Time
	)
	switch {
	case authn.LooksLikeToken(tok):
		t, u, err := ts.st.AuthenticateToken(ctx, authn.HashToken(tok))
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrRevoked), errors.Is(err, store.ErrExpired):
			return nil, SaveTokenResult{}, actionable("That todo-mcp token does not work (%v). Create a new one on %s, or call login instead.", err, ts.cfg.PublicURL)
		case err != nil:
			return nil, SaveTokenResult{}, ts.fail(ctx, "check the token", err)
		}
		user, expires = u, t.ExpiresAt
	case looksLikeJWT(tok):
		u, minted, t, err := ts.exchangeJWT(ctx, req, tok)
		if err != nil {
			return nil, SaveTokenResult{}, err
		}
		user, expires, tok = u, t.ExpiresAt, minted
	default:
		return nil, SaveTokenResult{}, actionable("That is not a todo-mcp token (they start with %s) nor a JWT. Call login instead: it needs no copy-paste.", authn.TokenPrefix)
	}
	if err := ts.creds.Save(tok); err != nil {
		ts.log.ErrorContext(ctx, "save_token: credential not saved", "err", err)
		return nil, SaveTokenResult{}, actionable("The token is valid but could not be saved (%v). Fix that and call save_token again.", err)
	}
	ts.log.InfoContext(ctx, "token saved", "path", ts.creds.Path())
	msg := "Saved. Signed in to todo-mcp as " + who(user) + "."
	return textResult(msg), SaveTokenResult{Status: "saved", Message: msg, User: userInfo(user), ExpiresAt: rfc3339(expires)}, nil
}

// LogoutArgs takes nothing.
type LogoutArgs struct{}

// LogoutResult says what was undone.
type LogoutResult struct {
	Status  string `json:"status" jsonschema:"signed_out, or not_signed_in when there was nothing to undo."`
	Message string `json:"message" jsonschema:"What happened, to relay to the user."`
}

func logoutTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "logout",
		Description: `Sign the user out of todo-mcp on this computer: the saved token is revoked on the server and its file deleted. Their todos stay on their account.
Call it when the user asks to log out or to switch accounts (then call login).`,
		InputSchema: inputSchema[LogoutArgs](nil),
		Annotations: hints{destructive: true, idempotent: true}.annotations("Sign out"),
	}, ts.logout)
}

func (ts *Toolset) logout(ctx context.Context, _ *mcp.CallToolRequest, _ LogoutArgs) (*mcp.CallToolResult, LogoutResult, error) {
	if p := ts.currentPending(); p != nil {
		ts.dropPending(p)
	}
	tok, source, readErr := ts.creds.Token()
	if readErr == nil && tok == "" {
		msg := "Not signed in to todo-mcp; nothing to do."
		return textResult(msg), LogoutResult{Status: "not_signed_in", Message: msg}, nil
	}
	if tok != "" {
		err := ts.st.RevokeAPITokenByHash(ctx, authn.HashToken(tok))
		// After the revocation, so that no check that began before it is remembered.
		ts.recent.forget()
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, LogoutResult{}, ts.fail(ctx, "revoke the token", err)
		}
	}
	if source == SourceEnv {
		msg := fmt.Sprintf("Signed out: the token in %s is revoked. Remove %s from your MCP client's configuration and restart the editor; until then every call will fail.", EnvToken, EnvToken)
		return textResult(msg), LogoutResult{Status: "signed_out", Message: msg}, nil
	}
	if err := ts.creds.Delete(); err != nil {
		return nil, LogoutResult{}, actionable("The token is revoked, but its file could not be deleted (%v). Delete %s by hand.", err, ts.creds.Path())
	}
	ts.log.InfoContext(ctx, "signed out", "path", ts.creds.Path())
	msg := "Signed out of todo-mcp: the token is revoked and its file deleted. Call login to sign in again."
	return textResult(msg), LogoutResult{Status: "signed_out", Message: msg}, nil
}

// WhoamiArgs takes nothing.
type WhoamiArgs struct{}

// TodoCounts counts the user's todos.
type TodoCounts struct {
	Total     int `json:"total" jsonschema:"Stored todos (what the plan's limit counts)."`
	Open      int `json:"open" jsonschema:"Not completed."`
	Completed int `json:"completed" jsonschema:"Completed."`
	Overdue   int `json:"overdue" jsonschema:"Open and past their due day or moment."`
}

// WhoamiResult describes the signed-in user.
type WhoamiResult struct {
	User           UserInfo   `json:"user" jsonschema:"Who is signed in."`
	Plan           PlanStatus `json:"plan" jsonschema:"The plan and how much of it is used."`
	Todos          TodoCounts `json:"todos" jsonschema:"Counts of the user's todos."`
	SignedInVia    string     `json:"signed_in_via" jsonschema:"Where the token comes from: file, environment (TODO_MCP_TOKEN) or memory."`
	ClientName     string     `json:"client_name" jsonschema:"The name this connection was approved under."`
	TokenExpiresAt string     `json:"token_expires_at" jsonschema:"When the sign-in expires (RFC 3339); call login again after that."`
}

func whoamiTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "whoami",
		Description: `Who is signed in, their plan, how many todos they store and how many more the plan allows, and counts of open, completed and overdue todos.
Use it for "am I logged in?", "how many todos do I have left?", "what plan am I on?".`,
		InputSchema: inputSchema[WhoamiArgs](nil),
		Annotations: hints{readOnly: true, idempotent: true}.annotations("Who am I"),
	}, ts.whoami)
}

func (ts *Toolset) whoami(ctx context.Context, _ *mcp.CallToolRequest, _ WhoamiArgs) (*mcp.CallToolResult, WhoamiResult, error) {
	acct, err := ts.signedIn(ctx)
	if err != nil {
		return nil, WhoamiResult{}, err
	}
	usage, err := ts.st.Usage(ctx, acct.user.ID)
	if err != nil {
		return nil, WhoamiResult{}, ts.fail(ctx, "count your todos", err)
	}
	return nil, WhoamiResult{
		User:           userInfo(acct.user),
		Plan:           ts.planStatus(ts.billing.Status(acct.user)),
		Todos:          TodoCounts{Total: usage.Total, Open: usage.Open, Completed: usage.Completed, Overdue: usage.Overdue},
		SignedInVia:    string(acct.source),
		ClientName:     acct.token.ClientName,
		TokenExpiresAt: rfc3339(acct.token.ExpiresAt),
	}, nil
}
