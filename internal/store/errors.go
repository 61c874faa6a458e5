package store

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrNotFound: no such row for this user. Another user's row is reported
	// the same way, so its existence never leaks.
	ErrNotFound = errors.New("not found")
	// ErrLimitReached: the user's plan allows no more stored todos. The
	// error is a *LimitError carrying the figures.
	ErrLimitReached = errors.New("todo limit reached")
	// ErrInvalidInput: a field failed validation. The error is a
	// *ValidationError naming the field.
	ErrInvalidInput = errors.New("invalid input")
	// ErrExpired: a token or connect request is past its expiry.
	ErrExpired = errors.New("expired")
	// ErrRevoked: a token was revoked.
	ErrRevoked = errors.New("revoked")
	// ErrConflict: the row is not in a state that allows the change (a
	// connect request already approved, denied or consumed, for instance).
	ErrConflict = errors.New("conflict")
)

// ValidationError says which field is wrong and why, in words fit for the
// person or model that sent it.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalidInput) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidInput }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// LimitError reports a refused create: the limit and how many todos the
// user stores.
type LimitError struct {
	Limit int
	Used  int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("todo limit reached (%d/%d)", e.Used, e.Limit)
}

// Is makes errors.Is(err, ErrLimitReached) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimitReached }
