package web_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/todo-mcp/todo-mcp/internal/config"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
	"github.com/todo-mcp/todo-mcp/internal/web"
)

func TestHealthz(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			st := storetest.Open(t, backend, store.Options{})
			app := web.New(&config.Config{}, st, slog.New(slog.DiscardHandler))
			srv := httptest.NewServer(app.Routes())
			defer srv.Close()

			get := func() (int, map[string]string) {
				res, err := http.Get(srv.URL + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var body map[string]string
				if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
					t.Fatal(err)
				}
				return res.StatusCode, body
			}
			t.Run("answers ok while the database does", func(t *testing.T) {
				code, body := get()
				if code != http.StatusOK || body["status"] != "ok" || body["database"] != backend {
					t.Fatalf("%d %v", code, body)
				}
			})
			t.Run("answers 503 once the database is gone", func(t *testing.T) {
				st.Close()
				code, body := get()
				if code != http.StatusServiceUnavailable || body["status"] != "unavailable" {
					t.Fatalf("%d %v", code, body)
				}
			})
		})
	}
}
