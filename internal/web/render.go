package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/todo-mcp/todo-mcp/internal/store"
	"github.com/todo-mcp/todo-mcp/web/templates"
)

// views holds one parsed template set per page: the layout, the partials
// and that page's "content".
type views struct{ pages map[string]*template.Template }

var funcs = template.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("2 Jan 2006") },
	"ago":  ago,
}

func parseViews() (*views, error) {
	base, err := template.New("base").Funcs(funcs).ParseFS(templates.FS, "layout.html", "partials.html")
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	names, err := fs.Glob(templates.FS, "*.html")
	if err != nil {
		return nil, err
	}
	v := &views{pages: map[string]*template.Template{}}
	for _, name := range names {
		if name == "layout.html" || name == "partials.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templates.FS, name)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		v.pages[strings.TrimSuffix(name, ".html")] = t
	}
	return v, nil
}

// ago renders a past time the way people say it.
func ago(v any) string {
	var t time.Time
	switch x := v.(type) {
	case time.Time:
		t = x
	case *time.Time:
		if x == nil {
			return "never"
		}
		t = *x
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	default:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// page is what every template gets.
type page struct {
	Title     string
	User      *store.User
	CSRF      string
	DevSignIn bool
	Flash     string
	Data      any
}

// render writes a full page. Pages are rendered to a buffer first, so a
// template error never sends half a page.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	t, ok := a.views.pages[name]
	if !ok {
		a.Log.Error("no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p := page{Title: title, User: userFrom(r), DevSignIn: a.OIDC == nil, Data: data}
	// Only pages with forms need a form token: a visitor who merely looks
	// gets no session row.
	if p.User != nil || name == "devsignin" {
		p.CSRF = a.csrfToken(r)
	}
	if p.User != nil {
		p.Flash = a.Sessions.PopString(r.Context(), sessionFlash)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		a.Log.Error("render template", "name", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

type errorPage struct{ Message, Next string }

// fail renders an error page that says what went wrong and what to do,
// without internals.
func (a *App) fail(w http.ResponseWriter, r *http.Request, status int, title, message, next string) {
	a.render(w, r, status, "error", title, errorPage{Message: message, Next: next})
}

// internalError logs err and shows a page without it.
func (a *App) internalError(w http.ResponseWriter, r *http.Request, op string, err error) {
	a.Log.Error(op, "err", err, "route", routePattern(r))
	a.fail(w, r, http.StatusInternalServerError, "Something went wrong",
		"The server could not finish this request. Nothing was lost.", "Try again in a moment; if it keeps happening, check the authserver's logs.")
}

func (a *App) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.", "")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
