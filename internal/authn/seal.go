package authn

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// CredentialProvider names the provider of the stored refresh token.
const CredentialProvider = "kinde"

// CredentialAD is the associated data that binds a sealed refresh token to
// its user's row.
func CredentialAD(userID int64) []byte {
	return fmt.Appendf(nil, "provider-credential:%s:%d", CredentialProvider, userID)
}

// Sealer encrypts small secrets at rest (provider refresh tokens) with
// AES-256-GCM under a key derived from the configured secret (JWT_SECRET).
// The associated data binds a ciphertext to its row, so one user's sealed
// token cannot be moved to another user's row and still open.
type Sealer struct{ aead cipher.AEAD }

// ErrUnseal means a sealed value was tampered with, moved, or sealed under
// another key.
var ErrUnseal = errors.New("cannot open sealed value: wrong key or tampered data")

// NewSealer derives the key with HKDF-SHA256.
func NewSealer(secret []byte) (*Sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("sealer: the secret must be at least 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "todo-mcp provider credentials v1", 32)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealer: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal returns nonce || ciphertext.
func (s *Sealer) Seal(plaintext, associated []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plaintext, associated)
}

// Open reverses Seal.
func (s *Sealer) Open(sealed, associated []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, ErrUnseal
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], associated)
	if err != nil {
		return nil, ErrUnseal
	}
	return out, nil
}
