package main_test

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/proctest"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// The database opens while initialize and tools/list are answered; one
// that cannot be opened still stops the server with the reason.
func TestStartup(t *testing.T) {
	bin := proctest.Build(t, "cmd/mcpserver")

	t.Run("a database that cannot be opened stops the server with status 1 and says why", func(t *testing.T) {
		cmd := exec.Command(bin)
		// Nothing listens on port 1.
		cmd.Env = serverEnv(t, "postgres://todo@127.0.0.1:1/todo?sslmode=disable", "http://127.0.0.1:1")
		var stderr proctest.Buffer
		cmd.Stderr = &stderr
		stdin, _ := cmd.StdinPipe()
		cmd.Stdout = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("mcpserver did not stop\n%s", stderr.String())
		}
		mustContain(t, stderr.String(), "mcpserver stopped", "open postgres at 127.0.0.1", "connection refused")
	})

	t.Run("the first tool call waits for the database and succeeds", func(t *testing.T) {
		db := newDatabase(t, store.BackendSQLite)
		_, tok := db.userWithToken(t, "ada@example.com")
		cmd := exec.Command(bin)
		cmd.Env = serverEnv(t, db.url, "http://127.0.0.1:1", "TODO_MCP_TOKEN="+tok)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		var stderr proctest.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		// Everything at once, before any answer: the call is read while the
		// database may still be opening.
		_, err := io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}
{"jsonrpc":"2.0","method":"notifications/initialized"}
{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}
`)
		if err != nil {
			t.Fatal(err)
		}
		in := bufio.NewReader(stdout)
		for {
			line, err := in.ReadString('\n')
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if !strings.Contains(line, `"id":2`) {
				continue
			}
			if strings.Contains(line, `"isError":true`) || !strings.Contains(line, "ada@example.com") {
				t.Fatalf("whoami: %s", line)
			}
			break
		}
		stdin.Close()
		mustContain(t, stderr.String(), "serving on stdio")
	})
}
