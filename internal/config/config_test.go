package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// goodSecret looks like the output of openssl rand -base64 32.
const goodSecret = "q3Vt9Lx2ZpR7mK1cW8bN4yHs6JdF0gTa5Ue+Qo/ArIk="

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestDefaultsNeedNoConfiguration(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(env(map[string]string{"TODO_MCP_DATA_DIR": dir}), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Env != Development || c.ListenAddr != "127.0.0.1:3000" || c.PublicURL != "http://localhost:3000" ||
		c.FreeTodoLimit != 5 || c.Kinde.Configured() || c.SQLitePath() != filepath.Join(dir, "todo.db") {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestTheRealEnvironmentWinsOverDotEnv(t *testing.T) {
	dotenv := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(dotenv, []byte("FREE_TODO_LIMIT=7\nLISTEN_ADDR=127.0.0.1:4000\n# a comment\nPUBLIC_URL=\"http://localhost:4000/\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"TODO_MCP_DATA_DIR": t.TempDir(), "FREE_TODO_LIMIT": "9"}), dotenv)
	if err != nil {
		t.Fatal(err)
	}
	if c.FreeTodoLimit != 9 || c.ListenAddr != "127.0.0.1:4000" || c.PublicURL != "http://localhost:4000" {
		t.Fatalf("got limit %d, addr %s, url %s", c.FreeTodoLimit, c.ListenAddr, c.PublicURL)
	}
}

func TestEveryProblemIsReportedOnItsOwnLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"production without secrets or provider", map[string]string{"APP_ENV": "production"}, []string{
			"PUBLIC_URL must be set in production",
			"KINDE_ISSUER_URL, KINDE_CLIENT_ID and KINDE_CLIENT_SECRET must be set in production",
			"JWT_SECRET must be set in production",
		}},
		{"production over plain http", map[string]string{"APP_ENV": "production", "PUBLIC_URL": "http://todo.example.com",
			"KINDE_ISSUER_URL": "https://x.kinde.com", "KINDE_CLIENT_ID": "id", "KINDE_CLIENT_SECRET": "s",
			"JWT_SECRET": goodSecret}, []string{"PUBLIC_URL must use https in production"}},
		{"half a Kinde configuration", map[string]string{"KINDE_ISSUER_URL": "https://x.kinde.com"}, []string{
			"KINDE_CLIENT_ID must be set when KINDE_ISSUER_URL is set",
			"KINDE_CLIENT_SECRET must be set when KINDE_ISSUER_URL is set",
		}},
		{"a client id without an issuer", map[string]string{"KINDE_CLIENT_ID": "abc"}, []string{"KINDE_ISSUER_URL must be set when"}},
		{"an issuer over plain http", map[string]string{"KINDE_ISSUER_URL": "http://x.kinde.com", "KINDE_CLIENT_ID": "a", "KINDE_CLIENT_SECRET": "b"}, []string{"KINDE_ISSUER_URL must be an https URL"}},
		{"bad values", map[string]string{"APP_ENV": "staging", "DATABASE_URL": "mysql://x", "LISTEN_ADDR": "3000",
			"FREE_TODO_LIMIT": "five", "LOG_LEVEL": "loud", "JWT_SECRET": "short", "TODO_MCP_DATA_DIR": "relative/dir"}, []string{
			`APP_ENV must be development or production, not "staging"`,
			"DATABASE_URL must start with one of postgres://",
			"LISTEN_ADDR must be host:port",
			"FREE_TODO_LIMIT must be a whole number",
			"LOG_LEVEL must be debug, info, warn or error",
			"JWT_SECRET must be at least 32 characters",
			"TODO_MCP_DATA_DIR must be an absolute path",
		}},
		{"the development sign-in on every interface", map[string]string{"LISTEN_ADDR": "0.0.0.0:3000"}, []string{"is not a loopback address"}},
		{"the development sign-in forced remote in production", map[string]string{"APP_ENV": "production", "PUBLIC_URL": "https://t.example.com",
			"KINDE_ISSUER_URL": "https://x.kinde.com", "KINDE_CLIENT_ID": "id", "KINDE_CLIENT_SECRET": "s", "JWT_SECRET": goodSecret,
			"DEV_SIGNIN_ALLOW_REMOTE": "true"}, []string{"DEV_SIGNIN_ALLOW_REMOTE cannot be set in production"}},
		{"scopes without openid", map[string]string{"KINDE_ISSUER_URL": "https://x.kinde.com", "KINDE_CLIENT_ID": "a", "KINDE_CLIENT_SECRET": "b", "KINDE_SCOPES": "profile email"}, []string{"KINDE_SCOPES must include openid"}},
		{"a regular secret", map[string]string{"JWT_SECRET": strings.Repeat("ab", 20)}, []string{"JWT_SECRET looks too regular"}},
		{"a bad proxy list", map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, []string{`TRUSTED_PROXIES must list IP addresses or CIDR prefixes, not "proxy.local"`}},
		{"Kinde billing without Kinde", map[string]string{"BILLING_PROVIDER": "kinde"}, []string{"BILLING_PROVIDER=kinde needs KINDE_ISSUER_URL"}},
		{"an unknown billing provider", map[string]string{"BILLING_PROVIDER": "stripe"}, []string{`BILLING_PROVIDER must be auto, kinde or local, not "stripe"`}},
		{"the example secret", map[string]string{"JWT_SECRET": "change-me-to-a-long-random-string-of-48-chars"}, []string{"JWT_SECRET still holds the example value"}},
		{"bad billing settings", map[string]string{"KINDE_BILLING_FEATURE_KEY": "todos limit!", "KINDE_PRO_PLAN_KEYS": "pro, team;plus",
			"BILLING_REFRESH_MAX_AGE": "10"}, []string{
			`KINDE_BILLING_FEATURE_KEY must be a Kinde feature key`,
			`KINDE_PRO_PLAN_KEYS must list Kinde plan keys separated by commas or spaces, not "team;plus"`,
			`BILLING_REFRESH_MAX_AGE must be a duration from 10s to 24h such as 10m, not "10"`,
		}},
		{"a billing refresh age beyond a day", map[string]string{"BILLING_REFRESH_MAX_AGE": "48h"}, []string{"BILLING_REFRESH_MAX_AGE must be a duration from 10s to 24h"}},
		{"a billing refresh age too short to spare Kinde", map[string]string{"BILLING_REFRESH_MAX_AGE": "1s"}, []string{"BILLING_REFRESH_MAX_AGE must be a duration from 10s to 24h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.vars["TODO_MCP_DATA_DIR"]; !ok {
				tc.vars["TODO_MCP_DATA_DIR"] = t.TempDir()
			}
			_, err := Load(env(tc.vars), "")
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want)+1 {
				t.Fatalf("want %d problems, got:\n%v", len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("missing %q in:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "short\"") {
				t.Errorf("the error echoes the secret:\n%v", err)
			}
		})
	}
}

func TestTheDevelopmentSignInCanBeForcedOntoOtherAddresses(t *testing.T) {
	c, err := Load(env(map[string]string{"TODO_MCP_DATA_DIR": t.TempDir(), "LISTEN_ADDR": "0.0.0.0:3000", "DEV_SIGNIN_ALLOW_REMOTE": "true"}), "")
	if err != nil || !c.DevSignInAllowRemote {
		t.Fatalf("%+v, %v", c, err)
	}
}

func TestTrustedProxiesAcceptAddressesAndPrefixes(t *testing.T) {
	c, err := Load(env(map[string]string{"TODO_MCP_DATA_DIR": t.TempDir(), "TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8 ::1"}), "")
	if err != nil || strings.Join(c.TrustedProxies, " ") != "127.0.0.1/32 10.0.0.0/8 ::1/128" {
		t.Fatalf("%v, %v", c.TrustedProxies, err)
	}
}

func TestTheBillingProviderFollowsTheIdentityProviderUnlessSet(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{}, "local"},
		{map[string]string{"KINDE_ISSUER_URL": "https://x.kinde.com", "KINDE_CLIENT_ID": "a", "KINDE_CLIENT_SECRET": "b"}, "kinde"},
		{map[string]string{"KINDE_ISSUER_URL": "https://accounts.example.com", "KINDE_CLIENT_ID": "a", "KINDE_CLIENT_SECRET": "b", "BILLING_PROVIDER": "local"}, "local"},
	} {
		tc.vars["TODO_MCP_DATA_DIR"] = t.TempDir()
		c, err := Load(env(tc.vars), "")
		if err != nil || c.BillingProvider != tc.want {
			t.Fatalf("%v: %q, %v; want %q", tc.vars, c.BillingProvider, err, tc.want)
		}
	}
}

func TestProductionWithEverythingSetStarts(t *testing.T) {
	c, err := Load(env(map[string]string{
		"APP_ENV": "production", "PUBLIC_URL": "https://todo.example.com/", "TODO_MCP_DATA_DIR": t.TempDir(),
		"DATABASE_URL":     "postgresql://u:p@ep-x.eu-central-1.aws.neon.tech/neondb?sslmode=require",
		"KINDE_ISSUER_URL": "https://todo.kinde.com", "KINDE_CLIENT_ID": "id", "KINDE_CLIENT_SECRET": "s",
		"JWT_SECRET": goodSecret,
	}), "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsProduction() || c.PublicURL != "https://todo.example.com" || string(c.Secret) != goodSecret {
		t.Fatalf("%+v", c)
	}
}

func TestTheDevelopmentSecretIsGeneratedOnceAndShared(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	secrets := make([]string, 8)
	var wg sync.WaitGroup
	for i := range secrets {
		wg.Go(func() {
			c, err := Load(env(map[string]string{"TODO_MCP_DATA_DIR": dir}), "")
			if err != nil {
				t.Error(err)
				return
			}
			if err := c.useDevelopmentSecret(); err != nil {
				t.Error(err)
				return
			}
			secrets[i] = string(c.Secret)
		})
	}
	wg.Wait()
	for _, s := range secrets {
		if s != secrets[0] || len(s) < minSecretLen {
			t.Fatalf("processes disagree on the secret: %q vs %q", s, secrets[0])
		}
	}
	info, err := os.Stat(filepath.Join(dir, "secret.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v, %v", info.Mode(), err)
	}
	dirInfo, _ := os.Stat(dir)
	if dirInfo.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode %v", dirInfo.Mode())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".secret-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestBillingSettings(t *testing.T) {
	for _, tc := range []struct {
		name        string
		vars        map[string]string
		wantFeature string
		wantPro     []string
		wantMaxAge  time.Duration
	}{
		{"nothing set gives the todos feature, the pro plan and ten minutes", map[string]string{}, "todos", []string{"pro"}, 10 * time.Minute},
		{"plan keys may be separated by commas, spaces or both", map[string]string{"KINDE_PRO_PLAN_KEYS": " pro, pro_yearly  team,"},
			"todos", []string{"pro", "pro_yearly", "team"}, 10 * time.Minute},
		{"a custom feature key and refresh age are kept", map[string]string{"KINDE_BILLING_FEATURE_KEY": "max_todos", "BILLING_REFRESH_MAX_AGE": "90s"},
			"max_todos", []string{"pro"}, 90 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.vars["TODO_MCP_DATA_DIR"] = t.TempDir()
			c, err := Load(env(tc.vars), "")
			if err != nil {
				t.Fatal(err)
			}
			if c.Kinde.BillingFeatureKey != tc.wantFeature || !slices.Equal(c.Kinde.ProPlanKeys, tc.wantPro) || c.BillingRefreshMaxAge != tc.wantMaxAge {
				t.Fatalf("feature %q, pro plans %q, max age %s", c.Kinde.BillingFeatureKey, c.Kinde.ProPlanKeys, c.BillingRefreshMaxAge)
			}
		})
	}
}

func TestVariablesListsEveryVariableLoadReads(t *testing.T) {
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`get\("([A-Z_]+)"\)`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	listed := map[string]bool{}
	for _, v := range Variables {
		listed[v] = true
		if !read[v] {
			t.Errorf("Variables lists %s, which Load does not read", v)
		}
	}
	for v := range read {
		if !listed[v] {
			t.Errorf("Load reads %s, which Variables does not list", v)
		}
	}
}
