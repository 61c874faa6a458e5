package mcptools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// ListTodosArgs filters and pages the list.
type ListTodosArgs struct {
	Status    string `json:"status,omitempty" jsonschema:"open, completed, or all (the default)."`
	Query     string `json:"query,omitempty" jsonschema:"Text to find in the title or description, ignoring case."`
	Tag       string `json:"tag,omitempty" jsonschema:"Only todos with this tag."`
	Priority  string `json:"priority,omitempty" jsonschema:"Only todos of this priority: none, low, medium or high."`
	DueBefore string `json:"due_before,omitempty" jsonschema:"Only todos due before this day or moment (exclusive): YYYY-MM-DD or RFC 3339."`
	DueAfter  string `json:"due_after,omitempty" jsonschema:"Only todos due on or after this day or moment: YYYY-MM-DD or RFC 3339."`
	Overdue   bool   `json:"overdue,omitempty" jsonschema:"Only open todos whose due day or moment has passed."`
	Limit     int    `json:"limit,omitempty" jsonschema:"Page size, 1 to 100; default 20."`
	Cursor    string `json:"cursor,omitempty" jsonschema:"The next_cursor of the previous page, to get the next one; omit it for the first page."`
}

// ListTodosResult is one page of todos, in number order.
type ListTodosResult struct {
	Todos      []Todo `json:"todos" jsonschema:"The todos of this page, by ascending number."`
	Count      int    `json:"count" jsonschema:"How many todos this page holds."`
	HasMore    bool   `json:"has_more" jsonschema:"True when more todos match: call again with cursor set to next_cursor."`
	NextCursor string `json:"next_cursor,omitempty" jsonschema:"Pass as cursor, with the same filters, to get the next page; absent on the last page."`
}

func listTodosTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "list_todos",
		Description: `List the user's todos, filtered and paged, by ascending number. With no arguments: all todos, 20 per page.
Examples: "what's overdue?" → overdue: true; "open todos tagged groceries" → status: open, tag: groceries; "due this week" → due_after and due_before.
When has_more is true, call again with the same filters and cursor: next_cursor.`,
		InputSchema: inputSchema[ListTodosArgs](func(p map[string]*jsonschema.Schema) {
			p["status"].Enum = enumOf(store.StatusAll, store.StatusOpen, store.StatusCompleted)
			prioritySchema(p["priority"])
			p["limit"].Minimum, p["limit"].Maximum = jsonschema.Ptr(1.0), jsonschema.Ptr(float64(store.MaxPageSize))
			p["query"].MaxLength = jsonschema.Ptr(store.MaxTitleLen)
			p["tag"].MaxLength = jsonschema.Ptr(store.MaxTagLen)
		}),
		Annotations: hints{readOnly: true, idempotent: true}.annotations("List todos"),
	}, ts.listTodos)
}

func (ts *Toolset) listTodos(ctx context.Context, _ *mcp.CallToolRequest, args ListTodosArgs) (*mcp.CallToolResult, ListTodosResult, error) {
	acct, err := ts.signedInToRead(ctx)
	if err != nil {
		return nil, ListTodosResult{}, err
	}
	f := store.TodoFilter{
		Status:   store.Status(args.Status),
		Query:    args.Query,
		Tag:      args.Tag,
		Priority: store.Priority(args.Priority),
		Overdue:  args.Overdue,
		Limit:    args.Limit,
		Cursor:   args.Cursor,
	}
	for _, d := range []struct {
		field, value string
		into         **time.Time
	}{{"due_before", args.DueBefore, &f.DueBefore}, {"due_after", args.DueAfter, &f.DueAfter}} {
		if strings.TrimSpace(d.value) == "" {
			continue
		}
		due, err := parseDue(d.field, d.value)
		if err != nil {
			return nil, ListTodosResult{}, err
		}
		*d.into = &due.At
	}
	page, err := ts.st.ListTodos(ctx, acct.user.ID, f)
	if err != nil {
		return nil, ListTodosResult{}, ts.fail(ctx, "list your todos", err)
	}
	now := time.Now()
	out := ListTodosResult{Todos: make([]Todo, len(page.Todos)), Count: len(page.Todos), NextCursor: page.NextCursor, HasMore: page.NextCursor != ""}
	for i, t := range page.Todos {
		out.Todos[i] = todoFrom(t, now)
	}
	return nil, out, nil
}

// GetTodoArgs names one todo.
type GetTodoArgs struct {
	Number int64 `json:"number" jsonschema:"The todo's number, as list_todos shows it (\"todo 3\" is 3)."`
}

// TodoResult is one todo.
type TodoResult struct {
	Todo Todo `json:"todo" jsonschema:"The todo."`
}

func getTodoTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name:        "get_todo",
		Description: `Get one of the user's todos by its number, with its full description.`,
		InputSchema: inputSchema[GetTodoArgs](func(p map[string]*jsonschema.Schema) { numberSchema(p["number"]) }),
		Annotations: hints{readOnly: true, idempotent: true}.annotations("Get a todo"),
	}, ts.getTodo)
}

func (ts *Toolset) getTodo(ctx context.Context, _ *mcp.CallToolRequest, args GetTodoArgs) (*mcp.CallToolResult, TodoResult, error) {
	acct, err := ts.signedInToRead(ctx)
	if err != nil {
		return nil, TodoResult{}, err
	}
	t, err := ts.st.GetTodo(ctx, acct.user.ID, store.ByNumber(args.Number))
	if errors.Is(err, store.ErrNotFound) {
		return nil, TodoResult{}, errTodoNotFound(args.Number)
	}
	if err != nil {
		return nil, TodoResult{}, ts.fail(ctx, "get the todo", err)
	}
	return nil, TodoResult{Todo: todoFrom(t, time.Now())}, nil
}

// CreateTodoArgs describes a new todo.
type CreateTodoArgs struct {
	Title       string   `json:"title" jsonschema:"Short title, 1 to 500 characters."`
	Description string   `json:"description,omitempty" jsonschema:"Longer notes, up to 10000 characters."`
	Due         string   `json:"due,omitempty" jsonschema:"When it is due: YYYY-MM-DD for a whole day (2026-03-14), or RFC 3339 for a moment (2026-03-14T17:00:00+01:00)."`
	Priority    string   `json:"priority,omitempty" jsonschema:"none (the default), low, medium or high."`
	Tags        []string `json:"tags,omitempty" jsonschema:"Up to 10 tags of up to 32 characters; stored lower-case."`
}

func createTodoTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "create_todo",
		Description: `Add a todo to the user's list and return it with its number. Example: "add 'buy milk' due Friday, high priority, tag groceries" → title: "Buy milk", due: that Friday as YYYY-MM-DD, priority: high, tags: ["groceries"].
The free plan stores a limited number of todos; when it is full the error says so, and the user can delete a todo or upgrade (upgrade_plan).`,
		InputSchema: inputSchema[CreateTodoArgs](func(p map[string]*jsonschema.Schema) {
			titleSchema(p["title"])
			descriptionSchema(p["description"])
			prioritySchema(p["priority"])
			tagsSchema(p["tags"])
		}),
		Annotations: hints{}.annotations("Create a todo"),
	}, ts.createTodo)
}

func (ts *Toolset) createTodo(ctx context.Context, _ *mcp.CallToolRequest, args CreateTodoArgs) (*mcp.CallToolResult, TodoResult, error) {
	acct, err := ts.signedIn(ctx)
	if err != nil {
		return nil, TodoResult{}, err
	}
	n := store.NewTodo{Title: args.Title, Description: args.Description, Priority: store.Priority(args.Priority), Tags: args.Tags}
	if strings.TrimSpace(args.Due) != "" {
		due, err := parseDue("due", args.Due)
		if err != nil {
			return nil, TodoResult{}, err
		}
		n.Due = &due
	}
	t, err := ts.st.CreateTodo(ctx, acct.user.ID, ts.billing.LimitFor(acct.user), n)
	var limitErr *store.LimitError
	if errors.As(err, &limitErr) {
		// The cached plan may be older than an upgrade: check it with the
		// provider (at most once in a while) before refusing.
		st, ferr := ts.billing.EnsureFresh(ctx, acct.user)
		if ferr != nil {
			return nil, TodoResult{}, ts.fail(ctx, "check your plan", ferr)
		}
		if limit := st.StoreLimit(); limit == store.NoLimit || limit > limitErr.Limit {
			t, err = ts.st.CreateTodo(ctx, acct.user.ID, limit, n)
		}
		if errors.As(err, &limitErr) {
			msg := fmt.Sprintf("%s plan limit reached (%d/%d): delete a todo or upgrade at %s",
				planTitle(st.Plan), limitErr.Used, limitErr.Limit, billing.UpgradeURL(ts.cfg.PublicURL))
			if st.Stale {
				msg += ". " + st.StaleReason
			}
			return nil, TodoResult{}, actionable("%s", msg)
		}
	}
	if err != nil {
		return nil, TodoResult{}, ts.fail(ctx, "create the todo", err)
	}
	return nil, TodoResult{Todo: todoFrom(t, time.Now())}, nil
}

// planTitle is "Free" for "free".
func planTitle(plan string) string {
	if plan == "" {
		return "Free"
	}
	return strings.ToUpper(plan[:1]) + plan[1:]
}

// Fields update_todo can clear.
var clearable = []string{"description", "due", "priority", "tags"}

// UpdateTodoArgs changes some fields of a todo; fields left out stay.
type UpdateTodoArgs struct {
	Number      int64    `json:"number" jsonschema:"The todo's number, as list_todos shows it (\"todo 3\" is 3)."`
	Title       string   `json:"title,omitempty" jsonschema:"New title, 1 to 500 characters."`
	Description string   `json:"description,omitempty" jsonschema:"New description (to remove it, use clear)."`
	Due         string   `json:"due,omitempty" jsonschema:"New due day (YYYY-MM-DD) or moment (RFC 3339); to remove it, use clear."`
	Priority    string   `json:"priority,omitempty" jsonschema:"New priority: none, low, medium or high."`
	Tags        []string `json:"tags,omitempty" jsonschema:"Replaces all tags; [] removes them."`
	Completed   *bool    `json:"completed,omitempty" jsonschema:"true marks it done, false reopens it."`
	Clear       []string `json:"clear,omitempty" jsonschema:"Fields to remove: any of description, due, priority, tags."`
}

func updateTodoTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name: "update_todo",
		Description: `Change a todo: only the fields given change. "mark 3 done" → number: 3, completed: true; "move 2 to next Monday" → number: 2, due: that day; "no due date for 4" → number: 4, clear: ["due"].
Returns the todo as it is now.`,
		InputSchema: inputSchema[UpdateTodoArgs](func(p map[string]*jsonschema.Schema) {
			numberSchema(p["number"])
			titleSchema(p["title"])
			descriptionSchema(p["description"])
			prioritySchema(p["priority"])
			tagsSchema(p["tags"])
			p["clear"].Items.Enum = enumOf(clearable...)
		}),
		Annotations: hints{destructive: true, idempotent: true}.annotations("Update a todo"),
	}, ts.updateTodo)
}

func (ts *Toolset) updateTodo(ctx context.Context, _ *mcp.CallToolRequest, args UpdateTodoArgs) (*mcp.CallToolResult, TodoResult, error) {
	acct, err := ts.signedIn(ctx)
	if err != nil {
		return nil, TodoResult{}, err
	}
	patch, err := args.patch()
	if err != nil {
		return nil, TodoResult{}, err
	}
	t, err := ts.st.UpdateTodo(ctx, acct.user.ID, store.ByNumber(args.Number), patch)
	if errors.Is(err, store.ErrNotFound) {
		return nil, TodoResult{}, errTodoNotFound(args.Number)
	}
	if err != nil {
		return nil, TodoResult{}, ts.fail(ctx, "update the todo", err)
	}
	return nil, TodoResult{Todo: todoFrom(t, time.Now())}, nil
}

// patch turns the arguments into a store patch: a field given is set, a
// field in clear is emptied, and both at once is a mistake.
func (a UpdateTodoArgs) patch() (store.TodoPatch, error) {
	var p store.TodoPatch
	given := map[string]bool{
		"description": a.Description != "",
		"due":         strings.TrimSpace(a.Due) != "",
		"priority":    a.Priority != "",
		"tags":        a.Tags != nil,
	}
	for _, field := range a.Clear {
		if !slices.Contains(clearable, field) {
			return p, invalidArg("clear", "%q cannot be cleared; clear takes description, due, priority or tags", clip(field, 40))
		}
		if given[field] {
			return p, invalidArg("clear", "%s is both given and cleared; do one or the other", field)
		}
	}
	if a.Title != "" {
		p.Title = &a.Title
	}
	if given["description"] {
		p.Description = &a.Description
	}
	if given["due"] {
		due, err := parseDue("due", a.Due)
		if err != nil {
			return p, err
		}
		p.Due = &due
	}
	if given["priority"] {
		pr := store.Priority(a.Priority)
		p.Priority = &pr
	}
	if given["tags"] {
		p.Tags = &a.Tags
	}
	p.Completed = a.Completed
	empty, none := "", store.PriorityNone
	for _, field := range a.Clear {
		switch field {
		case "description":
			p.Description = &empty
		case "due":
			p.ClearDue = true
		case "priority":
			p.Priority = &none
		case "tags":
			p.Tags = &[]string{}
		}
	}
	return p, nil
}

// DeleteTodoArgs names the todo to delete.
type DeleteTodoArgs struct {
	Number int64 `json:"number" jsonschema:"The todo's number, as list_todos shows it (\"todo 3\" is 3)."`
}

// DeleteTodoResult is what was deleted.
type DeleteTodoResult struct {
	Deleted Todo `json:"deleted" jsonschema:"The todo as it was before deletion."`
}

func deleteTodoTool(ts *Toolset) Tool {
	return newTool(&mcp.Tool{
		Name:        "delete_todo",
		Description: `Delete one of the user's todos for good, by number. It frees a place on the free plan. If the user named it by text ("delete the milk one"), find its number with list_todos (query) first, and make sure only one todo matches.`,
		InputSchema: inputSchema[DeleteTodoArgs](func(p map[string]*jsonschema.Schema) { numberSchema(p["number"]) }),
		Annotations: hints{destructive: true, idempotent: true}.annotations("Delete a todo"),
	}, ts.deleteTodo)
}

func (ts *Toolset) deleteTodo(ctx context.Context, _ *mcp.CallToolRequest, args DeleteTodoArgs) (*mcp.CallToolResult, DeleteTodoResult, error) {
	acct, err := ts.signedIn(ctx)
	if err != nil {
		return nil, DeleteTodoResult{}, err
	}
	t, err := ts.st.DeleteTodo(ctx, acct.user.ID, store.ByNumber(args.Number))
	if errors.Is(err, store.ErrNotFound) {
		return nil, DeleteTodoResult{}, errTodoNotFound(args.Number)
	}
	if err != nil {
		return nil, DeleteTodoResult{}, ts.fail(ctx, "delete the todo", err)
	}
	return nil, DeleteTodoResult{Deleted: todoFrom(t, time.Now())}, nil
}
