// Command authserver is todo-mcp's web app: sign-in, sessions, plans, and
// the page that connects MCP clients.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/cli"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/web"
)

const usage = `authserver: the todo-mcp web app (sign-in, plans, connecting MCP clients).

Usage:
  authserver [serve]   run the web app on LISTEN_ADDR (default 127.0.0.1:3000)
  authserver migrate   apply database migrations and exit
  authserver token …   create, list or revoke MCP tokens (authserver token --help)
  authserver --help    show this help

Configuration comes from the environment and ./.env (the environment wins);
see .env.example and the README for every variable.
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" {
		os.Exit(runToken(os.Args[2:]))
	}
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
	sealer, err := authn.NewSealer(cfg.Secret)
	if err != nil {
		return err
	}
	deps := web.Deps{
		Config:        cfg,
		Store:         st,
		Log:           log,
		Sealer:        sealer,
		Sessions:      web.NewSessions(st, strings.HasPrefix(cfg.PublicURL, "https://")),
		MCPServerPath: siblingBinary("mcpserver"),
	}
	if cfg.Kinde.Configured() {
		deps.OIDC = authn.NewOIDC(authn.OIDCConfig{
			IssuerURL:    cfg.Kinde.IssuerURL,
			ClientID:     cfg.Kinde.ClientID,
			ClientSecret: cfg.Kinde.ClientSecret,
			RedirectURL:  cfg.PublicURL + "/callback",
			Scopes:       cfg.Kinde.Scopes,
			Audience:     cfg.Kinde.Audience,
		})
	}
	if deps.Billing, err = billing.FromConfig(cfg, st, deps.OIDC, log); err != nil {
		return err
	}
	if deps.Billing.Source() == billing.SourceKinde {
		deps.Webhooks = billing.NewWebhookHandler(deps.Billing, billing.WebhookConfig{IssuerURL: cfg.Kinde.IssuerURL, Logger: log})
	}
	app, err := web.New(deps)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another authserver running? set LISTEN_ADDR to use another port)", cfg.ListenAddr, err)
	}
	signIn := "Kinde/OIDC at " + cfg.Kinde.IssuerURL
	if deps.OIDC == nil {
		signIn = "DEVELOPMENT SIGN-IN (no password; loopback only)"
	}
	log.Info("authserver listening", "url", cfg.PublicURL, "addr", ln.Addr().String(), "database", st.Describe(),
		"env", cfg.Env, "sign_in", signIn, "secret", cfg.SecretSource)
	go web.PruneConnectRequests(ctx, st, log, time.Hour, 24*time.Hour)
	return web.Serve(ctx, ln, app.Routes(), log)
}

// siblingBinary is the absolute path of another binary of ours, expected
// beside this one (make build puts both in bin/).
func siblingBinary(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return name
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), name)
}

func runToken(args []string) int {
	if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
		fmt.Fprint(os.Stderr, tokenUsage)
		return 0
	}
	cfg := cli.LoadConfig("authserver")
	log := cli.Logger(os.Stderr, cfg.LogLevel).With("service", "authserver")
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := tokenCommand(ctx, args, cfg, log, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "authserver: %v\n", err)
		return 1
	}
	return 0
}
