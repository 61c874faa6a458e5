// Package cli is what both binaries do before serving: read the
// configuration, build the logger, open and migrate the store, and stop on a
// signal.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Logger writes text logs to w (stderr: stdout may belong to a protocol).
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// LoadConfig reads the configuration or exits with one line per problem.
func LoadConfig(program string) *config.Config {
	cfg, err := config.FromEnvironment()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", program, err)
		os.Exit(2)
	}
	return cfg
}

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// OpenStore opens the database. In development it applies pending
// migrations; in production it refuses a schema older than the binary, so
// that schema changes stay an explicit step (`authserver migrate`).
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*store.Store, error) {
	s, err := store.Open(ctx, cfg.StoreOptions(log))
	if err != nil {
		return nil, err
	}
	if !cfg.IsProduction() {
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	applied, known, err := s.SchemaVersion(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	if applied < known {
		s.Close()
		return nil, fmt.Errorf("the database schema is at version %d and this binary needs %d: run `authserver migrate` first", applied, known)
	}
	return s, nil
}

// Migrate applies pending migrations, for the migrate subcommands.
func Migrate(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	s, err := store.Open(ctx, cfg.StoreOptions(log))
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		return err
	}
	applied, _, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	log.Info("database is up to date", "database", s.Describe(), "version", applied)
	return nil
}

// ParseCommand parses the command line: an optional command (the first of
// commands is the default) with flags before or after it. It exits with the
// usage on anything else.
func ParseCommand(program, usage string, commands ...string) string {
	flag.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	flag.Parse()
	args := flag.Args()
	cmd := commands[0]
	if len(args) > 0 {
		cmd = args[0]
		_ = flag.CommandLine.Parse(args[1:]) // flag.ExitOnError: it exits on a bad flag
	}
	if !slices.Contains(commands, cmd) {
		fmt.Fprintf(os.Stderr, "%s: unknown command %q\n\n%s", program, cmd, usage)
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "%s: unexpected argument %q\n\n%s", program, flag.Arg(0), usage)
		os.Exit(2)
	}
	return cmd
}
