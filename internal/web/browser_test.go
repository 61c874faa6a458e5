package web_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

// chromium finds Debian's headless-capable Chromium (CHROMIUM_PATH
// overrides). Under CI=true a missing browser fails the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is required under CI=true (apt-get install chromium)")
	}
	t.Skip("SKIPPING BROWSER TEST: no Chromium (apt-get install chromium, or set CHROMIUM_PATH)")
	return ""
}

// artifactsDir is where tests leave files for people to look at.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TEST_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestInABrowserSignInAndApproveAConnectRequest(t *testing.T) {
	bin := chromium(t)
	h := newHarness(t, store.BackendSQLite, nil)
	req := authn.NewConnectRequest()
	if _, err := h.store.CreateConnectRequest(t.Context(), store.NewConnectRequest{
		ID: req.ID, SecretHash: req.SecretHash, UserCode: req.UserCode, ClientName: "Cursor", ExpiresAt: time.Now().Add(authn.ConnectLifetime),
	}); err != nil {
		t.Fatal(err)
	}

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1200, 1600),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("browser, %s: %v\nserver logs:\n%s", what, err, h.logs.String())
		}
	}
	read := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("browser, %s: %v", what, err)
		}
		return v
	}

	// A signed-out visit to the connect link goes through sign-in first.
	step("sign in", chromedp.Navigate(h.url+"/connect/"+req.ID),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("name"), "Ada Lovelace"),
		chromedp.Submit(chromedp.ID("email")),
		chromedp.WaitVisible(chromedp.ID("user-code")))
	// Back on the connect page, with the code to compare.
	code := read("user code", chromedp.Text(chromedp.ID("user-code")))
	heading := read("heading", chromedp.Text(chromedp.CSS("h1")))
	step("approve", chromedp.Click(chromedp.ID("approve")),
		chromedp.WaitVisible(chromedp.Search(`//h1[text()="Connected"]`)))
	connected := read("connected page", chromedp.Text(chromedp.CSS("main")))
	// The signed-in home page, styled (the stylesheet passed the CSP).
	step("home", chromedp.Navigate(h.url+"/"),
		chromedp.WaitVisible(chromedp.Search(`//h1[starts-with(text(), "Hello")]`)))
	headerBG := read("header style", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("header")).backgroundColor`))
	home := read("home page", chromedp.Text(chromedp.CSS("main")))
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if strings.TrimSpace(code) != req.UserCode || !strings.Contains(heading, "Connect Cursor?") {
		t.Fatalf("connect page showed %q / %q, want code %q", code, heading, req.UserCode)
	}
	if !strings.Contains(connected, "Cursor can now use todo-mcp as you") {
		t.Fatalf("after approving: %q", connected)
	}
	c, err := h.store.GetConnectRequest(t.Context(), req.ID)
	if err != nil || c.State(time.Now()) != store.ConnectApproved {
		t.Fatalf("request after the click: %+v, %v", c, err)
	}
	if headerBG != "rgb(255, 255, 255)" {
		t.Fatalf("header background %q: the stylesheet did not apply", headerBG)
	}
	for _, want := range []string{"Hello, Ada Lovelace", "ada@example.com", "Connect your editor", "Add to Cursor"} {
		if !strings.Contains(home, want) {
			t.Fatalf("home lacks %q:\n%s", want, home)
		}
	}
	path := filepath.Join(artifactsDir(t), "home-signed-in.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the signed-in home page: %s (%d bytes)", path, len(shot))
}
