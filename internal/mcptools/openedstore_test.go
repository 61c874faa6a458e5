package mcptools_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

func TestStoreOpenedInTheBackground(t *testing.T) {
	t.Run("initialize and tools/list are answered before the store is open, and tool calls wait for it", func(t *testing.T) {
		e := newEnv(t, store.BackendSQLite)
		e.signIn("ada@example.com")
		open := make(chan struct{})
		cs := e.sessionWith(mcptools.Deps{OpenedStore: func(ctx context.Context) (*store.Store, error) {
			select {
			case <-open:
				return e.st, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}})
		if n := len(listTools(t, cs)); n != 11 {
			t.Fatalf("%d tools", n)
		}
		answered := make(chan *mcp.CallToolResult, 1)
		go func() {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "create_todo", Arguments: map[string]any{"title": "waited"}})
			if err != nil {
				res = &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}
			}
			answered <- res
		}()
		select {
		case <-answered:
			t.Fatal("a tool call was answered before the store was open")
		case <-time.After(100 * time.Millisecond):
		}
		close(open)
		if res := <-answered; res.IsError {
			t.Fatalf("create_todo: %s", text(res))
		}
		var res mcptools.ListTodosResult
		callOK(t, cs, "list_todos", nil, &res)
		if res.Count != 1 || res.Todos[0].Title != "waited" {
			t.Fatalf("list_todos %+v", res)
		}
	})

	t.Run("a store that cannot be opened makes tool calls fail without internals, and Ready says why", func(t *testing.T) {
		e := newEnv(t, store.BackendSQLite)
		broken := errors.New("dial tcp 10.0.0.1:5432: secret-host unreachable")
		d := mcptools.Deps{Config: e.cfg, Credentials: e.creds,
			OpenedStore: func(context.Context) (*store.Store, error) { return nil, broken }}
		ts, err := mcptools.New(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.Ready(context.Background()); !errors.Is(err, broken) {
			t.Fatalf("Ready: %v", err)
		}
		cs := e.sessionWith(d)
		got := callErr(t, cs, "whoami", nil)
		mustContain(t, got, "Could not open the todo-mcp database", "mcpserver log")
		if strings.Contains(got, "secret-host") {
			t.Fatalf("the error shows internals: %s", got)
		}
	})

	t.Run("Store or OpenedStore is required", func(t *testing.T) {
		e := newEnv(t, store.BackendSQLite)
		if _, err := mcptools.New(mcptools.Deps{Config: e.cfg, Credentials: e.creds}); err == nil {
			t.Fatal("New without a store succeeded")
		}
	})
}
