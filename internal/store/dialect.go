package store

import (
	"fmt"
	"time"
)

// dialect holds what differs between PostgreSQL and SQLite. Everything else
// is the same SQL text: both accept $N placeholders, ON CONFLICT and RETURNING.
type dialect struct {
	name string
	// time turns a time into a query argument.
	time func(time.Time) any
	// tagFilter is a condition true when todos.tags holds the JSON array
	// given as its one placeholder argument's single element.
	tagFilter string
	// textFilter is a condition true when title or description contains the
	// LIKE pattern given as its one placeholder argument, ignoring case.
	textFilter string
}

// sqliteTimeLayout is fixed-width, so text order is time order.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

var postgresDialect = dialect{
	name:       BackendPostgres,
	time:       func(t time.Time) any { return t.UTC() },
	tagFilter:  "todos.tags @> %s::jsonb",
	textFilter: `(todos.title ILIKE %[1]s ESCAPE '\' OR todos.description ILIKE %[1]s ESCAPE '\')`,
}

// SQLite's LIKE ignores case for ASCII letters only; PostgreSQL's ILIKE for
// every script. Documented in the README.
var sqliteDialect = dialect{
	name:       BackendSQLite,
	time:       func(t time.Time) any { return t.UTC().Format(sqliteTimeLayout) },
	tagFilter:  "EXISTS (SELECT 1 FROM json_each(todos.tags) t, json_each(%s) w WHERE t.value = w.value)",
	textFilter: `(todos.title LIKE %[1]s ESCAPE '\' OR todos.description LIKE %[1]s ESCAPE '\')`,
}

// timeArg converts t for the current dialect.
func (s *Store) timeArg(t time.Time) any { return s.dialect.time(t) }

// nullTimeArg converts an optional time; nil stays NULL.
func (s *Store) nullTimeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.dialect.time(*t)
}

// dbTime scans a timestamp from either backend: time.Time from PostgreSQL,
// text from SQLite, NULL as the zero time with Valid false.
type dbTime struct {
	Time  time.Time
	Valid bool
}

func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = dbTime{}
		return nil
	case time.Time:
		*t = dbTime{Time: v.UTC(), Valid: true}
		return nil
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
}

func (t *dbTime) parse(s string) error {
	for _, layout := range []string{sqliteTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05"} {
		if p, err := time.Parse(layout, s); err == nil {
			*t = dbTime{Time: p.UTC(), Valid: true}
			return nil
		}
	}
	return fmt.Errorf("store: cannot parse time %q", s)
}

// ptr returns nil for NULL, else the time.
func (t dbTime) ptr() *time.Time {
	if !t.Valid {
		return nil
	}
	v := t.Time
	return &v
}
