package store

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/gofrs/flock"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/todo-mcp/todo-mcp/db/migrations"
)

// Migrate brings the schema up to date. Two processes starting together
// take turns: a PostgreSQL advisory lock (goose's session locker), or a
// lock file beside the SQLite database.
func (s *Store) Migrate(ctx context.Context) error {
	var opts []goose.ProviderOption
	if s.pool != nil {
		// Poll every second rather than goose's default five, for at most five minutes.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	} else {
		fl := flock.New(s.path + ".migrate.lock")
		if _, err := fl.TryLockContext(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("migrate: lock %s: %w", fl.Path(), err)
		}
		defer fl.Unlock()
	}
	provider, err := s.migrations(opts...)
	if err != nil {
		return err
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		s.log.Info("applied migration", "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// SchemaVersion reports the newest applied migration and the newest one
// this binary knows.
func (s *Store) SchemaVersion(ctx context.Context) (applied, known int64, err error) {
	provider, err := s.migrations()
	if err != nil {
		return 0, 0, err
	}
	if applied, err = provider.GetDBVersion(ctx); err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	sources := provider.ListSources()
	if len(sources) > 0 {
		known = sources[len(sources)-1].Version
	}
	return applied, known, nil
}

func (s *Store) migrations(opts ...goose.ProviderOption) (*goose.Provider, error) {
	dialect := goose.DialectSQLite3
	if s.pool != nil {
		dialect = goose.DialectPostgres
	}
	sub, err := fs.Sub(migrations.FS, s.dialect.name)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(dialect, s.db, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}
