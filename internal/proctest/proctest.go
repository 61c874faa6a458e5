// Package proctest gives tests that run this module's binaries what they
// share: the binaries built once per test process, an environment free of
// the caller's todo-mcp settings, a free loopback port, and an output
// buffer a process may write while the test reads it. Import it from tests
// only.
package proctest

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/todo-mcp/todo-mcp/internal/config"
)

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildDir string
)

// Build compiles a command of this module (for example "cmd/mcpserver")
// once per test process and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if buildDir == "" {
		dir, err := os.MkdirTemp("", "todo-mcp-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = dir // removed with the OS's temporary files; tests may share it
	}
	bin := filepath.Join(buildDir, filepath.Base(pkg))
	// Static, as make build makes them: they start a few milliseconds sooner.
	cmd := exec.Command("go", "build", "-o", bin, "github.com/todo-mcp/todo-mcp/"+pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// mcpVariables are read by the mcpserver beside config.Variables.
var mcpVariables = []string{"TODO_MCP_TOKEN", "TODO_MCP_CONFIG_DIR"}

// CleanEnv is the process environment without any todo-mcp setting, plus extra.
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(config.Variables, name) && !slices.Contains(mcpVariables, name) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// FreeAddr is a loopback address nothing listens on (yet).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Buffer is a bytes.Buffer that a process or server may write while a
// test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
