package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// User is an account, keyed by the identity provider's subject.
type User struct {
	ID      int64
	Subject string
	Email   string
	Name    string
	Plan    PlanState
	// TodoCount is the number of stored todos, kept in step with the todos
	// table in the same transaction as every create and delete.
	TodoCount int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PlanState is the last known billing state of a user, as internal/billing
// decided it. The store only keeps it.
type PlanState struct {
	Plan string
	// Limit caches the plan's todo limit; nil means no limit.
	Limit *int
	// Source is where the plan came from: "local" or "kinde".
	Source string
	// RefreshedAt is when the provider last confirmed it; nil if never.
	RefreshedAt *time.Time
}

// Identity is what a sign-in tells about a person.
type Identity struct {
	Subject string
	Email   string
	Name    string
}

const userColumns = `users.id, users.subject, users.email, users.name, users.plan, users.plan_limit,
	users.plan_source, users.plan_refreshed_at, users.todo_count, users.created_at, users.updated_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var (
		u                   User
		limit               sql.NullInt64
		refreshed, cre, upd dbTime
	)
	err := row.Scan(&u.ID, &u.Subject, &u.Email, &u.Name, &u.Plan.Plan, &limit,
		&u.Plan.Source, &refreshed, &u.TodoCount, &cre, &upd)
	if err != nil {
		return User{}, err
	}
	if limit.Valid {
		l := int(limit.Int64)
		u.Plan.Limit = &l
	}
	u.Plan.RefreshedAt = refreshed.ptr()
	u.CreatedAt, u.UpdatedAt = cre.Time, upd.Time
	return u, nil
}

func validateIdentity(id Identity) error {
	switch {
	case strings.TrimSpace(id.Subject) == "":
		return invalid("subject", "must not be empty")
	case len(id.Subject) > 255:
		return invalid("subject", "must be at most 255 bytes")
	case !utf8.ValidString(id.Email) || len(id.Email) > 320:
		return invalid("email", "must be valid UTF-8 of at most 320 bytes")
	case !utf8.ValidString(id.Name) || utf8.RuneCountInString(id.Name) > 200:
		return invalid("name", "must be valid UTF-8 of at most 200 characters")
	}
	return nil
}

// UpsertUser creates the user on first sign-in and keeps email and name
// current afterwards, in one statement so that two sign-ins at once cannot
// race.
func (s *Store) UpsertUser(ctx context.Context, id Identity) (User, error) {
	if err := validateIdentity(id); err != nil {
		return User{}, err
	}
	now := s.timeArg(s.now())
	row := s.db.QueryRowContext(ctx, `
		INSERT INTO users (subject, email, name, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (subject) DO UPDATE
		SET email = excluded.email, name = excluded.name, updated_at = excluded.updated_at
		RETURNING `+userColumns, id.Subject, id.Email, id.Name, now)
	u, err := scanUser(row)
	if err != nil {
		return User{}, fmt.Errorf("upsert user: %w", err)
	}
	return u, nil
}

// GetUser returns the user with that id.
func (s *Store) GetUser(ctx context.Context, id int64) (User, error) {
	return s.getUser(ctx, "users.id = $1", id)
}

// GetUserBySubject returns the user with that identity-provider subject.
func (s *Store) GetUserBySubject(ctx context.Context, subject string) (User, error) {
	return s.getUser(ctx, "users.subject = $1", subject)
}

// GetUserByEmail returns the user with that email, for operator commands.
// Emails are not unique (a development account and a Kinde account, say):
// when several users share it, it returns ErrConflict rather than guess.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users WHERE lower(users.email) = lower($1) ORDER BY users.id LIMIT 2`, email)
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	defer rows.Close()
	var found []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return User{}, fmt.Errorf("get user: %w", err)
		}
		found = append(found, u)
	}
	if err := rows.Err(); err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	switch len(found) {
	case 0:
		return User{}, ErrNotFound
	case 1:
		return found[0], nil
	default:
		return User{}, fmt.Errorf("%w: several users have the email %s", ErrConflict, email)
	}
}

func (s *Store) getUser(ctx context.Context, where string, arg any) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// SetPlan records the plan billing decided for the user.
func (s *Store) SetPlan(ctx context.Context, userID int64, p PlanState) (User, error) {
	if strings.TrimSpace(p.Plan) == "" {
		return User{}, invalid("plan", "must not be empty")
	}
	if p.Limit != nil && *p.Limit < 0 {
		return User{}, invalid("limit", "must not be negative")
	}
	var limit any
	if p.Limit != nil {
		limit = int64(*p.Limit)
	}
	row := s.db.QueryRowContext(ctx, `
		UPDATE users SET plan = $2, plan_limit = $3, plan_source = $4, plan_refreshed_at = $5, updated_at = $6
		WHERE id = $1
		RETURNING `+userColumns,
		userID, p.Plan, limit, p.Source, s.nullTimeArg(p.RefreshedAt), s.timeArg(s.now()))
	u, err := scanUser(row)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("set plan: %w", err)
	}
	return u, nil
}

// Usage counts a user's todos.
type Usage struct {
	Total     int
	Open      int
	Completed int
	Overdue   int
}

// Usage returns the counts for one user.
func (s *Store) Usage(ctx context.Context, userID int64) (Usage, error) {
	now := s.now()
	var u Usage
	err := s.db.QueryRowContext(ctx, `
		SELECT count(*),
		       count(*) FILTER (WHERE NOT completed),
		       count(*) FILTER (WHERE completed),
		       count(*) FILTER (WHERE `+overdueCondition("$2", "$3")+`)
		FROM todos WHERE user_id = $1`,
		userID, s.timeArg(now), s.timeArg(startOfDay(now))).Scan(&u.Total, &u.Open, &u.Completed, &u.Overdue)
	if err != nil {
		return Usage{}, fmt.Errorf("usage: %w", err)
	}
	return u, nil
}
