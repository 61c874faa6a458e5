package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/proctest"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// inspectorDir holds the pinned MCP Inspector (package.json and
// package-lock.json); scripts/test.sh runs `npm ci` there.
var inspectorDir = filepath.Join("..", "..", "test", "inspector")

// needInspector skips the test when Node or the installed Inspector is
// missing, except under CI=true, where that is a failure.
func needInspector(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf("SKIPPING the MCP Inspector test: "+format, args...)
	}
	npx, err := exec.LookPath("npx")
	if err != nil {
		missing("npx not found (install Node.js 20 or newer)")
	}
	if _, err := os.Stat(filepath.Join(inspectorDir, "node_modules", "@modelcontextprotocol", "inspector", "package.json")); err != nil {
		missing("the Inspector is not installed: run `npm ci` in test/inspector (make test does)")
	}
	return npx
}

// TestInspectorCLI has a third-party client, the MCP Inspector's CLI
// (TypeScript SDK), list the tools of the real binary and call two of them.
func TestInspectorCLI(t *testing.T) {
	npx := needInspector(t)
	bin := proctest.Build(t, "cmd/mcpserver")
	db := newDatabase(t, store.BackendSQLite)
	_, tok := db.userWithToken(t, "ada@example.com")
	serverEnv := []string{"DATABASE_URL=" + db.url, "PUBLIC_URL=http://127.0.0.1:1", "TODO_MCP_DATA_DIR=" + t.TempDir(),
		"TODO_MCP_CONFIG_DIR=" + t.TempDir(), mcptools.EnvToken + "=" + tok}

	inspect := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		cmdArgs := []string{"--no-install", "@modelcontextprotocol/inspector", "--cli"}
		for _, kv := range serverEnv {
			cmdArgs = append(cmdArgs, "-e", kv)
		}
		cmdArgs = append(cmdArgs, bin)
		cmd := exec.Command(npx, append(cmdArgs, args...)...)
		cmd.Dir = inspectorDir
		cmd.Env = proctest.CleanEnv()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("inspector %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
		}
		var out map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("inspector output is not JSON: %v\n%s", err, stdout.String())
		}
		return out
	}

	t.Run("tools/list shows every tool with its schemas and annotations", func(t *testing.T) {
		out := inspect(t, "--method", "tools/list")
		var names []string
		for _, raw := range out["tools"].([]any) {
			tool := raw.(map[string]any)
			names = append(names, tool["name"].(string))
			if tool["outputSchema"] == nil || tool["annotations"] == nil || tool["inputSchema"] == nil {
				t.Errorf("tool %v lacks a schema or annotations", tool["name"])
			}
		}
		slices.Sort(names)
		want := []string{"create_todo", "delete_todo", "get_todo", "list_todos", "login", "logout", "refresh_billing_status", "save_token", "update_todo", "upgrade_plan", "whoami"}
		if !slices.Equal(names, want) {
			t.Fatalf("tools %v", names)
		}
	})

	t.Run("tools/call create_todo stores a todo", func(t *testing.T) {
		out := inspect(t, "--method", "tools/call", "--tool-name", "create_todo", "--tool-arg", "title=Checked by the Inspector", "--tool-arg", "priority=high")
		todo, _ := out["structuredContent"].(map[string]any)["todo"].(map[string]any)
		if out["isError"] == true || todo["title"] != "Checked by the Inspector" || todo["priority"] != "high" {
			t.Fatalf("create_todo: %v", out)
		}
	})

	t.Run("tools/call list_todos lists it", func(t *testing.T) {
		out := inspect(t, "--method", "tools/call", "--tool-name", "list_todos", "--tool-arg", "status=open")
		sc, _ := out["structuredContent"].(map[string]any)
		todos, _ := sc["todos"].([]any)
		if out["isError"] == true || len(todos) != 1 || todos[0].(map[string]any)["title"] != "Checked by the Inspector" {
			t.Fatalf("list_todos: %v", out)
		}
	})
}
