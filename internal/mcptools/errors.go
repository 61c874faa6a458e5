package mcptools

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// toolError is a failure the person or the model can act on. Its text
// becomes the tool result (isError: true) and always says what to do next.
type toolError struct{ msg string }

func (e *toolError) Error() string { return e.msg }

// actionable returns a tool error whose text is the formatted message.
func actionable(format string, args ...any) error {
	return &toolError{msg: fmt.Sprintf(format, args...)}
}

// invalidArg names the argument that is wrong and what it should be.
func invalidArg(field, format string, args ...any) error {
	return actionable("Invalid %s: %s.", field, fmt.Sprintf(format, args...))
}

// errTodoNotFound is the same for a todo that does not exist and for
// another user's: the answer must not tell them apart.
func errTodoNotFound(number int64) error {
	return actionable("Todo %d not found. Call list_todos to see the numbers of your todos.", number)
}

// fail turns an error from below into a tool error: our validation errors
// keep their words, anything else is logged with its context and reported
// without internals (a database error could name hosts or queries).
func (ts *Toolset) fail(ctx context.Context, op string, err error) error {
	var (
		te *toolError
		ve *store.ValidationError
	)
	switch {
	case errors.As(err, &te):
		return te
	case errors.As(err, &ve):
		return invalidArg(ve.Field, "%s", ve.Reason)
	case errors.Is(err, context.Canceled):
		return actionable("The request to %s was cancelled.", op)
	}
	ts.log.ErrorContext(ctx, "tool failed", "op", op, "err", err)
	return actionable("Could not %s: the server hit an error (details are in the mcpserver log). Try again in a moment; if it persists, check that the database is running.", op)
}

// maxErrorText caps what a tool error may send back.
const maxErrorText = 2000

// tidyToolErrors is a receiving middleware that keeps tool-error texts
// short and readable: long quoted values are cut, the SDK's validation
// prefix is reworded, and the whole text is capped. A 10 MB argument thus
// never comes back in the answer.
func tidyToolErrors(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		ctr, ok := res.(*mcp.CallToolResult)
		if err != nil || !ok || !ctr.IsError {
			return res, err
		}
		for _, c := range ctr.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				tc.Text = tidyErrorText(tc.Text)
			}
		}
		return res, err
	}
}

func tidyErrorText(s string) string {
	if rest, ok := strings.CutPrefix(s, `validating "arguments": `); ok {
		s = "Invalid arguments: " + strings.TrimPrefix(rest, "validating root: ") + ". Check the tool's input schema and call it again."
	} else if strings.HasPrefix(s, "json: cannot unmarshal") {
		s = "Invalid arguments: " + s + "."
	}
	s = clipQuoted(s, 40)
	if len(s) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// clipQuoted shortens every double-quoted value of s longer than n
// characters: the SDK's schema validation quotes the offending value in
// full, and a 10 MB argument must not come back in the answer. One pass,
// no regular expression: s may be megabytes long.
func clipQuoted(s string, n int) string {
	var b strings.Builder
	for {
		open := strings.IndexByte(s, '"')
		if open < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:open+1])
		s = s[open+1:]
		end := closingQuote(s)
		if end < 0 { // unterminated: keep what there is, the length cap follows
			b.WriteString(s)
			return b.String()
		}
		if count := utf8.RuneCountInString(s[:end]); count > n {
			b.WriteString(clip(s[:end], n))
			b.WriteString(`" (` + strconv.Itoa(count) + ` characters)`)
		} else {
			b.WriteString(s[:end+1])
		}
		s = s[end+1:]
	}
}

// closingQuote is the index of the quote ending a Go-quoted string whose
// opening quote precedes s, or -1.
func closingQuote(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// logCalls is a receiving middleware that logs every request at debug
// level: method, tool, duration and outcome. Never arguments: save_token's
// carries a credential.
func logCalls(log *slog.Logger) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if !log.Enabled(ctx, slog.LevelDebug) {
				return next(ctx, method, req)
			}
			attrs := []any{"method", method}
			if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok {
				attrs = append(attrs, "tool", p.Name)
			}
			start := time.Now()
			res, err := next(ctx, method, req)
			attrs = append(attrs, "duration", time.Since(start))
			if ctr, ok := res.(*mcp.CallToolResult); ok {
				attrs = append(attrs, "is_error", ctr.IsError)
			}
			if err != nil {
				attrs = append(attrs, "err", err)
			}
			log.DebugContext(ctx, "mcp request", attrs...)
			return res, err
		}
	}
}
