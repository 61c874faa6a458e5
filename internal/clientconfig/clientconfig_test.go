package clientconfig_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/todo-mcp/todo-mcp/internal/clientconfig"
	"github.com/todo-mcp/todo-mcp/internal/config"
)

func load(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	if _, ok := env["TODO_MCP_DATA_DIR"]; !ok {
		env["TODO_MCP_DATA_DIR"] = "/home/ada/.local/share/todo-mcp"
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestFor(t *testing.T) {
	const bin = "/opt/todo-mcp/bin/mcpserver"
	tests := []struct {
		name     string
		env      map[string]string
		want     map[string]string
		absent   []string
		noSecret []string
	}{
		{
			name:   "the embedded defaults name the data directory and the authserver",
			env:    map[string]string{},
			want:   map[string]string{"PUBLIC_URL": "http://localhost:3000", "TODO_MCP_DATA_DIR": "/home/ada/.local/share/todo-mcp"},
			absent: []string{"DATABASE_URL", "JWT_SECRET", "APP_ENV", "KINDE_ISSUER_URL", "FREE_TODO_LIMIT"},
		},
		{
			name:     "a PostgreSQL password becomes a placeholder",
			env:      map[string]string{"DATABASE_URL": "postgres://app:s3cr3t-pw@db.example.com/todo?sslmode=require"},
			want:     map[string]string{"DATABASE_URL": "<your DATABASE_URL>"},
			noSecret: []string{"s3cr3t-pw"},
		},
		{
			name:     "a password given as a query parameter becomes a placeholder",
			env:      map[string]string{"DATABASE_URL": "postgres://db.example.com/todo?user=app&password=qp-secret"},
			want:     map[string]string{"DATABASE_URL": "<your DATABASE_URL>"},
			noSecret: []string{"qp-secret"},
		},
		{
			name: "a PostgreSQL URL without a password is kept as it is",
			env:  map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/todo?sslmode=disable"},
			want: map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/todo?sslmode=disable"},
		},
		{
			name: "a SQLite URL is kept, with an absolute path",
			env:  map[string]string{"DATABASE_URL": "sqlite:/srv/todo/todo.db"},
			want: map[string]string{"DATABASE_URL": "sqlite:/srv/todo/todo.db"},
		},
		{
			name: "JWT_SECRET and the Kinde client secret become placeholders",
			env: map[string]string{"JWT_SECRET": "a-very-long-secret-value-of-forty-characters!", "KINDE_ISSUER_URL": "https://acme.kinde.com",
				"KINDE_CLIENT_ID": "client-123", "KINDE_CLIENT_SECRET": "kinde-secret-value", "KINDE_AUDIENCE": "https://api.acme.com"},
			want: map[string]string{"JWT_SECRET": "<your JWT_SECRET>", "KINDE_CLIENT_SECRET": "<your KINDE_CLIENT_SECRET>",
				"KINDE_ISSUER_URL": "https://acme.kinde.com", "KINDE_CLIENT_ID": "client-123", "KINDE_AUDIENCE": "https://api.acme.com"},
			noSecret: []string{"a-very-long-secret-value", "kinde-secret-value"},
		},
		{
			name: "a non-default free limit is passed on, since both processes enforce it",
			env:  map[string]string{"FREE_TODO_LIMIT": "12", "PUBLIC_URL": "http://localhost:3001"},
			want: map[string]string{"FREE_TODO_LIMIT": "12", "PUBLIC_URL": "http://localhost:3001"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := clientconfig.For(bin, load(t, tt.env))
			if s.Command != bin {
				t.Errorf("command %q", s.Command)
			}
			for k, v := range tt.want {
				if s.Env[k] != v {
					t.Errorf("env %s = %q, want %q", k, s.Env[k], v)
				}
			}
			for _, k := range tt.absent {
				if v, ok := s.Env[k]; ok {
					t.Errorf("env %s = %q, want it absent", k, v)
				}
			}
			for _, text := range []string{clientconfig.Cursor(s), clientconfig.Claude(s), clientconfig.VSCode(s), clientconfig.CursorInstallURL(s)} {
				for _, secret := range tt.noSecret {
					if strings.Contains(text, secret) {
						t.Errorf("secret %q appears in:\n%s", secret, text)
					}
				}
			}
		})
	}
}

func TestPlaceholders(t *testing.T) {
	s := clientconfig.Server{Env: map[string]string{"JWT_SECRET": "<your JWT_SECRET>", "PUBLIC_URL": "http://localhost:3000",
		"DATABASE_URL": "<your DATABASE_URL>"}}
	if got := strings.Join(s.Placeholders(), ","); got != "DATABASE_URL,JWT_SECRET" {
		t.Fatalf("Placeholders() = %s", got)
	}
}

func TestRenderedConfigurations(t *testing.T) {
	s := clientconfig.Server{Command: `/Users/ada/todo mcp/bin/mcpserver`, Env: map[string]string{"PUBLIC_URL": "http://localhost:3000"}}
	type entry struct {
		Type    string            `json:"type"`
		Command string            `json:"command"`
		Args    []string          `json:"args"`
		Env     map[string]string `json:"env"`
	}
	tests := []struct {
		name, text, topKey, wantType string
	}{
		{"Cursor uses mcpServers", clientconfig.Cursor(s), "mcpServers", ""},
		{"Claude Desktop uses mcpServers", clientconfig.Claude(s), "mcpServers", ""},
		{"VS Code uses servers with a stdio type", clientconfig.VSCode(s), "servers", "stdio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]map[string]entry
			if err := json.Unmarshal([]byte(tt.text), &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, tt.text)
			}
			e, ok := doc[tt.topKey]["todo-mcp"]
			if !ok || len(doc) != 1 {
				t.Fatalf("no %s.todo-mcp in:\n%s", tt.topKey, tt.text)
			}
			if e.Command != s.Command || e.Type != tt.wantType || e.Args == nil || e.Env["PUBLIC_URL"] != "http://localhost:3000" {
				t.Fatalf("entry %+v", e)
			}
		})
	}

	t.Run("the Cursor install link carries the entry as base64 JSON", func(t *testing.T) {
		link := clientconfig.CursorInstallURL(s)
		u, err := url.Parse(link)
		if err != nil || u.Scheme != "cursor" || u.Host != "anysphere.cursor-deeplink" || u.Path != "/mcp/install" {
			t.Fatalf("link %q: %v", link, err)
		}
		if u.Query().Get("name") != "todo-mcp" {
			t.Fatalf("name %q", u.Query().Get("name"))
		}
		raw, err := base64.StdEncoding.DecodeString(u.Query().Get("config"))
		if err != nil {
			t.Fatal(err)
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil || e.Command != s.Command {
			t.Fatalf("config %s: %v", raw, err)
		}
	})

	t.Run("an unknown editor is refused with the names there are", func(t *testing.T) {
		if _, err := clientconfig.Render("zed", s); err == nil || !strings.Contains(err.Error(), "cursor, claude or vscode") {
			t.Fatalf("err %v", err)
		}
	})
}

func TestLocations(t *testing.T) {
	for _, e := range clientconfig.Editors {
		for _, goos := range []string{"darwin", "linux", "windows"} {
			t.Run(e.Title()+" on "+goos+" has a configuration path", func(t *testing.T) {
				if locs := clientconfig.Locations(e, goos); len(locs) == 0 || !strings.Contains(locs[0], ".json") {
					t.Fatalf("%v", locs)
				}
			})
		}
	}
}
