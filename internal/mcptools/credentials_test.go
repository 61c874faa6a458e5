package mcptools_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/todo-mcp/todo-mcp/internal/mcptools"
)

func TestCredentialFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes are POSIX")
	}
	t.Run("save creates a 0700 directory and a 0600 file holding the token", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "todo-mcp")
		c := mcptools.NewCredentials(dir, "")
		if err := c.Save("tmcp_secret"); err != nil {
			t.Fatal(err)
		}
		di, _ := os.Stat(dir)
		fi, _ := os.Stat(c.Path())
		if di.Mode().Perm() != 0o700 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("directory %v, file %v", di.Mode(), fi.Mode())
		}
		tok, src, err := c.Token()
		if tok != "tmcp_secret" || src != mcptools.SourceFile || err != nil {
			t.Fatalf("Token() = %q %q %v", tok, src, err)
		}
	})

	t.Run("saving again replaces the file and leaves no temporary file", func(t *testing.T) {
		dir := t.TempDir()
		c := mcptools.NewCredentials(dir, "")
		for i := range 3 {
			if err := c.Save(fmt.Sprintf("tmcp_%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Name() != "credentials.json" {
			t.Fatalf("directory holds %v", entries)
		}
		if tok, _, _ := c.Token(); tok != "tmcp_2" {
			t.Fatalf("token %q", tok)
		}
	})

	t.Run("concurrent saves always leave a whole file", func(t *testing.T) {
		c := mcptools.NewCredentials(t.TempDir(), "")
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if err := c.Save(fmt.Sprintf("tmcp_%02d", i)); err != nil {
					t.Error(err)
				}
				if _, _, err := c.Token(); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if tok, _, err := c.Token(); err != nil || !strings.HasPrefix(tok, "tmcp_") {
			t.Fatalf("token %q: %v", tok, err)
		}
	})

	t.Run("a directory open to others is closed before the token goes in", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c := mcptools.NewCredentials(dir, "")
		if err := c.Save("tmcp_x"); err != nil {
			t.Fatal(err)
		}
		if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
			t.Fatalf("directory %v", di.Mode())
		}
	})

	t.Run("when the file cannot be written, the token is kept in memory and the error says why", func(t *testing.T) {
		blocker := filepath.Join(t.TempDir(), "a-file")
		if err := os.WriteFile(blocker, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c := mcptools.NewCredentials(filepath.Join(blocker, "todo-mcp"), "")
		if err := c.Save("tmcp_mem"); err == nil || !strings.Contains(err.Error(), "create") {
			t.Fatalf("Save: %v", err)
		}
		if tok, src, _ := c.Token(); tok != "tmcp_mem" || src != mcptools.SourceMemory {
			t.Fatalf("Token() = %q %q", tok, src)
		}
		if err := c.Delete(); err != nil {
			t.Fatal(err)
		}
		if tok, _, _ := c.Token(); tok != "" {
			t.Fatalf("token after delete %q", tok)
		}
	})

	t.Run("TODO_MCP_TOKEN wins over the file", func(t *testing.T) {
		dir := t.TempDir()
		if err := mcptools.NewCredentials(dir, "").Save("tmcp_file"); err != nil {
			t.Fatal(err)
		}
		c := mcptools.NewCredentials(dir, " tmcp_env\n")
		if tok, src, _ := c.Token(); tok != "tmcp_env" || src != mcptools.SourceEnv || !c.FromEnv() {
			t.Fatalf("Token() = %q %q", tok, src)
		}
	})

	t.Run("deleting a missing file is not an error", func(t *testing.T) {
		if err := mcptools.NewCredentials(t.TempDir(), "").Delete(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCredentialsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		wantDir string
		wantErr string
	}{
		{"TODO_MCP_CONFIG_DIR names the directory", map[string]string{"TODO_MCP_CONFIG_DIR": "/srv/creds"}, "/srv/creds", ""},
		{"a relative TODO_MCP_CONFIG_DIR is refused", map[string]string{"TODO_MCP_CONFIG_DIR": "creds"}, "", "must be an absolute path"},
		{"the default is todo-mcp in the user's configuration directory", map[string]string{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := mcptools.CredentialsFromEnv(func(k string) string { return tt.vars[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.wantDir
			if want == "" {
				base, _ := os.UserConfigDir()
				want = filepath.Join(base, "todo-mcp")
			}
			if c.Path() != filepath.Join(want, "credentials.json") {
				t.Fatalf("path %s", c.Path())
			}
		})
	}
}
