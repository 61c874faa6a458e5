// Package config reads todo-mcp's settings once, from the environment and an
// optional .env file in the working directory (the real environment wins),
// and validates them as a whole: every problem is reported, one line each,
// before anything starts.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/adrg/xdg"
	"github.com/joho/godotenv"

	"github.com/todo-mcp/todo-mcp/internal/store"
)

// Variables lists every environment variable Load reads, so that tests
// can run processes without inheriting the caller's settings.
var Variables = []string{
	"APP_ENV", "BILLING_PROVIDER", "BILLING_REFRESH_MAX_AGE", "DATABASE_URL", "DEV_SIGNIN_ALLOW_REMOTE",
	"FREE_TODO_LIMIT", "JWT_SECRET", "KINDE_AUDIENCE", "KINDE_BILLING_FEATURE_KEY", "KINDE_CLIENT_ID",
	"KINDE_CLIENT_SECRET", "KINDE_ISSUER_URL", "KINDE_PRO_PLAN_KEYS", "KINDE_SCOPES", "LISTEN_ADDR",
	"LOG_LEVEL", "PUBLIC_URL", "TODO_MCP_DATA_DIR", "TRUSTED_PROXIES",
}

// Environments.
const (
	Development = "development"
	Production  = "production"
)

// minSecretLen is the shortest JWT_SECRET accepted: 32 bytes of key.
const minSecretLen = 32

// Config is every setting of both processes.
type Config struct {
	// Env is development (the default) or production.
	Env string
	// DataDir holds the SQLite database and the generated development secret.
	DataDir string
	// DatabaseURL selects PostgreSQL (postgres://…) or SQLite (sqlite:…,
	// file:…, or empty for DataDir/todo.db).
	DatabaseURL string
	// ListenAddr is where the authserver listens.
	ListenAddr string
	// PublicURL is the authserver's address as browsers see it, without a
	// trailing slash.
	PublicURL string
	// Secret protects stored provider tokens (the tutorial's JWT_SECRET).
	Secret []byte
	// SecretSource says where Secret came from, for the start-up log.
	SecretSource string
	Kinde        Kinde
	// TrustedProxies are the address prefixes of reverse proxies whose
	// X-Forwarded-For is believed, for per-client rate limits.
	TrustedProxies []string
	// DevSignInAllowRemote lets the development sign-in answer on a
	// non-loopback address (inside a container, say). Never in production.
	DevSignInAllowRemote bool
	// BillingProvider is "kinde" (plans from Kinde's billing) or "local"
	// (this server's own plans, switched by the development checkout).
	BillingProvider string
	// FreeTodoLimit is how many todos the free plan stores.
	FreeTodoLimit int
	// BillingRefreshMaxAge is how old a cached plan may get before it is
	// checked with the billing provider again, before a create that would
	// hit the limit.
	BillingRefreshMaxAge time.Duration
	LogLevel             slog.Level
}

// Kinde is the identity provider (Kinde or any OpenID Connect issuer).
// Empty IssuerURL means the embedded development sign-in.
type Kinde struct {
	IssuerURL    string
	ClientID     string
	ClientSecret string
	// Audience is sent on the authorize request, for an API registered in Kinde.
	Audience string
	// Scopes requested at sign-in; Kinde's "openid profile email offline" by default.
	Scopes []string
	// BillingFeatureKey is the entitlement whose entitlement_limit_max is
	// the todo limit ("todos" by default).
	BillingFeatureKey string
	// ProPlanKeys are the plan keys that mean unlimited when the plan has
	// no BillingFeatureKey entitlement (["pro"] by default).
	ProPlanKeys []string
}

// Configured reports whether an external identity provider is set.
func (k Kinde) Configured() bool { return k.IssuerURL != "" }

// IsProduction reports whether Env is production.
func (c *Config) IsProduction() bool { return c.Env == Production }

// SQLitePath is the default database file, shared by both processes.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "todo.db") }

// StoreOptions returns what store.Open needs.
func (c *Config) StoreOptions(log *slog.Logger) store.Options {
	return store.Options{URL: c.DatabaseURL, DefaultSQLitePath: c.SQLitePath(), Logger: log}
}

// Load reads the configuration: lookup first (the real environment), then the
// .env file at dotenvPath if it exists. It reports every problem at once.
func Load(lookup func(string) (string, bool), dotenvPath string) (*Config, error) {
	fileVars := map[string]string{}
	if dotenvPath != "" {
		vars, err := godotenv.Read(dotenvPath)
		switch {
		case err == nil:
			fileVars = vars
		case !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("config: cannot read %s: %v", dotenvPath, err)
		}
	}
	get := func(name string) string {
		if v, ok := lookup(name); ok {
			return strings.TrimSpace(v)
		}
		return strings.TrimSpace(fileVars[name])
	}

	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	c := &Config{
		Env:         strings.ToLower(get("APP_ENV")),
		DataDir:     get("TODO_MCP_DATA_DIR"),
		DatabaseURL: get("DATABASE_URL"),
		ListenAddr:  get("LISTEN_ADDR"),
		PublicURL:   strings.TrimRight(get("PUBLIC_URL"), "/"),
		Kinde: Kinde{
			IssuerURL:    strings.TrimRight(get("KINDE_ISSUER_URL"), "/"),
			ClientID:     get("KINDE_CLIENT_ID"),
			ClientSecret: get("KINDE_CLIENT_SECRET"),
			Audience:     get("KINDE_AUDIENCE"),
			Scopes:       strings.Fields(get("KINDE_SCOPES")),

			BillingFeatureKey: get("KINDE_BILLING_FEATURE_KEY"),
			ProPlanKeys:       strings.FieldsFunc(get("KINDE_PRO_PLAN_KEYS"), isListSeparator),
		},
	}

	switch c.Env {
	case "":
		c.Env = Development
	case Development, Production:
	default:
		fail("APP_ENV must be development or production, not %q", c.Env)
	}

	if c.DataDir == "" {
		c.DataDir = filepath.Join(xdg.DataHome, "todo-mcp")
	} else if !filepath.IsAbs(c.DataDir) {
		fail("TODO_MCP_DATA_DIR must be an absolute path, not %q", c.DataDir)
	}

	if _, _, err := store.ParseURL(c.DatabaseURL, c.SQLitePath()); err != nil {
		fail("%v", err)
	}

	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:3000"
	}
	_, listenPort, err := net.SplitHostPort(c.ListenAddr)
	listenValid := err == nil && listenPort != ""
	if !listenValid {
		fail("LISTEN_ADDR must be host:port (for example 127.0.0.1:3000), not %q", c.ListenAddr)
	}

	switch {
	case c.PublicURL == "" && c.IsProduction():
		fail("PUBLIC_URL must be set in production (the https:// address browsers use)")
	case c.PublicURL == "":
		c.PublicURL = "http://localhost:" + portOf(c.ListenAddr)
	}
	if c.PublicURL != "" {
		if problem := checkPublicURL(c.PublicURL, c.IsProduction()); problem != "" {
			fail("%s", problem)
		}
	}

	k := c.Kinde
	switch {
	case k.Configured():
		if u, err := url.Parse(k.IssuerURL); err != nil || u.Host == "" || (u.Scheme != "https" && !isLoopbackURL(u)) {
			fail("KINDE_ISSUER_URL must be an https URL such as https://yourbusiness.kinde.com, not %q", k.IssuerURL)
		}
		if k.ClientID == "" {
			fail("KINDE_CLIENT_ID must be set when KINDE_ISSUER_URL is set")
		}
		if k.ClientSecret == "" {
			fail("KINDE_CLIENT_SECRET must be set when KINDE_ISSUER_URL is set")
		}
	case k.ClientID != "" || k.ClientSecret != "" || k.Audience != "":
		fail("KINDE_ISSUER_URL must be set when KINDE_CLIENT_ID, KINDE_CLIENT_SECRET or KINDE_AUDIENCE is set")
	case c.IsProduction():
		fail("KINDE_ISSUER_URL, KINDE_CLIENT_ID and KINDE_CLIENT_SECRET must be set in production (the development sign-in is for development only)")
	}
	if len(k.Scopes) > 0 && !slices.Contains(k.Scopes, "openid") {
		fail("KINDE_SCOPES must include openid, not %q", strings.Join(k.Scopes, " "))
	}

	switch c.BillingProvider = strings.ToLower(get("BILLING_PROVIDER")); c.BillingProvider {
	case "", "auto":
		c.BillingProvider = "local"
		if k.Configured() {
			c.BillingProvider = "kinde"
		}
	case "kinde":
		if !k.Configured() {
			fail("BILLING_PROVIDER=kinde needs KINDE_ISSUER_URL, KINDE_CLIENT_ID and KINDE_CLIENT_SECRET")
		}
	case "local":
		// Also in production, for a deployment that signs in with another
		// OIDC provider and sells nothing: the web app then refuses the
		// development checkout, so nobody upgrades without paying.
	default:
		fail("BILLING_PROVIDER must be auto, kinde or local, not %q", c.BillingProvider)
	}

	if c.Kinde.BillingFeatureKey == "" {
		c.Kinde.BillingFeatureKey = "todos"
	} else if !isKindeKey(c.Kinde.BillingFeatureKey) {
		fail("KINDE_BILLING_FEATURE_KEY must be a Kinde feature key (letters, digits, _ - . :, up to 100), not %q", c.Kinde.BillingFeatureKey)
	}
	if len(c.Kinde.ProPlanKeys) == 0 {
		c.Kinde.ProPlanKeys = []string{"pro"}
	}
	for _, key := range c.Kinde.ProPlanKeys {
		if !isKindeKey(key) {
			fail("KINDE_PRO_PLAN_KEYS must list Kinde plan keys separated by commas or spaces, not %q", key)
			break
		}
	}

	for _, p := range strings.FieldsFunc(get("TRUSTED_PROXIES"), func(r rune) bool { return r == ',' || r == ' ' }) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				fail("TRUSTED_PROXIES must list IP addresses or CIDR prefixes, not %q", p)
				continue
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.String())
	}

	switch v := strings.ToLower(get("DEV_SIGNIN_ALLOW_REMOTE")); v {
	case "", "false", "0":
	case "true", "1":
		if c.IsProduction() {
			fail("DEV_SIGNIN_ALLOW_REMOTE cannot be set in production")
		}
		c.DevSignInAllowRemote = true
	default:
		fail("DEV_SIGNIN_ALLOW_REMOTE must be true or false, not %q", v)
	}
	if listenValid && !k.Configured() && !c.DevSignInAllowRemote && !c.IsProduction() && !isLoopbackAddr(c.ListenAddr) {
		fail("LISTEN_ADDR %s is not a loopback address: the development sign-in only serves loopback (configure KINDE_ISSUER_URL, or set DEV_SIGNIN_ALLOW_REMOTE=true if you really mean it)", c.ListenAddr)
	}

	c.FreeTodoLimit = 5
	if v := get("FREE_TODO_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1_000_000 {
			fail("FREE_TODO_LIMIT must be a whole number from 0 to 1000000, not %q", v)
		}
		c.FreeTodoLimit = n
	}

	c.BillingRefreshMaxAge = 10 * time.Minute
	if v := get("BILLING_REFRESH_MAX_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Second || d > 24*time.Hour {
			fail("BILLING_REFRESH_MAX_AGE must be a duration from 10s to 24h such as 10m, not %q", v)
		}
		c.BillingRefreshMaxAge = d
	}

	if v := get("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			fail("LOG_LEVEL must be debug, info, warn or error, not %q", v)
		}
	}

	switch secret := get("JWT_SECRET"); {
	case secret != "" && len(secret) < minSecretLen:
		fail("JWT_SECRET must be at least %d characters (try: openssl rand -base64 32)", minSecretLen)
	case secret != "" && distinctBytes(secret) < 12:
		fail("JWT_SECRET looks too regular to be random: generate one with openssl rand -base64 32")
	case secret != "" && isPlaceholder(secret):
		fail("JWT_SECRET still holds the example value: generate one with openssl rand -base64 32")
	case secret != "":
		c.Secret, c.SecretSource = []byte(secret), "JWT_SECRET"
	case c.IsProduction():
		fail("JWT_SECRET must be set in production (at least %d characters; try: openssl rand -base64 32)", minSecretLen)
	}

	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

// FromEnvironment loads the configuration from the process environment and
// ./.env, then fills in the development secret when none is set.
func FromEnvironment() (*Config, error) {
	c, err := Load(os.LookupEnv, ".env")
	if err != nil {
		return nil, err
	}
	if c.Secret == nil {
		if err := c.useDevelopmentSecret(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Error lists every configuration problem, one per line.
type Error struct{ Problems []string }

func (e *Error) Error() string {
	return "invalid configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

func checkPublicURL(raw string, production bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Sprintf("PUBLIC_URL must be an absolute http(s) URL without query, not %q", raw)
	case production && u.Scheme != "https":
		return "PUBLIC_URL must use https in production, so that session cookies are Secure"
	}
	return ""
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "3000"
	}
	return port
}

// isLoopbackAddr is true for host:port on 127.0.0.0/8, ::1 or localhost.
// An empty host (":3000") listens everywhere, so it is not loopback.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	return isLoopbackURL(&url.URL{Host: host})
}

func isLoopbackURL(u *url.URL) bool {
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isKindeKey reports whether s is a Kinde feature or plan key: a letter or
// digit, then up to 99 letters, digits, _ . : or -. (Not a regular
// expression: compiling `{0,99}` took a millisecond of every start.)
func isKindeKey(s string) bool {
	if len(s) == 0 || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func isListSeparator(r rune) bool { return r == ',' || unicode.IsSpace(r) }

// distinctBytes counts the different bytes of s: a random 32-character
// secret has about 25, "aaaa…" or a repeated word very few.
func distinctBytes(s string) int {
	seen := map[byte]bool{}
	for i := range len(s) {
		seen[s[i]] = true
	}
	return len(seen)
}

// isPlaceholder catches the value .env.example ships with.
func isPlaceholder(s string) bool {
	return strings.Contains(strings.ToLower(s), "change-me")
}

// useDevelopmentSecret reads DataDir/secret.key, creating it with a fresh
// random key on first use. Two processes starting together agree on one key:
// the file is published with a hard link, which fails if it already exists.
func (c *Config) useDevelopmentSecret() error {
	path := filepath.Join(c.DataDir, "secret.key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= minSecretLen {
		c.Secret, c.SecretSource = b, path
		return nil
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(c.DataDir, ".secret-*")
	if err != nil {
		return fmt.Errorf("write development secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(base64.RawStdEncoding.EncodeToString(key[:])); err != nil {
		tmp.Close()
		return fmt.Errorf("write development secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write development secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("write development secret: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < minSecretLen {
		return fmt.Errorf("read development secret %s: %v", path, err)
	}
	c.Secret, c.SecretSource = b, path+" (generated for development)"
	return nil
}
