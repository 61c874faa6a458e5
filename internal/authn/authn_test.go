package authn

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestTokens(t *testing.T) {
	t.Run("a token is prefixed, 256-bit, recognisable and hashed", func(t *testing.T) {
		tok := NewToken()
		if !strings.HasPrefix(tok.Plain, TokenPrefix) || len(tok.Plain) != len(TokenPrefix)+43 || !LooksLikeToken(tok.Plain) {
			t.Fatalf("token %q", tok.Plain)
		}
		if !bytes.Equal(tok.Hash, HashToken(tok.Plain)) || len(tok.Hash) != 32 {
			t.Fatal("hash mismatch")
		}
		if !strings.HasPrefix(tok.Plain, tok.Prefix) || len(tok.Prefix) != len(TokenPrefix)+6 {
			t.Fatalf("display prefix %q", tok.Prefix)
		}
	})
	t.Run("tokens never repeat", func(t *testing.T) {
		seen := map[string]bool{}
		for range 1000 {
			p := NewToken().Plain
			if seen[p] {
				t.Fatal("repeated token")
			}
			seen[p] = true
		}
	})
	t.Run("other strings do not look like tokens", func(t *testing.T) {
		for _, s := range []string{"", "tmcp_", "tmcp_short", "eyJhbGciOiJSUzI1NiJ9.e30.sig", "xmcp_" + strings.Repeat("a", 43), "tmcp_" + strings.Repeat("!", 43)} {
			if LooksLikeToken(s) {
				t.Errorf("%q looks like a token", s)
			}
		}
	})
}

func TestConnectRequests(t *testing.T) {
	c := NewConnectRequest()
	if len(c.ID) < 20 || len(c.Secret) < 40 || !bytes.Equal(c.SecretHash, HashToken(c.Secret)) {
		t.Fatalf("%+v", c)
	}
	for range 200 {
		code := NewUserCode()
		if len(code) != 9 || code[4] != '-' {
			t.Fatalf("user code %q", code)
		}
		for i, r := range code {
			if i != 4 && !strings.ContainsRune(userCodeAlphabet, r) {
				t.Fatalf("user code %q has %q", code, r)
			}
		}
	}
}

func TestSealer(t *testing.T) {
	s, err := NewSealer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal([]byte("refresh-token"), []byte("user:1"))
	if bytes.Contains(sealed, []byte("refresh-token")) {
		t.Fatal("plaintext visible")
	}
	t.Run("opens with the same key and row", func(t *testing.T) {
		got, err := s.Open(sealed, []byte("user:1"))
		if err != nil || string(got) != "refresh-token" {
			t.Fatalf("%q %v", got, err)
		}
	})
	t.Run("refuses another row, another key, or tampering", func(t *testing.T) {
		if _, err := s.Open(sealed, []byte("user:2")); err != ErrUnseal {
			t.Errorf("other row: %v", err)
		}
		other, _ := NewSealer([]byte(strings.Repeat("j", 32)))
		if _, err := other.Open(sealed, []byte("user:1")); err != ErrUnseal {
			t.Errorf("other key: %v", err)
		}
		bad := bytes.Clone(sealed)
		bad[len(bad)-1] ^= 1
		if _, err := s.Open(bad, []byte("user:1")); err != ErrUnseal {
			t.Errorf("tampered: %v", err)
		}
		if _, err := s.Open([]byte("short"), nil); err != ErrUnseal {
			t.Errorf("short: %v", err)
		}
	})
	t.Run("a short secret is refused", func(t *testing.T) {
		if _, err := NewSealer([]byte("short")); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestAFailedDiscoveryIsNotRetriedAtOnce(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	o := NewOIDC(OIDCConfig{IssuerURL: srv.URL, ClientID: "c", ClientSecret: "s", RedirectURL: "http://localhost/callback"})
	for range 5 {
		if _, err := o.AuthCodeURL(context.Background(), NewAuthStart(), nil); !errors.Is(err, ErrProviderUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the provider was asked %d times", n)
	}
}
