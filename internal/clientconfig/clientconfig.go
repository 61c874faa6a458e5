// Package clientconfig writes the ready-to-paste MCP client configurations
// that start mcpserver from Cursor, Claude Desktop and VS Code, and the
// "Add to Cursor" install link. `mcpserver config …` prints them, and the
// authserver's home page shows the same.
package clientconfig

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// ServerName is the key the server gets in every client's configuration.
// Short on purpose: some editors cap server name plus tool name at 60
// characters.
const ServerName = "todo-mcp"

// defaultFreeTodoLimit mirrors config's default; the variable is only
// written out when it differs, since both processes must agree on it.
const defaultFreeTodoLimit = 5

// Server is how a client starts mcpserver.
type Server struct {
	// Command is the absolute path of the mcpserver binary.
	Command string
	Args    []string
	// Env holds what mcpserver needs to reach the same database and
	// authserver as the configuration it was made from. Secrets appear as
	// placeholders (Placeholder), never as their values.
	Env map[string]string
}

// Placeholder is what stands in the configuration for a secret the user
// must fill in by hand.
func Placeholder(variable string) string { return "<your " + variable + ">" }

// Placeholders lists the variables of s whose value is a placeholder, in
// name order, so a caller can tell the user what to fill in.
func (s Server) Placeholders() []string {
	var out []string
	for k, v := range s.Env {
		if v == Placeholder(k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// For describes the mcpserver at binaryPath, set up to reach what cfg
// reaches. Editors start servers from an unknown working directory with a
// trimmed environment, so everything that decides where the data lives is
// spelled out: the data directory (the SQLite file and the development
// secret), the database URL (absolute for SQLite), the authserver's public
// URL, the identity provider, and a non-default free-plan limit.
func For(binaryPath string, cfg *config.Config) Server {
	env := map[string]string{
		"PUBLIC_URL":        cfg.PublicURL,
		"TODO_MCP_DATA_DIR": cfg.DataDir,
	}
	if cfg.DatabaseURL != "" {
		env["DATABASE_URL"] = databaseURL(cfg.DatabaseURL)
	}
	if cfg.IsProduction() {
		env["APP_ENV"] = config.Production
	}
	if cfg.SecretSource == "JWT_SECRET" {
		env["JWT_SECRET"] = Placeholder("JWT_SECRET")
	}
	if k := cfg.Kinde; k.Configured() {
		env["KINDE_ISSUER_URL"] = k.IssuerURL
		env["KINDE_CLIENT_ID"] = k.ClientID
		env["KINDE_CLIENT_SECRET"] = Placeholder("KINDE_CLIENT_SECRET")
		if k.Audience != "" {
			env["KINDE_AUDIENCE"] = k.Audience
		}
	}
	if cfg.FreeTodoLimit != defaultFreeTodoLimit {
		env["FREE_TODO_LIMIT"] = strconv.Itoa(cfg.FreeTodoLimit)
	}
	return Server{Command: binaryPath, Args: []string{}, Env: env}
}

// databaseURL keeps a password out of the configuration and makes a SQLite
// path absolute (the editor's working directory is not ours).
func databaseURL(raw string) string {
	backend, target, err := store.ParseURL(raw, "")
	if err != nil {
		return Placeholder("DATABASE_URL")
	}
	if backend == store.BackendSQLite {
		path, query, _ := strings.Cut(target, "?")
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		if query != "" {
			path += "?" + query
		}
		return "sqlite:" + path
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Placeholder("DATABASE_URL")
	}
	if _, hasPassword := u.User.Password(); hasPassword || u.Query().Has("password") {
		return Placeholder("DATABASE_URL")
	}
	return raw
}

// entry is one server as Cursor and Claude Desktop write it.
type entry struct {
	Type    string            `json:"type,omitempty"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env,omitempty"`
}

func (s Server) entry(typ string) entry {
	args := s.Args
	if args == nil {
		args = []string{}
	}
	return entry{Type: typ, Command: s.Command, Args: args, Env: s.Env}
}

// Cursor is the content of ~/.cursor/mcp.json (or a project's
// .cursor/mcp.json) with this one server.
func Cursor(s Server) string { return mcpServers(s) }

// Claude is the content of Claude Desktop's claude_desktop_config.json with
// this one server.
func Claude(s Server) string { return mcpServers(s) }

// mcpServers is the layout Cursor and Claude Desktop share.
func mcpServers(s Server) string {
	return render(map[string]any{"mcpServers": map[string]entry{ServerName: s.entry("")}})
}

// VSCode is the content of a workspace's .vscode/mcp.json (or the user
// mcp.json) with this one server.
func VSCode(s Server) string {
	return render(map[string]any{"servers": map[string]entry{ServerName: s.entry("stdio")}})
}

// CursorInstallURL is Cursor's one-click install link: the server entry as
// base64 JSON in the config parameter.
func CursorInstallURL(s Server) string {
	b, err := json.Marshal(s.entry(""))
	if err != nil {
		panic(fmt.Sprintf("clientconfig: marshal a server entry: %v", err)) // strings only: cannot fail
	}
	return "cursor://anysphere.cursor-deeplink/mcp/install?name=" + url.QueryEscape(ServerName) +
		"&config=" + url.QueryEscape(base64.StdEncoding.EncodeToString(b))
}

func render(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("clientconfig: marshal a configuration: %v", err)) // strings only: cannot fail
	}
	return buf.String()
}

// Editor names a supported MCP client.
type Editor string

// The supported clients, as `mcpserver config` names them.
const (
	EditorCursor Editor = "cursor"
	EditorClaude Editor = "claude"
	EditorVSCode Editor = "vscode"
)

// Editors lists the supported clients.
var Editors = []Editor{EditorCursor, EditorClaude, EditorVSCode}

// Title is the client's name as people write it.
func (e Editor) Title() string {
	switch e {
	case EditorCursor:
		return "Cursor"
	case EditorClaude:
		return "Claude Desktop"
	case EditorVSCode:
		return "VS Code"
	}
	return string(e)
}

// Render is the configuration for editor e, or an error naming the
// editors there are.
func Render(e Editor, s Server) (string, error) {
	switch e {
	case EditorCursor:
		return Cursor(s), nil
	case EditorClaude:
		return Claude(s), nil
	case EditorVSCode:
		return VSCode(s), nil
	}
	return "", fmt.Errorf("unknown editor %q: use cursor, claude or vscode", e)
}

// Locations says where editor e reads its configuration on goos ("darwin",
// "linux", "windows"), the first being the one to use.
func Locations(e Editor, goos string) []string {
	switch e {
	case EditorCursor:
		if goos == "windows" {
			return []string{`%USERPROFILE%\.cursor\mcp.json (all projects)`, `.cursor\mcp.json in a project`}
		}
		return []string{"~/.cursor/mcp.json (all projects)", ".cursor/mcp.json in a project"}
	case EditorClaude:
		switch goos {
		case "darwin":
			return []string{"~/Library/Application Support/Claude/claude_desktop_config.json"}
		case "windows":
			return []string{`%APPDATA%\Claude\claude_desktop_config.json`}
		default:
			return []string{"~/.config/Claude/claude_desktop_config.json (Claude Desktop has no official Linux build)"}
		}
	case EditorVSCode:
		user := "~/.config/Code/User/mcp.json"
		switch goos {
		case "darwin":
			user = "~/Library/Application Support/Code/User/mcp.json"
		case "windows":
			user = `%APPDATA%\Code\User\mcp.json`
		}
		return []string{".vscode/mcp.json in a workspace", user + " (all workspaces; command \"MCP: Open User Configuration\")"}
	}
	return nil
}
