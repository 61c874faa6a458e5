// Command authserver is todo-mcp's web app: sign-in, sessions, plans, and
// the page that connects MCP clients.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/todo-mcp/todo-mcp/internal/cli"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/web"
)

const usage = `authserver: the todo-mcp web app (sign-in, plans, connecting MCP clients).

Usage:
  authserver [serve]   run the web app on LISTEN_ADDR (default 127.0.0.1:3000)
  authserver migrate   apply database migrations and exit
  authserver --help    show this help

Configuration comes from the environment and ./.env (the environment wins);
see .env.example and the README for every variable.
`

func main() {
	cmd := cli.ParseCommand("authserver", usage, "serve", "migrate")
	cfg := cli.LoadConfig("authserver")
	log := cli.Logger(os.Stderr, cfg.LogLevel).With("service", "authserver")
	ctx, stop := cli.SignalContext()
	defer stop()
	var err error
	if cmd == "migrate" {
		err = cli.Migrate(ctx, cfg, log)
	} else {
		err = serve(ctx, cfg, log)
	}
	if err != nil {
		log.Error("authserver stopped", "err", err)
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
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another authserver running? set LISTEN_ADDR to use another port)", cfg.ListenAddr, err)
	}
	log.Info("authserver listening", "url", cfg.PublicURL, "addr", ln.Addr().String(), "database", st.Describe(), "env", cfg.Env)
	return web.Serve(ctx, ln, web.New(cfg, st, log).Routes(), log)
}
