package main_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/proctest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

// prodSecret looks like the output of openssl rand -base64 32.
const prodSecret = "q3Vt9Lx2ZpR7mK1cW8bN4yHs6JdF0gTa5Ue+Qo/ArIk="

func TestBinaries(t *testing.T) {
	auth, mcp := proctest.Build(t, "cmd/authserver"), proctest.Build(t, "cmd/mcpserver")

	for _, bin := range []string{auth, mcp} {
		t.Run(filepath.Base(bin)+" --help prints the usage and exits 0", func(t *testing.T) {
			out, err := exec.Command(bin, "--help").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Usage:") || !strings.Contains(string(out), "migrate") {
				t.Fatalf("%v\n%s", err, out)
			}
		})
		t.Run(filepath.Base(bin)+" refuses an unknown command", func(t *testing.T) {
			cmd := exec.Command(bin, "frobnicate")
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), `unknown command "frobnicate"`) {
				t.Fatalf("exit %d\n%s", cmd.ProcessState.ExitCode(), out)
			}
		})
	}

	t.Run("production without its settings refuses to start, one line per problem", func(t *testing.T) {
		cmd := exec.Command(auth)
		cmd.Env = proctest.CleanEnv("APP_ENV=production", "TODO_MCP_DATA_DIR="+t.TempDir())
		cmd.Dir = t.TempDir()
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 2 {
			t.Fatalf("exit %d\n%s", cmd.ProcessState.ExitCode(), out)
		}
		for _, want := range []string{"JWT_SECRET must be set in production", "PUBLIC_URL must be set in production", "KINDE_ISSUER_URL"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("missing %q in:\n%s", want, out)
			}
		}
	})

	for _, backend := range storetest.Backends {
		t.Run("serves on "+backend+", migrates, and stops cleanly on SIGTERM", func(t *testing.T) {
			dbURL := storetest.URL(t, backend)
			addr := proctest.FreeAddr(t)
			dataDir := t.TempDir()
			var stderr bytes.Buffer
			cmd := exec.Command(auth, "serve")
			cmd.Env = proctest.CleanEnv("DATABASE_URL="+dbURL, "LISTEN_ADDR="+addr, "TODO_MCP_DATA_DIR="+dataDir)
			cmd.Dir = t.TempDir()
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			deadline := time.Now().Add(20 * time.Second)
			for {
				res, err := http.Get("http://" + addr + "/healthz")
				if err == nil {
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						t.Fatalf("healthz %d", res.StatusCode)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("authserver did not answer: %v\n%s", err, stderr.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
			}
			logs := stderr.String()
			if !strings.Contains(logs, "applied migration") || !strings.Contains(logs, "database=\""+backend) {
				t.Fatalf("logs do not show the migration on %s:\n%s", backend, logs)
			}
			if backend == store.BackendSQLite {
				if _, err := os.Stat(strings.TrimPrefix(dbURL, "sqlite:")); err != nil {
					t.Fatalf("sqlite file: %v", err)
				}
			}
			if _, err := os.Stat(filepath.Join(dataDir, "secret.key")); err != nil {
				t.Fatalf("development secret not generated: %v", err)
			}
			// The schema is there for the mcpserver too.
			s, err := store.Open(context.Background(), store.Options{URL: dbURL})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			applied, known, err := s.SchemaVersion(context.Background())
			if err != nil || applied != known {
				t.Fatalf("schema %d of %d: %v", applied, known, err)
			}
		})
	}

	t.Run("migrate applies the schema and exits 0", func(t *testing.T) {
		dbURL := storetest.URL(t, store.BackendSQLite)
		cmd := exec.Command(mcp, "migrate")
		cmd.Env = proctest.CleanEnv("DATABASE_URL="+dbURL, "TODO_MCP_DATA_DIR="+t.TempDir())
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "database is up to date") {
			t.Fatalf("%v\n%s", err, out)
		}
	})

	t.Run("production refuses an old schema and says how to migrate", func(t *testing.T) {
		dbURL := storetest.URL(t, store.BackendSQLite)
		cmd := exec.Command(auth, "serve")
		cmd.Env = proctest.CleanEnv("APP_ENV=production", "DATABASE_URL="+dbURL, "TODO_MCP_DATA_DIR="+t.TempDir(),
			"PUBLIC_URL=https://todo.example.com", "JWT_SECRET="+prodSecret, "LISTEN_ADDR="+proctest.FreeAddr(t),
			"KINDE_ISSUER_URL=https://x.kinde.com", "KINDE_CLIENT_ID=id", "KINDE_CLIENT_SECRET=secret")
		cmd.Dir = t.TempDir()
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "run `authserver migrate` first") {
			t.Fatalf("exit %d\n%s", cmd.ProcessState.ExitCode(), out)
		}
		if strings.Contains(string(out), prodSecret) || strings.Contains(string(out), "secret\"") {
			t.Fatalf("a secret reached the logs:\n%s", out)
		}
	})

	t.Run("token create prints a working token on stdout, and token revoke kills it", func(t *testing.T) {
		dbURL := storetest.URL(t, store.BackendSQLite)
		env := proctest.CleanEnv("DATABASE_URL="+dbURL, "TODO_MCP_DATA_DIR="+t.TempDir())
		cmd := exec.Command(auth, "token", "create", "--email", "ops@example.com", "--client", "CI runner")
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v\n%s", err, stderr.String())
		}
		plain := strings.TrimSpace(stdout.String())
		if !authn.LooksLikeToken(plain) || strings.Contains(stderr.String(), plain) {
			t.Fatalf("stdout %q; the token must be on stdout only", stdout.String())
		}
		s, err := store.Open(context.Background(), store.Options{URL: dbURL})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tok, u, err := s.AuthenticateToken(context.Background(), authn.HashToken(plain))
		if err != nil || u.Email != "ops@example.com" || tok.ClientName != "CI runner" {
			t.Fatalf("token %+v user %+v: %v", tok, u, err)
		}
		revoke := exec.Command(auth, "token", "revoke", "--token", "-")
		revoke.Env = env
		revoke.Stdin = strings.NewReader(plain + "\n")
		if out, err := revoke.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if _, _, err := s.AuthenticateToken(context.Background(), authn.HashToken(plain)); !errors.Is(err, store.ErrRevoked) {
			t.Fatalf("after revoke: %v", err)
		}
		run := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(auth, append([]string{"token"}, args...)...)
			cmd.Env = env
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Run(); err != nil {
				t.Fatalf("token %v: %v\n%s", args, err, errOut.String())
			}
			return strings.TrimSpace(out.String())
		}
		laptop := run("create", "--email", "ops@example.com", "--client", "laptop")
		server := run("create", "--email", "ops@example.com", "--client", "server")
		alive := func(plain string) bool {
			_, _, err := s.AuthenticateToken(context.Background(), authn.HashToken(plain))
			return err == nil
		}
		run("revoke", "--email", "ops@example.com", "--client", "laptop")
		if alive(laptop) || !alive(server) {
			t.Fatalf("after revoking the laptop's: laptop alive %v, server alive %v", alive(laptop), alive(server))
		}
		run("revoke", "--email", "ops@example.com")
		if alive(server) {
			t.Fatal("revoke --email left a token alive")
		}
		bad := exec.Command(auth, "token", "create", "--email", "not an email")
		bad.Env = env
		out, _ := bad.CombinedOutput()
		if bad.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "--email must be an email address") {
			t.Fatalf("exit %d\n%s", bad.ProcessState.ExitCode(), out)
		}
	})
}
