package web_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
	"github.com/todo-mcp/todo-mcp/internal/web"
)

func TestHealthz(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend, nil)
			t.Run("answers ok while the database does", func(t *testing.T) {
				res := h.get("/healthz")
				if res.status != http.StatusOK || !strings.Contains(res.body, `"status":"ok"`) || !strings.Contains(res.body, `"database":"`+backend+`"`) {
					t.Fatalf("%d %s", res.status, res.body)
				}
			})
			t.Run("answers 503 once the database is gone", func(t *testing.T) {
				h.store.Close()
				res := h.get("/healthz")
				if res.status != http.StatusServiceUnavailable || !strings.Contains(res.body, `"status":"unavailable"`) {
					t.Fatalf("%d %s", res.status, res.body)
				}
			})
		})
	}
}

func TestDevelopmentSignIn(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend, nil)
			t.Run("the signed-out home offers sign-in and sign-up under a development banner", func(t *testing.T) {
				res := h.get("/")
				mustContain(t, res.body, "Development sign-in.", `href="/login"`, `href="/signup"`)
			})
			t.Run("a form without its CSRF token is refused and signs nobody in", func(t *testing.T) {
				res := h.post("/login/dev", url.Values{"email": {"eve@example.com"}, "name": {"Eve"}})
				if res.status != http.StatusForbidden {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, h.get("/").body, `href="/login"`)
			})
			t.Run("a cross-site form post is refused", func(t *testing.T) {
				form := h.get("/login")
				req, _ := http.NewRequest(http.MethodPost, h.url+"/login/dev", strings.NewReader(url.Values{"csrf_token": {h.csrf(form)}, "email": {"eve@example.com"}, "name": {"Eve"}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Sec-Fetch-Site", "cross-site")
				if res := h.do(req); res.status != http.StatusForbidden {
					t.Fatalf("status %d", res.status)
				}
			})
			t.Run("a bad email is refused with a clear message, keeping what was typed", func(t *testing.T) {
				form := h.get("/login")
				res := h.post("/login/dev", url.Values{"csrf_token": {h.csrf(form)}, "email": {"not-an-email"}, "name": {"Ada"}})
				if res.status != http.StatusUnprocessableEntity {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, res.body, "Enter an email address", `value="Ada"`)
			})
			t.Run("signing in shows the account, with a name holding a script tag escaped", func(t *testing.T) {
				before := sessionCookie(t, h)
				res := h.devSignIn("ada@example.com", `Ada <script>alert(1)</script>`)
				if after := sessionCookie(t, h); after == "" || after == before {
					t.Fatalf("the session token was not renewed at sign-in (%q → %q)", before, after)
				}
				if res.status != http.StatusOK || res.url.Path != "/" {
					t.Fatalf("status %d at %s", res.status, res.url)
				}
				mustContain(t, res.body, "Hello, Ada &lt;script&gt;alert(1)&lt;/script&gt;", "ada@example.com", "0</strong> of <strong>5</strong> todos",
					"Add to Cursor", "/opt/todo-mcp/bin/mcpserver", "claude_desktop_config.json")
				mustNotContain(t, res.body, "<script>")
				u, err := h.store.GetUserBySubject(t.Context(), "dev:ada@example.com")
				if err != nil || u.Name != "Ada <script>alert(1)</script>" {
					t.Fatalf("user %+v, %v", u, err)
				}
			})
			t.Run("pages carry a strict content security policy and no-framing headers", func(t *testing.T) {
				res := h.get("/")
				csp := res.header.Get("Content-Security-Policy")
				if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
					t.Fatalf("CSP %q", csp)
				}
				if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("Referrer-Policy") == "" || res.header.Get("X-Frame-Options") != "DENY" {
					t.Fatalf("headers %v", res.header)
				}
				if cc := res.header.Get("Cache-Control"); cc != "no-store" {
					t.Fatalf("cache-control %q", cc)
				}
			})
			t.Run("the session cookie is HttpOnly and SameSite=Lax", func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, h.url+"/login", nil)
				fresh := &http.Client{}
				res, err := fresh.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				var found bool
				for _, c := range res.Cookies() {
					if c.Name == "todo_mcp_session" {
						found = true
						if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
							t.Fatalf("cookie %+v", c)
						}
					}
				}
				if !found {
					t.Fatal("no session cookie")
				}
			})
			t.Run("the session survives an authserver restart", func(t *testing.T) {
				h.restart()
				mustContain(t, h.get("/").body, "Hello, Ada")
			})
			t.Run("signing out ends the session, and the old cookie no longer signs in", func(t *testing.T) {
				u, _ := url.Parse(h.url)
				old := h.client.Jar.Cookies(u)
				home := h.get("/")
				res := h.post("/logout", url.Values{"csrf_token": {h.csrf(home)}})
				if res.status != http.StatusOK || res.url.Path != "/" {
					t.Fatalf("status %d at %s", res.status, res.url)
				}
				mustContain(t, res.body, `href="/login"`)
				mustNotContain(t, res.body, "Hello, Ada")
				h.client.Jar.SetCookies(u, old)
				mustNotContain(t, h.get("/").body, "Hello, Ada")
			})
			t.Run("a page that needs sign-in sends there and back", func(t *testing.T) {
				res := h.get("/billing")
				if res.url.Path != "/login" || res.url.Query().Get("return_to") != "/billing" {
					t.Fatalf("landed on %s", res.url)
				}
				form := h.csrf(res)
				res = h.post("/login/dev", url.Values{"csrf_token": {form}, "email": {"ada@example.com"}, "name": {"Ada"}, "return_to": {"/billing"}})
				if res.url.Path != "/billing" {
					t.Fatalf("landed on %s", res.url)
				}
				mustContain(t, res.body, "Your plan")
			})
			t.Run("return_to never leaves the site", func(t *testing.T) {
				for _, evil := range []string{"https://evil.example/", "//evil.example/", `/\evil.example`, "/\t/evil.example/", "/\n/evil.example"} {
					h.post("/logout", url.Values{"csrf_token": {h.csrf(h.get("/"))}})
					form := h.get("/login")
					res := h.post("/login/dev", url.Values{"csrf_token": {h.csrf(form)}, "email": {"ada@example.com"}, "name": {"Ada"}, "return_to": {evil}})
					if res.url.Host != strings.TrimPrefix(h.url, "http://") || res.url.Path != "/" {
						t.Fatalf("return_to %q led to %s", evil, res.url)
					}
				}
			})
		})
	}
}

func TestDevelopmentSignInAnswersLoopbackOnly(t *testing.T) {
	h := newHarness(t, store.BackendSQLite, nil)
	for _, path := range []string{"/login", "/signup"} {
		t.Run(path+" from a non-loopback address is refused", func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.RemoteAddr = "203.0.113.9:51000"
			h.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "only answers on this machine") {
				t.Fatalf("status %d:\n%s", rec.Code, rec.Body.String())
			}
		})
	}
	for name, mutate := range map[string]func(*http.Request){
		"through a proxy on this machine (X-Forwarded-For)": func(r *http.Request) { r.Header.Set("X-Forwarded-For", "203.0.113.9") },
		"through a standard Forwarded header":               func(r *http.Request) { r.Header.Set("Forwarded", "for=203.0.113.9") },
		"under another host name (DNS rebinding)":           func(r *http.Request) { r.Host = "rebind.attacker.example" },
	} {
		t.Run("a loopback request "+name+" is refused", func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/login", nil)
			req.RemoteAddr = "127.0.0.1:51000"
			req.Host = strings.TrimPrefix(h.url, "http://")
			mutate(req)
			h.handler.ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden {
				t.Fatalf("status %d", rec.Code)
			}
		})
	}
	t.Run("a plain loopback request to the public host is served", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/login", nil)
		req.RemoteAddr = "127.0.0.1:51000"
		req.Host = strings.TrimPrefix(h.url, "http://")
		h.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	})
	t.Run("the form post from a non-loopback address is refused too", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/login/dev", strings.NewReader("email=a%40b.c&name=A"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "203.0.113.9:51000"
		h.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("status %d", rec.Code)
		}
		if _, err := h.store.GetUserBySubject(t.Context(), "dev:a@b.c"); err == nil {
			t.Fatal("a user was created")
		}
	})
}

func TestTokens(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend, nil)
			h.devSignIn("ada@example.com", "Ada")
			var plain string
			t.Run("a created token is shown once and works", func(t *testing.T) {
				res := h.post("/tokens", url.Values{"csrf_token": {h.csrf(h.get("/"))}, "client_name": {"Cursor on my laptop"}})
				if res.status != http.StatusOK {
					t.Fatalf("status %d: %s", res.status, res.body)
				}
				plain = tokenOnPage(t, res.body)
				if !authn.LooksLikeToken(plain) {
					t.Fatalf("token %q", plain)
				}
				if _, u, err := h.store.AuthenticateToken(t.Context(), authn.HashToken(plain)); err != nil || u.Email != "ada@example.com" {
					t.Fatalf("authenticate: %v", err)
				}
				home := h.get("/")
				mustContain(t, home.body, "Cursor on my laptop", plain[:len(authn.TokenPrefix)+6]+"…")
				mustNotContain(t, home.body, plain)
			})
			t.Run("a token without a name is refused", func(t *testing.T) {
				res := h.post("/tokens", url.Values{"csrf_token": {h.csrf(h.get("/"))}, "client_name": {"  "}})
				if res.status != http.StatusUnprocessableEntity {
					t.Fatalf("status %d", res.status)
				}
			})
			t.Run("another user cannot revoke it", func(t *testing.T) {
				list, _ := h.store.ListAPITokens(t.Context(), mustUser(t, h, "dev:ada@example.com").ID)
				eve := newHarnessClient(h)
				eve.devSignIn("eve@example.com", "Eve")
				res := eve.post("/tokens/"+itoa(list[0].ID)+"/revoke", url.Values{"csrf_token": {eve.csrf(eve.get("/"))}})
				if res.status != http.StatusNotFound {
					t.Fatalf("status %d", res.status)
				}
				if _, _, err := h.store.AuthenticateToken(t.Context(), authn.HashToken(plain)); err != nil {
					t.Fatalf("token dead after eve's attempt: %v", err)
				}
			})
			t.Run("revoking it stops it at once", func(t *testing.T) {
				list, _ := h.store.ListAPITokens(t.Context(), mustUser(t, h, "dev:ada@example.com").ID)
				res := h.post("/tokens/"+itoa(list[0].ID)+"/revoke", url.Values{"csrf_token": {h.csrf(h.get("/"))}})
				mustContain(t, res.body, "Token revoked")
				if _, _, err := h.store.AuthenticateToken(t.Context(), authn.HashToken(plain)); err == nil {
					t.Fatal("revoked token still works")
				}
			})
			t.Run("no token reaches the logs", func(t *testing.T) {
				mustNotContain(t, h.logs.String(), plain, authn.TokenPrefix)
			})
		})
	}
}

func TestConnectFlow(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend, nil)
			ctx := t.Context()
			// What the MCP server does when the user calls `login`.
			newRequest := func(t *testing.T, ttl time.Duration) authn.ConnectRequest {
				t.Helper()
				c := authn.NewConnectRequest()
				if _, err := h.store.CreateConnectRequest(ctx, store.NewConnectRequest{ID: c.ID, SecretHash: c.SecretHash, UserCode: c.UserCode, ClientName: "Cursor", ExpiresAt: time.Now().Add(ttl)}); err != nil {
					t.Fatal(err)
				}
				return c
			}
			consume := func(c authn.ConnectRequest) error {
				tok := authn.NewToken()
				_, err := h.store.ConsumeConnectRequest(ctx, c.ID, c.SecretHash, store.NewAPIToken{Hash: tok.Hash, Prefix: tok.Prefix, ExpiresAt: time.Now().Add(time.Hour)})
				return err
			}

			req := newRequest(t, authn.ConnectLifetime)
			t.Run("a signed-out visitor is sent to sign in and comes back to the request", func(t *testing.T) {
				res := h.get("/connect/" + req.ID)
				if res.url.Path != "/login" || res.url.Query().Get("return_to") != "/connect/"+req.ID {
					t.Fatalf("landed on %s", res.url)
				}
				res = h.post("/login/dev", url.Values{"csrf_token": {h.csrf(res)}, "email": {"ada@example.com"}, "name": {"Ada"}, "return_to": {"/connect/" + req.ID}})
				if res.url.Path != "/connect/"+req.ID {
					t.Fatalf("landed on %s", res.url)
				}
				mustContain(t, res.body, "Connect Cursor?", req.UserCode, "ada@example.com", "Approve", "Deny")
			})
			t.Run("approving without the CSRF token changes nothing", func(t *testing.T) {
				res := h.post("/connect/"+req.ID+"/approve", url.Values{})
				if res.status != http.StatusForbidden {
					t.Fatalf("status %d", res.status)
				}
				c, _ := h.store.GetConnectRequest(ctx, req.ID)
				if c.State(time.Now()) != store.ConnectPending {
					t.Fatalf("state %s", c.State(time.Now()))
				}
			})
			t.Run("approving lets the client trade its secret for a token, once", func(t *testing.T) {
				page := h.get("/connect/" + req.ID)
				res := h.post("/connect/"+req.ID+"/approve", url.Values{"csrf_token": {h.csrf(page)}})
				if res.status != http.StatusOK {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, res.body, "Connected")
				if err := consume(req); err != nil {
					t.Fatalf("consume: %v", err)
				}
				if err := consume(req); err == nil {
					t.Fatal("consumed twice")
				}
				mustContain(t, h.get("/connect/"+req.ID).body, "Already connected")
			})
			t.Run("approving an already used request says so", func(t *testing.T) {
				res := h.post("/connect/"+req.ID+"/approve", url.Values{"csrf_token": {h.csrf(h.get("/"))}})
				if res.status != http.StatusConflict {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, res.body, "Already connected")
			})
			t.Run("denying leaves the client without a token", func(t *testing.T) {
				denied := newRequest(t, authn.ConnectLifetime)
				res := h.post("/connect/"+denied.ID+"/deny", url.Values{"csrf_token": {h.csrf(h.get("/connect/" + denied.ID))}})
				mustContain(t, res.body, "Denied")
				if err := consume(denied); err == nil {
					t.Fatal("a denied request gave a token")
				}
				res = h.post("/connect/"+denied.ID+"/approve", url.Values{"csrf_token": {h.csrf(h.get("/"))}})
				if res.status != http.StatusConflict {
					t.Fatalf("approve after deny: %d", res.status)
				}
			})
			t.Run("an expired request says to start again", func(t *testing.T) {
				expired := newRequest(t, time.Millisecond)
				time.Sleep(5 * time.Millisecond)
				mustContain(t, h.get("/connect/"+expired.ID).body, "This request has expired")
				res := h.post("/connect/"+expired.ID+"/approve", url.Values{"csrf_token": {h.csrf(h.get("/"))}})
				if res.status != http.StatusConflict {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, res.body, "This request has expired")
			})
			t.Run("an unknown request is a clear 404", func(t *testing.T) {
				res := h.get("/connect/nope")
				if res.status != http.StatusNotFound {
					t.Fatalf("status %d", res.status)
				}
				mustContain(t, res.body, "Unknown connect request", "log in to todo-mcp again")
			})
			t.Run("connect ids and user codes stay out of the logs", func(t *testing.T) {
				mustNotContain(t, h.logs.String(), req.ID, req.UserCode)
				mustContain(t, h.logs.String(), "/connect/{id}")
			})
		})
	}
}

func TestBrowsingWithoutAFormWritesNoSession(t *testing.T) {
	h := newHarness(t, store.BackendSQLite, nil)
	for _, path := range []string{"/", "/no-such-page"} {
		res, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if len(res.Cookies()) != 0 {
			t.Fatalf("%s set %v", path, res.Cookies())
		}
	}
	var n int
	if err := h.store.DB().QueryRow(`SELECT count(*) FROM sessions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d session rows, %v", n, err)
	}
}

func TestBehindATrustedProxyEachClientHasItsOwnBudget(t *testing.T) {
	h := newHarness(t, store.BackendSQLite, nil)
	h.cfg.TrustedProxies = []string{"127.0.0.1/32"}
	h.restart()
	get := func(client string) int {
		req, _ := http.NewRequest(http.MethodGet, h.url+"/connect/x", nil)
		req.Header.Set("X-Forwarded-For", client)
		return h.do(req).status
	}
	for range 30 {
		get("198.51.100.1")
	}
	if s := get("198.51.100.1"); s != http.StatusTooManyRequests {
		t.Fatalf("the noisy client's 31st request: %d", s)
	}
	if s := get("198.51.100.2"); s == http.StatusTooManyRequests {
		t.Fatal("another client behind the same proxy was throttled too")
	}
}

func TestSignInIsRateLimited(t *testing.T) {
	h := newHarness(t, store.BackendSQLite, nil)
	var last int
	for range 31 {
		last = h.get("/login").status
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("31st sign-in page: %d", last)
	}
	if res := h.get("/healthz"); res.status != http.StatusOK {
		t.Fatalf("healthz throttled too: %d", res.status)
	}
}

var tokenPattern = regexp.MustCompile(`<p class="token" id="token">([^<]+)</p>`)

func tokenOnPage(t *testing.T, body string) string {
	t.Helper()
	m := tokenPattern.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no token on the page:\n%s", body)
	}
	return m[1]
}

func mustUser(t *testing.T, h *harness, subject string) store.User {
	t.Helper()
	u, err := h.store.GetUserBySubject(t.Context(), subject)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func sessionCookie(t *testing.T, h *harness) string {
	t.Helper()
	u, _ := url.Parse(h.url)
	for _, c := range h.client.Jar.Cookies(u) {
		if c.Name == "todo_mcp_session" {
			return c.Value
		}
	}
	return ""
}

func TestTheSessionCookieIsSecureBehindHTTPS(t *testing.T) {
	st := storetest.Open(t, store.BackendSQLite, store.Options{})
	for _, secure := range []bool{true, false} {
		sm := web.NewSessions(st, secure)
		rec := httptest.NewRecorder()
		sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sm.Put(r.Context(), "k", "v")
		})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		cookie := rec.Header().Get("Set-Cookie")
		if strings.Contains(cookie, "Secure") != secure || strings.HasPrefix(cookie, "__Host-") != secure ||
			!strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") || !strings.Contains(cookie, "Path=/") {
			t.Fatalf("secure=%v: Set-Cookie %q", secure, cookie)
		}
	}
}

func TestLongExpiredConnectRequestsArePruned(t *testing.T) {
	st := storetest.Open(t, store.BackendSQLite, store.Options{})
	for id, expired := range map[string]time.Duration{"old": 48 * time.Hour, "recent": time.Minute} {
		c := authn.NewConnectRequest()
		if _, err := st.CreateConnectRequest(t.Context(), store.NewConnectRequest{ID: id, SecretHash: c.SecretHash, UserCode: c.UserCode,
			ClientName: "Cursor", ExpiresAt: time.Now().Add(-expired)}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		web.PruneConnectRequests(ctx, st, slog.New(slog.DiscardHandler), 10*time.Millisecond, 24*time.Hour)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := st.GetConnectRequest(t.Context(), "old"); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the long-expired request was never pruned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := st.GetConnectRequest(t.Context(), "recent"); err != nil {
		t.Fatalf("a recently expired request was pruned: %v", err)
	}
	cancel()
	<-done
}
