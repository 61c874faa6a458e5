// Package mcptools is todo-mcp's MCP surface: the tools a model calls to
// sign the user in and to read and change their to-do list, built on the
// official Go SDK. The stdio server (cmd/mcpserver) and a later HTTP mode
// build their server with NewServer.
//
// Each tool is one constructor returning its definition and typed handler
// (the files login.go, todos.go, billing.go); Tools lists them all. Every
// tool has an input and an output schema, explicit annotations, and
// answers user-actionable failures with a tool error that names the next
// step.
package mcptools

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// ServerName is the MCP server's name, as clients show it.
const ServerName = "todo-mcp"

// Defaults of the login wait.
const (
	// DefaultLoginWait is how long login waits for the approval in the
	// browser before answering "pending".
	DefaultLoginWait = 2 * time.Minute
	// DefaultPollInterval is how often login checks for the approval.
	DefaultPollInterval = time.Second
)

// instructions tell the model how the tools fit together.
const instructions = `todo-mcp is the user's personal to-do list, kept on their todo-mcp account.
Todos are identified by their number ("todo 3"), which never changes and is never reused.
If a tool answers that the user is not signed in, call login and show the user the link and the code it returns; login finishes by itself once they approve in the browser.
Dates are YYYY-MM-DD for a whole day or RFC 3339 (2026-03-14T17:00:00+01:00) for a moment; convert words like "Friday" to a date before calling.
The free plan stores a limited number of todos: whoami shows the usage, upgrade_plan gives the upgrade link.`

// Deps is what the tools need. Config, and Store or OpenedStore, are
// required.
type Deps struct {
	Store *store.Store
	// OpenedStore, used when Store is nil, waits for a database that is
	// being opened elsewhere and returns it: cmd/mcpserver opens it while
	// the client's initialize and tools/list are answered, which need no
	// database. Tool calls wait for it; Toolset.Ready reports a failure.
	OpenedStore func(context.Context) (*store.Store, error)
	Config      *config.Config
	// Credentials keeps the signed-in token; nil means CredentialsFromEnv
	// with the process environment.
	Credentials *Credentials
	// Billing decides plans and limits; nil means billing.FromConfig
	// (Kinde billing when Kinde is configured, the local plans otherwise).
	Billing *billing.Service
	// Logger receives errors and, at debug level, one line per request;
	// nil discards them. Never stdout on stdio.
	Logger *slog.Logger
	// Version is reported to clients.
	Version string
	// LoginWait bounds how long a login call waits for the approval; 0
	// means DefaultLoginWait.
	LoginWait time.Duration
	// PollInterval is how often login checks for the approval; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// HTTPClient reaches the authserver's /healthz and the identity
	// provider; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// ReadAuthMaxAge is how long list_todos and get_todo may rely on an
	// earlier check of the same token instead of asking the store again;
	// 0 means DefaultReadAuthMaxAge, a negative value checks every call.
	ReadAuthMaxAge time.Duration
}

// Toolset holds what the tools share: the dependencies, and the login in
// progress, whose secret lives only in this process's memory.
type Toolset struct {
	st           *store.Store
	cfg          *config.Config
	creds        *Credentials
	log          *slog.Logger
	billing      *billing.Service
	http         *http.Client
	jwt          *jwtVerifier // nil unless an identity provider is configured
	version      string
	loginWait    time.Duration
	pollInterval time.Duration

	recent recentAuth

	// backendReady is closed once st and billing are set, or backendErr
	// says why they cannot be.
	backendReady chan struct{}
	backendErr   error

	mu      sync.Mutex
	pending *pendingLogin
}

// New builds the tool set. It fails when the credential directory cannot
// be determined or billing cannot be set up; with OpenedStore, billing is
// set up once the store is open, and Ready reports a failure.
func New(d Deps) (*Toolset, error) {
	if d.Store == nil && d.OpenedStore == nil {
		return nil, errors.New("mcptools: Deps.Store or Deps.OpenedStore is required")
	}
	ts := &Toolset{
		cfg:          d.Config,
		creds:        d.Credentials,
		log:          d.Logger,
		http:         d.HTTPClient,
		version:      d.Version,
		loginWait:    d.LoginWait,
		pollInterval: d.PollInterval,
		backendReady: make(chan struct{}),
	}
	if ts.log == nil {
		ts.log = slog.New(slog.DiscardHandler)
	}
	if ts.http == nil {
		ts.http = &http.Client{Timeout: 10 * time.Second}
	}
	if ts.creds == nil {
		creds, err := CredentialsFromEnv(os.Getenv)
		if err != nil {
			return nil, err
		}
		ts.creds = creds
	}
	if ts.loginWait <= 0 {
		ts.loginWait = DefaultLoginWait
	}
	if ts.pollInterval <= 0 {
		ts.pollInterval = DefaultPollInterval
	}
	if ts.version == "" {
		ts.version = "dev"
	}
	ts.recent.maxAge = d.ReadAuthMaxAge
	if ts.recent.maxAge == 0 {
		ts.recent.maxAge = DefaultReadAuthMaxAge
	}
	if k := d.Config.Kinde; k.Configured() {
		ts.jwt = newJWTVerifier(k, ts.http)
	}
	if d.Store != nil {
		if err := ts.setBackend(d.Store, d.Billing); err != nil {
			return nil, err
		}
		close(ts.backendReady)
		return ts, nil
	}
	go func() {
		defer close(ts.backendReady)
		st, err := d.OpenedStore(context.Background())
		if err == nil {
			err = ts.setBackend(st, d.Billing)
		}
		ts.backendErr = err
	}()
	return ts, nil
}

// setBackend sets the store, and billing over it unless given.
func (ts *Toolset) setBackend(st *store.Store, svc *billing.Service) error {
	if svc == nil {
		var err error
		if svc, err = billing.FromConfig(ts.cfg, st, nil, ts.log); err != nil {
			return err
		}
	}
	ts.st, ts.billing = st, svc
	return nil
}

// Ready waits until the tools can reach the store (at once unless
// Deps.OpenedStore is opening it), and says why they never will.
func (ts *Toolset) Ready(ctx context.Context) error {
	select {
	case <-ts.backendReady:
		return ts.backendErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitBackend is a receiving middleware that holds tool calls until the
// store is open. Nothing else needs it: initialize and tools/list are
// answered while it opens.
func (ts *Toolset) awaitBackend(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method == "tools/call" {
			if err := ts.Ready(ctx); err != nil {
				var res mcp.CallToolResult
				res.SetError(ts.fail(ctx, "open the todo-mcp database", err))
				return &res, nil
			}
		}
		return next(ctx, method, req)
	}
}

// NewServer builds an MCP server offering every tool.
func NewServer(d Deps) (*mcp.Server, error) {
	ts, err := New(d)
	if err != nil {
		return nil, err
	}
	return ts.Server(), nil
}

// Server builds an MCP server offering every tool of ts.
func (ts *Toolset) Server() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: ServerName, Title: "todo-mcp", Version: ts.version},
		&mcp.ServerOptions{Instructions: instructions, Logger: slog.New(minLevel{ts.log.Handler(), slog.LevelWarn})})
	for _, t := range ts.Tools() {
		t.add(s)
	}
	s.AddReceivingMiddleware(logCalls(ts.log), tidyToolErrors, ts.awaitBackend)
	return s
}

// minLevel drops records below min: the SDK logs every session's start and
// end at info level, which tells a user nothing.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// Tool is one entry of the registry: what clients see (its schemas as
// JSON), and how it joins a server.
type Tool struct {
	Def *mcp.Tool
	add func(*mcp.Server)
	// inferSchemas gives the schemas' JSON as inferred from the code.
	inferSchemas func() (in, out json.RawMessage, err error)
}

// newTool pairs a definition with its typed handler (see typedTool).
func newTool[In, Out any](def *mcp.Tool, h mcp.ToolHandlerFor[In, Out]) Tool {
	tt := newTypedTool(def, h)
	return Tool{Def: tt.def, add: tt.add, inferSchemas: tt.schemasJSON}
}

// Tools lists every tool, in the order clients show them.
func (ts *Toolset) Tools() []Tool {
	return []Tool{
		loginTool(ts),
		saveTokenTool(ts),
		logoutTool(ts),
		whoamiTool(ts),
		listTodosTool(ts),
		getTodoTool(ts),
		createTodoTool(ts),
		updateTodoTool(ts),
		deleteTodoTool(ts),
		refreshBillingStatusTool(ts),
		upgradePlanTool(ts),
	}
}

// hints are a tool's annotations. Every one is written out: the spec's
// defaults (destructive, open-world) are the opposite of most of our tools.
type hints struct{ readOnly, destructive, idempotent, openWorld bool }

func (h hints) annotations(title string) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{
		Title:           title,
		ReadOnlyHint:    h.readOnly,
		DestructiveHint: &h.destructive,
		IdempotentHint:  h.idempotent,
		OpenWorldHint:   &h.openWorld,
	}
}
