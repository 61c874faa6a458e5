// Package store keeps every piece of todo-mcp's state: users, their todos,
// web sessions, MCP tokens, connect requests, provider credentials and
// billing events. One implementation of plain SQL serves two backends:
// PostgreSQL through pgx (pgxpool), and an embedded SQLite file through a
// pure-Go driver. The few places where the dialects differ live in dialect.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Backend names, as Store.Backend reports them.
const (
	BackendPostgres = "postgres"
	BackendSQLite   = "sqlite"
)

// Store is safe for concurrent use by many goroutines and, through the
// database, by several processes.
type Store struct {
	db      *sql.DB
	pool    *pgxpool.Pool // nil on SQLite
	path    string        // SQLite file; empty on PostgreSQL
	dialect dialect
	now     func() time.Time
	log     *slog.Logger
}

// Options configure Open.
type Options struct {
	// URL is the DATABASE_URL: postgres://… or postgresql://… for
	// PostgreSQL; sqlite:PATH, file:PATH, or empty for SQLite.
	URL string
	// DefaultSQLitePath is the file used when URL is empty.
	DefaultSQLitePath string
	// Logger receives migration and connection messages; nil discards them.
	Logger *slog.Logger
	// Now overrides the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Open connects to the database named by opts.URL. It does not migrate; call
// Migrate for that.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s := &Store{now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	kind, target, err := ParseURL(opts.URL, opts.DefaultSQLitePath)
	if err != nil {
		return nil, err
	}
	switch kind {
	case BackendPostgres:
		err = s.openPostgres(ctx, target)
	default:
		err = s.openSQLite(ctx, target)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ParseURL tells which backend a DATABASE_URL selects and what to open: the
// URL itself for PostgreSQL, a file path (plus any query) for SQLite.
func ParseURL(raw, defaultSQLitePath string) (backend, target string, err error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		if defaultSQLitePath == "" {
			return "", "", errors.New("DATABASE_URL is empty and no default SQLite path was given")
		}
		return BackendSQLite, defaultSQLitePath, nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := pgxpool.ParseConfig(raw); err != nil {
			return "", "", fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %s", redactParseError(err))
		}
		return BackendPostgres, raw, nil
	case strings.HasPrefix(raw, "sqlite:"), strings.HasPrefix(raw, "file:"):
		rest := raw[strings.Index(raw, ":")+1:]
		rest = strings.TrimPrefix(rest, "//")
		if rest == "" || strings.HasPrefix(rest, "?") {
			return "", "", errors.New("DATABASE_URL names no SQLite file: write it as sqlite:/path/to/todo.db")
		}
		return BackendSQLite, rest, nil
	default:
		return "", "", errors.New("DATABASE_URL must start with one of postgres://, postgresql://, sqlite:, file:, or be empty for the default SQLite file")
	}
}

// redactParseError keeps a password in a malformed URL out of error messages.
func redactParseError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "cannot parse"); i >= 0 {
		return "cannot parse it (check the scheme, host, port and percent-encoding)"
	}
	return msg
}

func (s *Store) openPostgres(ctx context.Context, rawURL string) error {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return fmt.Errorf("open postgres: %s", redactParseError(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("open postgres at %s: %w", cfg.ConnConfig.Host, err)
	}
	s.pool = pool
	s.db = stdlib.OpenDBFromPool(pool)
	s.dialect = postgresDialect
	return nil
}

func (s *Store) openSQLite(ctx context.Context, target string) error {
	path, query, _ := strings.Cut(target, "?")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("open sqlite: create directory: %w", err)
	}
	// busy_timeout comes first so that the journal_mode change waits for a
	// second process instead of failing; _txlock=immediate takes the write
	// lock at BEGIN, which is what makes the limit check in CreateTodo safe
	// and avoids SQLITE_BUSY on lock upgrades under concurrency.
	q := url.Values{}
	if query != "" {
		parsed, err := url.ParseQuery(query)
		if err != nil {
			return fmt.Errorf("open sqlite: bad query in DATABASE_URL: %w", err)
		}
		q = parsed
	}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("open sqlite %s: %w", path, err)
	}
	s.db = db
	s.path = path
	s.dialect = sqliteDialect
	return nil
}

// Close releases every connection.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// Backend is BackendPostgres or BackendSQLite.
func (s *Store) Backend() string { return s.dialect.name }

// Describe names the database for logs and banners without any credential:
// the SQLite path, or the PostgreSQL host and database.
func (s *Store) Describe() string {
	if s.pool == nil {
		return "sqlite " + s.path
	}
	cc := s.pool.Config().ConnConfig
	return fmt.Sprintf("postgres %s:%d/%s", cc.Host, cc.Port, cc.Database)
}

// DB is the database/sql handle, for the SQLite session store.
func (s *Store) DB() *sql.DB { return s.db }

// Pool is the pgx pool on PostgreSQL (for the pgx session store), nil on SQLite.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks the database answers; /healthz uses it.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// inTx runs fn in a transaction, committing when it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
