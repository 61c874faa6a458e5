package mcptools_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/mcptools"
)

func TestBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		cs := e.session()
		e.signIn("ada@example.com")
		callOK(t, cs, "create_todo", map[string]any{"title": "keep me"}, nil)
		huge := strings.Repeat("x", 10<<20)

		tests := []struct {
			name string
			tool string
			args any
			want []string
		}{
			{"a number given as text", "get_todo", map[string]any{"number": "one"}, []string{"Invalid arguments", "number", "integer"}},
			{"a fractional number", "get_todo", map[string]any{"number": 1.5}, []string{"Invalid arguments", "number"}},
			{"a number below 1", "delete_todo", map[string]any{"number": 0}, []string{"Invalid arguments", "number"}},
			{"a number too large for any todo", "get_todo", map[string]any{"number": 1e30}, []string{"number"}},
			{"a todo that does not exist", "get_todo", map[string]any{"number": 424242}, []string{"Todo 424242 not found"}},
			{"a missing number", "delete_todo", map[string]any{}, []string{"Invalid arguments", "missing properties", "number"}},
			{"a missing title", "create_todo", map[string]any{"priority": "high"}, []string{"Invalid arguments", "missing properties", "title"}},
			{"an empty title", "create_todo", map[string]any{"title": ""}, []string{"Invalid arguments", "title"}},
			{"a title of spaces", "create_todo", map[string]any{"title": "   "}, []string{"Invalid title", "must not be empty"}},
			{"a 10 MB title", "create_todo", map[string]any{"title": huge}, []string{"Invalid arguments", "title", "10485760 characters"}},
			{"a 10 MB title in an update", "update_todo", map[string]any{"number": 1, "title": huge}, []string{"Invalid arguments", "title"}},
			{"a description over 10000 characters", "create_todo", map[string]any{"title": "t", "description": strings.Repeat("d", 10001)}, []string{"Invalid arguments", "description"}},
			{"tags given as a string", "create_todo", map[string]any{"title": "t", "tags": "a,b"}, []string{"Invalid arguments", "tags"}},
			{"eleven tags", "create_todo", map[string]any{"title": "t", "tags": []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"}}, []string{"Invalid arguments", "tags"}},
			{"a tag too long", "create_todo", map[string]any{"title": "t", "tags": []string{strings.Repeat("t", 33)}}, []string{"Invalid arguments", "tags"}},
			{"an empty tag", "create_todo", map[string]any{"title": "t", "tags": []string{" "}}, []string{"Invalid tags", "must not be empty"}},
			{"an unknown priority", "create_todo", map[string]any{"title": "t", "priority": "urgent"}, []string{"Invalid arguments", "priority"}},
			{"a date in words", "create_todo", map[string]any{"title": "t", "due": "next Friday"}, []string{"Invalid due", "YYYY-MM-DD", "RFC 3339"}},
			{"an impossible day", "create_todo", map[string]any{"title": "t", "due": "2026-02-30"}, []string{"Invalid due"}},
			{"a moment without a time zone", "create_todo", map[string]any{"title": "t", "due": "2026-03-14T17:00:00"}, []string{"Invalid due", "RFC 3339"}},
			{"a day in another order", "create_todo", map[string]any{"title": "t", "due": "14/03/2026"}, []string{"Invalid due"}},
			{"a 10 MB date", "create_todo", map[string]any{"title": "t", "due": huge}, []string{"Invalid due"}},
			{"an unknown field", "create_todo", map[string]any{"title": "t", "colour": "red"}, []string{"Invalid arguments", "colour"}},
			{"an unknown field on a tool without arguments", "whoami", map[string]any{"verbose": true}, []string{"Invalid arguments", "verbose"}},
			{"arguments that are not an object", "list_todos", []int{1, 2}, []string{"Invalid arguments"}},
			{"completed given as text", "update_todo", map[string]any{"number": 1, "completed": "yes"}, []string{"Invalid arguments", "completed"}},
			{"a NUL character in a title", "create_todo", map[string]any{"title": "a\x00b"}, []string{"Invalid title", "NUL"}},
		}
		for _, tt := range tests {
			t.Run(tt.name+" is a tool error, and the server keeps serving", func(t *testing.T) {
				got := callErr(t, cs, tt.tool, tt.args)
				mustContain(t, got, tt.want...)
				if len(got) > 2100 {
					t.Fatalf("the error is %d bytes long", len(got))
				}
				var res mcptools.TodoResult
				callOK(t, cs, "get_todo", map[string]any{"number": 1}, &res)
				if res.Todo.Title != "keep me" {
					t.Fatalf("todo 1 changed: %+v", res.Todo)
				}
			})
		}

		t.Run("nothing was stored by the refused calls", func(t *testing.T) {
			var res mcptools.ListTodosResult
			callOK(t, cs, "list_todos", nil, &res)
			if res.Count != 1 {
				t.Fatalf("todos %+v", res.Todos)
			}
		})

		t.Run("an unknown tool is a protocol error, and the server keeps serving", func(t *testing.T) {
			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "drop_database"}); err == nil {
				t.Fatal("an unknown tool succeeded")
			}
			callOK(t, cs, "whoami", nil, nil)
		})

		t.Run("raw arguments that are JSON null work like no arguments", func(t *testing.T) {
			callOK(t, cs, "list_todos", json.RawMessage("null"), nil)
		})
	})
}
