package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/authn"
	"github.com/todo-mcp/todo-mcp/internal/cli"
	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
)

const tokenUsage = `authserver token: MCP tokens for unattended set-ups.

Usage:
  authserver token create --email E [--name N] [--client C] [--days D]
        print a new token for that user (created if needed) on stdout
  authserver token list   --email E
        list the user's live tokens (prefix, client, last use, expiry)
  authserver token revoke --email E [--client C]
        revoke the user's tokens (only those of client C, if given)
  authserver token revoke --token -
        revoke the token read from stdin
`

// tokenCommand runs `authserver token …`; out gets what a script reads (the
// token), everything else goes to the log.
func tokenCommand(ctx context.Context, args []string, cfg *config.Config, log *slog.Logger, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, tokenUsage)
		return errors.New("token: say create, list or revoke")
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, tokenUsage) }
	email := fs.String("email", "", "the user's email")
	name := fs.String("name", "", "the user's name, when creating the user")
	client := fs.String("client", "", "the client the token is for")
	days := fs.Int("days", int(authn.TokenLifetime/(24*time.Hour)), "days until the token expires")
	tokenArg := fs.String("token", "", "a token to revoke, or - to read it from stdin")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token %s: unexpected argument %q", args[0], fs.Arg(0))
	}
	st, err := cli.OpenStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	switch args[0] {
	case "create":
		if *client == "" {
			*client = "created by authserver token create"
		}
		if *days < 1 || *days > 3650 {
			return errors.New("token create: --days must be from 1 to 3650")
		}
		u, err := userForEmail(ctx, st, *email, *name, true)
		if err != nil {
			return err
		}
		tok := authn.NewToken()
		saved, err := st.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, ClientName: *client, Hash: tok.Hash, Prefix: tok.Prefix,
			ExpiresAt: time.Now().Add(time.Duration(*days) * 24 * time.Hour)})
		if err != nil {
			return err
		}
		log.Info("token created", "user_id", u.ID, "email", u.Email, "client", saved.ClientName, "prefix", saved.Prefix, "expires", saved.ExpiresAt.Format(time.DateOnly))
		_, err = fmt.Fprintln(out, tok.Plain)
		return err
	case "list":
		u, err := userForEmail(ctx, st, *email, "", false)
		if err != nil {
			return err
		}
		tokens, err := st.ListAPITokens(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			used := "never"
			if t.LastUsedAt != nil {
				used = t.LastUsedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(out, "%d\t%s…\t%s\tlast used %s\texpires %s\n", t.ID, t.Prefix, t.ClientName, used, t.ExpiresAt.Format(time.DateOnly))
		}
		return nil
	case "revoke":
		return revokeTokens(ctx, st, log, *email, *client, *tokenArg)
	default:
		fmt.Fprint(os.Stderr, tokenUsage)
		return fmt.Errorf("token: unknown command %q", args[0])
	}
}

func revokeTokens(ctx context.Context, st *store.Store, log *slog.Logger, email, client, tokenArg string) error {
	switch {
	case tokenArg != "" && email != "":
		return errors.New("token revoke: give --token or --email, not both")
	case tokenArg != "":
		plain := tokenArg
		if plain == "-" {
			b, err := io.ReadAll(io.LimitReader(os.Stdin, 4096))
			if err != nil {
				return err
			}
			plain = strings.TrimSpace(string(b))
		}
		if !authn.LooksLikeToken(plain) {
			return errors.New("token revoke: that is not a todo-mcp token (they start with " + authn.TokenPrefix + ")")
		}
		if err := st.RevokeAPITokenByHash(ctx, authn.HashToken(plain)); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errors.New("token revoke: no such token")
			}
			return err
		}
		log.Info("token revoked")
		return nil
	}
	u, err := userForEmail(ctx, st, email, "", false)
	if err != nil {
		return err
	}
	if client == "" {
		n, err := st.RevokeAllAPITokens(ctx, u.ID)
		if err != nil {
			return err
		}
		log.Info("tokens revoked", "user_id", u.ID, "count", n)
		return nil
	}
	tokens, err := st.ListAPITokens(ctx, u.ID)
	if err != nil {
		return err
	}
	n := 0
	for _, t := range tokens {
		if t.ClientName != client {
			continue
		}
		if err := st.RevokeAPIToken(ctx, u.ID, t.ID); err != nil {
			return err
		}
		n++
	}
	log.Info("tokens revoked", "user_id", u.ID, "count", n)
	return nil
}

// userForEmail finds the user with that email, creating one (subject
// local:<email>) when create is set.
func userForEmail(ctx context.Context, st *store.Store, email, name string, create bool) (store.User, error) {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return store.User{}, errors.New("token: --email must be an email address such as ada@example.com")
	}
	u, err := st.GetUserByEmail(ctx, email)
	switch {
	case errors.Is(err, store.ErrConflict):
		return store.User{}, fmt.Errorf("token: %v; remove the stale account or pick the user another way", err)
	case err == nil || !errors.Is(err, store.ErrNotFound):
		return u, err
	}
	if !create {
		return store.User{}, fmt.Errorf("token: no user with email %s", email)
	}
	if name == "" {
		name, _, _ = strings.Cut(email, "@")
	}
	return st.UpsertUser(ctx, store.Identity{Subject: "local:" + strings.ToLower(email), Email: email, Name: name})
}
