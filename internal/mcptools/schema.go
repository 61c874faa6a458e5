package mcptools

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// inputSchema infers T's schema and lets edit add what struct tags cannot
// say: enums, bounds, lengths. Models read these, and arguments are
// validated against them before a handler runs. The inference runs when the
// schema is needed (see typedTool), not when the tool is defined.
func inputSchema[T any](edit func(props map[string]*jsonschema.Schema)) schemaSource {
	return func() (*jsonschema.Schema, error) {
		s, err := jsonschema.For[T](nil)
		if err != nil {
			return nil, fmt.Errorf("schema of %T: %w", *new(T), err)
		}
		if edit != nil {
			edit(s.Properties)
		}
		return s, nil
	}
}

func enumOf[S ~string](values ...S) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// Schema pieces shared by several tools.
func titleSchema(p *jsonschema.Schema) {
	p.MinLength, p.MaxLength = jsonschema.Ptr(1), jsonschema.Ptr(store.MaxTitleLen)
}

func descriptionSchema(p *jsonschema.Schema) { p.MaxLength = jsonschema.Ptr(store.MaxDescriptionLen) }

func prioritySchema(p *jsonschema.Schema) { p.Enum = enumOf(store.Priorities...) }

func tagsSchema(p *jsonschema.Schema) {
	p.MaxItems = jsonschema.Ptr(store.MaxTags)
	p.Items.MaxLength = jsonschema.Ptr(store.MaxTagLen)
}

func numberSchema(p *jsonschema.Schema) { p.Minimum = jsonschema.Ptr(1.0) }

// Todo is a todo as tools return it.
type Todo struct {
	Number      int64    `json:"number" jsonschema:"The todo's number: what the user calls it (\"todo 3\"); pass it to get_todo, update_todo and delete_todo."`
	Title       string   `json:"title" jsonschema:"Short title."`
	Description string   `json:"description,omitempty" jsonschema:"Longer notes; absent when empty."`
	Completed   bool     `json:"completed" jsonschema:"Whether it is done."`
	CompletedAt string   `json:"completed_at,omitempty" jsonschema:"When it was completed (RFC 3339, UTC)."`
	Due         string   `json:"due,omitempty" jsonschema:"YYYY-MM-DD for a whole day, or an RFC 3339 moment in UTC; absent when there is no due date."`
	Overdue     bool     `json:"overdue,omitempty" jsonschema:"True when it is open and its due day or moment has passed."`
	Priority    string   `json:"priority" jsonschema:"none, low, medium or high."`
	Tags        []string `json:"tags" jsonschema:"Lower-case tags."`
	CreatedAt   string   `json:"created_at" jsonschema:"RFC 3339, UTC."`
	UpdatedAt   string   `json:"updated_at" jsonschema:"RFC 3339, UTC."`
}

func todoFrom(t store.Todo, now time.Time) Todo {
	out := Todo{
		Number:      t.Number,
		Title:       t.Title,
		Description: t.Description,
		Completed:   t.Completed,
		Priority:    string(t.Priority),
		Tags:        t.Tags,
		CreatedAt:   rfc3339(t.CreatedAt),
		UpdatedAt:   rfc3339(t.UpdatedAt),
	}
	if out.Tags == nil {
		out.Tags = []string{}
	}
	if t.CompletedAt != nil {
		out.CompletedAt = rfc3339(*t.CompletedAt)
	}
	if t.Due != nil {
		out.Due = t.Due.String()
		out.Overdue = !t.Completed && isPast(*t.Due, now)
	}
	return out
}

// isPast matches the store's overdue filter: an all-day todo once its day
// (UTC) is over, a timed one once its moment has passed.
func isPast(d store.Due, now time.Time) bool {
	if d.AllDay {
		y, m, day := now.UTC().Date()
		return d.At.Before(time.Date(y, m, day, 0, 0, 0, 0, time.UTC))
	}
	return d.At.Before(now)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// parseDue reads a date argument: YYYY-MM-DD is a whole day, RFC 3339 a
// moment. Anything else names the field and the formats.
func parseDue(field, s string) (store.Due, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return store.Due{At: t, AllDay: true}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return store.Due{At: t}, nil
	}
	return store.Due{}, invalidArg(field, "%q is not a date; use YYYY-MM-DD for a whole day (for example 2026-03-14) or RFC 3339 for a moment (for example 2026-03-14T17:00:00+01:00)", clip(s, 40))
}

// clip shortens s to n characters for an error message.
func clip(s string, n int) string {
	count := 0
	for i := range s {
		if count == n {
			return s[:i] + "…"
		}
		count++
	}
	return s
}
