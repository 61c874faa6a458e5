package web_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/kindetest"
	"github.com/todo-mcp/todo-mcp/internal/proctest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
	"github.com/todo-mcp/todo-mcp/internal/web"
)

// harness is a real authserver (the web app on a real listener, sessions in
// a real database) and a browser-like client with a cookie jar.
type harness struct {
	t       *testing.T
	store   *store.Store
	sealer  *authn.Sealer
	url     string
	logs    *proctest.Buffer
	client  *http.Client
	ln      net.Listener
	srv     *http.Server
	handler http.Handler
	cfg     *config.Config
	oidc    func(redirectURL string) *authn.OIDC
	// kindeBilling, when set, makes billing Kinde's (with webhooks) instead of local.
	kindeBilling *kindetest.Server
	billing      *billing.Service // the running app's
}

const testSecret = "an-example-secret-of-at-least-32-bytes!!"

// newHarness starts the app on a fresh database of that backend. oidc builds
// the provider client for the app's callback URL; nil means the development
// sign-in.
func newHarness(t *testing.T, backend string, oidc func(redirectURL string) *authn.OIDC) *harness {
	t.Helper()
	return newHarnessWith(t, backend, oidc, nil)
}

// newHarnessWith also takes a Kinde-shaped server whose billing the app uses.
func newHarnessWith(t *testing.T, backend string, oidc func(redirectURL string) *authn.OIDC, kinde *kindetest.Server) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, store: storetest.Open(t, backend, store.Options{}), url: "http://" + ln.Addr().String(), logs: &proctest.Buffer{}, ln: ln, oidc: oidc, kindeBilling: kinde}
	h.cfg = &config.Config{Env: config.Development, PublicURL: h.url, FreeTodoLimit: 5, ListenAddr: ln.Addr().String()}
	h.sealer, err = authn.NewSealer([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	jar, _ := cookiejar.New(nil)
	h.client = &http.Client{Jar: jar, Timeout: 20 * time.Second}
	return h
}

// start serves a new App on the harness's address (a restart keeps the
// database, and so the sessions).
func (h *harness) start() {
	h.t.Helper()
	deps := web.Deps{
		Config:        h.cfg,
		Store:         h.store,
		Log:           slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Sealer:        h.sealer,
		Sessions:      web.NewSessions(h.store, false),
		MCPServerPath: "/opt/todo-mcp/bin/mcpserver",
	}
	if h.oidc != nil {
		deps.OIDC = h.oidc(h.url + "/callback")
	}
	sc := billing.ServiceConfig{FreeLimit: 5, PublicURL: h.url, Logger: deps.Log}
	if h.kindeBilling != nil {
		k := billing.NewKinde(billing.KindeConfig{OIDC: deps.OIDC, Sealer: h.sealer, Store: h.store, PublicURL: h.url, Logger: deps.Log})
		deps.Billing = billing.NewService(h.store, k, sc)
		deps.Webhooks = billing.NewWebhookHandler(deps.Billing, billing.WebhookConfig{IssuerURL: h.kindeBilling.URL, Logger: deps.Log})
	} else {
		deps.Billing = billing.NewService(h.store, billing.Local{PublicURL: h.url}, sc)
	}
	h.billing = deps.Billing
	app, err := web.New(deps)
	if err != nil {
		h.t.Fatal(err)
	}
	if h.ln == nil {
		addr := strings.TrimPrefix(h.url, "http://")
		for i := 0; ; i++ {
			if h.ln, err = net.Listen("tcp", addr); err == nil || i > 50 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			h.t.Fatal(err)
		}
	}
	h.handler = app.Routes()
	srv, ln := &http.Server{Handler: h.handler}, h.ln
	h.srv = srv
	go func() { _ = srv.Serve(ln) }()
	h.t.Cleanup(func() { srv.Close() })
}

// restart stops the app and starts a new one on the same database.
func (h *harness) restart() {
	h.t.Helper()
	if err := h.srv.Shutdown(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.ln = nil
	h.start()
}

type response struct {
	status int
	body   string
	header http.Header
	url    *url.URL // the final URL after redirects
}

func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	res, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: string(b), header: res.Header, url: res.Request.URL}
}

func (h *harness) get(path string) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.abs(path), nil)
	return h.do(req)
}

func (h *harness) post(path string, form url.Values) response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.abs(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return h.do(req)
}

func (h *harness) abs(path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return h.url + path
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the form token from a page.
func (h *harness) csrf(page response) string {
	h.t.Helper()
	m := csrfField.FindStringSubmatch(page.body)
	if m == nil {
		h.t.Fatalf("no CSRF token on the page:\n%s", page.body)
	}
	return m[1]
}

// devSignIn signs in through the development form.
func (h *harness) devSignIn(email, name string) response {
	h.t.Helper()
	form := h.get("/login")
	return h.post("/login/dev", url.Values{"csrf_token": {h.csrf(form)}, "email": {email}, "name": {name}, "return_to": {"/"}})
}

// noRedirects returns a copy of the client that stops at the first redirect.
func (h *harness) noRedirects() *http.Client {
	c := *h.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func mustContain(t *testing.T, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Fatalf("page lacks %q:\n%s", w, body)
		}
	}
}

func mustNotContain(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Fatalf("page contains %q:\n%s", w, body)
		}
	}
}

// newHarnessClient is a second browser on the same server.
func newHarnessClient(h *harness) *harness {
	other := *h
	jar, _ := cookiejar.New(nil)
	other.client = &http.Client{Jar: jar, Timeout: 20 * time.Second}
	return &other
}

// signOut signs the browser out if it is signed in.
func (h *harness) signOut() {
	h.t.Helper()
	home := h.get("/")
	if m := csrfField.FindStringSubmatch(home.body); m != nil && strings.Contains(home.body, `action="/logout"`) {
		h.post("/logout", url.Values{"csrf_token": {m[1]}})
	}
}
