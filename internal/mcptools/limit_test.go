package mcptools_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// TestTheLimitHoldsAcrossParallelClients is the free plan's promise under
// load: several editors of one user (each its own MCP server, as separate
// editor processes are) fire 200 create_todo calls at once with two slots
// left. Exactly two are stored; every other call is a tool error that
// names the limit and the upgrade page.
func TestTheLimitHoldsAcrossParallelClients(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		u := e.signIn("ada@example.com")
		for i := range 3 {
			if _, err := e.st.CreateTodo(context.Background(), u.ID, 5, store.NewTodo{Title: fmt.Sprintf("already here %d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		const clients, callsEach = 4, 50
		sessions := make([]*mcp.ClientSession, clients)
		for i := range sessions {
			sessions[i] = e.session()
		}
		type outcome struct {
			ok   bool
			text string
			err  error
		}
		results := make(chan outcome, clients*callsEach)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for c, cs := range sessions {
			for i := range callsEach {
				wg.Go(func() {
					<-start
					res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{
						Name: "create_todo", Arguments: map[string]any{"title": fmt.Sprintf("client %d call %d", c, i)},
					})
					if err != nil {
						results <- outcome{err: err}
						return
					}
					results <- outcome{ok: !res.IsError, text: text(res)}
				})
			}
		}
		close(start)
		wg.Wait()
		close(results)

		upgrade := billing.UpgradeURL(e.cfg.PublicURL)
		var created, refused int
		for r := range results {
			switch {
			case r.err != nil:
				t.Fatalf("a protocol error instead of a tool result: %v", r.err)
			case r.ok:
				created++
			case strings.Contains(r.text, "limit reached (5/5)") && strings.Contains(r.text, upgrade):
				refused++
			default:
				t.Fatalf("an unexpected tool error: %s", r.text)
			}
		}
		if created != 2 || refused != clients*callsEach-2 {
			t.Fatalf("%d created, %d refused; want 2 and %d", created, refused, clients*callsEach-2)
		}
		page, err := e.st.ListTodos(context.Background(), u.ID, store.TodoFilter{Limit: 100})
		if err != nil || len(page.Todos) != 5 {
			t.Fatalf("%d todos stored, %v", len(page.Todos), err)
		}
		if got, _ := e.st.GetUser(context.Background(), u.ID); got.TodoCount != 5 {
			t.Fatalf("the counter says %d", got.TodoCount)
		}
	})
}
