package mcptools_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/mcptools/mcptest"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// connectURLIn finds the connect page's URL in a text.
var connectURLIn = regexp.MustCompile(`http://127\.0\.0\.1:\d+/connect/[A-Za-z0-9_-]+`)

// loginPending calls login, which must answer pending, and returns its result.
func loginPending(t *testing.T, cs *mcp.ClientSession) mcptools.LoginResult {
	t.Helper()
	var res mcptools.LoginResult
	callOK(t, cs, "login", nil, &res)
	if res.Status != "pending" || res.URL == "" || res.UserCode == "" {
		t.Fatalf("login %+v", res)
	}
	return res
}

func TestLoginConnectFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, withAuthserver(), withLoginWait(700*time.Millisecond))
		ada := e.user("ada@example.com")

		t.Run("login answers pending with the page and the code, in the text too", func(t *testing.T) {
			cs := e.session()
			res := call(t, cs, "login", nil)
			var out mcptools.LoginResult
			callOK(t, cs, "login", nil, &out)
			if !strings.HasPrefix(out.URL, e.auth.URL+"/connect/") || !regexp.MustCompile(`^[A-Z0-9]{4}-[A-Z0-9]{4}$`).MatchString(out.UserCode) {
				t.Fatalf("login %+v", out)
			}
			mustContain(t, text(res), out.URL, out.UserCode, "approve")
		})

		t.Run("a second login continues the same request instead of starting another", func(t *testing.T) {
			cs := e.session()
			first, second := loginPending(t, cs), loginPending(t, cs)
			if first.URL != second.URL || first.UserCode != second.UserCode {
				t.Fatalf("first %+v\nsecond %+v", first, second)
			}
		})

		t.Run("once approved in the browser, the next tool call picks up the sign-in", func(t *testing.T) {
			e.creds.Delete()
			cs := e.session(clientTitle("Cursor"))
			pending := loginPending(t, cs)
			mustContain(t, callErr(t, cs, "list_todos", nil), "Sign-in is not finished", pending.URL, pending.UserCode)
			mcptest.ApproveInBrowser(t, e.auth, pending.URL, ada)
			var who mcptools.WhoamiResult
			callOK(t, cs, "whoami", nil, &who)
			if who.User.Email != "ada@example.com" || who.ClientName != "Cursor" || who.SignedInVia != "file" {
				t.Fatalf("whoami %+v", who)
			}
			info, err := os.Stat(e.creds.Path())
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("credential file: %v, mode %v", err, info.Mode())
			}
			var again mcptools.LoginResult
			callOK(t, cs, "login", nil, &again)
			if again.Status != "already_signed_in" || again.User.Email != "ada@example.com" {
				t.Fatalf("login again %+v", again)
			}
		})

		t.Run("login completes by itself when the approval comes during the wait, with progress", func(t *testing.T) {
			e.creds.Delete()
			var (
				progress progressRecorder
				once     sync.Once
			)
			cs := e.session(clientOptions(&mcp.ClientOptions{ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
				progress.handler(ctx, req)
				if u := connectURLIn.FindString(req.Params.Message); u != "" {
					once.Do(func() { go mcptest.ApproveInBrowser(t, e.auth, u, ada) })
				}
			}}))
			params := &mcp.CallToolParams{Name: "login", Arguments: map[string]any{}}
			params.SetProgressToken("login-1")
			res, err := cs.CallTool(context.Background(), params)
			if err != nil || res.IsError {
				t.Fatalf("login: %v %s", err, text(res))
			}
			mustContain(t, text(res), "Signed in to todo-mcp as ada <ada@example.com>")
			if msgs := progress.all(); len(msgs) == 0 || !strings.Contains(msgs[0], "Waiting for approval") {
				t.Fatalf("progress %q", msgs)
			}
		})

		t.Run("a denied request is reported, and login starts afresh", func(t *testing.T) {
			e.creds.Delete()
			cs := e.session()
			pending := loginPending(t, cs)
			mcptest.DenyInBrowser(t, e.auth, pending.URL, ada)
			mustContain(t, callErr(t, cs, "login", nil), "denied", "call login again")
			if fresh := loginPending(t, cs); fresh.URL == pending.URL {
				t.Fatalf("the denied request was reused")
			}
		})

		t.Run("a request that vanished from the database says to start again", func(t *testing.T) {
			e.creds.Delete()
			cs := e.session()
			loginPending(t, cs)
			if _, err := e.st.DeleteExpiredConnectRequests(context.Background(), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			mustContain(t, callErr(t, cs, "whoami", nil), "no longer exists", "Call login again")
		})
	})
}

func TestLoginExpiredRequest(t *testing.T) {
	e := newEnv(t, store.BackendSQLite, withAuthserver(), withLoginWait(300*time.Millisecond))
	// A database whose clock is past every new request's expiry: the
	// request login creates is expired by the time it is checked.
	late, err := store.Open(context.Background(), store.Options{URL: e.dbURL, Now: func() time.Time { return time.Now().Add(authn.ConnectLifetime + time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	le := *e
	le.st = late
	mustContain(t, callErr(t, le.session(), "login", nil), "expired before it was approved", "Call login again")
}

func TestLoginWithoutAuthserver(t *testing.T) {
	e := newEnv(t, store.BackendSQLite)
	cs := e.session()
	got := callErr(t, cs, "login", nil)
	mustContain(t, got, "http://127.0.0.1:1", "is not answering", "make dev", "bin/authserver", "call login again")
}

func TestURLElicitation(t *testing.T) {
	for _, version := range []string{"2025-11-25", "2026-07-28"} {
		t.Run("on a "+version+" session", func(t *testing.T) {
			e := newEnv(t, store.BackendSQLite, withAuthserver(), withLoginWait(3*time.Second))
			ada := e.user("ada@example.com")
			urlCaps := &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}}

			t.Run("the client is asked to open the page, and login completes once approved", func(t *testing.T) {
				e.creds.Delete()
				var asked []*mcp.ElicitParams
				cs := e.session(protocol(version), clientOptions(&mcp.ClientOptions{
					Capabilities: urlCaps,
					ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
						asked = append(asked, req.Params)
						mcptest.ApproveInBrowser(t, e.auth, req.Params.URL, ada)
						return &mcp.ElicitResult{Action: "accept"}, nil
					},
				}))
				var res mcptools.LoginResult
				callOK(t, cs, "login", nil, &res)
				if res.Status != "signed_in" || res.User.Email != "ada@example.com" {
					t.Fatalf("login %+v", res)
				}
				if len(asked) != 1 || asked[0].Mode != "url" || !strings.HasPrefix(asked[0].URL, e.auth.URL+"/connect/") || !strings.Contains(asked[0].Message, "code") {
					t.Fatalf("elicitations %+v", asked)
				}
			})

			t.Run("when the user declines, login answers pending with the link in the text", func(t *testing.T) {
				e.creds.Delete()
				cs := e.session(protocol(version), clientOptions(&mcp.ClientOptions{
					Capabilities: urlCaps,
					ElicitationHandler: func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
						return &mcp.ElicitResult{Action: "decline"}, nil
					},
				}))
				res := call(t, cs, "login", nil)
				if res.IsError || !connectURLIn.MatchString(text(res)) {
					t.Fatalf("login: %s", text(res))
				}
				mustContain(t, text(res), "The page was not opened")
			})

			t.Run("upgrade_plan asks the client to open the upgrade page", func(t *testing.T) {
				e.signIn("grace@example.com")
				var opened string
				cs := e.session(protocol(version), clientOptions(&mcp.ClientOptions{
					Capabilities: urlCaps,
					ElicitationHandler: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
						opened = req.Params.URL
						return &mcp.ElicitResult{Action: "accept"}, nil
					},
				}))
				var res mcptools.UpgradePlanResult
				callOK(t, cs, "upgrade_plan", nil, &res)
				if opened != e.auth.URL+"/billing/upgrade" || res.UpgradeURL != opened {
					t.Fatalf("opened %q, result %+v", opened, res)
				}
				mustContain(t, res.Message, "was opened")
			})
		})
	}
}

func TestCredentialStates(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		cs := e.session()
		ctx := context.Background()

		for _, tool := range []string{"whoami", "list_todos", "get_todo", "create_todo", "update_todo", "delete_todo", "refresh_billing_status", "upgrade_plan"} {
			t.Run("not signed in, "+tool+" says to call login", func(t *testing.T) {
				args := map[string]any{}
				switch tool {
				case "create_todo":
					args = map[string]any{"title": "x"}
				case "get_todo", "delete_todo":
					args = map[string]any{"number": 1}
				case "update_todo":
					args = map[string]any{"number": 1, "title": "x"}
				}
				got := callErr(t, cs, tool, args)
				mustContain(t, got, "Not signed in to todo-mcp", "login")
			})
		}

		u := e.user("ada@example.com")
		dead := []struct {
			name string
			make func() string
			want string
		}{
			{"a revoked token says it was revoked and to log in again", func() string {
				tok := e.token(u)
				if err := e.st.RevokeAPITokenByHash(ctx, authn.HashToken(tok)); err != nil {
					t.Fatal(err)
				}
				return tok
			}, "was revoked"},
			{"an expired token says it expired and to log in again", func() string {
				tok := authn.NewToken()
				if _, err := e.st.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, ClientName: "old", Hash: tok.Hash, Prefix: tok.Prefix, ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
					t.Fatal(err)
				}
				return tok.Plain
			}, "has expired"},
			{"a token this database never issued is not known", func() string { return authn.NewToken().Plain }, "is not known"},
			{"something else in the file is not a token", func() string { return "hello" }, "is not a todo-mcp token"},
		}
		for _, tt := range dead {
			t.Run(tt.name, func(t *testing.T) {
				if err := e.creds.Save(tt.make()); err != nil {
					t.Fatal(err)
				}
				mustContain(t, callErr(t, cs, "list_todos", nil), tt.want, "Call login again")
			})
		}

		t.Run("an unreadable credential file says to log in again", func(t *testing.T) {
			if err := os.WriteFile(e.creds.Path(), []byte("{not json"), 0o600); err != nil {
				t.Fatal(err)
			}
			mustContain(t, callErr(t, cs, "whoami", nil), "cannot be read", "Call login")
		})

		t.Run("logout revokes the token and deletes the file; then calls say not signed in", func(t *testing.T) {
			tok := e.token(u)
			if err := e.creds.Save(tok); err != nil {
				t.Fatal(err)
			}
			var out mcptools.LogoutResult
			callOK(t, cs, "logout", nil, &out)
			if out.Status != "signed_out" {
				t.Fatalf("logout %+v", out)
			}
			if _, err := os.Stat(e.creds.Path()); !os.IsNotExist(err) {
				t.Fatalf("credential file still there: %v", err)
			}
			if _, _, err := e.st.AuthenticateToken(ctx, authn.HashToken(tok)); err != store.ErrRevoked {
				t.Fatalf("token after logout: %v", err)
			}
			mustContain(t, callErr(t, cs, "list_todos", nil), "Not signed in")
			callOK(t, cs, "logout", nil, &out)
			if out.Status != "not_signed_in" {
				t.Fatalf("second logout %+v", out)
			}
		})

		t.Run("save_token checks a token, saves it and never shows it back", func(t *testing.T) {
			tok := e.token(u)
			res := call(t, cs, "save_token", map[string]any{"token": tok})
			if res.IsError {
				t.Fatalf("save_token: %s", text(res))
			}
			b, _ := res.StructuredContent.(map[string]any)
			if strings.Contains(text(res), tok) || strings.Contains(string(mustJSON(t, b)), tok[5:]) {
				t.Fatalf("the token came back: %s", text(res))
			}
			mustContain(t, text(res), "Signed in to todo-mcp as ada <ada@example.com>")
			callOK(t, cs, "whoami", nil, nil)
			saved, _ := os.ReadFile(e.creds.Path())
			if !strings.Contains(string(saved), tok) {
				t.Fatal("the token was not saved")
			}
		})

		for _, tt := range []struct {
			name, token string
			want        []string
		}{
			{"save_token refuses a token that does not work", authn.NewToken().Plain, []string{"does not work", "call login"}},
			{"save_token refuses text that is no token", "my password is hunter2", []string{"not a todo-mcp token", "login"}},
			{"save_token refuses a JWT when no identity provider is configured", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrcF8xIn0.c2lnbmF0dXJl", []string{"no identity provider configured", "KINDE_ISSUER_URL", "login"}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got := callErr(t, cs, "save_token", map[string]any{"token": tt.token})
				mustContain(t, got, tt.want...)
				if strings.Contains(got, tt.token) {
					t.Fatalf("the token came back: %s", got)
				}
			})
		}
	})
}

func TestEnvironmentToken(t *testing.T) {
	e := newEnv(t, store.BackendSQLite)
	u := e.user("ada@example.com")
	fileUser := e.signIn("grace@example.com")
	tok := e.token(u)
	ee := *e
	ee.creds = mcptools.NewCredentials(e.configDir, tok)
	cs := ee.session()

	t.Run("TODO_MCP_TOKEN wins over the credential file", func(t *testing.T) {
		var who mcptools.WhoamiResult
		callOK(t, cs, "whoami", nil, &who)
		if who.User.Email != "ada@example.com" || who.SignedInVia != "environment" {
			t.Fatalf("whoami %+v (file user %s)", who, fileUser.Email)
		}
	})
	t.Run("login with a working TODO_MCP_TOKEN says already signed in", func(t *testing.T) {
		var res mcptools.LoginResult
		callOK(t, cs, "login", nil, &res)
		if res.Status != "already_signed_in" {
			t.Fatalf("login %+v", res)
		}
	})
	t.Run("save_token cannot replace TODO_MCP_TOKEN and says where to change it", func(t *testing.T) {
		mustContain(t, callErr(t, cs, "save_token", map[string]any{"token": e.token(u)}), "TODO_MCP_TOKEN", "restart the editor")
	})
	t.Run("logout revokes TODO_MCP_TOKEN and says to remove it; the file stays", func(t *testing.T) {
		mustContain(t, text(call(t, cs, "logout", nil)), "Remove TODO_MCP_TOKEN")
		if _, err := os.Stat(filepath.Join(e.configDir, "credentials.json")); err != nil {
			t.Fatalf("the file of another sign-in was removed: %v", err)
		}
	})
	t.Run("a revoked TODO_MCP_TOKEN says to replace it in the client configuration", func(t *testing.T) {
		mustContain(t, callErr(t, cs, "list_todos", nil), "TODO_MCP_TOKEN", "was revoked", "restart the editor")
		mustContain(t, callErr(t, cs, "login", nil), "login cannot replace it")
	})
}
