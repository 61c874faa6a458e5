// Package authn holds the credentials todo-mcp mints and keeps: MCP tokens
// (opaque, random, stored only as hashes), the secrets and user codes of the
// connect flow, and the sealing of provider refresh tokens at rest.
package authn

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
)

// TokenPrefix starts every MCP token, so a leaked one is recognisable (and
// secret scanners can be taught to find it).
const TokenPrefix = "tmcp_"

// Lifetimes.
const (
	// TokenLifetime is how long an MCP token lives unless revoked.
	TokenLifetime = 90 * 24 * time.Hour
	// ConnectLifetime is how long a connect request waits for approval.
	ConnectLifetime = 10 * time.Minute
)

// displayPrefixLen is how much of a token is kept in clear to tell tokens
// apart: the prefix and 6 characters (36 bits), far from enough to guess it.
const displayPrefixLen = len(TokenPrefix) + 6

// Token is a freshly minted MCP token. Plain is shown once and never stored.
type Token struct {
	Plain  string
	Hash   []byte
	Prefix string
}

// NewToken mints a token of 256 random bits.
func NewToken() Token {
	plain := TokenPrefix + randomString(32)
	return Token{Plain: plain, Hash: HashToken(plain), Prefix: plain[:displayPrefixLen]}
}

// HashToken is the form a token is stored and looked up in. The token has
// 256 bits of entropy, so a plain SHA-256 is enough: there is nothing to
// brute-force, and a fast hash keeps every tool call cheap.
func HashToken(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// LooksLikeToken tells an MCP token from anything else pasted (a JWT, say).
func LooksLikeToken(s string) bool {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok || len(rest) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

// ConnectRequest is what the MCP side creates to start the connect flow:
// the id goes into the URL, the user code is shown in the editor and on the
// page, and the secret never leaves the MCP process (only its hash is
// stored).
type ConnectRequest struct {
	ID         string
	Secret     string
	SecretHash []byte
	UserCode   string
}

// NewConnectRequest draws a fresh id (128 bits), secret (256 bits) and user code.
func NewConnectRequest() ConnectRequest {
	secret := randomString(32)
	return ConnectRequest{
		ID:         randomString(16),
		Secret:     secret,
		SecretHash: HashToken(secret),
		UserCode:   NewUserCode(),
	}
}

// userCodeAlphabet leaves out letters and digits people confuse (0/O, 1/I/L, 5/S, 8/B, 2/Z, U/V).
const userCodeAlphabet = "ACDEFGHJKMNPQRTWXY34679"

// NewUserCode returns a code like "KCRT-7WXA" for a person to compare, not
// to type: it only has to be hard to match by chance.
func NewUserCode() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	code := make([]byte, 0, 9)
	for i, v := range b {
		if i == 4 {
			code = append(code, '-')
		}
		code = append(code, userCodeAlphabet[int(v)%len(userCodeAlphabet)])
	}
	return string(code)
}

// randomString returns n random bytes, base64url-encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
