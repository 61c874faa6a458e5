package mcptools_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/kindetest"
	"github.com/todo-mcp/todo-mcp/internal/mcptools"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// TestSaveTokenKindeJWT checks save_token's JWT path against a Kinde-shaped
// server: only a token Kinde signed, for this application, unexpired, of a
// known user, is exchanged for a todo-mcp token.
func TestSaveTokenKindeJWT(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		k := kindetest.New(t)
		e := newEnv(t, backend, withVar("KINDE_ISSUER_URL", k.URL), withVar("KINDE_CLIENT_ID", k.ClientID),
			withVar("KINDE_CLIENT_SECRET", k.ClientSecret), withVar("JWT_SECRET", "q7Vx2mLp9RtZ4wNc8KjH3sBd6FyG1aUe5oPi0TlX"))
		cs := e.session()
		ku := kindetest.NewUser("ada@example.com", "Ada Lovelace")
		if _, err := e.st.UpsertUser(context.Background(), store.Identity{Subject: ku.Subject, Email: ku.Email, Name: ku.Name}); err != nil {
			t.Fatal(err)
		}
		stranger := kindetest.NewUser("nobody@example.com", "No Body")
		access := func(u kindetest.User, edit func(map[string]any), o kindetest.SignOptions) string {
			c := k.DefaultAccessTokenClaims(u, []string{"openid"})
			if edit != nil {
				edit(c)
			}
			return k.SignAccessToken(c, o)
		}

		t.Run("a Kinde access token issued to this application is exchanged for a saved todo-mcp token", func(t *testing.T) {
			raw := access(ku, nil, kindetest.SignOptions{})
			res := call(t, cs, "save_token", map[string]any{"token": raw})
			if res.IsError || strings.Contains(text(res), raw) {
				t.Fatalf("save_token: %s", text(res))
			}
			var who mcptools.WhoamiResult
			callOK(t, cs, "whoami", nil, &who)
			if who.User.Email != "ada@example.com" || who.SignedInVia != "file" {
				t.Fatalf("whoami %+v", who)
			}
			saved, _ := os.ReadFile(e.creds.Path())
			if strings.Contains(string(saved), raw) || !strings.Contains(string(saved), "tmcp_") {
				t.Fatalf("the file must hold a todo-mcp token, not the JWT: %s", saved)
			}
		})

		t.Run("a Kinde ID token for this application is accepted too", func(t *testing.T) {
			raw := k.SignIDToken(k.DefaultIDTokenClaims(ku, ""), kindetest.SignOptions{})
			callOK(t, cs, "save_token", map[string]any{"token": raw}, nil)
		})

		refused := []struct {
			name  string
			token string
			want  string
		}{
			{"an expired token", access(ku, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, kindetest.SignOptions{}), "expired"},
			{"a token from another issuer", access(ku, func(c map[string]any) { c["iss"] = "https://evil.example.com" }, kindetest.SignOptions{}), "another provider"},
			{"a token for another API", access(ku, func(c map[string]any) { c["aud"] = []string{"https://other.example.com"} }, kindetest.SignOptions{}), "another application"},
			{"a token issued to another client", access(ku, func(c map[string]any) { c["azp"] = "someone-else" }, kindetest.SignOptions{}), "another application"},
			{"a token signed with a key Kinde does not publish", access(ku, nil, kindetest.SignOptions{Key: kindetest.OtherKey(), KeyID: k.KeyID()}), "signature"},
			{"an unsigned token (alg none)", access(ku, nil, kindetest.SignOptions{Alg: "none"}), "refused"},
			{"a token signed with the client secret (HS256)", access(ku, nil, kindetest.SignOptions{Alg: "HS256"}), "refused"},
			{"a valid token of someone without an account", access(stranger, nil, kindetest.SignOptions{}), "no todo-mcp account yet"},
		}
		for _, tt := range refused {
			t.Run(tt.name+" is refused", func(t *testing.T) {
				got := callErr(t, cs, "save_token", map[string]any{"token": tt.token})
				mustContain(t, got, tt.want)
				if strings.Contains(got, tt.token) {
					t.Fatal("the token came back in the error")
				}
			})
		}
	})
}

func TestSaveTokenKindeUnreachable(t *testing.T) {
	e := newEnv(t, store.BackendSQLite, withVar("KINDE_ISSUER_URL", "http://127.0.0.1:1"), withVar("KINDE_CLIENT_ID", "id"),
		withVar("KINDE_CLIENT_SECRET", "secret"), withVar("JWT_SECRET", "q7Vx2mLp9RtZ4wNc8KjH3sBd6FyG1aUe5oPi0TlX"))
	got := callErr(t, e.session(), "save_token", map[string]any{"token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"})
	mustContain(t, got, "cannot be reached", "login")
}

func TestSaveTokenKindeAudience(t *testing.T) {
	const api = "https://api.todo-mcp.example"
	k := kindetest.New(t, kindetest.WithAudience(api))
	e := newEnv(t, store.BackendSQLite, withVar("KINDE_ISSUER_URL", k.URL), withVar("KINDE_CLIENT_ID", k.ClientID),
		withVar("KINDE_CLIENT_SECRET", k.ClientSecret), withVar("KINDE_AUDIENCE", api), withVar("JWT_SECRET", "q7Vx2mLp9RtZ4wNc8KjH3sBd6FyG1aUe5oPi0TlX"))
	cs := e.session()
	ku := kindetest.NewUser("ada@example.com", "Ada Lovelace")
	if _, err := e.st.UpsertUser(context.Background(), store.Identity{Subject: ku.Subject, Email: ku.Email, Name: ku.Name}); err != nil {
		t.Fatal(err)
	}
	withAud := func(aud []string) string {
		c := k.DefaultAccessTokenClaims(ku, nil)
		c["aud"] = aud
		return k.SignAccessToken(c, kindetest.SignOptions{})
	}
	t.Run("with KINDE_AUDIENCE, a token for that API is accepted", func(t *testing.T) {
		callOK(t, cs, "save_token", map[string]any{"token": withAud([]string{api})}, nil)
	})
	t.Run("with KINDE_AUDIENCE, a token without it is refused even from our client", func(t *testing.T) {
		mustContain(t, callErr(t, cs, "save_token", map[string]any{"token": withAud([]string{})}), "another application")
	})
}
