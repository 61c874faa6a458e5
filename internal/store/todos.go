package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a todo may hold.
const (
	MaxTitleLen       = 500   // characters
	MaxDescriptionLen = 10000 // characters
	MaxTags           = 10
	MaxTagLen         = 32 // characters
	DefaultPageSize   = 20
	MaxPageSize       = 100
	// NoLimit passed to CreateTodo means the plan has no todo limit.
	NoLimit = -1
)

// Priority of a todo.
type Priority string

// The priorities, lowest first.
const (
	PriorityNone   Priority = "none"
	PriorityLow    Priority = "low"
	PriorityMedium Priority = "medium"
	PriorityHigh   Priority = "high"
)

// Priorities lists the valid priorities, lowest first.
var Priorities = []Priority{PriorityNone, PriorityLow, PriorityMedium, PriorityHigh}

// Due is when a todo is due: a whole day (AllDay, At is that day's midnight
// UTC) or an instant.
type Due struct {
	At     time.Time
	AllDay bool
}

// String gives 2006-01-02 for a day and RFC 3339 for an instant.
func (d Due) String() string {
	if d.AllDay {
		return d.At.UTC().Format(time.DateOnly)
	}
	return d.At.UTC().Format(time.RFC3339)
}

// Todo is one item of a user's list. Number is what people and models call
// it ("todo 3"): unique per user, never reused.
type Todo struct {
	ID          int64
	Number      int64
	Title       string
	Description string
	Completed   bool
	CompletedAt *time.Time
	Due         *Due
	Priority    Priority
	Tags        []string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// NewTodo is what CreateTodo needs; empty Priority means none.
type NewTodo struct {
	Title       string
	Description string
	Due         *Due
	Priority    Priority
	Tags        []string
}

// TodoPatch changes only the fields it sets. To clear a field, set it to
// its empty value (Description "", Tags empty, Priority none) or ClearDue.
type TodoPatch struct {
	Title       *string
	Description *string
	Due         *Due
	ClearDue    bool
	Priority    *Priority
	Tags        *[]string
	Completed   *bool
}

// TodoKey picks one todo of a user, by number or by id.
type TodoKey struct {
	column string
	value  int64
}

// ByNumber picks the user's todo with that number.
func ByNumber(n int64) TodoKey { return TodoKey{"number", n} }

// ByID picks the user's todo with that id.
func ByID(id int64) TodoKey { return TodoKey{"id", id} }

// Status filters todos by completion.
type Status string

// The statuses a list can ask for; empty means all.
const (
	StatusAll       Status = "all"
	StatusOpen      Status = "open"
	StatusCompleted Status = "completed"
)

// TodoFilter narrows ListTodos. Zero values mean "any".
type TodoFilter struct {
	Status Status
	// Query matches title or description, ignoring case.
	Query    string
	Tag      string
	Priority Priority
	// DueAfter is inclusive, DueBefore exclusive.
	DueAfter  *time.Time
	DueBefore *time.Time
	// Overdue keeps open todos whose due time (or day) has passed.
	Overdue bool
	// Limit is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
	// Cursor continues from a previous page's NextCursor.
	Cursor string
}

// TodoPage is one page of a list, in ascending number order. NextCursor is
// empty on the last page.
type TodoPage struct {
	Todos      []Todo
	NextCursor string
}

const todoColumns = `todos.id, todos.number, todos.title, todos.description, todos.completed, todos.completed_at,
	todos.due_at, todos.due_all_day, todos.priority, todos.tags, todos.created_at, todos.updated_at`

func scanTodo(row interface{ Scan(...any) error }) (Todo, error) {
	var (
		t                          Todo
		completedAt, due, cre, upd dbTime
		allDay                     bool
		tags                       []byte
	)
	err := row.Scan(&t.ID, &t.Number, &t.Title, &t.Description, &t.Completed, &completedAt,
		&due, &allDay, &t.Priority, &tags, &cre, &upd)
	if err != nil {
		return Todo{}, err
	}
	t.CompletedAt = completedAt.ptr()
	if due.Valid {
		t.Due = &Due{At: due.Time, AllDay: allDay}
	}
	if err := json.Unmarshal(tags, &t.Tags); err != nil {
		return Todo{}, fmt.Errorf("decode tags: %w", err)
	}
	if t.Tags == nil {
		t.Tags = []string{}
	}
	t.CreatedAt, t.UpdatedAt = cre.Time, upd.Time
	return t, nil
}

// ValidateTitle checks a title as CreateTodo and UpdateTodo do.
func ValidateTitle(title string) error {
	if err := validateText("title", title, MaxTitleLen); err != nil {
		return err
	}
	if strings.TrimSpace(title) == "" {
		return invalid("title", "must not be empty")
	}
	return nil
}

func validateText(field, s string, maxChars int) error {
	if !utf8.ValidString(s) {
		return invalid(field, "must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(s); n > maxChars {
		return invalid(field, "is %d characters long; the maximum is %d", n, maxChars)
	}
	if strings.ContainsRune(s, 0) {
		return invalid(field, "must not contain NUL characters")
	}
	return nil
}

// NormalizeTags trims and lower-cases tags, drops duplicates, and checks
// their number and length.
func NormalizeTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, raw := range tags {
		tag := strings.ToLower(strings.TrimSpace(raw))
		if err := validateText("tags", tag, MaxTagLen); err != nil {
			return nil, invalid("tags", "tag %q %s", truncate(raw, 40), err.(*ValidationError).Reason)
		}
		if tag == "" {
			return nil, invalid("tags", "a tag must not be empty")
		}
		if strings.IndexFunc(tag, unicode.IsControl) >= 0 {
			return nil, invalid("tags", "tag %q must not contain control characters", truncate(raw, 40))
		}
		if !slices.Contains(out, tag) {
			out = append(out, tag)
		}
	}
	if len(out) > MaxTags {
		return nil, invalid("tags", "%d tags given; the maximum is %d", len(out), MaxTags)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

func validPriority(p Priority) bool { return slices.Contains(Priorities, p) }

func checkPriority(p Priority) error {
	if !validPriority(p) {
		return invalid("priority", "must be one of none, low, medium, high")
	}
	return nil
}

func (n *NewTodo) normalize() error {
	if err := ValidateTitle(n.Title); err != nil {
		return err
	}
	if err := validateText("description", n.Description, MaxDescriptionLen); err != nil {
		return err
	}
	if n.Priority == "" {
		n.Priority = PriorityNone
	}
	if err := checkPriority(n.Priority); err != nil {
		return err
	}
	tags, err := NormalizeTags(n.Tags)
	if err != nil {
		return err
	}
	n.Tags = tags
	if n.Due != nil {
		d := normalizeDue(*n.Due)
		n.Due = &d
	}
	return nil
}

func normalizeDue(d Due) Due {
	d.At = d.At.UTC()
	if d.AllDay {
		d.At = startOfDay(d.At)
	}
	return d
}

func startOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func tagsJSON(tags []string) string {
	if tags == nil {
		tags = []string{}
	}
	b, _ := json.Marshal(tags) // a []string always marshals
	return string(b)
}

// overdueCondition is true for open todos past due: an all-day todo once
// its day is over, a timed one once its instant has passed.
func overdueCondition(nowParam, todayParam string) string {
	return `(NOT todos.completed AND todos.due_at IS NOT NULL AND (
		(todos.due_all_day AND todos.due_at < ` + todayParam + `) OR
		(NOT todos.due_all_day AND todos.due_at < ` + nowParam + `)))`
}

// CreateTodo stores a new todo for the user unless that would take the
// user's stored todos past limit (NoLimit for none). The check and the
// insert are one transaction around a conditional update of the user's
// counter, so no concurrency can overshoot the limit.
func (s *Store) CreateTodo(ctx context.Context, userID int64, limit int, n NewTodo) (Todo, error) {
	if err := n.normalize(); err != nil {
		return Todo{}, err
	}
	now := s.timeArg(s.now())
	var due, allDay any = nil, false
	if n.Due != nil {
		due, allDay = s.timeArg(n.Due.At), n.Due.AllDay
	}
	var todo Todo
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		claim := `UPDATE users SET todo_count = todo_count + 1, next_number = next_number + 1
			WHERE id = $1 RETURNING next_number - 1`
		args := []any{userID}
		if limit != NoLimit {
			claim = `UPDATE users SET todo_count = todo_count + 1, next_number = next_number + 1
				WHERE id = $1 AND todo_count < $2 RETURNING next_number - 1`
			args = append(args, int64(limit))
		}
		var number int64
		err := tx.QueryRowContext(ctx, claim, args...).Scan(&number)
		if errors.Is(err, sql.ErrNoRows) {
			var used int
			switch err := tx.QueryRowContext(ctx, `SELECT todo_count FROM users WHERE id = $1`, userID).Scan(&used); {
			case errors.Is(err, sql.ErrNoRows):
				return ErrNotFound
			case err != nil:
				return err
			}
			return &LimitError{Limit: limit, Used: used}
		}
		if err != nil {
			return err
		}
		todo, err = scanTodo(tx.QueryRowContext(ctx, `
			INSERT INTO todos (user_id, number, title, description, due_at, due_all_day, priority, tags, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
			RETURNING `+todoColumns,
			userID, number, n.Title, n.Description, due, allDay, string(n.Priority), tagsJSON(n.Tags), now))
		return err
	})
	if err != nil {
		return Todo{}, wrapUnlessSentinel("create todo", err)
	}
	return todo, nil
}

// wrapUnlessSentinel adds context to unexpected errors and passes ours on
// as they are, so their text stays fit to show.
func wrapUnlessSentinel(op string, err error) error {
	for _, sentinel := range []error{ErrNotFound, ErrLimitReached, ErrInvalidInput, ErrExpired, ErrRevoked, ErrConflict} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// GetTodo returns one of the user's todos.
func (s *Store) GetTodo(ctx context.Context, userID int64, key TodoKey) (Todo, error) {
	t, err := scanTodo(s.db.QueryRowContext(ctx,
		`SELECT `+todoColumns+` FROM todos WHERE todos.user_id = $1 AND todos.`+key.column+` = $2`,
		userID, key.value))
	if errors.Is(err, sql.ErrNoRows) {
		return Todo{}, ErrNotFound
	}
	if err != nil {
		return Todo{}, fmt.Errorf("get todo: %w", err)
	}
	return t, nil
}

// query assembles a WHERE clause with numbered placeholders.
type query struct {
	conds []string
	args  []any
}

// arg adds a value and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *query) where(format string, args ...any) {
	ph := make([]any, len(args))
	for i, a := range args {
		ph[i] = q.arg(a)
	}
	q.conds = append(q.conds, fmt.Sprintf(format, ph...))
}

// EncodeCursor and decodeCursor keep cursors opaque to callers.
func encodeCursor(number int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("n1:" + strconv.FormatInt(number, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), "n1:"); ok {
			if n, err := strconv.ParseInt(rest, 10, 64); err == nil && n >= 0 {
				return n, nil
			}
		}
	}
	return 0, invalid("cursor", "is not a cursor this server gave out; start again without one")
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ListTodos returns one page of the user's todos matching f, in ascending
// number order. Paging is by keyset on the number, so rows created while a
// client pages never make another row repeat or vanish.
func (s *Store) ListTodos(ctx context.Context, userID int64, f TodoFilter) (TodoPage, error) {
	limit := f.Limit
	switch {
	case limit == 0:
		limit = DefaultPageSize
	case limit < 1 || limit > MaxPageSize:
		return TodoPage{}, invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	q := &query{}
	q.where("todos.user_id = %s", userID)
	if f.Cursor != "" {
		after, err := decodeCursor(f.Cursor)
		if err != nil {
			return TodoPage{}, err
		}
		q.where("todos.number > %s", after)
	}
	switch f.Status {
	case "", StatusAll:
	case StatusOpen:
		q.where("todos.completed = %s", false)
	case StatusCompleted:
		q.where("todos.completed = %s", true)
	default:
		return TodoPage{}, invalid("status", "must be one of all, open, completed")
	}
	if f.Query != "" {
		if err := validateText("query", f.Query, MaxTitleLen); err != nil {
			return TodoPage{}, err
		}
		q.where(s.dialect.textFilter, "%"+escapeLike(f.Query)+"%")
	}
	if f.Tag != "" {
		tags, err := NormalizeTags([]string{f.Tag})
		if err != nil {
			return TodoPage{}, invalid("tag", "%s", err.(*ValidationError).Reason)
		}
		q.where(s.dialect.tagFilter, tagsJSON(tags))
	}
	if f.Priority != "" {
		if err := checkPriority(f.Priority); err != nil {
			return TodoPage{}, err
		}
		q.where("todos.priority = %s", string(f.Priority))
	}
	if f.DueAfter != nil {
		q.where("todos.due_at >= %s", s.timeArg(*f.DueAfter))
	}
	if f.DueBefore != nil {
		q.where("todos.due_at < %s", s.timeArg(*f.DueBefore))
	}
	if f.Overdue {
		now := s.now()
		q.where(overdueCondition("%[1]s", "%[2]s"), s.timeArg(now), s.timeArg(startOfDay(now)))
	}
	sqlText := `SELECT ` + todoColumns + ` FROM todos WHERE ` + strings.Join(q.conds, " AND ") +
		` ORDER BY todos.number LIMIT ` + q.arg(limit+1)
	rows, err := s.db.QueryContext(ctx, sqlText, q.args...)
	if err != nil {
		return TodoPage{}, fmt.Errorf("list todos: %w", err)
	}
	defer rows.Close()
	page := TodoPage{Todos: make([]Todo, 0, limit)}
	for rows.Next() {
		t, err := scanTodo(rows)
		if err != nil {
			return TodoPage{}, fmt.Errorf("list todos: %w", err)
		}
		page.Todos = append(page.Todos, t)
	}
	if err := rows.Err(); err != nil {
		return TodoPage{}, fmt.Errorf("list todos: %w", err)
	}
	if len(page.Todos) > limit {
		page.Todos = page.Todos[:limit]
		page.NextCursor = encodeCursor(page.Todos[limit-1].Number)
	}
	return page, nil
}

// UpdateTodo changes the fields p sets. Completing a todo stamps
// completed_at (once); reopening it clears it.
func (s *Store) UpdateTodo(ctx context.Context, userID int64, key TodoKey, p TodoPatch) (Todo, error) {
	q := &query{}
	userPH, keyPH := q.arg(userID), q.arg(key.value)
	var sets []string
	set := func(column string, v any) { sets = append(sets, column+" = "+q.arg(v)) }
	if p.Title != nil {
		if err := ValidateTitle(*p.Title); err != nil {
			return Todo{}, err
		}
		set("title", *p.Title)
	}
	if p.Description != nil {
		if err := validateText("description", *p.Description, MaxDescriptionLen); err != nil {
			return Todo{}, err
		}
		set("description", *p.Description)
	}
	switch {
	case p.ClearDue && p.Due != nil:
		return Todo{}, invalid("due", "cannot both set and clear the due date")
	case p.ClearDue:
		sets = append(sets, "due_at = NULL")
		set("due_all_day", false)
	case p.Due != nil:
		d := normalizeDue(*p.Due)
		set("due_at", s.timeArg(d.At))
		set("due_all_day", d.AllDay)
	}
	if p.Priority != nil {
		if err := checkPriority(*p.Priority); err != nil {
			return Todo{}, err
		}
		set("priority", string(*p.Priority))
	}
	if p.Tags != nil {
		tags, err := NormalizeTags(*p.Tags)
		if err != nil {
			return Todo{}, err
		}
		set("tags", tagsJSON(tags))
	}
	now := q.arg(s.timeArg(s.now()))
	if p.Completed != nil {
		c := q.arg(*p.Completed)
		sets = append(sets, "completed = "+c,
			"completed_at = CASE WHEN "+c+" THEN COALESCE(completed_at, "+now+") ELSE NULL END")
	}
	if len(sets) == 0 {
		return Todo{}, invalid("update", "nothing to change: give at least one field")
	}
	sets = append(sets, "updated_at = "+now)
	t, err := scanTodo(s.db.QueryRowContext(ctx,
		`UPDATE todos SET `+strings.Join(sets, ", ")+
			` WHERE todos.user_id = `+userPH+` AND todos.`+key.column+` = `+keyPH+
			` RETURNING `+todoColumns, q.args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Todo{}, ErrNotFound
	}
	if err != nil {
		return Todo{}, fmt.Errorf("update todo: %w", err)
	}
	return t, nil
}

// DeleteTodo removes one of the user's todos and frees its slot in the
// plan's limit. It returns what was deleted.
func (s *Store) DeleteTodo(ctx context.Context, userID int64, key TodoKey) (Todo, error) {
	var t Todo
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanTodo(tx.QueryRowContext(ctx,
			`DELETE FROM todos WHERE todos.user_id = $1 AND todos.`+key.column+` = $2 RETURNING `+todoColumns,
			userID, key.value))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET todo_count = todo_count - 1 WHERE id = $1`, userID)
		return err
	})
	if err != nil {
		return Todo{}, wrapUnlessSentinel("delete todo", err)
	}
	return t, nil
}
