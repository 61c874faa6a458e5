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

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/cli"
	"github.com/todo-mcp/todo-mcp/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `mcpserver: the todo-mcp MCP server, spoken to over stdio by your editor.

Usage:
  mcpserver [serve] [--log-file PATH]   serve MCP on stdin/stdout
  mcpserver migrate                     apply database migrations and exit
  mcpserver --help                      show this help

Flags:
  --log-file PATH   append logs to PATH instead of stderr

Configuration comes from the environment and ./.env (the environment wins);
see .env.example and the README for every variable.
`

func main() {
	logFile := flag.String("log-file", "", "append logs to this file instead of stderr")
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
		err = serve(ctx, cfg, log)
	}
	if err != nil {
		log.Error("mcpserver stopped", "err", err)
		stop()
		os.Exit(1)
	}
}

func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	st, err := cli.OpenStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	server := mcp.NewServer(&mcp.Implementation{Name: "todo-mcp", Title: "todo-mcp", Version: version},
		&mcp.ServerOptions{Logger: log})
	log.Info("mcpserver serving on stdio", "database", st.Describe())
	err = server.Run(ctx, &mcp.StdioTransport{})
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		log.Info("mcpserver stopped: client closed the connection or a signal arrived")
		return nil
	}
	return err
}
