package cube

import (
	"errors"
	"strings"
	"time"
)

// The ways a call to Cube fails. Do returns an *Error whose Kind is one of
// these; test for them with errors.Is.
var (
	// ErrKeyUnavailable: the Cube API key cannot be read from its store.
	ErrKeyUnavailable = errors.New("the Cube API key cannot be read")
	// ErrKeyRefused: Cube refused the token signed with the API key, even
	// with the key read again.
	ErrKeyRefused = errors.New("the API key was refused by Cube")
	// ErrUnreachable: Cube could not be reached.
	ErrUnreachable = errors.New("no connection to Cube")
	// ErrTimeout: Cube did not answer in time.
	ErrTimeout = errors.New("no answer from Cube in time")
	// ErrQuery: Cube refused the query (its 4xx); Message says why.
	ErrQuery = errors.New("the query was refused by Cube")
	// ErrDatabaseNotFound: the project has no events database or table.
	ErrDatabaseNotFound = errors.New("the project has no events database")
	// ErrFailed: Cube failed (its 5xx); Message says how.
	ErrFailed = errors.New("a failure inside Cube")
	// ErrStore: the events store behind Cube failed (out of memory, a
	// timeout, a dropped connection), whatever status Cube answered it
	// with; Message says how, in words fit for the caller, and Err holds
	// Cube's own text, for logs.
	ErrStore = errors.New("the events store failed")
	// ErrBusy: Cube refused the query because the project has as many in
	// progress as Cube allows one project (its 429); RetryAfter says when
	// to ask again.
	ErrBusy = errors.New("too many of the project's queries in progress in Cube")
	// ErrBadAnswer: Cube's answer cannot be passed on: not JSON, too
	// large, or a refusal that gives no reason.
	ErrBadAnswer = errors.New("an unusable answer from Cube")
)

// Error is a failed call to Cube.
type Error struct {
	// Kind is one of the errors above.
	Kind error
	// Status is Cube's HTTP status; 0 when Cube did not answer.
	Status int
	// Message is Cube's own error text (never its stack), or what is wrong
	// with its answer.
	Message string
	// Err is the underlying cause, for logs.
	Err error
	// RetryAfter, for ErrBusy, is when Cube said to ask again: whole
	// seconds, from MinRetryAfter to MaxRetryAfter.
	RetryAfter time.Duration
	// Deployment names the Cube deployment called, when the call was
	// routed (Routed.Do); the log line then says which Cube failed.
	Deployment string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Deployment != "" {
		b.WriteString(" (deployment ")
		b.WriteString(e.Deployment)
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is reports whether target is the error's Kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }
