// Command mcpserver is todo-mcp's MCP server on stdio, spawned by Cursor,
// Claude Desktop or VS Code. stdout carries JSON-RPC only; logs go to stderr
// or --log-file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/cli"
	"github.com/todo-mcp/todo-mcp/internal/clientconfig"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `mcpserver: the todo-mcp MCP server, spoken to over stdio by your editor.

Usage:
  mcpserver [serve] [--log-file PATH] [--login-wait 2m]   serve MCP on stdin/stdout
  mcpserver config cursor|claude|vscode                   print the editor configuration to paste
  mcpserver migrate                                       apply database migrations and exit
  mcpserver --help                                        show this help

Flags:
  --log-file PATH      append logs to PATH instead of stderr
  --login-wait DUR     how long the login tool waits for the approval in the
                       browser before answering "pending" (default 2m)

Configuration comes from the environment and ./.env (the environment wins);
see .env.example and the README for every variable. Also read by serve:
  TODO_MCP_TOKEN       a token to use instead of the saved credential
  TODO_MCP_CONFIG_DIR  where the credential file lives (default: the user's
                       configuration directory, then todo-mcp/)
`

func main() {
	started := time.Now()
	// The configuration printer takes an argument, which the serve/migrate
	// parser does not; it also needs no logger and no database.
	if len(os.Args) > 1 && os.Args[1] == "config" {
		os.Exit(printConfig(os.Args[2:], os.Stdout, os.Stderr))
	}
	logFile := flag.String("log-file", "", "append logs to this file instead of stderr")
	loginWait := flag.Duration("login-wait", mcptools.DefaultLoginWait, "how long login waits for the approval")
	cmd := cli.ParseCommand("mcpserver", usage, "serve", "migrate")
	cfg := cli.LoadConfig("mcpserver")
	var logOut io.Writer = os.Stderr
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mcpserver: open log file: %v\n", err)
			os.Exit(2)
		}
		defer f.Close()
		logOut = f
	}
	log := cli.Logger(logOut, cfg.LogLevel).With("service", "mcpserver")
	ctx, stop := cli.SignalContext()
	defer stop()
	var err error
	if cmd == "migrate" {
		err = cli.Migrate(ctx, cfg, log)
	} else {
		err = serve(ctx, cfg, log, *loginWait, started)
	}
	if err != nil {
		log.Error("mcpserver stopped", "err", err)
		stop()
		os.Exit(1)
	}
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, loginWait time.Duration, started time.Time) error {
	tuneGC()
	// stdout belongs to the protocol. Anything else that prints there by
	// accident lands in stderr instead of corrupting the JSON-RPC stream.
	protocolOut := os.Stdout
	os.Stdout = os.Stderr

	creds, err := mcptools.CredentialsFromEnv(getenv(".env"))
	if err != nil {
		return err
	}
	// The database opens (and, in development, migrates) while the client's
	// initialize and tools/list are answered: they need no database, and an
	// editor waits for them before it shows the tools. Tool calls wait for it.
	db := openStore(ctx, cfg, log, started)
	defer db.close()
	ts, err := mcptools.New(mcptools.Deps{
		OpenedStore: db.wait,
		Config:      cfg,
		Credentials: creds,
		Logger:      log,
		Version:     version,
		LoginWait:   loginWait,
	})
	if err != nil {
		return err
	}
	server := ts.Server()
	// A database that cannot be opened stops the server, as it did when it
	// was opened first, with the reason in the log.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	failed := make(chan error, 1)
	go func() {
		if err := ts.Ready(runCtx); err != nil && runCtx.Err() == nil {
			failed <- err
			stopRun()
		}
	}()
	log.Info("mcpserver serving on stdio", "authserver", cfg.PublicURL,
		"credentials", creds.Path(), "token_from_env", creds.FromEnv(), "ready_after", time.Since(started))
	err = server.Run(runCtx, &mcp.IOTransport{Reader: os.Stdin, Writer: protocolOut})
	select {
	case err := <-failed:
		return err
	default:
	}
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) || errors.Is(err, mcp.ErrConnectionClosed) {
		log.Info("mcpserver stopped: the client closed the connection or a signal arrived")
		return nil
	}
	return err
}

// pendingStore is the database being opened in the background.
type pendingStore struct {
	done   chan struct{}
	cancel context.CancelFunc
	st     *store.Store
	err    error
}

func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, started time.Time) *pendingStore {
	ctx, cancel := context.WithCancel(ctx)
	p := &pendingStore{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		p.st, p.err = cli.OpenStore(ctx, cfg, log)
		if p.err == nil {
			log.Info("database ready", "database", p.st.Describe(), "store_ready_after", time.Since(started))
		}
	}()
	return p
}

// wait returns the store once it is open.
func (p *pendingStore) wait(ctx context.Context) (*store.Store, error) {
	select {
	case <-p.done:
		return p.st, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close stops an open still in progress and closes the store.
func (p *pendingStore) close() {
	p.cancel()
	<-p.done
	if p.st != nil {
		p.st.Close()
	}
}

// GC settings of serve, unless GOGC or GOMEMLIMIT say otherwise. The SDK
// allocates a fresh 32 KB read buffer for each JSON value it decodes, five
// to seven per tool call, so a tool call makes ~300 KB of garbage while
// the live heap stays at 3-4 MB; with the default GOGC=100 the collector
// ran every ten calls and took a quarter of the server's CPU
// (docs/benchmarks.md). A higher GOGC collects less often; the soft memory
// limit is what bounds the heap in practice, and keeps the process within
// its 30 MB budget (16 MiB gave 29 MB resident on SQLite, 14 MiB 26.7 MB).
// A heap that grows anyway (a 10 MB argument) is collected as before.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 14 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
}

// getenv reads a variable from the environment, then from the .env file
// at dotenvPath, the precedence the configuration has.
func getenv(dotenvPath string) func(string) string {
	file, _ := godotenv.Read(dotenvPath) // no file, no variables
	return func(name string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return file[name]
	}
}

// printConfig writes the configuration for one editor to stdout, ready to
// paste, and where it goes to stderr. It returns the exit code.
func printConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, "Usage: mcpserver config cursor|claude|vscode\n")
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	editor := clientconfig.Editor(strings.ToLower(args[0]))
	if _, err := clientconfig.Render(editor, clientconfig.Server{}); err != nil {
		fmt.Fprintf(stderr, "mcpserver: %v\n", err)
		return 2
	}
	bin, err := os.Executable()
	if err == nil {
		bin, err = filepath.EvalSymlinks(bin)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mcpserver: cannot tell where this binary is: %v\n", err)
		return 1
	}
	cfg := cli.LoadConfig("mcpserver")
	s := clientconfig.For(bin, cfg)
	text, _ := clientconfig.Render(editor, s) // the editor was checked above
	fmt.Fprint(stdout, text)

	var notes strings.Builder
	fmt.Fprintf(&notes, "\nPaste the JSON above into %s's configuration", editor.Title())
	locs := clientconfig.Locations(editor, runtime.GOOS)
	fmt.Fprintf(&notes, ": %s", locs[0])
	for _, l := range locs[1:] {
		fmt.Fprintf(&notes, ", or %s", l)
	}
	fmt.Fprint(&notes, ".\nIf the file already lists servers, add the \"todo-mcp\" entry next to them.\n")
	if ph := s.Placeholders(); len(ph) > 0 {
		fmt.Fprintf(&notes, "Replace the placeholders with your values: %s.\n", strings.Join(ph, ", "))
	}
	if strings.Contains(bin, "go-build") {
		fmt.Fprint(&notes, "This binary is a temporary `go run` build: run `make build` and use bin/mcpserver instead.\n")
	}
	if editor == clientconfig.EditorCursor {
		fmt.Fprintf(&notes, "Or install it in one click: %s\n", clientconfig.CursorInstallURL(s))
	}
	fmt.Fprintf(&notes, "Then restart %s, keep the authserver running (make dev, on %s), and ask it to \"log me in to todo-mcp\".\n",
		editor.Title(), cfg.PublicURL)
	fmt.Fprint(stderr, notes.String())
	return 0
}
