// Package storetest gives tests a real, migrated, private database on each
// backend: a fresh SQLite file, and a fresh PostgreSQL database created on
// the server named by TEST_DATABASE_URL (default: the local server on
// 127.0.0.1:5432) and dropped afterwards.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// DefaultAdminURL is tried when TEST_DATABASE_URL is unset.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Backends lists the backends tests run against.
var Backends = []string{store.BackendSQLite, store.BackendPostgres}

// ForEachBackend runs fn as a subtest per backend, each with its own
// freshly migrated store.
func ForEachBackend(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(b, func(t *testing.T) {
			fn(t, Open(t, b, store.Options{}))
		})
	}
}

// Open returns a migrated store on a private database of that backend,
// closed and removed when the test ends. opts.URL is filled in.
func Open(t testing.TB, backend string, opts store.Options) *store.Store {
	t.Helper()
	opts.URL = URL(t, backend)
	ctx := context.Background()
	s, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open %s store: %v", backend, err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s store: %v", backend, err)
	}
	return s
}

// URL returns a DATABASE_URL for a private, empty database of that backend,
// removed when the test ends. On PostgreSQL it skips the test when no server
// can be reached, except under CI=true, where that fails it.
func URL(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case store.BackendSQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "todo.db")
	case store.BackendPostgres:
		return postgresDatabase(t)
	default:
		t.Fatalf("unknown backend %q", backend)
		return ""
	}
}

var (
	adminOnce sync.Once
	adminURL  string
	adminErr  error
)

// AdminURL is the PostgreSQL server tests create databases on.
func AdminURL() (string, error) {
	adminOnce.Do(func() {
		adminURL = os.Getenv("TEST_DATABASE_URL")
		if adminURL == "" {
			adminURL = DefaultAdminURL
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			adminErr = fmt.Errorf("no PostgreSQL at TEST_DATABASE_URL or %s: %w", DefaultAdminURL, err)
			return
		}
		conn.Close(ctx)
	})
	return adminURL, adminErr
}

func postgresDatabase(t testing.TB) string {
	t.Helper()
	admin, err := AdminURL()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required under CI=true: %v", err)
		}
		t.Skipf("SKIPPING POSTGRESQL TESTS: %v (set TEST_DATABASE_URL, or run `make test`, which starts one)", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "todo_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
