package mcptools_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/mcptools/mcptest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

// env is one MCP server over a private database: its store, configuration
// and credential directory.
type env struct {
	t         *testing.T
	backend   string
	dbURL     string
	st        *store.Store
	cfg       *config.Config
	configDir string
	creds     *mcptools.Credentials
	auth      *mcptest.Authserver // nil unless withAuthserver
	loginWait time.Duration
}

type envOption func(*envSettings)

type envSettings struct {
	vars       map[string]string
	authserver bool
	loginWait  time.Duration
}

// withAuthserver runs the real authserver on the same database, as login needs.
func withAuthserver() envOption { return func(s *envSettings) { s.authserver = true } }

// withVar sets a configuration variable.
func withVar(name, value string) envOption { return func(s *envSettings) { s.vars[name] = value } }

// withLoginWait bounds login's wait.
func withLoginWait(d time.Duration) envOption { return func(s *envSettings) { s.loginWait = d } }

func newEnv(t *testing.T, backend string, opts ...envOption) *env {
	t.Helper()
	s := envSettings{vars: map[string]string{}, loginWait: 3 * time.Second}
	for _, o := range opts {
		o(&s)
	}
	e := &env{t: t, backend: backend, dbURL: storetest.URL(t, backend), configDir: t.TempDir(), loginWait: s.loginWait}
	st, err := store.Open(context.Background(), store.Options{URL: e.dbURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.st = st
	// Nothing listens on port 1: login finds no authserver unless one runs.
	vars := map[string]string{"TODO_MCP_DATA_DIR": t.TempDir(), "DATABASE_URL": e.dbURL, "PUBLIC_URL": "http://127.0.0.1:1"}
	if s.authserver {
		e.auth = mcptest.StartAuthserver(t, st, e.dbURL)
		vars["PUBLIC_URL"] = e.auth.URL
	}
	for k, v := range s.vars {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, "")
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	e.creds = mcptools.NewCredentials(e.configDir, "")
	return e
}

// session connects a Go SDK client to a fresh server over in-memory transports.
func (e *env) session(opts ...sessionOption) *mcp.ClientSession {
	e.t.Helper()
	var so sessionSettings
	for _, o := range opts {
		o(&so)
	}
	server, err := mcptools.NewServer(mcptools.Deps{
		Store: e.st, Config: e.cfg, Credentials: e.creds, Version: "test",
		LoginWait: e.loginWait, PollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	st, ct := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := server.Connect(ctx, st, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ss.Close() })
	if so.clientOptions == nil {
		so.clientOptions = &mcp.ClientOptions{}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Title: so.clientTitle, Version: "1.0"}, so.clientOptions)
	cs, err := client.Connect(ctx, ct, &mcp.ClientSessionOptions{ProtocolVersion: so.protocolVersion})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cs.Close() })
	return cs
}

type sessionOption func(*sessionSettings)

type sessionSettings struct {
	protocolVersion string
	clientTitle     string
	clientOptions   *mcp.ClientOptions
}

func protocol(v string) sessionOption { return func(s *sessionSettings) { s.protocolVersion = v } }

func clientOptions(o *mcp.ClientOptions) sessionOption {
	return func(s *sessionSettings) { s.clientOptions = o }
}

func clientTitle(title string) sessionOption {
	return func(s *sessionSettings) { s.clientTitle = title }
}

// user creates an account.
func (e *env) user(email string) store.User {
	e.t.Helper()
	u, err := e.st.UpsertUser(context.Background(), store.Identity{Subject: mcptest.DevSubject(email), Email: email, Name: strings.Split(email, "@")[0]})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// token mints a live token for u, as the web page would.
func (e *env) token(u store.User) string {
	e.t.Helper()
	tok := authn.NewToken()
	if _, err := e.st.CreateAPIToken(context.Background(), store.NewAPIToken{
		UserID: u.ID, ClientName: "test", Hash: tok.Hash, Prefix: tok.Prefix, ExpiresAt: time.Now().Add(time.Hour),
	}); err != nil {
		e.t.Fatal(err)
	}
	return tok.Plain
}

// signIn creates a user and saves a token for them in the credential file.
func (e *env) signIn(email string) store.User {
	e.t.Helper()
	u := e.user(email)
	if err := e.creds.Save(e.token(u)); err != nil {
		e.t.Fatal(err)
	}
	return u
}

// The client helpers both test packages share.
var (
	call        = mcptest.Call
	callOK      = mcptest.CallOK
	callErr     = mcptest.CallErr
	text        = mcptest.Text
	mustContain = mcptest.MustContain
)

// forEachBackend runs fn once per store backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, backend string)) {
	for _, b := range storetest.Backends {
		t.Run(b, func(t *testing.T) { fn(t, b) })
	}
}

// progressRecorder collects progress notifications.
type progressRecorder struct {
	mu       sync.Mutex
	messages []string
}

func (p *progressRecorder) handler(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.messages = append(p.messages, req.Params.Message)
}

func (p *progressRecorder) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.messages...)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
