package billing_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/billing"
	"github.com/todo-mcp/todo-mcp/internal/kindetest"
	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

func TestACancellationWebhookReturnsTheUserToFreeAndKeepsTheirTodos(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			srv := h.webhookServer(t)
			u, ku := h.newUser(t, "Barbara Liskov")
			h.setPro(ku)
			h.refresh(t, u)
			for i := range 8 {
				if err := h.create(t, u, fmt.Sprintf("pro todo %d", i)); err != nil {
					t.Fatal(err)
				}
			}

			h.k.SetPlan(ku.Subject, nil, nil) // the subscription ends in Kinde
			body, id := h.k.Webhook("customer.agreement_cancelled", map[string]any{
				"customer": map[string]any{"id": "customer_0192b1a2", "user_id": ku.Subject},
			}, kindetest.WebhookOptions{})
			if d := deliver(t, srv, body, id); d.status != http.StatusOK {
				t.Fatalf("webhook answered %d: %s", d.status, d.body)
			}

			t.Run("the plan is free again", func(t *testing.T) {
				st := h.svc.Status(h.reload(t, u))
				if st.Plan != "free" || limitString(st) != "5" || st.Stale || *st.Remaining != 0 {
					t.Fatalf("status %+v", st)
				}
			})
			t.Run("every todo is kept", func(t *testing.T) {
				page, err := h.st.ListTodos(t.Context(), u.ID, store.TodoFilter{})
				if err != nil || len(page.Todos) != 8 || h.reload(t, u).TodoCount != 8 {
					t.Fatalf("%d todos listed, %v", len(page.Todos), err)
				}
			})
			t.Run("creating is refused above the free limit", func(t *testing.T) {
				if err := h.create(t, u, "over the limit"); !errors.Is(err, store.ErrLimitReached) {
					t.Fatalf("err = %v", err)
				}
			})
			t.Run("deleting under the limit makes room again", func(t *testing.T) {
				for n := int64(1); n <= 4; n++ {
					if _, err := h.st.DeleteTodo(t.Context(), u.ID, store.ByNumber(n)); err != nil {
						t.Fatal(err)
					}
				}
				if err := h.create(t, u, "the fifth"); err != nil {
					t.Fatalf("create at 4 of 5: %v", err)
				}
				if err := h.create(t, u, "the sixth"); !errors.Is(err, store.ErrLimitReached) {
					t.Fatalf("create at 5 of 5: %v", err)
				}
			})
		})
	}
}

func TestEveryBillingEventRereadsThePlanOfTheUserItNames(t *testing.T) {
	events := []struct {
		name string
		typ  string
		data func(subject string) map[string]any
	}{
		{"a plan assigned, naming data.user.id", "customer.plan_assigned",
			func(s string) map[string]any {
				return map[string]any{"user": map[string]any{"id": s}, "plan": map[string]any{"code": "pro"}}
			}},
		{"a plan changed, naming data.customer.user_id", "customer.plan_changed",
			func(s string) map[string]any { return map[string]any{"customer": map[string]any{"user_id": s}} }},
		{"an agreement created, naming data.user_id", "customer.agreement_created",
			func(s string) map[string]any { return map[string]any{"user_id": s, "agreement_id": "agreement_1"} }},
		{"an agreement cancelled, naming the user somewhere unexpected", "customer.agreement_cancelled",
			func(s string) map[string]any {
				return map[string]any{"subscription": map[string]any{"members": []any{map[string]any{"kinde_id": s}}}}
			}},
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			srv := h.webhookServer(t)
			u, ku := h.newUser(t, "Frances Allen")
			bystander, bku := h.newUser(t, "By Stander")
			h.refresh(t, bystander)
			for i, ev := range events {
				t.Run(ev.name, func(t *testing.T) {
					want := 10 + i
					h.setLimit(ku, "starter", want)
					h.setLimit(bku, "starter", 99)
					body, id := h.k.Webhook(ev.typ, ev.data(ku.Subject), kindetest.WebhookOptions{})
					if d := deliver(t, srv, body, id); d.status != http.StatusOK || !strings.Contains(d.body, "processed") {
						t.Fatalf("webhook answered %d: %s", d.status, d.body)
					}
					if got := limitString(h.svc.Status(h.reload(t, u))); got != fmt.Sprint(want) {
						t.Fatalf("limit %s, want %d", got, want)
					}
					if got := limitString(h.svc.Status(h.reload(t, bystander))); got != "5" {
						t.Fatalf("another user's plan changed too: limit %s", got)
					}
				})
			}
		})
	}
}

func TestWebhooksThatAreNotKindesChangeNothing(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			srv := h.webhookServer(t)
			u, ku := h.newUser(t, "Mallory Forger")
			h.refresh(t, u)
			h.setPro(ku) // what a processed event would pick up
			data := map[string]any{"user": map[string]any{"id": ku.Subject}}
			now := h.clock.Now()
			tamper := func(tok []byte, part int) []byte {
				parts := strings.Split(string(tok), ".")
				b := []byte(parts[part])
				i := len(b) / 2
				if b[i] == 'A' {
					b[i] = 'B'
				} else {
					b[i] = 'A'
				}
				parts[part] = string(b)
				return []byte(strings.Join(parts, "."))
			}
			// A body Kinde really signed, for another user, to splice.
			otherUser, _ := h.k.Webhook("customer.plan_changed", map[string]any{"user": map[string]any{"id": "kp_0000"}}, kindetest.WebhookOptions{})
			tests := []struct {
				name string
				body []byte
			}{
				{"signed with another key under Kinde's key ID", first(h.k.Webhook("customer.plan_changed", data,
					kindetest.WebhookOptions{Key: kindetest.OtherKey(), KeyID: h.k.KeyID()}))},
				{"signed with another key under its own key ID", first(h.k.Webhook("customer.plan_changed", data,
					kindetest.WebhookOptions{Key: kindetest.OtherKey()}))},
				{"unsigned (alg none)", first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{Alg: "none"}))},
				{"signed HS256 with the client secret", first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{Alg: "HS256"}))},
				{"signed by Kinde's key under RS384", first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{Alg: "RS384"}))},
				{"signed by Kinde's key under PS256", first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{Alg: "PS256"}))},
				{"with a tampered signature", tamper(first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{})), 2)},
				{"with a tampered payload", []byte(strings.Join([]string{
					strings.Split(string(otherUser), ".")[0],
					strings.Split(string(first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{}))), ".")[1],
					strings.Split(string(otherUser), ".")[2]}, "."))},
				{"expired", first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{
					IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}))},
				{"issued three days ago", first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{IssuedAt: now.Add(-72 * time.Hour)}))},
				{"issued in the future", first(h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{IssuedAt: now.Add(time.Hour)}))},
				{"an access token of the user instead of an event", []byte(h.k.SignAccessToken(h.k.DefaultAccessTokenClaims(ku, []string{"openid"}), kindetest.SignOptions{}))},
				{"not a JWT at all", []byte(`{"type":"customer.plan_changed","data":{"user":{"id":"` + ku.Subject + `"}}}`)},
				{"empty", nil},
			}
			for i, tc := range tests {
				t.Run("a webhook "+tc.name+" is refused with 401", func(t *testing.T) {
					before := h.k.RefreshTokens(ku.Subject)
					id := fmt.Sprintf("msg_refused_%d", i)
					d := deliver(t, srv, tc.body, id)
					if d.status != http.StatusUnauthorized {
						t.Fatalf("answered %d: %s", d.status, d.body)
					}
					if st := h.svc.Status(h.reload(t, u)); st.Plan != "free" || limitString(st) != "5" {
						t.Fatalf("the plan changed: %+v", st)
					}
					if h.k.RefreshTokens(ku.Subject) != before {
						t.Fatal("Kinde was asked about the user")
					}
					if fresh, err := h.st.RecordBillingEvent(t.Context(), id, "probe", 0); err != nil || !fresh {
						t.Fatalf("the refused delivery was recorded (fresh=%v, %v)", fresh, err)
					}
				})
			}
			t.Run("the same event, properly signed, is then processed", func(t *testing.T) {
				body, id := h.k.Webhook("customer.plan_changed", data, kindetest.WebhookOptions{})
				if d := deliver(t, srv, body, id); d.status != http.StatusOK {
					t.Fatalf("answered %d: %s", d.status, d.body)
				}
				if st := h.svc.Status(h.reload(t, u)); st.Plan != "pro" || !st.Unlimited() {
					t.Fatalf("status %+v", st)
				}
			})
		})
	}
}

func first(b []byte, _ string) []byte { return b }

func TestAReplayedWebhookHasNoSecondEffect(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			srv := h.webhookServer(t)
			u, ku := h.newUser(t, "Radia Perlman")
			h.setLimit(ku, "starter", 10)
			body, id := h.k.Webhook("customer.plan_changed", map[string]any{"customer": map[string]any{"user_id": ku.Subject}}, kindetest.WebhookOptions{})
			if d := deliver(t, srv, body, id); d.status != http.StatusOK || !strings.Contains(d.body, "processed") {
				t.Fatalf("first delivery answered %d: %s", d.status, d.body)
			}
			if got := limitString(h.svc.Status(h.reload(t, u))); got != "10" {
				t.Fatalf("limit %s after the first delivery", got)
			}
			h.setLimit(ku, "starter", 20) // changed in Kinde without an event of its own
			before := h.k.RefreshTokens(ku.Subject)

			for _, tc := range []struct{ name, id string }{
				{"a retry with the same webhook-id", id},
				{"the same signed event under another webhook-id", "msg_replayed_elsewhere"},
			} {
				t.Run(tc.name+" is acknowledged and does nothing", func(t *testing.T) {
					d := deliver(t, srv, body, tc.id)
					if d.status != http.StatusOK || !strings.Contains(d.body, "duplicate") {
						t.Fatalf("answered %d: %s", d.status, d.body)
					}
					if got := limitString(h.svc.Status(h.reload(t, u))); got != "10" {
						t.Fatalf("limit %s: the replay was processed", got)
					}
					if h.k.RefreshTokens(ku.Subject) != before {
						t.Fatal("the replay asked Kinde")
					}
				})
			}
		})
	}
}

func TestWebhooksThatNeedNoWork(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			h := newHarness(t, backend)
			srv := h.webhookServer(t)
			u, ku := h.newUser(t, "Ignored Events")
			h.refresh(t, u)
			h.setPro(ku)
			before := h.k.RefreshTokens(ku.Subject)

			t.Run("an event type we do not handle is acknowledged and ignored", func(t *testing.T) {
				body, id := h.k.Webhook("user.updated", map[string]any{"user": map[string]any{"id": ku.Subject}}, kindetest.WebhookOptions{})
				d := deliver(t, srv, body, id)
				if d.status != http.StatusOK || !strings.Contains(d.body, "ignored") {
					t.Fatalf("answered %d: %s", d.status, d.body)
				}
				if h.k.RefreshTokens(ku.Subject) != before || h.svc.Status(h.reload(t, u)).Plan != "free" {
					t.Fatal("an ignored event re-read the plan")
				}
			})
			t.Run("a billing event for someone we do not know is acknowledged", func(t *testing.T) {
				stranger := kindetest.NewUser("stranger@example.com", "Stranger")
				body, id := h.k.Webhook("customer.plan_assigned", map[string]any{"user": map[string]any{"id": stranger.Subject}}, kindetest.WebhookOptions{})
				d := deliver(t, srv, body, id)
				if d.status != http.StatusOK || !strings.Contains(d.body, "no_user") {
					t.Fatalf("answered %d: %s", d.status, d.body)
				}
			})
			t.Run("a billing event while Kinde's API fails asks for a retry, which then takes effect", func(t *testing.T) {
				h.k.SetPlan(ku.Subject, []kindetest.Plan{{Key: "pro", Name: "Pro"}}, nil)
				h.k.SetFailure("/account_api/v1/entitlements", http.StatusServiceUnavailable)
				body, id := h.k.Webhook("customer.plan_assigned", map[string]any{"user": map[string]any{"id": ku.Subject}}, kindetest.WebhookOptions{})
				if d := deliver(t, srv, body, id); d.status != http.StatusServiceUnavailable {
					t.Fatalf("answered %d: %s", d.status, d.body)
				}
				if st := h.svc.Status(h.reload(t, u)); st.Plan != "free" {
					t.Fatalf("status %+v while Kinde fails", st)
				}
				if !strings.Contains(h.logs.String(), "the plan could not be read again") {
					t.Fatal("the failure was not logged")
				}
				// Kinde retries the same delivery once its API is back.
				h.k.SetFailure("/account_api/v1/entitlements", 0)
				if d := deliver(t, srv, body, id); d.status != http.StatusOK || !strings.Contains(d.body, "processed") {
					t.Fatalf("the retry answered %d: %s", d.status, d.body)
				}
				if st := h.svc.Status(h.reload(t, u)); st.Plan != "pro" {
					t.Fatalf("status %+v after the retry", st)
				}
				if d := deliver(t, srv, body, id); !strings.Contains(d.body, "duplicate") {
					t.Fatalf("a second retry after success: %d %s", d.status, d.body)
				}
			})
		})
	}
}

func TestTheWebhookEndpointChecksTheRequest(t *testing.T) {
	h := newHarness(t, storetest.Backends[0])
	srv := h.webhookServer(t)
	body, id := h.k.Webhook("customer.plan_changed", nil, kindetest.WebhookOptions{})
	post := func(contentType string, body []byte) delivery {
		req, err := kindetest.NewWebhookRequest(t.Context(), srv.URL, body, id)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		return do(t, req)
	}
	tests := []struct {
		name string
		got  func() delivery
		want int
	}{
		{"a GET is not allowed", func() delivery {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
			return do(t, req)
		}, http.StatusMethodNotAllowed},
		{"a JSON body is not accepted", func() delivery { return post("application/json", body) }, http.StatusUnsupportedMediaType},
		{"a body over 64 KiB is refused", func() delivery { return post("application/jwt", []byte(strings.Repeat("a", 65<<10))) }, http.StatusRequestEntityTooLarge},
		{"a charset parameter is fine", func() delivery { return post("application/jwt; charset=utf-8", body) }, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := tc.got(); d.status != tc.want {
				t.Fatalf("answered %d, want %d: %s", d.status, tc.want, d.body)
			}
		})
	}
}

func TestTheWebhookSigningKeys(t *testing.T) {
	h := newHarness(t, storetest.Backends[0])
	u, ku := h.newUser(t, "Key Rotation")
	h.refresh(t, u)
	event := func() ([]byte, string) {
		return h.k.Webhook("customer.plan_changed", map[string]any{"user": map[string]any{"id": ku.Subject}}, kindetest.WebhookOptions{})
	}

	t.Run("when Kinde's JWKS cannot be fetched the delivery is refused with 503 so that Kinde retries", func(t *testing.T) {
		srv := h.webhookServer(t)
		h.k.SetFailure("/.well-known/jwks", http.StatusInternalServerError)
		defer h.k.SetFailure("/.well-known/jwks", 0)
		h.setLimit(ku, "starter", 7)
		body, id := event()
		if d := deliver(t, srv, body, id); d.status != http.StatusServiceUnavailable {
			t.Fatalf("answered %d: %s", d.status, d.body)
		}
		if fresh, _ := h.st.RecordBillingEvent(t.Context(), id, "probe", 0); !fresh {
			t.Fatal("the delivery was recorded, so Kinde's retry would be ignored")
		}
	})
	t.Run("a key Kinde rotated in is picked up", func(t *testing.T) {
		srv := h.webhookServer(t)
		body, id := event()
		if d := deliver(t, srv, body, id); d.status != http.StatusOK {
			t.Fatalf("answered %d: %s", d.status, d.body)
		}
		h.k.RotateSigningKey()
		h.setLimit(ku, "starter", 8)
		h.clock.Advance(2 * time.Minute) // past the refetch pause
		body, id = event()
		if d := deliver(t, srv, body, id); d.status != http.StatusOK {
			t.Fatalf("answered %d: %s", d.status, d.body)
		}
		if got := limitString(h.svc.Status(h.reload(t, u))); got != "8" {
			t.Fatalf("limit %s", got)
		}
	})
	t.Run("in local mode there is no webhook endpoint", func(t *testing.T) {
		local := billing.NewService(h.st, billing.Local{PublicURL: publicURL}, billing.ServiceConfig{FreeLimit: freeLimit})
		srv := newServer(t, billing.NewWebhookHandler(local, billing.WebhookConfig{IssuerURL: h.k.URL}))
		body, id := event()
		if d := deliver(t, srv, body, id); d.status != http.StatusNotFound {
			t.Fatalf("answered %d", d.status)
		}
	})
}

// webhookServer serves the handler for h's service.
func (h *harness) webhookServer(t *testing.T) *httptest.Server {
	t.Helper()
	return newServer(t, billing.NewWebhookHandler(h.svc, billing.WebhookConfig{IssuerURL: h.k.URL, Logger: h.log, Now: h.clock.Now}))
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type delivery struct {
	status int
	body   string
}

// deliver POSTs a webhook the way Kinde does.
func deliver(t *testing.T, srv *httptest.Server, body []byte, webhookID string) delivery {
	t.Helper()
	req, err := kindetest.NewWebhookRequest(t.Context(), srv.URL, body, webhookID)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) delivery {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return delivery{status: resp.StatusCode, body: b.String()}
}
