package mcptools_test

import (
	"context"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// sessionWith connects a client to a server built with d (Config,
// Credentials, and Store unless OpenedStore is set, filled in from e).
func (e *env) sessionWith(d mcptools.Deps) *mcp.ClientSession {
	e.t.Helper()
	d.Config, d.Credentials = e.cfg, e.creds
	if d.OpenedStore == nil {
		d.Store = e.st
	}
	server, err := mcptools.NewServer(d)
	if err != nil {
		e.t.Fatal(err)
	}
	st, ct := mcp.NewInMemoryTransports()
	ss, err := server.Connect(context.Background(), st, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cs.Close() })
	return cs
}

func TestRevocationBound(t *testing.T) {
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, backend string) {
		t.Run("a token revoked elsewhere still reads until the bound, writes stop at once, then reads stop too", func(t *testing.T) {
			e := newEnv(t, backend)
			e.signIn("ada@example.com")
			cs := e.sessionWith(mcptools.Deps{ReadAuthMaxAge: time.Hour})
			callOK(t, cs, "create_todo", map[string]any{"title": "one"}, nil)
			callOK(t, cs, "list_todos", nil, nil)
			revokeSaved(t, e)
			callOK(t, cs, "list_todos", nil, nil) // within the bound
			callOK(t, cs, "get_todo", map[string]any{"number": 1}, nil)
			mustContain(t, callErr(t, cs, "create_todo", map[string]any{"title": "two"}), "was revoked")
			// The failed check made the reads forget the earlier one.
			mustContain(t, callErr(t, cs, "list_todos", nil), "was revoked")
			mustContain(t, callErr(t, cs, "get_todo", map[string]any{"number": 1}), "was revoked")
		})

		t.Run("once the bound has passed, reads check the store again", func(t *testing.T) {
			e := newEnv(t, backend)
			e.signIn("ada@example.com")
			cs := e.sessionWith(mcptools.Deps{ReadAuthMaxAge: 50 * time.Millisecond})
			callOK(t, cs, "list_todos", nil, nil)
			revokeSaved(t, e)
			time.Sleep(60 * time.Millisecond)
			mustContain(t, callErr(t, cs, "list_todos", nil), "was revoked", "Call login again")
		})

		t.Run("with a negative bound every read checks the store", func(t *testing.T) {
			e := newEnv(t, backend)
			e.signIn("ada@example.com")
			cs := e.sessionWith(mcptools.Deps{ReadAuthMaxAge: -1})
			callOK(t, cs, "list_todos", nil, nil)
			revokeSaved(t, e)
			mustContain(t, callErr(t, cs, "list_todos", nil), "was revoked")
		})

		t.Run("logout in this process stops reads at once, even with TODO_MCP_TOKEN", func(t *testing.T) {
			e := newEnv(t, backend)
			u := e.user("ada@example.com")
			e.creds = mcptools.NewCredentials(e.configDir, e.token(u))
			cs := e.sessionWith(mcptools.Deps{ReadAuthMaxAge: time.Hour})
			callOK(t, cs, "list_todos", nil, nil)
			mustContain(t, text(call(t, cs, "logout", nil)), "Remove TODO_MCP_TOKEN")
			mustContain(t, callErr(t, cs, "list_todos", nil), "TODO_MCP_TOKEN", "was revoked")
		})

		t.Run("a token that expires is refused at once, whatever the bound", func(t *testing.T) {
			e := newEnv(t, backend)
			u := e.user("ada@example.com")
			tok := authn.NewToken()
			if _, err := e.st.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, ClientName: "short", Hash: tok.Hash, Prefix: tok.Prefix,
				ExpiresAt: time.Now().Add(1500 * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
			if err := e.creds.Save(tok.Plain); err != nil {
				t.Fatal(err)
			}
			cs := e.sessionWith(mcptools.Deps{ReadAuthMaxAge: time.Hour})
			callOK(t, cs, "list_todos", nil, nil)
			time.Sleep(1600 * time.Millisecond)
			mustContain(t, callErr(t, cs, "list_todos", nil), "has expired", "Call login again")
		})
	})
}

// revokeSaved revokes the token in e's credential file, as the web page's
// "disconnect" does.
func revokeSaved(t *testing.T, e *env) {
	t.Helper()
	tok, _, err := e.creds.Token()
	if err != nil || tok == "" {
		t.Fatalf("no saved token: %v", err)
	}
	if err := e.st.RevokeAPITokenByHash(context.Background(), authn.HashToken(tok)); err != nil {
		t.Fatal(err)
	}
}
