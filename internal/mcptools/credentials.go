package mcptools

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Environment variables the credential store reads.
const (
	// EnvToken holds an MCP token for unattended use; it wins over the file.
	EnvToken = "TODO_MCP_TOKEN"
	// EnvConfigDir replaces the directory of the credential file (tests,
	// several accounts side by side).
	EnvConfigDir = "TODO_MCP_CONFIG_DIR"
)

// credentialFileName is the file in the configuration directory.
const credentialFileName = "credentials.json"

// CredentialSource says where the token in use comes from.
type CredentialSource string

// The sources of a token.
const (
	SourceNone   CredentialSource = ""
	SourceEnv    CredentialSource = "environment"
	SourceFile   CredentialSource = "file"
	SourceMemory CredentialSource = "memory"
)

// Credentials keeps the MCP token of the person using this server: in a
// file of the user's configuration directory (0600, in a 0700 directory,
// replaced atomically), unless TODO_MCP_TOKEN is set. The token is read
// from disk on every call, so a login made by another copy of the server
// (another editor) is seen at once.
type Credentials struct {
	dir      string
	envToken string

	mu sync.Mutex
	// memToken keeps a token that could not be written to disk, so that
	// the session that minted it still works.
	memToken string
}

// credentialFile is the file's content. The token is the only secret.
type credentialFile struct {
	Token   string    `json:"token"`
	SavedAt time.Time `json:"saved_at"`
}

// NewCredentials keeps the file in dir; envToken, when not empty, is used
// instead of the file.
func NewCredentials(dir, envToken string) *Credentials {
	return &Credentials{dir: dir, envToken: strings.TrimSpace(envToken)}
}

// CredentialsFromEnv reads TODO_MCP_TOKEN and TODO_MCP_CONFIG_DIR through
// getenv; the directory defaults to os.UserConfigDir()/todo-mcp.
func CredentialsFromEnv(getenv func(string) string) (*Credentials, error) {
	dir := strings.TrimSpace(getenv(EnvConfigDir))
	switch {
	case dir == "":
		base, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("find the configuration directory (set %s): %w", EnvConfigDir, err)
		}
		dir = filepath.Join(base, "todo-mcp")
	case !filepath.IsAbs(dir):
		return nil, fmt.Errorf("%s must be an absolute path, not %q", EnvConfigDir, dir)
	}
	return NewCredentials(dir, getenv(EnvToken)), nil
}

// Path is the credential file.
func (c *Credentials) Path() string { return filepath.Join(c.dir, credentialFileName) }

// FromEnv reports whether TODO_MCP_TOKEN is set, in which case login,
// save_token and logout cannot change which token is used.
func (c *Credentials) FromEnv() bool { return c.envToken != "" }

// Token returns the token in use and where it comes from; an empty token
// means nobody is signed in. An unreadable file is an error.
func (c *Credentials) Token() (string, CredentialSource, error) {
	if c.envToken != "" {
		return c.envToken, SourceEnv, nil
	}
	b, err := os.ReadFile(c.Path())
	if err != nil {
		c.mu.Lock()
		mem := c.memToken
		c.mu.Unlock()
		switch {
		case mem != "":
			return mem, SourceMemory, nil
		case errors.Is(err, fs.ErrNotExist):
			return "", SourceNone, nil
		}
		return "", SourceNone, fmt.Errorf("read %s: %w", c.Path(), err)
	}
	var f credentialFile
	if err := json.Unmarshal(b, &f); err != nil {
		return "", SourceNone, fmt.Errorf("read %s: not a credential file this server wrote", c.Path())
	}
	return strings.TrimSpace(f.Token), SourceFile, nil
}

// Save replaces the credential file with token. The directory is created
// 0700 and must not be open to other users; the file is written 0600 under
// a temporary name and renamed, so a reader never sees half a file.
func (c *Credentials) Save(token string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.memToken = ""
	if err := c.ensureDir(); err != nil {
		c.memToken = token
		return err
	}
	b, err := json.Marshal(credentialFile{Token: token, SavedAt: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("encode credentials: %w", err)
	}
	tmp, err := os.CreateTemp(c.dir, ".credentials-*.json") // created 0600
	if err != nil {
		c.memToken = token
		return fmt.Errorf("save credentials in %s: %w", c.dir, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.Path())
	}
	if err != nil {
		c.memToken = token
		return fmt.Errorf("save credentials to %s: %w", c.Path(), err)
	}
	return nil
}

// ensureDir creates the directory 0700, and closes one that other users
// can enter: the directory is todo-mcp's own (the default, or the one
// TODO_MCP_CONFIG_DIR names for it).
func (c *Credentials) ensureDir() error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", c.dir, err)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	info, err := os.Stat(c.dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", c.dir, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(c.dir, 0o700); err != nil {
			return fmt.Errorf("%s is open to other users (mode %04o) and cannot be closed: %w", c.dir, info.Mode().Perm(), err)
		}
	}
	return nil
}

// Delete removes the credential file (and any token kept in memory). A
// missing file is not an error.
func (c *Credentials) Delete() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.memToken = ""
	// ENOTDIR: a file stands where the directory would be, so there is no credential file either.
	if err := os.Remove(c.Path()); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("delete %s: %w", c.Path(), err)
	}
	return nil
}
