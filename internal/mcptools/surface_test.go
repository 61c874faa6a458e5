package mcptools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

var update = flag.Bool("update", false, "rewrite testdata/tools.golden.json from the server's tools/list")

// listTools returns every tool as a client sees it.
func listTools(t *testing.T, cs *mcp.ClientSession) []*mcp.Tool {
	t.Helper()
	var tools []*mcp.Tool
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		tools = append(tools, tool)
	}
	return tools
}

// TestToolsGolden snapshots what models see: names, descriptions, schemas
// and annotations. A change shows up in review as a diff of the golden
// file; accept it with: go test ./internal/mcptools -run TestToolsGolden -update
func TestToolsGolden(t *testing.T) {
	e := newEnv(t, store.BackendSQLite)
	got, err := json.MarshalIndent(listTools(t, e.session()), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "tools.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("tools/list differs from %s; if the change is intended, run go test ./internal/mcptools -run TestToolsGolden -update and review the diff.\ngot:\n%s", path, got)
	}
}

// TestToolGuardRails holds every tool, present and future, to the rules.
func TestToolGuardRails(t *testing.T) {
	e := newEnv(t, store.BackendSQLite)
	tools := listTools(t, e.session())
	registry := []string{"login", "save_token", "logout", "whoami", "list_todos", "get_todo", "create_todo", "update_todo", "delete_todo", "refresh_billing_status", "upgrade_plan"}
	want := slices.Sorted(slices.Values(registry)) // tools/list is in name order
	if len(tools) != len(want) {
		t.Fatalf("%d tools, want %d", len(tools), len(want))
	}
	validName := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for i, tool := range tools {
		t.Run(tool.Name+" follows the rules", func(t *testing.T) {
			if tool.Name != want[i] {
				t.Errorf("tool %d is %q, want %q", i, tool.Name, want[i])
			}
			if len(tool.Name) > 40 || !validName.MatchString(tool.Name) {
				t.Errorf("name %q: at most 40 characters of [a-z0-9_]", tool.Name)
			}
			if len(tool.Description) < 40 {
				t.Errorf("description too short for a model: %q", tool.Description)
			}
			a := tool.Annotations
			if a == nil || a.Title == "" || a.DestructiveHint == nil || a.OpenWorldHint == nil {
				t.Fatalf("annotations not all set: %+v", a)
			}
			if a.ReadOnlyHint && *a.DestructiveHint {
				t.Errorf("read-only and destructive at once")
			}
			in, _ := tool.InputSchema.(map[string]any)
			out, _ := tool.OutputSchema.(map[string]any)
			if in["type"] != "object" || in["additionalProperties"] != false {
				t.Errorf("input schema %v: want an object refusing unknown fields", in)
			}
			if out["type"] != "object" {
				t.Errorf("output schema %v: want an object (list results wrapped)", out)
			}
			props, _ := in["properties"].(map[string]any)
			for name, p := range props {
				if d, _ := p.(map[string]any)["description"].(string); d == "" {
					t.Errorf("argument %q has no description", name)
				}
			}
		})
	}
	// The registry and the server agree.
	ts, err := mcptools.New(mcptools.Deps{Store: e.st, Config: e.cfg, Credentials: e.creds})
	if err != nil {
		t.Fatal(err)
	}
	for i, tool := range ts.Tools() {
		if tool.Def.Name != registry[i] {
			t.Errorf("registry tool %d is %q", i, tool.Def.Name)
		}
	}
}

// TestProtocolVersions runs a short session on each protocol version
// editors speak, and the newest.
func TestProtocolVersions(t *testing.T) {
	for _, version := range []string{"2025-06-18", "2025-11-25", mcp.SupportedProtocolVersions()[0]} {
		t.Run("a session on "+version+" lists, creates and pages", func(t *testing.T) {
			e := newEnv(t, store.BackendSQLite)
			e.signIn("ada@example.com")
			cs := e.session(protocol(version))
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %s", got)
			}
			if n := len(listTools(t, cs)); n != 11 {
				t.Fatalf("%d tools", n)
			}
			callOK(t, cs, "create_todo", map[string]any{"title": "on " + version}, nil)
			res := call(t, cs, "list_todos", map[string]any{"limit": 1})
			obj, ok := res.StructuredContent.(map[string]any)
			if res.IsError || !ok || obj["count"] != 1.0 {
				t.Fatalf("list_todos structured content %#v", res.StructuredContent)
			}
			var fromText mcptools.ListTodosResult
			if err := json.Unmarshal([]byte(text(res)), &fromText); err != nil || fromText.Count != 1 {
				t.Fatalf("the text content is not the JSON result: %v %s", err, text(res))
			}
			mustContain(t, callErr(t, cs, "get_todo", map[string]any{"number": 2}), "not found")
		})
	}
}
