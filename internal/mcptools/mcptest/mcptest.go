// Package mcptest gives the MCP server's tests the real pieces around it:
// a running authserver (built by proctest) on a private port and database,
// the one step of the connect flow a person does in the browser, and
// client-call helpers. Import it from tests only.
package mcptest

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/todo-mcp/todo-mcp/internal/proctest"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Authserver is a running authserver binary.
type Authserver struct {
	// URL is its PUBLIC_URL, http://127.0.0.1:port.
	URL string
	// Store is the database it serves.
	Store *store.Store
	// DataDir is its TODO_MCP_DATA_DIR.
	DataDir string

	logs *proctest.Buffer
}

// StartAuthserver runs the authserver on databaseURL (already migrated, or
// migrated by it) with a private data directory, waits for /healthz, and
// stops it with SIGTERM when the test ends.
func StartAuthserver(t testing.TB, st *store.Store, databaseURL string) *Authserver {
	t.Helper()
	bin := proctest.Build(t, "cmd/authserver")
	addr := proctest.FreeAddr(t)
	a := &Authserver{URL: "http://" + addr, Store: st, DataDir: t.TempDir(), logs: &proctest.Buffer{}}
	cmd := exec.Command(bin, "serve")
	cmd.Env = proctest.CleanEnv("DATABASE_URL="+databaseURL, "LISTEN_ADDR="+addr, "PUBLIC_URL="+a.URL, "TODO_MCP_DATA_DIR="+a.DataDir)
	cmd.Dir = t.TempDir()
	cmd.Stdout, cmd.Stderr = a.logs, a.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(a.URL + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return a
			}
		}
		select {
		case <-done:
			t.Fatalf("authserver exited before answering /healthz:\n%s", a.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("authserver did not answer /healthz: %v\n%s", err, a.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Logs is what the authserver wrote so far.
func (a *Authserver) Logs() string { return a.logs.String() }

// ApproveInBrowser does what the person does in the browser: sign in to
// the authserver as u (the development sign-in, so u's subject must be
// "dev:" and the lower-cased email), open connectURL as login showed it,
// and press Approve (a POST carrying the page's CSRF token). This is the
// one place the tests approve a connect request. Failures are reported
// with t.Errorf, so it may run on another goroutine than the test's.
func ApproveInBrowser(t testing.TB, a *Authserver, connectURL string, u store.User) {
	t.Helper()
	a.decide(t, connectURL, u, "approve", store.ConnectApproved)
}

// DenyInBrowser is ApproveInBrowser pressing Deny.
func DenyInBrowser(t testing.TB, a *Authserver, connectURL string, u store.User) {
	t.Helper()
	a.decide(t, connectURL, u, "deny", store.ConnectDenied)
}

// DevSubject is the subject the development sign-in gives an email.
func DevSubject(email string) string { return "dev:" + strings.ToLower(email) }

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (a *Authserver) decide(t testing.TB, connectURL string, u store.User, verb string, want store.ConnectState) {
	t.Helper()
	if err := a.decideErr(connectURL, u, verb, want); err != nil {
		t.Errorf("%s the connect request in the browser: %v\nauthserver logs:\n%s", verb, err, a.Logs())
	}
}

func (a *Authserver) decideErr(connectURL string, u store.User, verb string, want store.ConnectState) error {
	id, err := connectID(a.URL, connectURL)
	if err != nil {
		return err
	}
	if u.Subject != DevSubject(u.Email) {
		return fmt.Errorf("user %q has subject %q; the development sign-in would sign in %q", u.Email, u.Subject, DevSubject(u.Email))
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	form, err := fetch(browser, http.MethodGet, a.URL+"/login", nil)
	if err != nil {
		return err
	}
	if _, err := fetch(browser, http.MethodPost, a.URL+"/login/dev", url.Values{
		"csrf_token": {csrfOf(form)}, "email": {u.Email}, "name": {u.Name}, "return_to": {"/"},
	}); err != nil {
		return fmt.Errorf("development sign-in: %w", err)
	}
	page, err := fetch(browser, http.MethodGet, connectURL, nil)
	if err != nil {
		return fmt.Errorf("connect page: %w", err)
	}
	if _, err := fetch(browser, http.MethodPost, connectURL+"/"+verb, url.Values{"csrf_token": {csrfOf(page)}}); err != nil {
		return fmt.Errorf("press %s: %w", verb, err)
	}
	cr, err := a.Store.GetConnectRequest(context.Background(), id)
	if err != nil {
		return err
	}
	if got := cr.State(time.Now()); got != want && !(want == store.ConnectApproved && got == store.ConnectConsumed) {
		return fmt.Errorf("the request is %s, want %s", got, want)
	}
	if cr.UserID != u.ID {
		return fmt.Errorf("decided by user %d, want %d", cr.UserID, u.ID)
	}
	return nil
}

// fetch sends a request (a form POST when form is not nil), follows
// redirects, and returns the body of a 200 answer.
func fetch(c *http.Client, method, target string, form url.Values) (string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s\n%.2000s", method, target, res.Status, b)
	}
	return string(b), nil
}

// connectID checks that connectURL is base/connect/{id} and returns the id.
func connectID(base, connectURL string) (string, error) {
	u, err := url.Parse(connectURL)
	if err != nil {
		return "", fmt.Errorf("connect URL %q: %v", connectURL, err)
	}
	id, ok := strings.CutPrefix(u.Path, "/connect/")
	if !ok || id == "" || !strings.HasPrefix(connectURL, base+"/connect/") {
		return "", fmt.Errorf("connect URL %q is not %s/connect/{id}", connectURL, base)
	}
	return id, nil
}

func csrfOf(page string) string {
	if m := csrfField.FindStringSubmatch(page); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// Call calls a tool and fails the test on a protocol error.
func Call(t testing.TB, cs *mcp.ClientSession, name string, args any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	return res
}

// CallOK calls a tool that must succeed and decodes its structured content
// into out (unless out is nil).
func CallOK(t testing.TB, cs *mcp.ClientSession, name string, args, out any) {
	t.Helper()
	res := Call(t, cs, name, args)
	if res.IsError {
		t.Fatalf("%s(%.200v): tool error: %s", name, args, Text(res))
	}
	if out == nil {
		return
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: structured content %s: %v", name, b, err)
	}
}

// CallErr calls a tool that must answer with a tool error, and returns its text.
func CallErr(t testing.TB, cs *mcp.ClientSession, name string, args any) string {
	t.Helper()
	res := Call(t, cs, name, args)
	if !res.IsError {
		t.Fatalf("%s(%.200v): succeeded, want a tool error; got %s", name, args, Text(res))
	}
	return Text(res)
}

// Text joins the text content of a result.
func Text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// MustContain reports each of wants missing from got.
func MustContain(t testing.TB, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}
