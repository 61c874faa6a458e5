package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/mcptools/mcptest"
	"github.com/todo-mcp/todo-mcp/internal/proctest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

// database is a private, migrated database of one backend.
type database struct {
	url string
	st  *store.Store
}

func newDatabase(t testing.TB, backend string) database {
	t.Helper()
	url := storetest.URL(t, backend)
	st, err := store.Open(context.Background(), store.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return database{url: url, st: st}
}

// userWithToken creates a user and a live token for them.
func (d database) userWithToken(t testing.TB, email string) (store.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := d.st.UpsertUser(ctx, store.Identity{Subject: "sub-" + email, Email: email, Name: strings.Split(email, "@")[0]})
	if err != nil {
		t.Fatal(err)
	}
	tok := authn.NewToken()
	if _, err := d.st.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, ClientName: "test", Hash: tok.Hash, Prefix: tok.Prefix, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return u, tok.Plain
}

// serverEnv is what an editor would pass to mcpserver: the database, the
// authserver's address, and a private data and credential directory.
func serverEnv(t testing.TB, dbURL, publicURL string, extra ...string) []string {
	return proctest.CleanEnv(append([]string{"DATABASE_URL=" + dbURL, "PUBLIC_URL=" + publicURL,
		"TODO_MCP_DATA_DIR=" + t.TempDir(), "TODO_MCP_CONFIG_DIR=" + t.TempDir(), "LOG_LEVEL=debug"}, extra...)...)
}

// recordedServer is mcpserver running as a child process, every byte of its
// stdout recorded on its way to the client.
type recordedServer struct {
	cmd    *exec.Cmd
	stdout *proctest.Buffer
	stderr *proctest.Buffer
	done   chan error
}

// startRecorded runs the binary and connects a client over its stdin and
// stdout. (mcp.CommandTransport owns the pipes, so it cannot record them;
// this is the same transport with a tee on stdout.)
func startRecorded(t *testing.T, bin string, env []string, opts *mcp.ClientOptions, args ...string) (*mcp.ClientSession, *recordedServer) {
	t.Helper()
	rs := &recordedServer{cmd: exec.Command(bin, args...), stdout: &proctest.Buffer{}, stderr: &proctest.Buffer{}, done: make(chan error, 1)}
	rs.cmd.Env = env
	rs.cmd.Dir = t.TempDir()
	rs.cmd.Stderr = rs.stderr
	stdin, err := rs.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := rs.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { rs.done <- rs.cmd.Wait() }()
	t.Cleanup(func() { _ = rs.cmd.Process.Kill() })
	transport := &mcp.IOTransport{Reader: io.NopCloser(io.TeeReader(stdout, rs.stdout)), Writer: stdin}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-client", Title: "E2E editor", Version: "1.0"}, opts).Connect(context.Background(), transport, nil)
	if err != nil {
		t.Fatalf("connect: %v\nstderr:\n%s", err, rs.stderr.String())
	}
	return cs, rs
}

// wait waits for the process to exit after its stdin closed.
func (rs *recordedServer) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rs.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("mcpserver did not exit\nstderr:\n%s", rs.stderr.String())
		return nil
	}
}

// checkJSONRPCOnly parses every stdout line as one JSON-RPC 2.0 message.
func checkJSONRPCOnly(t *testing.T, stdout string) int {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	n := 0
	for sc.Scan() {
		n++
		var msg struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
			Result  json.RawMessage `json:"result"`
			Error   json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			t.Fatalf("stdout line %d is not JSON: %v\n%.300s", n, err, sc.Text())
		}
		if msg.JSONRPC != "2.0" || (msg.Method == "" && msg.ID == nil) || (msg.Method == "" && msg.Result == nil && msg.Error == nil) {
			t.Fatalf("stdout line %d is not a JSON-RPC 2.0 message: %.300s", n, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// The client helpers both test packages share.
var (
	call        = mcptest.Call
	callOK      = mcptest.CallOK
	callErr     = mcptest.CallErr
	text        = mcptest.Text
	mustContain = mcptest.MustContain
)

func day(offset int) string { return time.Now().UTC().AddDate(0, 0, offset).Format(time.DateOnly) }

// seedTodo is the i-th todo of the session: tags, priorities and due
// dates in patterns, so that each filter selects a known count.
func seedTodo(i int) map[string]any {
	args := map[string]any{"title": fmt.Sprintf("Task %03d", i), "priority": []string{"none", "low", "medium", "high"}[i%4]}
	var tags []string
	if i%3 == 0 {
		tags = append(tags, "work")
	}
	if i%5 == 0 {
		tags = append(tags, "home")
	}
	if tags != nil {
		args["tags"] = tags
	}
	switch i % 10 {
	case 0:
		args["due"] = day(-1)
	case 1:
		args["due"] = day(5)
	}
	return args
}

var connectURLIn = regexp.MustCompile(`http://127\.0\.0\.1:\d+/connect/[A-Za-z0-9_-]+`)

// TestWholeSession drives the real binary over stdio through everything a
// user does in a day, on each backend: login through the connect flow,
// create, list with each filter, page through 150 todos, update,
// complete, delete, logout, and a call that must say "not signed in".
func TestWholeSession(t *testing.T) {
	bin := proctest.Build(t, "cmd/mcpserver")
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			db := newDatabase(t, backend)
			auth := mcptest.StartAuthserver(t, db.st, db.url)
			ada, err := db.st.UpsertUser(context.Background(), store.Identity{Subject: mcptest.DevSubject("ada@example.com"), Email: "ada@example.com", Name: "Ada"})
			if err != nil {
				t.Fatal(err)
			}
			configDir := t.TempDir()
			env := serverEnv(t, db.url, auth.URL, "TODO_MCP_CONFIG_DIR="+configDir)

			var approveOnce sync.Once
			cs, rs := startRecorded(t, bin, env, &mcp.ClientOptions{
				ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
					if u := connectURLIn.FindString(req.Params.Message); u != "" {
						approveOnce.Do(func() { go mcptest.ApproveInBrowser(t, auth, u, ada) })
					}
				},
			}, "serve", "--login-wait", "30s")

			tools, err := cs.ListTools(context.Background(), nil)
			if err != nil || len(tools.Tools) != 11 {
				t.Fatalf("tools/list: %v, %d tools", err, len(tools.Tools))
			}
			mustContain(t, callErr(t, cs, "whoami", nil), "Not signed in", "login")

			t.Run("login completes through the connect flow", func(t *testing.T) {
				params := &mcp.CallToolParams{Name: "login", Arguments: map[string]any{}}
				params.SetProgressToken("login")
				res, err := cs.CallTool(context.Background(), params)
				if err != nil || res.IsError {
					t.Fatalf("login: %v %s", err, text(res))
				}
				mustContain(t, text(res), "Signed in to todo-mcp as Ada <ada@example.com>")
				var who mcptools.WhoamiResult
				callOK(t, cs, "whoami", nil, &who)
				if who.ClientName != "E2E editor" || who.SignedInVia != "file" {
					t.Fatalf("whoami %+v", who)
				}
			})
			saved, err := os.ReadFile(filepath.Join(configDir, "credentials.json"))
			if err != nil {
				t.Fatal(err)
			}
			var cred struct{ Token string }
			if json.Unmarshal(saved, &cred) != nil || !authn.LooksLikeToken(cred.Token) {
				t.Fatalf("credential file %s", saved)
			}

			t.Run("the free plan stops at 5, and the upgrade lifts the limit", func(t *testing.T) {
				for i := 1; i <= 5; i++ {
					callOK(t, cs, "create_todo", seedTodo(i), nil)
				}
				mustContain(t, callErr(t, cs, "create_todo", seedTodo(6)), "Free plan limit reached (5/5)", auth.URL+"/billing/upgrade")
				if _, err := db.st.SetPlan(context.Background(), ada.ID, store.PlanState{Plan: "pro", Source: "local"}); err != nil {
					t.Fatal(err)
				}
				var status mcptools.RefreshBillingStatusResult
				callOK(t, cs, "refresh_billing_status", nil, &status)
				if status.Plan.Plan != "pro" || status.Plan.Limit != nil {
					t.Fatalf("refresh %+v", status.Plan)
				}
				for i := 6; i <= 150; i++ {
					callOK(t, cs, "create_todo", seedTodo(i), nil)
				}
			})

			count := func(args map[string]any) int {
				t.Helper()
				total := 0
				for {
					var page mcptools.ListTodosResult
					callOK(t, cs, "list_todos", args, &page)
					total += page.Count
					if !page.HasMore {
						return total
					}
					args = maps(args, "cursor", page.NextCursor)
				}
			}
			t.Run("each filter selects what it should", func(t *testing.T) {
				for _, tt := range []struct {
					args map[string]any
					want int
				}{
					{map[string]any{"status": "open"}, 150},
					{map[string]any{"status": "completed"}, 0},
					{map[string]any{"query": "task 14"}, 10},
					{map[string]any{"tag": "work"}, 50},
					{map[string]any{"tag": "home"}, 30},
					{map[string]any{"priority": "high"}, 37},
					{map[string]any{"overdue": true}, 15},
					{map[string]any{"due_before": day(0)}, 15},
					{map[string]any{"due_after": day(0)}, 15},
					{map[string]any{"due_after": day(-2), "due_before": day(10)}, 30},
					{map[string]any{"tag": "work", "priority": "high", "status": "open"}, 13},
				} {
					if got := count(tt.args); got != tt.want {
						t.Errorf("list_todos %v: %d todos, want %d", tt.args, got, tt.want)
					}
				}
			})

			t.Run("paging through 150 todos sees each once, in order", func(t *testing.T) {
				var seen []int64
				args := map[string]any{}
				pages := 0
				for {
					var page mcptools.ListTodosResult
					callOK(t, cs, "list_todos", args, &page)
					pages++
					for _, td := range page.Todos {
						seen = append(seen, td.Number)
					}
					if !page.HasMore {
						break
					}
					args = map[string]any{"cursor": page.NextCursor}
				}
				if pages != 8 || len(seen) != 150 {
					t.Fatalf("%d pages, %d todos", pages, len(seen))
				}
				for i, n := range seen {
					if n != int64(i+1) {
						t.Fatalf("position %d holds todo %d", i, n)
					}
				}
			})

			t.Run("update, complete and delete", func(t *testing.T) {
				var res mcptools.TodoResult
				callOK(t, cs, "update_todo", map[string]any{"number": 7, "title": "Task 007, renamed", "tags": []string{"renamed"}}, &res)
				if res.Todo.Title != "Task 007, renamed" || res.Todo.Priority != "high" {
					t.Fatalf("update %+v", res.Todo)
				}
				callOK(t, cs, "update_todo", map[string]any{"number": 10, "completed": true}, &res)
				if !res.Todo.Completed || res.Todo.Overdue {
					t.Fatalf("complete %+v", res.Todo)
				}
				if got := count(map[string]any{"overdue": true}); got != 14 {
					t.Fatalf("overdue after completing one: %d", got)
				}
				if got := count(map[string]any{"status": "completed"}); got != 1 {
					t.Fatalf("completed: %d", got)
				}
				var del mcptools.DeleteTodoResult
				callOK(t, cs, "delete_todo", map[string]any{"number": 150}, &del)
				mustContain(t, callErr(t, cs, "get_todo", map[string]any{"number": 150}), "Todo 150 not found")
				if got := count(map[string]any{}); got != 149 {
					t.Fatalf("after delete: %d", got)
				}
			})

			t.Run("logout, then a call says not signed in", func(t *testing.T) {
				var out mcptools.LogoutResult
				callOK(t, cs, "logout", nil, &out)
				if out.Status != "signed_out" {
					t.Fatalf("logout %+v", out)
				}
				if _, err := os.Stat(filepath.Join(configDir, "credentials.json")); !os.IsNotExist(err) {
					t.Fatalf("credential file after logout: %v", err)
				}
				mustContain(t, callErr(t, cs, "list_todos", nil), "Not signed in to todo-mcp", "login")
			})

			if err := cs.Close(); err != nil {
				t.Fatal(err)
			}
			if err := rs.wait(t); err != nil {
				t.Fatalf("exit after stdin closed: %v\nstderr:\n%s", err, rs.stderr.String())
			}
			t.Run("every stdout line is a JSON-RPC message", func(t *testing.T) {
				if n := checkJSONRPCOnly(t, rs.stdout.String()); n < 200 {
					t.Fatalf("only %d lines recorded", n)
				}
			})
			t.Run("the token appears in no log and no stdout line", func(t *testing.T) {
				for name, out := range map[string]string{"stdout": rs.stdout.String(), "stderr": rs.stderr.String(), "authserver": auth.Logs()} {
					if strings.Contains(out, cred.Token) || strings.Contains(out, cred.Token[len(authn.TokenPrefix):]) {
						t.Errorf("the token appears in %s", name)
					}
				}
				mustContain(t, rs.stderr.String(), "mcp request", "login approved; credential saved", "mcpserver stopped")
			})
		})
	}
}

func maps(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{k: v}
	for key, val := range m {
		if key != k {
			out[key] = val
		}
	}
	return out
}

// TestProtocolVersions connects with mcp.CommandTransport on each protocol
// version editors speak, and the newest.
func TestProtocolVersions(t *testing.T) {
	bin := proctest.Build(t, "cmd/mcpserver")
	db := newDatabase(t, store.BackendSQLite)
	_, tok := db.userWithToken(t, "ada@example.com")
	for _, version := range []string{"2025-06-18", "2025-11-25", mcp.SupportedProtocolVersions()[0]} {
		t.Run("a "+version+" client lists the tools and gets object results", func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Env = serverEnv(t, db.url, "http://127.0.0.1:1", mcptools.EnvToken+"="+tok)
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "v-client", Version: "1"}, nil).
				Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, &mcp.ClientSessionOptions{ProtocolVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			if got := cs.InitializeResult().ProtocolVersion; got != version {
				t.Fatalf("negotiated %s", got)
			}
			tools, err := cs.ListTools(context.Background(), nil)
			if err != nil || len(tools.Tools) != 11 {
				t.Fatalf("tools/list: %v", err)
			}
			callOK(t, cs, "create_todo", map[string]any{"title": "on " + version}, nil)
			res := call(t, cs, "list_todos", map[string]any{})
			if _, ok := res.StructuredContent.(map[string]any); !ok || res.IsError {
				t.Fatalf("list_todos: %#v", res.StructuredContent)
			}
			if err := cs.Close(); err != nil {
				t.Fatal(err)
			}
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit code %d", code)
			}
		})
	}
}

func TestProcess(t *testing.T) {
	bin := proctest.Build(t, "cmd/mcpserver")
	db := newDatabase(t, store.BackendSQLite)

	start := func(t *testing.T, args ...string) (*exec.Cmd, io.WriteCloser, *proctest.Buffer) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = serverEnv(t, db.url, "http://127.0.0.1:1")
		var stderr proctest.Buffer
		cmd.Stderr = &stderr
		cmd.Stdout = io.Discard
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd, stdin, &stderr
	}
	waitFor := func(t *testing.T, what func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !what(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("timed out")
			}
		}
	}
	exited := func(t *testing.T, cmd *exec.Cmd) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("mcpserver did not exit")
			return nil
		}
	}

	t.Run("SIGTERM stops it cleanly", func(t *testing.T) {
		cmd, _, stderr := start(t)
		waitFor(t, func() bool { return strings.Contains(stderr.String(), "serving on stdio") })
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := exited(t, cmd); err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
		mustContain(t, stderr.String(), "mcpserver stopped")
	})

	t.Run("closing stdin stops it cleanly", func(t *testing.T) {
		cmd, stdin, stderr := start(t)
		waitFor(t, func() bool { return strings.Contains(stderr.String(), "serving on stdio") })
		stdin.Close()
		if err := exited(t, cmd); err != nil {
			t.Fatalf("exit: %v\n%s", err, stderr.String())
		}
	})

	t.Run("--log-file takes the logs, and stderr stays quiet", func(t *testing.T) {
		logPath := filepath.Join(t.TempDir(), "mcp.log")
		cmd, stdin, stderr := start(t, "serve", "--log-file", logPath)
		waitFor(t, func() bool { b, _ := os.ReadFile(logPath); return bytes.Contains(b, []byte("serving on stdio")) })
		stdin.Close()
		if err := exited(t, cmd); err != nil {
			t.Fatal(err)
		}
		if stderr.String() != "" {
			t.Fatalf("stderr: %s", stderr.String())
		}
		if info, err := os.Stat(logPath); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("log file: %v %v", err, info.Mode())
		}
	})

	t.Run("a line that is not JSON-RPC gets an error, and the session goes on", func(t *testing.T) {
		_, tok := db.userWithToken(t, "grace@example.com")
		cmd := exec.Command(bin)
		cmd.Env = serverEnv(t, db.url, "http://127.0.0.1:1", mcptools.EnvToken+"="+tok)
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		in := bufio.NewReader(stdout)
		send := func(line string) map[string]any {
			t.Helper()
			if _, err := io.WriteString(stdin, line+"\n"); err != nil {
				t.Fatal(err)
			}
			b, err := in.ReadBytes('\n')
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("reply %q: %v", b, err)
			}
			return m
		}
		init := send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
		if init["result"] == nil {
			t.Fatalf("initialize: %v", init)
		}
		if _, err := io.WriteString(stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
			t.Fatal(err)
		}
		if r := send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{"extra":1}}}`); r["result"].(map[string]any)["isError"] != true {
			t.Fatalf("whoami with an unknown field: %v", r)
		}
		if r := send(`{"jsonrpc":"2.0","id":3,"method":"no/such/method"}`); r["error"] == nil {
			t.Fatalf("unknown method: %v", r)
		}
		if r := send(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"whoami"}}`); r["result"].(map[string]any)["isError"] == true {
			t.Fatalf("whoami: %v", r)
		}
	})
}

func TestConfigCommand(t *testing.T) {
	bin := proctest.Build(t, "cmd/mcpserver")
	dataDir := t.TempDir()
	for _, tt := range []struct {
		editor, topKey string
	}{
		{"cursor", "mcpServers"},
		{"claude", "mcpServers"},
		{"vscode", "servers"},
	} {
		t.Run("config "+tt.editor+" prints JSON to paste, with the binary's absolute path", func(t *testing.T) {
			cmd := exec.Command(bin, "config", tt.editor)
			cmd.Env = proctest.CleanEnv("TODO_MCP_DATA_DIR="+dataDir, "DATABASE_URL=postgres://app:pw-secret@db.example.com/todo")
			cmd.Dir = t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			var doc map[string]map[string]struct {
				Command string            `json:"command"`
				Env     map[string]string `json:"env"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout.String())
			}
			entry := doc[tt.topKey]["todo-mcp"]
			if entry.Command != bin || !filepath.IsAbs(entry.Command) {
				t.Fatalf("command %q, want %q", entry.Command, bin)
			}
			if entry.Env["DATABASE_URL"] != "<your DATABASE_URL>" || entry.Env["TODO_MCP_DATA_DIR"] != dataDir {
				t.Fatalf("env %v", entry.Env)
			}
			if strings.Contains(stdout.String()+stderr.String(), "pw-secret") {
				t.Fatal("the database password was printed")
			}
			mustContain(t, stderr.String(), "Replace the placeholders", "DATABASE_URL", "restart")
		})
	}
	t.Run("config for an unknown editor exits 2 and names the editors", func(t *testing.T) {
		out, err := exec.Command(bin, "config", "zed").CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "cursor, claude or vscode") {
			t.Fatalf("%v\n%s", err, out)
		}
	})
}
