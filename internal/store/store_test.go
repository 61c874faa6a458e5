package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/internal/store/storetest"
)

// clock is a settable time source shared by a store and its test.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.set(t); return c }
func (c *clock) now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) {
	c.ns.Add(int64(d))
}

var epoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// suite runs fn against every backend with a store on a fixed clock.
func suite(t *testing.T, fn func(t *testing.T, s *store.Store, clk *clock)) {
	for _, b := range storetest.Backends {
		t.Run(b, func(t *testing.T) {
			clk := newClock(epoch)
			fn(t, storetest.Open(t, b, store.Options{Now: clk.now}), clk)
		})
	}
}

func newUser(t *testing.T, s *store.Store, name string) store.User {
	t.Helper()
	u, err := s.UpsertUser(context.Background(), store.Identity{Subject: "kp_" + name, Email: name + "@example.com", Name: name})
	if err != nil {
		t.Fatalf("upsert user %s: %v", name, err)
	}
	return u
}

func mustCreate(t *testing.T, s *store.Store, userID int64, n store.NewTodo) store.Todo {
	t.Helper()
	todo, err := s.CreateTodo(context.Background(), userID, store.NoLimit, n)
	if err != nil {
		t.Fatalf("create %q: %v", n.Title, err)
	}
	return todo
}

func ptr[T any](v T) *T { return &v }

func numbers(todos []store.Todo) []int64 {
	out := make([]int64, len(todos))
	for i, t := range todos {
		out[i] = t.Number
	}
	return out
}

func TestUsers(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, clk *clock) {
		ctx := context.Background()
		t.Run("a first sign-in creates the user on the free plan", func(t *testing.T) {
			u := newUser(t, s, "ada")
			if u.ID == 0 || u.Plan.Plan != "free" || u.Plan.Source != "local" || u.TodoCount != 0 || !u.CreatedAt.Equal(epoch) {
				t.Fatalf("new user = %+v", u)
			}
		})
		t.Run("a later sign-in keeps the id and updates email and name", func(t *testing.T) {
			first := newUser(t, s, "bob")
			clk.add(time.Hour)
			again, err := s.UpsertUser(ctx, store.Identity{Subject: "kp_bob", Email: "bob@new.example", Name: "Bob B"})
			if err != nil {
				t.Fatal(err)
			}
			if again.ID != first.ID || again.Email != "bob@new.example" || again.Name != "Bob B" {
				t.Fatalf("after second sign-in: %+v", again)
			}
			if !again.CreatedAt.Equal(first.CreatedAt) || !again.UpdatedAt.Equal(epoch.Add(time.Hour)) {
				t.Fatalf("timestamps: created %v updated %v", again.CreatedAt, again.UpdatedAt)
			}
		})
		t.Run("fifty simultaneous first sign-ins make one user", func(t *testing.T) {
			var wg sync.WaitGroup
			ids := make([]int64, 50)
			errs := make([]error, 50)
			for i := range 50 {
				wg.Go(func() {
					u, err := s.UpsertUser(ctx, store.Identity{Subject: "kp_race", Email: "race@example.com", Name: "Race"})
					ids[i], errs[i] = u.ID, err
				})
			}
			wg.Wait()
			for i := range 50 {
				if errs[i] != nil || ids[i] != ids[0] {
					t.Fatalf("sign-in %d: id %d err %v (first id %d)", i, ids[i], errs[i], ids[0])
				}
			}
		})
		t.Run("users are found by id, subject and email", func(t *testing.T) {
			u := newUser(t, s, "cleo")
			for name, get := range map[string]func() (store.User, error){
				"id":      func() (store.User, error) { return s.GetUser(ctx, u.ID) },
				"subject": func() (store.User, error) { return s.GetUserBySubject(ctx, "kp_cleo") },
				"email":   func() (store.User, error) { return s.GetUserByEmail(ctx, "CLEO@example.com") },
			} {
				got, err := get()
				if err != nil || got.ID != u.ID {
					t.Errorf("by %s: %+v, %v", name, got, err)
				}
			}
			if _, err := s.GetUser(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("missing user: %v", err)
			}
		})
		t.Run("an email two users share is not guessed", func(t *testing.T) {
			for _, subject := range []string{"dev:shared@example.com", "kp_shared"} {
				if _, err := s.UpsertUser(ctx, store.Identity{Subject: subject, Email: "shared@example.com", Name: "S"}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.GetUserByEmail(ctx, "Shared@example.com"); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("an empty subject is refused", func(t *testing.T) {
			_, err := s.UpsertUser(ctx, store.Identity{Subject: "  "})
			var ve *store.ValidationError
			if !errors.As(err, &ve) || ve.Field != "subject" {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("the plan billing decides is kept", func(t *testing.T) {
			u := newUser(t, s, "dora")
			at := epoch.Add(time.Minute)
			got, err := s.SetPlan(ctx, u.ID, store.PlanState{Plan: "pro", Source: "kinde", RefreshedAt: &at})
			if err != nil {
				t.Fatal(err)
			}
			if got.Plan.Plan != "pro" || got.Plan.Limit != nil || got.Plan.Source != "kinde" || !got.Plan.RefreshedAt.Equal(at) {
				t.Fatalf("plan = %+v", got.Plan)
			}
			got, err = s.SetPlan(ctx, u.ID, store.PlanState{Plan: "free", Limit: ptr(5), Source: "local"})
			if err != nil || *got.Plan.Limit != 5 || got.Plan.RefreshedAt != nil {
				t.Fatalf("back to free: %+v, %v", got.Plan, err)
			}
			if _, err := s.SetPlan(ctx, 999999, store.PlanState{Plan: "pro"}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("missing user: %v", err)
			}
		})
	})
}

func TestTodoLifecycle(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, clk *clock) {
		ctx := context.Background()
		u := newUser(t, s, "ada")
		due := store.Due{At: time.Date(2026, 11, 27, 15, 4, 0, 0, time.FixedZone("CET", 3600)), AllDay: false}

		created := mustCreate(t, s, u.ID, store.NewTodo{
			Title: "Buy milk", Description: "2 litres", Due: &due, Priority: store.PriorityHigh,
			Tags: []string{" Groceries ", "groceries", "Home"},
		})
		t.Run("a created todo has number 1 and every field", func(t *testing.T) {
			if created.Number != 1 || created.Title != "Buy milk" || created.Description != "2 litres" ||
				created.Priority != store.PriorityHigh || created.Completed || created.CompletedAt != nil {
				t.Fatalf("created = %+v", created)
			}
			if created.Due == nil || !created.Due.At.Equal(due.At) || created.Due.AllDay || created.Due.String() != "2026-11-27T14:04:00Z" {
				t.Fatalf("due = %+v", created.Due)
			}
			if strings.Join(created.Tags, ",") != "groceries,home" {
				t.Fatalf("tags = %q (want trimmed, lower-cased, deduplicated)", created.Tags)
			}
			if !created.CreatedAt.Equal(epoch) || !created.UpdatedAt.Equal(epoch) {
				t.Fatalf("timestamps = %v %v", created.CreatedAt, created.UpdatedAt)
			}
		})
		t.Run("get by number and by id return the same todo", func(t *testing.T) {
			byNumber, err := s.GetTodo(ctx, u.ID, store.ByNumber(1))
			if err != nil {
				t.Fatal(err)
			}
			byID, err := s.GetTodo(ctx, u.ID, store.ByID(created.ID))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(byNumber) != fmt.Sprint(created) || fmt.Sprint(byID) != fmt.Sprint(created) {
				t.Fatalf("got %+v / %+v, want %+v", byNumber, byID, created)
			}
		})
		t.Run("completing stamps completed_at once and reopening clears it", func(t *testing.T) {
			clk.add(time.Hour)
			done, err := s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{Completed: ptr(true)})
			if err != nil {
				t.Fatal(err)
			}
			if !done.Completed || done.CompletedAt == nil || !done.CompletedAt.Equal(epoch.Add(time.Hour)) {
				t.Fatalf("completed: %+v", done)
			}
			clk.add(time.Hour)
			again, err := s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{Completed: ptr(true)})
			if err != nil || !again.CompletedAt.Equal(epoch.Add(time.Hour)) {
				t.Fatalf("completing twice moved completed_at: %+v, %v", again.CompletedAt, err)
			}
			open, err := s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{Completed: ptr(false)})
			if err != nil || open.Completed || open.CompletedAt != nil {
				t.Fatalf("reopened: %+v, %v", open, err)
			}
		})
		t.Run("a partial update changes only the fields given, and empty values clear", func(t *testing.T) {
			got, err := s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{Title: ptr("Buy oat milk")})
			if err != nil {
				t.Fatal(err)
			}
			if got.Title != "Buy oat milk" || got.Description != "2 litres" || got.Priority != store.PriorityHigh ||
				got.Due == nil || len(got.Tags) != 2 || !got.UpdatedAt.Equal(clk.now()) {
				t.Fatalf("after title update: %+v", got)
			}
			got, err = s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{
				Description: ptr(""), ClearDue: true, Priority: ptr(store.PriorityNone), Tags: &[]string{},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.Description != "" || got.Due != nil || got.Priority != store.PriorityNone || len(got.Tags) != 0 || got.Title != "Buy oat milk" {
				t.Fatalf("after clearing: %+v", got)
			}
			day := store.Due{At: time.Date(2026, 12, 24, 18, 30, 0, 0, time.UTC), AllDay: true}
			got, err = s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{Due: &day})
			if err != nil || got.Due == nil || !got.Due.AllDay || got.Due.String() != "2026-12-24" {
				t.Fatalf("all-day due: %+v, %v", got.Due, err)
			}
		})
		t.Run("an empty patch, or setting and clearing due at once, is refused", func(t *testing.T) {
			if _, err := s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{}); !errors.Is(err, store.ErrInvalidInput) {
				t.Fatalf("empty patch: %v", err)
			}
			if _, err := s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{Due: &due, ClearDue: true}); !errors.Is(err, store.ErrInvalidInput) {
				t.Fatalf("set and clear: %v", err)
			}
		})
		t.Run("numbers are never reused after a delete", func(t *testing.T) {
			second := mustCreate(t, s, u.ID, store.NewTodo{Title: "second"})
			deleted, err := s.DeleteTodo(ctx, u.ID, store.ByNumber(second.Number))
			if err != nil || deleted.Title != "second" {
				t.Fatalf("delete: %+v, %v", deleted, err)
			}
			third := mustCreate(t, s, u.ID, store.NewTodo{Title: "third"})
			if second.Number != 2 || third.Number != 3 {
				t.Fatalf("numbers %d then %d, want 2 then 3", second.Number, third.Number)
			}
			if _, err := s.GetTodo(ctx, u.ID, store.ByNumber(2)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleted todo still found: %v", err)
			}
			if _, err := s.DeleteTodo(ctx, u.ID, store.ByNumber(2)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}
		})
		t.Run("the user's counter follows creates and deletes", func(t *testing.T) {
			got, err := s.GetUser(ctx, u.ID)
			if err != nil || got.TodoCount != 2 {
				t.Fatalf("todo count = %d, %v; want 2", got.TodoCount, err)
			}
			usage, err := s.Usage(ctx, u.ID)
			if err != nil || usage.Total != 2 || usage.Open != 2 || usage.Completed != 0 {
				t.Fatalf("usage = %+v, %v", usage, err)
			}
		})
		t.Run("a todo for a user that does not exist is not found", func(t *testing.T) {
			if _, err := s.CreateTodo(ctx, 999999, 5, store.NewTodo{Title: "x"}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v", err)
			}
		})
	})
}

func TestTextIsStoredVerbatim(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, _ *clock) {
		u := newUser(t, s, "ada")
		for _, title := range []string{
			"Café ☕ — naïve résumé",
			"家族に電話する 📞",
			"emoji only 🎉🎉🎉👩‍👩‍👧‍👦",
			"Robert'); DROP TABLE todos;--",
			`100% done_ \ "quoted" ' $1 ?`,
			"  leading and trailing spaces  ",
			"مرحبا بالعالم",
			strings.Repeat("é", store.MaxTitleLen),
		} {
			t.Run(fmt.Sprintf("%.20q", title), func(t *testing.T) {
				desc := "desc: " + title + "\nline two\ttab"
				c := mustCreate(t, s, u.ID, store.NewTodo{Title: title, Description: desc})
				got, err := s.GetTodo(context.Background(), u.ID, store.ByNumber(c.Number))
				if err != nil || got.Title != title || got.Description != desc {
					t.Fatalf("got %q / %q, %v", got.Title, got.Description, err)
				}
			})
		}
		t.Run("LIKE wildcards in a search match only themselves", func(t *testing.T) {
			page, err := s.ListTodos(context.Background(), u.ID, store.TodoFilter{Query: "100%"})
			if err != nil || len(page.Todos) != 1 {
				t.Fatalf("query 100%%: %d todos, %v", len(page.Todos), err)
			}
			page, err = s.ListTodos(context.Background(), u.ID, store.TodoFilter{Query: "_"})
			if err != nil || len(page.Todos) != 1 {
				t.Fatalf("query _: %d todos, %v", len(page.Todos), err)
			}
		})
	})
}

func TestInvalidInputIsRefused(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, _ *clock) {
		ctx := context.Background()
		u := newUser(t, s, "ada")
		mustCreate(t, s, u.ID, store.NewTodo{Title: "keep me"})
		manyTags := make([]string, store.MaxTags+1)
		for i := range manyTags {
			manyTags[i] = fmt.Sprintf("t%d", i)
		}
		for _, tc := range []struct {
			name  string
			todo  store.NewTodo
			field string
		}{
			{"an empty title", store.NewTodo{Title: ""}, "title"},
			{"a blank title", store.NewTodo{Title: " \t\n"}, "title"},
			{"a title of 501 characters", store.NewTodo{Title: strings.Repeat("a", 501)}, "title"},
			{"a 10 MB title", store.NewTodo{Title: strings.Repeat("x", 10<<20)}, "title"},
			{"a title with invalid UTF-8", store.NewTodo{Title: "bad \xff byte"}, "title"},
			{"a title with a NUL", store.NewTodo{Title: "nul\x00byte"}, "title"},
			{"a description over 10 000 characters", store.NewTodo{Title: "t", Description: strings.Repeat("d", 10001)}, "description"},
			{"an unknown priority", store.NewTodo{Title: "t", Priority: "urgent"}, "priority"},
			{"eleven tags", store.NewTodo{Title: "t", Tags: manyTags}, "tags"},
			{"a tag of 33 characters", store.NewTodo{Title: "t", Tags: []string{strings.Repeat("t", 33)}}, "tags"},
			{"an empty tag", store.NewTodo{Title: "t", Tags: []string{" "}}, "tags"},
		} {
			t.Run(tc.name+" is refused with the field named", func(t *testing.T) {
				_, err := s.CreateTodo(ctx, u.ID, store.NoLimit, tc.todo)
				var ve *store.ValidationError
				if !errors.As(err, &ve) || ve.Field != tc.field || !errors.Is(err, store.ErrInvalidInput) {
					t.Fatalf("err = %v, want a validation error on %s", err, tc.field)
				}
				if len(err.Error()) > 200 {
					t.Fatalf("error message is %d bytes long", len(err.Error()))
				}
			})
		}
		t.Run("an invalid update changes nothing", func(t *testing.T) {
			if _, err := s.UpdateTodo(ctx, u.ID, store.ByNumber(1), store.TodoPatch{Title: ptr(strings.Repeat("a", 501)), Completed: ptr(true)}); !errors.Is(err, store.ErrInvalidInput) {
				t.Fatalf("err = %v", err)
			}
			got, err := s.GetTodo(ctx, u.ID, store.ByNumber(1))
			if err != nil || got.Title != "keep me" || got.Completed {
				t.Fatalf("todo after refused update: %+v, %v", got, err)
			}
		})
		t.Run("refused creates use no slot", func(t *testing.T) {
			got, _ := s.GetUser(ctx, u.ID)
			if got.TodoCount != 1 {
				t.Fatalf("todo count %d, want 1", got.TodoCount)
			}
		})
		t.Run("bad list arguments are refused", func(t *testing.T) {
			for _, f := range []store.TodoFilter{
				{Limit: store.MaxPageSize + 1}, {Limit: -1}, {Cursor: "not-a-cursor"},
				{Status: "done"}, {Priority: "urgent"}, {Tag: strings.Repeat("t", 40)},
			} {
				if _, err := s.ListTodos(ctx, u.ID, f); !errors.Is(err, store.ErrInvalidInput) {
					t.Errorf("filter %+v: err = %v", f, err)
				}
			}
		})
	})
}

func TestListFilters(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, clk *clock) {
		ctx := context.Background()
		u := newUser(t, s, "ada")
		other := newUser(t, s, "bob")
		at := func(d time.Duration) *store.Due { return &store.Due{At: epoch.Add(d)} }
		day := func(y int, m time.Month, d int) *store.Due {
			return &store.Due{At: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), AllDay: true}
		}
		// 1: overdue by an hour; 2: due tomorrow; 3: all-day yesterday (overdue);
		// 4: all-day today (not overdue yet); 5: completed and past due; 6: no due date.
		mustCreate(t, s, u.ID, store.NewTodo{Title: "Call the bank", Due: at(-time.Hour), Priority: store.PriorityHigh, Tags: []string{"admin"}})
		mustCreate(t, s, u.ID, store.NewTodo{Title: "Buy milk", Description: "oat MILK please", Due: at(24 * time.Hour), Tags: []string{"groceries", "home"}})
		mustCreate(t, s, u.ID, store.NewTodo{Title: "Pay rent", Due: day(2026, 11, 24), Priority: store.PriorityHigh, Tags: []string{"home"}})
		mustCreate(t, s, u.ID, store.NewTodo{Title: "Water plants", Due: day(2026, 11, 25), Priority: store.PriorityLow, Tags: []string{"home"}})
		mustCreate(t, s, u.ID, store.NewTodo{Title: "Old report", Due: at(-48 * time.Hour), Priority: store.PriorityMedium})
		mustCreate(t, s, u.ID, store.NewTodo{Title: "Read a book about milk", Tags: []string{"fun"}})
		if _, err := s.UpdateTodo(ctx, u.ID, store.ByNumber(5), store.TodoPatch{Completed: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		mustCreate(t, s, other.ID, store.NewTodo{Title: "Bob's milk", Tags: []string{"groceries"}, Due: at(-time.Hour)})

		for _, tc := range []struct {
			name   string
			filter store.TodoFilter
			want   string
		}{
			{"no filter lists every todo of the user in number order", store.TodoFilter{}, "[1 2 3 4 5 6]"},
			{"status all is the same as none", store.TodoFilter{Status: store.StatusAll}, "[1 2 3 4 5 6]"},
			{"status open leaves out completed todos", store.TodoFilter{Status: store.StatusOpen}, "[1 2 3 4 6]"},
			{"status completed keeps only completed todos", store.TodoFilter{Status: store.StatusCompleted}, "[5]"},
			{"query matches title or description ignoring case", store.TodoFilter{Query: "MiLk"}, "[2 6]"},
			{"tag matches exactly, ignoring case", store.TodoFilter{Tag: "HOME"}, "[2 3 4]"},
			{"a tag nobody uses matches nothing", store.TodoFilter{Tag: "hom"}, "[]"},
			{"priority matches exactly", store.TodoFilter{Priority: store.PriorityHigh}, "[1 3]"},
			{"due before is exclusive", store.TodoFilter{DueBefore: ptr(time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))}, "[3 5]"},
			{"due after is inclusive", store.TodoFilter{DueAfter: ptr(epoch.Add(-time.Hour))}, "[1 2]"},
			{"a due range", store.TodoFilter{DueAfter: ptr(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)), DueBefore: ptr(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC))}, "[1 3 4]"},
			{"overdue keeps open todos past their time or day", store.TodoFilter{Overdue: true}, "[1 3]"},
			{"filters combine", store.TodoFilter{Overdue: true, Tag: "home"}, "[3]"},
			{"filters combine with status", store.TodoFilter{Status: store.StatusOpen, Query: "milk", Tag: "groceries"}, "[2]"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				page, err := s.ListTodos(ctx, u.ID, tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				if got := fmt.Sprint(numbers(page.Todos)); got != tc.want {
					t.Fatalf("got %s, want %s", got, tc.want)
				}
				if page.NextCursor != "" {
					t.Fatalf("a single page has a next cursor %q", page.NextCursor)
				}
			})
		}
		t.Run("an all-day todo becomes overdue when its day ends", func(t *testing.T) {
			clk.set(time.Date(2026, 11, 26, 0, 0, 1, 0, time.UTC))
			defer clk.set(epoch)
			page, err := s.ListTodos(ctx, u.ID, store.TodoFilter{Overdue: true})
			if err != nil || fmt.Sprint(numbers(page.Todos)) != "[1 3 4]" {
				t.Fatalf("overdue next day: %v, %v", numbers(page.Todos), err)
			}
		})
		t.Run("usage counts open, completed and overdue", func(t *testing.T) {
			usage, err := s.Usage(ctx, u.ID)
			if err != nil || usage != (store.Usage{Total: 6, Open: 5, Completed: 1, Overdue: 2}) {
				t.Fatalf("usage = %+v, %v", usage, err)
			}
		})
	})
}

func TestPagination(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, _ *clock) {
		ctx := context.Background()
		u := newUser(t, s, "ada")
		const initial = 1050
		for i := range initial {
			mustCreate(t, s, u.ID, store.NewTodo{Title: fmt.Sprintf("todo %d", i), Tags: []string{[]string{"even", "odd"}[i%2]}})
		}
		t.Run("paging through 1050 todos while others are inserted sees each exactly once", func(t *testing.T) {
			stop := make(chan struct{})
			var inserted atomic.Int64
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := s.CreateTodo(ctx, u.ID, store.NoLimit, store.NewTodo{Title: "concurrent", Tags: []string{"even"}}); err != nil {
						t.Errorf("concurrent insert: %v", err)
						return
					}
					inserted.Add(1)
				}
			})
			seen := map[int64]int{}
			cursor, pages, last := "", 0, int64(0)
			for {
				page, err := s.ListTodos(ctx, u.ID, store.TodoFilter{Limit: 37, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, td := range page.Todos {
					seen[td.Number]++
					if td.Number <= last {
						t.Fatalf("order broken: %d after %d", td.Number, last)
					}
					last = td.Number
				}
				if page.NextCursor == "" || pages > 200 {
					break
				}
				cursor = page.NextCursor
				if pages == 1 {
					// Let the writer get going, so later pages race with inserts.
					for inserted.Load() < 10 {
						time.Sleep(time.Millisecond)
					}
				}
			}
			close(stop)
			wg.Wait()
			for n := int64(1); n <= initial; n++ {
				if seen[n] != 1 {
					t.Fatalf("todo %d seen %d times", n, seen[n])
				}
			}
			for n, c := range seen {
				if c != 1 {
					t.Fatalf("todo %d seen %d times", n, c)
				}
			}
			if inserted.Load() == 0 {
				t.Fatal("no insert ran during paging")
			}
			t.Logf("%d pages, %d rows seen, %d inserted meanwhile", pages, len(seen), inserted.Load())
		})
		t.Run("a filtered list pages too", func(t *testing.T) {
			total, cursor := 0, ""
			for {
				page, err := s.ListTodos(ctx, u.ID, store.TodoFilter{Tag: "odd", Limit: store.MaxPageSize, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				total += len(page.Todos)
				if page.NextCursor == "" {
					break
				}
				cursor = page.NextCursor
			}
			if total != initial/2 {
				t.Fatalf("odd todos: %d, want %d", total, initial/2)
			}
		})
		t.Run("the default page holds 20", func(t *testing.T) {
			page, err := s.ListTodos(ctx, u.ID, store.TodoFilter{})
			if err != nil || len(page.Todos) != store.DefaultPageSize || page.NextCursor == "" {
				t.Fatalf("default page: %d todos, cursor %q, %v", len(page.Todos), page.NextCursor, err)
			}
		})
	})
}

func TestUsersAreIsolated(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, _ *clock) {
		ctx := context.Background()
		a, b := newUser(t, s, "alice"), newUser(t, s, "bob")
		aliceTodo := mustCreate(t, s, a.ID, store.NewTodo{Title: "alice's secret"})
		bobTodo := mustCreate(t, s, b.ID, store.NewTodo{Title: "bob's own"})
		if aliceTodo.Number != 1 || bobTodo.Number != 1 {
			t.Fatalf("numbers are per user: alice %d, bob %d", aliceTodo.Number, bobTodo.Number)
		}
		for _, key := range []struct {
			name string
			key  store.TodoKey
		}{{"by number", store.ByNumber(aliceTodo.Number)}, {"by id", store.ByID(aliceTodo.ID)}} {
			t.Run("bob cannot get alice's todo "+key.name, func(t *testing.T) {
				got, err := s.GetTodo(ctx, b.ID, key.key)
				if key.name == "by number" {
					// Bob's own todo 1 is what he gets by number.
					if err != nil || got.ID != bobTodo.ID {
						t.Fatalf("bob's todo 1: %+v, %v", got, err)
					}
					return
				}
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("err = %v", err)
				}
			})
			t.Run("bob cannot update alice's todo "+key.name, func(t *testing.T) {
				_, _ = s.UpdateTodo(ctx, b.ID, key.key, store.TodoPatch{Title: ptr("pwned"), Completed: ptr(true)})
				got, err := s.GetTodo(ctx, a.ID, store.ByID(aliceTodo.ID))
				if err != nil || got.Title != "alice's secret" || got.Completed {
					t.Fatalf("alice's todo after bob's update: %+v, %v", got, err)
				}
			})
		}
		t.Run("bob cannot delete alice's todo by id", func(t *testing.T) {
			if _, err := s.DeleteTodo(ctx, b.ID, store.ByID(aliceTodo.ID)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v", err)
			}
			if _, err := s.GetTodo(ctx, a.ID, store.ByID(aliceTodo.ID)); err != nil {
				t.Fatalf("alice's todo is gone: %v", err)
			}
			if _, err := s.UpdateTodo(ctx, b.ID, store.ByID(aliceTodo.ID), store.TodoPatch{Title: ptr("x")}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("update by id: %v", err)
			}
		})
		t.Run("bob's lists, searches and usage never show alice's todos", func(t *testing.T) {
			page, err := s.ListTodos(ctx, b.ID, store.TodoFilter{Query: "secret"})
			if err != nil || len(page.Todos) != 0 {
				t.Fatalf("bob's search: %+v, %v", page.Todos, err)
			}
			page, err = s.ListTodos(ctx, b.ID, store.TodoFilter{})
			if err != nil || len(page.Todos) != 1 || page.Todos[0].ID != bobTodo.ID {
				t.Fatalf("bob's list: %+v, %v", page.Todos, err)
			}
			usage, err := s.Usage(ctx, b.ID)
			if err != nil || usage.Total != 1 {
				t.Fatalf("bob's usage: %+v, %v", usage, err)
			}
		})
		t.Run("deleting bob's todo 1 leaves alice's todo 1", func(t *testing.T) {
			if _, err := s.DeleteTodo(ctx, b.ID, store.ByNumber(1)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetTodo(ctx, a.ID, store.ByNumber(1)); err != nil {
				t.Fatalf("alice's todo 1: %v", err)
			}
			if _, err := s.DeleteTodo(ctx, b.ID, store.ByNumber(1)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("bob deleting todo 1 again: %v", err)
			}
			if _, err := s.GetTodo(ctx, a.ID, store.ByNumber(1)); err != nil {
				t.Fatalf("alice's todo 1 after bob's second delete: %v", err)
			}
		})
	})
}

func TestLimitHoldsUnderConcurrency(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, _ *clock) {
		ctx := context.Background()
		const limit, callers = 5, 200
		u := newUser(t, s, "ada")
		t.Run("200 concurrent creates with a limit of 5 store exactly 5", func(t *testing.T) {
			var ok, limited atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range callers {
				wg.Go(func() {
					<-start
					_, err := s.CreateTodo(ctx, u.ID, limit, store.NewTodo{Title: fmt.Sprintf("racer %d", i)})
					var le *store.LimitError
					switch {
					case err == nil:
						ok.Add(1)
					case errors.As(err, &le) && errors.Is(err, store.ErrLimitReached):
						if le.Limit != limit || le.Used != limit {
							t.Errorf("limit error says %d/%d", le.Used, le.Limit)
						}
						limited.Add(1)
					default:
						t.Errorf("create %d: %v", i, err)
					}
				})
			}
			close(start)
			wg.Wait()
			if ok.Load() != limit || limited.Load() != callers-limit {
				t.Fatalf("%d created, %d refused; want %d and %d", ok.Load(), limited.Load(), limit, callers-limit)
			}
			page, err := s.ListTodos(ctx, u.ID, store.TodoFilter{Limit: 100})
			if err != nil || len(page.Todos) != limit {
				t.Fatalf("stored %d todos, %v", len(page.Todos), err)
			}
			if fmt.Sprint(numbers(page.Todos)) != "[1 2 3 4 5]" {
				t.Fatalf("numbers %v", numbers(page.Todos))
			}
			got, _ := s.GetUser(ctx, u.ID)
			if got.TodoCount != limit {
				t.Fatalf("counter %d", got.TodoCount)
			}
		})
		t.Run("deleting a todo frees a slot for exactly one create", func(t *testing.T) {
			if _, err := s.DeleteTodo(ctx, u.ID, store.ByNumber(3)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateTodo(ctx, u.ID, limit, store.NewTodo{Title: "in the freed slot"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.CreateTodo(ctx, u.ID, limit, store.NewTodo{Title: "one too many"}); !errors.Is(err, store.ErrLimitReached) {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("a lower limit after a downgrade keeps the data and blocks creation", func(t *testing.T) {
			if _, err := s.CreateTodo(ctx, u.ID, 3, store.NewTodo{Title: "over a lower limit"}); !errors.Is(err, store.ErrLimitReached) {
				t.Fatalf("err = %v", err)
			}
			page, _ := s.ListTodos(ctx, u.ID, store.TodoFilter{})
			if len(page.Todos) != limit {
				t.Fatalf("%d todos left", len(page.Todos))
			}
			if _, err := s.CreateTodo(ctx, u.ID, store.NoLimit, store.NewTodo{Title: "unlimited"}); err != nil {
				t.Fatalf("no limit: %v", err)
			}
		})
	})
}

// TestCreatesForDifferentUsersDoNotWait holds a lock on one user's row, as a
// slow create would, and checks another user's create completes meanwhile.
// SQLite allows one writer per database at a time by design, so this
// property is PostgreSQL's alone.
func TestCreatesForDifferentUsersDoNotWait(t *testing.T) {
	s := storetest.Open(t, store.BackendPostgres, store.Options{})
	ctx := context.Background()
	a, b := newUser(t, s, "alice"), newUser(t, s, "bob")

	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, a.ID); err != nil {
		t.Fatal(err)
	}

	aliceDone := make(chan error, 1)
	go func() {
		_, err := s.CreateTodo(ctx, a.ID, 5, store.NewTodo{Title: "waits for the lock"})
		aliceDone <- err
	}()
	bobCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.CreateTodo(bobCtx, b.ID, 5, store.NewTodo{Title: "does not wait"}); err != nil {
		t.Fatalf("bob's create while alice's row is locked: %v", err)
	}
	select {
	case err := <-aliceDone:
		t.Fatalf("alice's create finished while her row was locked: %v", err)
	default:
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-aliceDone; err != nil {
		t.Fatalf("alice's create after the lock was released: %v", err)
	}
}

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestAPITokens(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, clk *clock) {
		ctx := context.Background()
		u := newUser(t, s, "ada")
		tok, err := s.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, ClientName: "Cursor", Hash: hash("secret-1"), Prefix: "tmcp_abcd", ExpiresAt: epoch.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		t.Run("a live token authenticates its user and records the use", func(t *testing.T) {
			got, user, err := s.AuthenticateToken(ctx, hash("secret-1"))
			if err != nil || got.ID != tok.ID || user.ID != u.ID || got.LastUsedAt == nil {
				t.Fatalf("authenticate: %+v %+v %v", got, user, err)
			}
		})
		t.Run("use is recorded at most once a minute", func(t *testing.T) {
			clk.add(30 * time.Second)
			if _, _, err := s.AuthenticateToken(ctx, hash("secret-1")); err != nil {
				t.Fatal(err)
			}
			list, _ := s.ListAPITokens(ctx, u.ID)
			if len(list) != 1 || !list[0].LastUsedAt.Equal(epoch) {
				t.Fatalf("last used %v, want %v", list[0].LastUsedAt, epoch)
			}
			clk.add(31 * time.Second)
			if _, _, err := s.AuthenticateToken(ctx, hash("secret-1")); err != nil {
				t.Fatal(err)
			}
			list, _ = s.ListAPITokens(ctx, u.ID)
			if !list[0].LastUsedAt.Equal(clk.now()) {
				t.Fatalf("last used %v, want %v", list[0].LastUsedAt, clk.now())
			}
		})
		t.Run("an unknown token is not found", func(t *testing.T) {
			if _, _, err := s.AuthenticateToken(ctx, hash("nope")); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("an expired token is refused", func(t *testing.T) {
			clk.set(epoch.Add(24 * time.Hour))
			defer clk.set(epoch.Add(2 * time.Minute))
			if _, _, err := s.AuthenticateToken(ctx, hash("secret-1")); !errors.Is(err, store.ErrExpired) {
				t.Fatalf("err = %v", err)
			}
			if list, _ := s.ListAPITokens(ctx, u.ID); len(list) != 0 {
				t.Fatalf("expired token listed: %+v", list)
			}
		})
		t.Run("another user cannot revoke the token", func(t *testing.T) {
			eve := newUser(t, s, "eve")
			if err := s.RevokeAPIToken(ctx, eve.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v", err)
			}
			if _, _, err := s.AuthenticateToken(ctx, hash("secret-1")); err != nil {
				t.Fatalf("token dead after eve's attempt: %v", err)
			}
		})
		t.Run("a revoked token is refused", func(t *testing.T) {
			if err := s.RevokeAPIToken(ctx, u.ID, tok.ID); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.AuthenticateToken(ctx, hash("secret-1")); !errors.Is(err, store.ErrRevoked) {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("revoking by hash and revoking all", func(t *testing.T) {
			for i, name := range []string{"VS Code", "Claude"} {
				if _, err := s.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, ClientName: name, Hash: hash(name), Prefix: fmt.Sprintf("tmcp_%d", i), ExpiresAt: epoch.Add(48 * time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.RevokeAPITokenByHash(ctx, hash("VS Code")); err != nil {
				t.Fatal(err)
			}
			if err := s.RevokeAPITokenByHash(ctx, hash("unknown")); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("unknown hash: %v", err)
			}
			n, err := s.RevokeAllAPITokens(ctx, u.ID)
			if err != nil || n != 1 {
				t.Fatalf("revoke all: %d, %v", n, err)
			}
			if _, _, err := s.AuthenticateToken(ctx, hash("Claude")); !errors.Is(err, store.ErrRevoked) {
				t.Fatalf("err = %v", err)
			}
		})
		t.Run("a token without a hash or name is refused", func(t *testing.T) {
			if _, err := s.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, ClientName: "x", Hash: []byte("short"), Prefix: "p", ExpiresAt: epoch}); !errors.Is(err, store.ErrInvalidInput) {
				t.Fatalf("short hash: %v", err)
			}
			if _, err := s.CreateAPIToken(ctx, store.NewAPIToken{UserID: u.ID, ClientName: " ", Hash: hash("y"), Prefix: "p", ExpiresAt: epoch}); !errors.Is(err, store.ErrInvalidInput) {
				t.Fatalf("blank client name: %v", err)
			}
		})
	})
}

func TestConnectRequests(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, clk *clock) {
		ctx := context.Background()
		u := newUser(t, s, "ada")
		newRequest := func(t *testing.T, id string) store.ConnectRequest {
			t.Helper()
			c, err := s.CreateConnectRequest(ctx, store.NewConnectRequest{ID: id, SecretHash: hash("s-" + id), UserCode: "ABCD-EFGH", ClientName: "Cursor", ExpiresAt: clk.now().Add(10 * time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		token := func(name string) store.NewAPIToken {
			return store.NewAPIToken{Hash: hash("tok-" + name), Prefix: "tmcp_" + name, ExpiresAt: clk.now().Add(90 * 24 * time.Hour)}
		}
		t.Run("approve then consume mints one token for the approver", func(t *testing.T) {
			c := newRequest(t, "req1")
			if c.State(clk.now()) != store.ConnectPending {
				t.Fatalf("state %s", c.State(clk.now()))
			}
			if _, err := s.ConsumeConnectRequest(ctx, "req1", hash("s-req1"), token("1")); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("consume while pending: %v", err)
			}
			approved, err := s.ApproveConnectRequest(ctx, "req1", u.ID)
			if err != nil || approved.State(clk.now()) != store.ConnectApproved || approved.UserID != u.ID {
				t.Fatalf("approve: %+v, %v", approved, err)
			}
			if _, err := s.ConsumeConnectRequest(ctx, "req1", hash("wrong secret"), token("x")); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("consume with a wrong secret: %v", err)
			}
			tok, err := s.ConsumeConnectRequest(ctx, "req1", hash("s-req1"), token("1"))
			if err != nil || tok.UserID != u.ID || tok.ClientName != "Cursor" {
				t.Fatalf("consume: %+v, %v", tok, err)
			}
			if _, user, err := s.AuthenticateToken(ctx, hash("tok-1")); err != nil || user.ID != u.ID {
				t.Fatalf("minted token: %v", err)
			}
		})
		t.Run("a request is consumed once, even by racing clients", func(t *testing.T) {
			newRequest(t, "req2")
			if _, err := s.ApproveConnectRequest(ctx, "req2", u.ID); err != nil {
				t.Fatal(err)
			}
			var wins atomic.Int64
			var wg sync.WaitGroup
			for i := range 20 {
				wg.Go(func() {
					_, err := s.ConsumeConnectRequest(ctx, "req2", hash("s-req2"), token(fmt.Sprintf("race%d", i)))
					if err == nil {
						wins.Add(1)
					} else if !errors.Is(err, store.ErrConflict) {
						t.Errorf("racing consume: %v", err)
					}
				})
			}
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%d consumes succeeded", wins.Load())
			}
			c, _ := s.GetConnectRequest(ctx, "req2")
			if c.State(clk.now()) != store.ConnectConsumed {
				t.Fatalf("state %s", c.State(clk.now()))
			}
			if _, err := s.ApproveConnectRequest(ctx, "req2", u.ID); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("approve after consume: %v", err)
			}
		})
		t.Run("a denied request cannot be approved or consumed", func(t *testing.T) {
			newRequest(t, "req3")
			if _, err := s.DenyConnectRequest(ctx, "req3", u.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ApproveConnectRequest(ctx, "req3", u.ID); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("approve after deny: %v", err)
			}
			if _, err := s.ConsumeConnectRequest(ctx, "req3", hash("s-req3"), token("3")); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("consume after deny: %v", err)
			}
		})
		t.Run("an expired request can be neither approved nor consumed", func(t *testing.T) {
			newRequest(t, "req4")
			if _, err := s.ApproveConnectRequest(ctx, "req4", u.ID); err != nil {
				t.Fatal(err)
			}
			newRequest(t, "req5")
			clk.add(11 * time.Minute)
			if _, err := s.ConsumeConnectRequest(ctx, "req4", hash("s-req4"), token("4")); !errors.Is(err, store.ErrExpired) {
				t.Fatalf("consume expired: %v", err)
			}
			if _, err := s.ApproveConnectRequest(ctx, "req5", u.ID); !errors.Is(err, store.ErrExpired) {
				t.Fatalf("approve expired: %v", err)
			}
			n, err := s.DeleteExpiredConnectRequests(ctx, clk.now())
			if err != nil || n < 2 {
				t.Fatalf("deleted %d expired, %v", n, err)
			}
		})
		t.Run("an unknown request is not found", func(t *testing.T) {
			if _, err := s.ApproveConnectRequest(ctx, "nope", u.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v", err)
			}
			if _, err := s.GetConnectRequest(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("err = %v", err)
			}
		})
	})
}

func TestProviderCredentialsAndBillingEvents(t *testing.T) {
	suite(t, func(t *testing.T, s *store.Store, _ *clock) {
		ctx := context.Background()
		u := newUser(t, s, "ada")
		t.Run("a sealed refresh token is saved and replaced, for its user only", func(t *testing.T) {
			if _, err := s.GetProviderCredential(ctx, u.ID, "kinde"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("before save: %v", err)
			}
			for _, sealed := range [][]byte{[]byte("sealed-1"), []byte("sealed-2")} {
				if err := s.SaveProviderCredential(ctx, u.ID, "kinde", sealed); err != nil {
					t.Fatal(err)
				}
			}
			c, err := s.GetProviderCredential(ctx, u.ID, "kinde")
			if err != nil || string(c.Sealed) != "sealed-2" {
				t.Fatalf("got %q, %v", c.Sealed, err)
			}
			other := newUser(t, s, "bob")
			if _, err := s.GetProviderCredential(ctx, other.ID, "kinde"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("another user's credential: %v", err)
			}
		})
		t.Run("a webhook id counts once", func(t *testing.T) {
			first, err := s.RecordBillingEvent(ctx, "wh_1", "customer.plan_assigned", u.ID)
			if err != nil || !first {
				t.Fatalf("first: %v %v", first, err)
			}
			again, err := s.RecordBillingEvent(ctx, "wh_1", "customer.plan_assigned", u.ID)
			if err != nil || again {
				t.Fatalf("replay: %v %v", again, err)
			}
			if fresh, err := s.RecordBillingEvent(ctx, "wh_2", "user.created", 0); err != nil || !fresh {
				t.Fatalf("event without user: %v %v", fresh, err)
			}
		})
	})
}

func TestMigrations(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b, func(t *testing.T) {
			url := storetest.URL(t, b)
			ctx := context.Background()
			t.Run("four processes migrating at once all succeed", func(t *testing.T) {
				var wg sync.WaitGroup
				errs := make(chan error, 4)
				for range 4 {
					wg.Go(func() {
						s, err := store.Open(ctx, store.Options{URL: url})
						if err != nil {
							errs <- err
							return
						}
						defer s.Close()
						errs <- s.Migrate(ctx)
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			})
			t.Run("the schema is at the newest version and migrating again is a no-op", func(t *testing.T) {
				s, err := store.Open(ctx, store.Options{URL: url})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				applied, known, err := s.SchemaVersion(ctx)
				if err != nil || applied != known || known < 1 {
					t.Fatalf("applied %d, known %d, %v", applied, known, err)
				}
				if s.Backend() != b {
					t.Fatalf("backend %s", s.Backend())
				}
			})
		})
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		raw, backend, target string
		wantErr              bool
	}{
		{"", store.BackendSQLite, "/data/todo.db", false},
		{"postgres://u:p@db.example.neon.tech/app?sslmode=require", store.BackendPostgres, "postgres://u:p@db.example.neon.tech/app?sslmode=require", false},
		{"postgresql://localhost/app", store.BackendPostgres, "postgresql://localhost/app", false},
		{"sqlite:/tmp/x.db", store.BackendSQLite, "/tmp/x.db", false},
		{"sqlite:///tmp/x.db", store.BackendSQLite, "/tmp/x.db", false},
		{"file:todo.db?cache=shared", store.BackendSQLite, "todo.db?cache=shared", false},
		{"sqlite:", "", "", true},
		{"mysql://root@localhost/db", "", "", true},
		{"postgres://u:secretpw@host:notaport/db", "", "", true},
	} {
		t.Run(fmt.Sprintf("%q", tc.raw), func(t *testing.T) {
			backend, target, err := store.ParseURL(tc.raw, "/data/todo.db")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error for %q", tc.raw)
				}
				if strings.Contains(err.Error(), "secretpw") {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil || backend != tc.backend || target != tc.target {
				t.Fatalf("got %s %s %v", backend, target, err)
			}
		})
	}
}
