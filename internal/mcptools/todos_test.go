package mcptools_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

func day(offset int) string { return time.Now().UTC().AddDate(0, 0, offset).Format(time.DateOnly) }

func numbers(todos []mcptools.Todo) []int64 {
	out := []int64{}
	for _, t := range todos {
		out = append(out, t.Number)
	}
	return out
}

func TestCreateGetUpdateDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		cs := e.session()
		e.signIn("ada@example.com")

		var created mcptools.TodoResult
		t.Run("create_todo returns the todo with its number and normalised fields", func(t *testing.T) {
			callOK(t, cs, "create_todo", map[string]any{"title": "Buy milk", "description": "2 litres", "due": "2030-05-17",
				"priority": "high", "tags": []string{" Groceries ", "groceries", "Shop"}}, &created)
			got := created.Todo
			if got.Number != 1 || got.Title != "Buy milk" || got.Description != "2 litres" || got.Due != "2030-05-17" ||
				got.Priority != "high" || !slices.Equal(got.Tags, []string{"groceries", "shop"}) || got.Completed || got.Overdue {
				t.Fatalf("created %+v", got)
			}
		})

		t.Run("an RFC 3339 moment is kept as an instant in UTC", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, cs, "create_todo", map[string]any{"title": "Call the bank", "due": "2030-05-17T17:30:00+02:00"}, &res)
			if res.Todo.Due != "2030-05-17T15:30:00Z" || res.Todo.Number != 2 || res.Todo.Priority != "none" {
				t.Fatalf("created %+v", res.Todo)
			}
		})

		t.Run("get_todo returns a todo by number", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, cs, "get_todo", map[string]any{"number": 1}, &res)
			if res.Todo.Title != "Buy milk" || res.Todo.Description != "2 litres" {
				t.Fatalf("got %+v", res.Todo)
			}
		})

		t.Run("update_todo changes only the fields given", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, cs, "update_todo", map[string]any{"number": 1, "title": "Buy oat milk"}, &res)
			got := res.Todo
			if got.Title != "Buy oat milk" || got.Description != "2 litres" || got.Due != "2030-05-17" || got.Priority != "high" || len(got.Tags) != 2 {
				t.Fatalf("updated %+v", got)
			}
		})

		t.Run("completing a todo stamps it and reopening clears the stamp", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, cs, "update_todo", map[string]any{"number": 1, "completed": true}, &res)
			if !res.Todo.Completed || res.Todo.CompletedAt == "" {
				t.Fatalf("completed %+v", res.Todo)
			}
			var reopened mcptools.TodoResult
			callOK(t, cs, "update_todo", map[string]any{"number": 1, "completed": false}, &reopened)
			if res = reopened; res.Todo.Completed || res.Todo.CompletedAt != "" {
				t.Fatalf("reopened %+v", res.Todo)
			}
		})

		t.Run("clear removes the description, due date, priority and tags", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, cs, "update_todo", map[string]any{"number": 1, "clear": []string{"description", "due", "priority", "tags"}}, &res)
			got := res.Todo
			if got.Description != "" || got.Due != "" || got.Priority != "none" || len(got.Tags) != 0 || got.Title != "Buy oat milk" {
				t.Fatalf("cleared %+v", got)
			}
		})

		t.Run("tags [] removes every tag, and tags replace the old ones", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, cs, "update_todo", map[string]any{"number": 2, "tags": []string{"bank", "phone"}}, &res)
			if !slices.Equal(res.Todo.Tags, []string{"bank", "phone"}) {
				t.Fatalf("tags %v", res.Todo.Tags)
			}
			callOK(t, cs, "update_todo", map[string]any{"number": 2, "tags": []string{}}, &res)
			if len(res.Todo.Tags) != 0 {
				t.Fatalf("tags %v", res.Todo.Tags)
			}
		})

		t.Run("a due date can be moved from a moment to a whole day", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, cs, "update_todo", map[string]any{"number": 2, "due": "2031-01-02"}, &res)
			if res.Todo.Due != "2031-01-02" {
				t.Fatalf("due %q", res.Todo.Due)
			}
		})

		for _, tt := range []struct {
			name string
			args map[string]any
			want []string
		}{
			{"setting and clearing a field at once is refused", map[string]any{"number": 2, "due": "2031-01-01", "clear": []string{"due"}}, []string{"Invalid clear", "due is both given and cleared"}},
			{"clearing the title is refused by the schema", map[string]any{"number": 2, "clear": []string{"title"}}, []string{"Invalid arguments", "clear"}},
			{"an update that changes nothing says so", map[string]any{"number": 2}, []string{"nothing to change"}},
			{"an invalid due date names the field and the formats", map[string]any{"number": 2, "due": "next friday"}, []string{"Invalid due", `"next friday"`, "YYYY-MM-DD", "RFC 3339"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				mustContain(t, callErr(t, cs, "update_todo", tt.args), tt.want...)
			})
		}

		t.Run("delete_todo returns what it deleted, and the todo is gone", func(t *testing.T) {
			var res mcptools.DeleteTodoResult
			callOK(t, cs, "delete_todo", map[string]any{"number": 2}, &res)
			if res.Deleted.Number != 2 || res.Deleted.Title != "Call the bank" {
				t.Fatalf("deleted %+v", res.Deleted)
			}
			mustContain(t, callErr(t, cs, "get_todo", map[string]any{"number": 2}), "Todo 2 not found", "list_todos")
			mustContain(t, callErr(t, cs, "delete_todo", map[string]any{"number": 2}), "Todo 2 not found")
		})

		t.Run("numbers are never reused after a delete", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, cs, "create_todo", map[string]any{"title": "Water plants"}, &res)
			if res.Todo.Number != 3 {
				t.Fatalf("number %d", res.Todo.Number)
			}
		})
	})
}

func TestListTodosFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, withVar("FREE_TODO_LIMIT", "1000"))
		cs := e.session()
		e.signIn("ada@example.com")
		soon := time.Now().UTC().Add(3 * time.Hour).Format(time.RFC3339)
		// A moment just past: overdue, and due today unless the test runs in the first minute of a UTC day.
		pastAt := time.Now().UTC().Add(-time.Minute)
		past := pastAt.Format(time.RFC3339)
		fromToday, beforeToday := []int64{2, 4, 6}, []int64{1, 5, 7}
		if pastAt.Format(time.DateOnly) == day(0) {
			fromToday, beforeToday = []int64{2, 4, 5, 6}, []int64{1, 7}
		}
		todayToTomorrow := slices.DeleteFunc(slices.Clone(fromToday), func(n int64) bool { return n == 4 })
		for _, todo := range []map[string]any{
			{"title": "Buy milk", "due": day(-1), "priority": "high", "tags": []string{"groceries"}},         // 1: overdue
			{"title": "Write report", "description": "Quarterly NUMBERS", "due": soon, "priority": "medium"}, // 2
			{"title": "Call mom", "tags": []string{"family"}},                                                // 3: completed below
			{"title": "Pay rent", "due": day(10), "priority": "high", "tags": []string{"bills"}},             // 4
			{"title": "Renew passport", "due": past},                                                         // 5: overdue (a moment)
			{"title": "Buy bread", "due": day(0), "tags": []string{"groceries"}},                             // 6: due today, not overdue
			{"title": "Old chore", "due": day(-5), "tags": []string{"groceries"}, "priority": "low"},         // 7: completed below
		} {
			callOK(t, cs, "create_todo", todo, nil)
		}
		for _, n := range []int{3, 7} {
			callOK(t, cs, "update_todo", map[string]any{"number": n, "completed": true}, nil)
		}

		tests := []struct {
			name string
			args map[string]any
			want []int64
		}{
			{"no filter lists everything by number", map[string]any{}, []int64{1, 2, 3, 4, 5, 6, 7}},
			{"status open leaves out completed todos", map[string]any{"status": "open"}, []int64{1, 2, 4, 5, 6}},
			{"status completed keeps only completed todos", map[string]any{"status": "completed"}, []int64{3, 7}},
			{"status all is everything", map[string]any{"status": "all"}, []int64{1, 2, 3, 4, 5, 6, 7}},
			{"query matches the title ignoring case", map[string]any{"query": "BUY"}, []int64{1, 6}},
			{"query matches the description", map[string]any{"query": "quarterly numbers"}, []int64{2}},
			{"tag matches ignoring case", map[string]any{"tag": "Groceries"}, []int64{1, 6, 7}},
			{"priority high", map[string]any{"priority": "high"}, []int64{1, 4}},
			{"overdue keeps open todos past their day or moment", map[string]any{"overdue": true}, []int64{1, 5}},
			{"due_before a day is exclusive of that day", map[string]any{"due_before": day(0)}, beforeToday},
			{"due_after a day includes that day", map[string]any{"due_after": day(0)}, fromToday},
			{"due_after and due_before make a range", map[string]any{"due_after": day(0), "due_before": day(2)}, todayToTomorrow},
			{"due_before takes an RFC 3339 moment", map[string]any{"due_before": time.Now().UTC().Format(time.RFC3339)}, []int64{1, 5, 6, 7}},
			{"filters combine", map[string]any{"tag": "groceries", "status": "open", "query": "milk"}, []int64{1}},
			{"a filter that matches nothing gives an empty list", map[string]any{"tag": "nothing-here"}, []int64{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var res mcptools.ListTodosResult
				callOK(t, cs, "list_todos", tt.args, &res)
				if got := numbers(res.Todos); !slices.Equal(got, tt.want) {
					t.Fatalf("numbers %v, want %v", got, tt.want)
				}
				if res.Count != len(tt.want) || res.HasMore || res.NextCursor != "" {
					t.Fatalf("count %d has_more %v next %q", res.Count, res.HasMore, res.NextCursor)
				}
			})
		}

		t.Run("the overdue flag is set on overdue todos only", func(t *testing.T) {
			var res mcptools.ListTodosResult
			callOK(t, cs, "list_todos", map[string]any{}, &res)
			for _, todo := range res.Todos {
				if want := todo.Number == 1 || todo.Number == 5; todo.Overdue != want {
					t.Errorf("todo %d overdue %v", todo.Number, todo.Overdue)
				}
			}
		})

		for _, tt := range []struct {
			name string
			args map[string]any
			want []string
		}{
			{"an unknown status is refused by the schema", map[string]any{"status": "done"}, []string{"Invalid arguments", "status"}},
			{"a limit above 100 is refused", map[string]any{"limit": 101}, []string{"Invalid arguments", "limit"}},
			{"a limit of 0 is refused", map[string]any{"limit": 0}, []string{"Invalid arguments", "limit"}},
			{"an invalid due_before names the field", map[string]any{"due_before": "2026-13-45"}, []string{"Invalid due_before", "YYYY-MM-DD"}},
			{"an invalid due_after names the field", map[string]any{"due_after": "tomorrow"}, []string{"Invalid due_after", "RFC 3339"}},
			{"a cursor this server did not give out is refused", map[string]any{"cursor": "not-a-cursor"}, []string{"Invalid cursor", "start again"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				mustContain(t, callErr(t, cs, "list_todos", tt.args), tt.want...)
			})
		}
	})
}

func TestListTodosPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		cs := e.session()
		u := e.signIn("ada@example.com")
		pro := store.PlanState{Plan: "pro", Source: "local"}
		if _, err := e.st.SetPlan(context.Background(), u.ID, pro); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 45; i++ {
			callOK(t, cs, "create_todo", map[string]any{"title": fmt.Sprintf("Todo %02d", i)}, nil)
		}

		t.Run("the default page is 20, and cursors walk every todo once", func(t *testing.T) {
			var seen []int64
			var sizes []int
			args := map[string]any{}
			for {
				var res mcptools.ListTodosResult
				callOK(t, cs, "list_todos", args, &res)
				seen = append(seen, numbers(res.Todos)...)
				sizes = append(sizes, res.Count)
				if !res.HasMore {
					if res.NextCursor != "" {
						t.Fatalf("last page has a cursor %q", res.NextCursor)
					}
					break
				}
				args = map[string]any{"cursor": res.NextCursor}
			}
			if !slices.Equal(sizes, []int{20, 20, 5}) || len(seen) != 45 || !slices.IsSorted(seen) || slices.Compact(slices.Clone(seen))[44] != 45 {
				t.Fatalf("pages %v, numbers %v", sizes, seen)
			}
		})

		t.Run("limit 100 returns everything on one page", func(t *testing.T) {
			var res mcptools.ListTodosResult
			callOK(t, cs, "list_todos", map[string]any{"limit": 100}, &res)
			if res.Count != 45 || res.HasMore {
				t.Fatalf("count %d has_more %v", res.Count, res.HasMore)
			}
		})

		t.Run("a cursor keeps the filters given with it", func(t *testing.T) {
			var res mcptools.ListTodosResult
			callOK(t, cs, "list_todos", map[string]any{"query": "Todo 1", "limit": 3}, &res)
			first := numbers(res.Todos)
			callOK(t, cs, "list_todos", map[string]any{"query": "Todo 1", "limit": 3, "cursor": res.NextCursor}, &res)
			if got := append(first, numbers(res.Todos)...); !slices.Equal(got, []int64{10, 11, 12, 13, 14, 15}) {
				t.Fatalf("numbers %v", got)
			}
		})
	})
}

func TestPlanLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		cs := e.session()
		u := e.signIn("ada@example.com")
		for i := range 5 {
			callOK(t, cs, "create_todo", map[string]any{"title": fmt.Sprintf("todo %d", i+1)}, nil)
		}

		t.Run("the sixth todo on the free plan is refused with the figures and the upgrade page", func(t *testing.T) {
			got := callErr(t, cs, "create_todo", map[string]any{"title": "one too many"})
			want := "Free plan limit reached (5/5): delete a todo or upgrade at " + e.cfg.PublicURL + "/billing/upgrade"
			if got != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})

		t.Run("whoami shows the plan full", func(t *testing.T) {
			var res mcptools.WhoamiResult
			callOK(t, cs, "whoami", nil, &res)
			if res.Plan.Plan != "free" || *res.Plan.Limit != 5 || res.Plan.Used != 5 || *res.Plan.Remaining != 0 || res.Todos.Total != 5 || res.Todos.Open != 5 {
				t.Fatalf("whoami %+v", res)
			}
			if res.User.Email != "ada@example.com" || res.SignedInVia != "file" || res.ClientName != "test" || res.TokenExpiresAt == "" {
				t.Fatalf("whoami %+v", res)
			}
		})

		t.Run("deleting a todo frees a place", func(t *testing.T) {
			callOK(t, cs, "delete_todo", map[string]any{"number": 1}, nil)
			callOK(t, cs, "create_todo", map[string]any{"title": "fits again"}, nil)
		})

		t.Run("upgrade_plan gives the upgrade page in its text", func(t *testing.T) {
			var res mcptools.UpgradePlanResult
			res2 := call(t, cs, "upgrade_plan", nil)
			mustContain(t, text(res2), e.cfg.PublicURL+"/billing/upgrade", "refresh_billing_status")
			callOK(t, cs, "upgrade_plan", nil, &res)
			if res.UpgradeURL != e.cfg.PublicURL+"/billing/upgrade" || res.Plan.Plan != "free" {
				t.Fatalf("upgrade %+v", res)
			}
		})

		t.Run("after an upgrade to pro, refresh_billing_status shows no limit and creates succeed", func(t *testing.T) {
			if _, err := e.st.SetPlan(context.Background(), u.ID, store.PlanState{Plan: "pro", Source: "local"}); err != nil {
				t.Fatal(err)
			}
			var res mcptools.RefreshBillingStatusResult
			callOK(t, cs, "refresh_billing_status", nil, &res)
			if res.Plan.Plan != "pro" || res.Plan.Limit != nil || res.Plan.Remaining != nil || res.Plan.UpgradeURL != "" || res.Plan.Used != 5 {
				t.Fatalf("refresh %+v", res.Plan)
			}
			mustContain(t, res.Message, "no limit")
			callOK(t, cs, "create_todo", map[string]any{"title": "the sixth"}, nil)
			mustContain(t, text(call(t, cs, "upgrade_plan", nil)), "Nothing to upgrade")
		})
	})
}

func TestIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ada := e.session()
		e.signIn("ada@example.com")
		callOK(t, ada, "create_todo", map[string]any{"title": "Ada's secret plan", "tags": []string{"private"}}, nil)

		// Bob's server runs with his own token in the environment.
		bob := e.user("bob@example.com")
		be := *e
		be.t = t
		be.creds = mcptools.NewCredentials(t.TempDir(), e.token(bob))
		bs := be.session()

		t.Run("user B's list never shows A's todo", func(t *testing.T) {
			var res mcptools.ListTodosResult
			for _, args := range []map[string]any{{}, {"query": "secret"}, {"tag": "private"}, {"status": "all"}} {
				callOK(t, bs, "list_todos", args, &res)
				if res.Count != 0 {
					t.Fatalf("B sees %+v with %v", res.Todos, args)
				}
			}
		})
		for _, tt := range []struct {
			tool string
			args map[string]any
		}{
			{"get_todo", map[string]any{"number": 1}},
			{"update_todo", map[string]any{"number": 1, "title": "Bob was here", "completed": true}},
			{"delete_todo", map[string]any{"number": 1}},
		} {
			t.Run("user B's "+tt.tool+" on A's todo 1 says not found, as for a missing todo", func(t *testing.T) {
				missingArgs := maps.Clone(tt.args)
				missingArgs["number"] = 999
				if got, missing := callErr(t, bs, tt.tool, tt.args), callErr(t, bs, tt.tool, missingArgs); got != strings.ReplaceAll(missing, "999", "1") {
					t.Fatalf("A's todo: %q\nmissing: %q", got, missing)
				}
			})
		}
		t.Run("A's todo is untouched", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, ada, "get_todo", map[string]any{"number": 1}, &res)
			if res.Todo.Title != "Ada's secret plan" || res.Todo.Completed {
				t.Fatalf("A's todo %+v", res.Todo)
			}
		})
		t.Run("B's own first todo is B's number 1", func(t *testing.T) {
			var res mcptools.TodoResult
			callOK(t, bs, "create_todo", map[string]any{"title": "Bob's"}, &res)
			if res.Todo.Number != 1 {
				t.Fatalf("number %d", res.Todo.Number)
			}
		})
	})
}
