// Package access decides whether the caller of a request may read a
// project's analytics.
package access

import (
	"context"
	"errors"
	"net/http"
)

// Checker decides whether the caller whose credentials are in h may read the
// analytics of projectID. It returns nil, or one of the errors below
// (possibly wrapped).
type Checker interface {
	CheckProject(ctx context.Context, h http.Header, projectID int64) error
}

// The refusals, with the message GitLab answers each with.
var (
	// ErrUnauthenticated: no credentials, or credentials that do not verify (401).
	ErrUnauthenticated = errors.New("401 Unauthorized")
	// ErrProjectNotFound: the caller may not see the project; whether it
	// exists is not revealed (404).
	ErrProjectNotFound = errors.New("404 Project Not Found")
	// ErrAccessDenied: the caller sees the project but may not read its
	// analytics (401).
	ErrAccessDenied = errors.New("Access Denied") //lint:ignore ST1005 GitLab's message, word for word
	// ErrUnavailable: the decision cannot be made now (503); access is
	// never granted in that case.
	ErrUnavailable = errors.New("503 Service Unavailable: caller access cannot be checked")
)

// Status returns the HTTP status and message for a Checker's error.
func Status(err error) (int, string) {
	switch {
	case errors.Is(err, ErrProjectNotFound):
		return http.StatusNotFound, ErrProjectNotFound.Error()
	case errors.Is(err, ErrAccessDenied):
		return http.StatusUnauthorized, ErrAccessDenied.Error()
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable, ErrUnavailable.Error()
	}
	return http.StatusUnauthorized, ErrUnauthenticated.Error()
}
