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

// The refusals. The API answers each as GitLab does.
var (
	// ErrUnauthenticated: no credentials, or credentials that do not verify.
	ErrUnauthenticated = errors.New("no valid credentials")
	// ErrProjectNotFound: the caller may not see the project; whether it
	// exists is not revealed.
	ErrProjectNotFound = errors.New("the project is not visible to the caller")
	// ErrAccessDenied: the caller sees the project but may not read its
	// analytics.
	ErrAccessDenied = errors.New("the caller may not read the project's analytics")
	// ErrUnavailable: the decision cannot be made now; access is never
	// granted in that case.
	ErrUnavailable = errors.New("caller access cannot be checked")
)
