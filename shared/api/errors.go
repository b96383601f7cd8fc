package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"productanalytics/shared/access"
	"productanalytics/shared/cube"
	"productanalytics/shared/request"
)

// The API's own refusals, beside those of the packages it calls.
var (
	// ErrNoRoute: the path is not one of the API's.
	ErrNoRoute = errors.New("no such route")
	// ErrMethod: the route does not take the request's method.
	ErrMethod = errors.New("method not allowed on this route")
	// ErrUnconfigured: the configuration is invalid, so no request can be
	// served; the cause was logged at start.
	ErrUnconfigured = errors.New("the service is not configured")
	// ErrAnswerTooLarge: the answer is larger than the transport (Lambda)
	// can carry.
	ErrAnswerTooLarge = errors.New("the answer is larger than the transport can carry")
	// ErrProjectBusy: the project has as many requests in progress as one
	// project may have (Options.MaxInFlightPerProject).
	ErrProjectBusy = errors.New("the project has too many requests in progress")
	// ErrAnswerCutShort: a streamed answer of Cube's stopped after its
	// head had gone out to the caller.
	ErrAnswerCutShort = errors.New("the answer from Cube was cut short")
	// ErrClientGone: the caller closed the connection (or its sending
	// half) before the answer, which ended the work on it.
	ErrClientGone = errors.New("the caller closed the connection before the answer")
)

// StatusClientClosedRequest is the status logged for a caller that went
// away before its answer: nginx's 499, a 4xx since the caller ended it.
const StatusClientClosedRequest = 499

// projectBusy is ErrProjectBusy with the limit, for the message.
type projectBusy struct{ limit int }

func (e projectBusy) Error() string {
	return fmt.Sprintf("%v: %d, the most one project may have at once", ErrProjectBusy, e.limit)
}

func (e projectBusy) Is(target error) bool { return target == ErrProjectBusy }

// projectRetryAfter is when a caller refused ErrProjectBusy is told to ask
// again: a dashboard's queries take from milliseconds to a few seconds.
const projectRetryAfter = time.Second

// answers maps what went wrong to what the caller gets: the status, and
// GitLab's words where GitLab has its own. It is the one place that
// decides a status; the README's table of statuses mirrors it.
var answers = []struct {
	cause   error
	status  int
	message func(status int, err error) string
}{
	// First: whatever failed once the caller had gone failed because of it.
	{ErrClientGone, StatusClientClosedRequest, clientGone},
	{ErrNoRoute, http.StatusNotFound, standard},
	{ErrMethod, http.StatusMethodNotAllowed, standard},
	{request.ErrInvalid, http.StatusBadRequest, own},
	{request.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, standard},
	{access.ErrUnauthenticated, http.StatusUnauthorized, standard},
	{access.ErrProjectNotFound, http.StatusNotFound, gitlab("404 Project Not Found")},
	{access.ErrAccessDenied, http.StatusUnauthorized, gitlab("Access Denied")},
	{access.ErrUnavailable, http.StatusServiceUnavailable, with("caller access cannot be checked")},
	{ErrProjectBusy, http.StatusTooManyRequests, busy},
	{cube.ErrBusy, http.StatusTooManyRequests, busy},
	{cube.ErrStore, http.StatusServiceUnavailable, store},
	{cube.ErrQuery, http.StatusBadRequest, cubes},
	{cube.ErrDatabaseNotFound, http.StatusNotFound, gitlab("404 Clickhouse Database Not Found")},
	{cube.ErrFailed, http.StatusBadGateway, cubes},
	{cube.ErrBadAnswer, http.StatusBadGateway, badAnswer},
	{cube.ErrKeyRefused, http.StatusBadGateway, with("Cube refused the API key")},
	{cube.ErrUnreachable, http.StatusBadGateway, with("Cube is unreachable")},
	{cube.ErrTimeout, http.StatusGatewayTimeout, with("Cube did not answer in time")},
	{cube.ErrKeyUnavailable, http.StatusServiceUnavailable, with("the Cube API key cannot be read")},
	{ErrFunnelsUnavailable, http.StatusServiceUnavailable, with("the project's funnel definitions cannot be read")},
	{ErrUnconfigured, http.StatusServiceUnavailable, with("the service is not configured")},
	{ErrAnswerCutShort, http.StatusBadGateway, with("the answer from Cube was cut short")},
	{ErrAnswerTooLarge, http.StatusBadGateway, with("the answer is larger than the 6 MB a Lambda function may return; ask for fewer rows (query.limit and query.offset), or for a gzip answer (Accept-Encoding: gzip)")},
}

// Answer returns the status and message the caller gets for err: an
// error of the request, access, cube or api packages. Anything else is a
// fault of the API itself: 500.
func Answer(err error) (status int, message string) {
	for _, a := range answers {
		if errors.Is(err, a.cause) {
			return a.status, a.message(a.status, err)
		}
	}
	return http.StatusInternalServerError, standard(http.StatusInternalServerError, err)
}

// standard is GitLab's "NNN Text" form of a status, from the status's
// standard text.
func standard(status int, _ error) string {
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}

// with is the standard form with a detail: "503 Service Unavailable: ...".
func with(detail string) func(int, error) string {
	return func(status int, err error) string { return standard(status, err) + ": " + detail }
}

// gitlab is a message of GitLab's that is not the standard form.
func gitlab(message string) func(int, error) string {
	return func(int, error) string { return message }
}

// own is the error's own text, written for the caller ("query.limit is
// 60000, outside 1 to 50000").
func own(_ int, err error) string { return err.Error() }

// cubes is Cube's own error text, without its stack, as GitLab passes it.
func cubes(status int, err error) string {
	var ce *cube.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return ce.Message
	}
	return standard(status, err)
}

// busy says why a request is refused 429, and when to ask again (the
// Retry-After the answer carries).
func busy(status int, err error) string {
	why := "Cube is working on as much as it takes at once, of this project's queries or of large answers"
	var pb projectBusy
	if errors.As(err, &pb) {
		why = fmt.Sprintf("this project already has %d requests in progress, the most one project may have at once", pb.limit)
	}
	s := RetryAfter(err) / time.Second
	unit := "seconds"
	if s == 1 {
		unit = "second"
	}
	return fmt.Sprintf("%s: %s; retry after %d %s", standard(status, err), why, s, unit)
}

// RetryAfter is when a caller refused for err may ask again: 0 for a
// refusal that asking again later would not change.
func RetryAfter(err error) time.Duration {
	var ce *cube.Error
	switch {
	case errors.Is(err, ErrProjectBusy):
		return projectRetryAfter
	case errors.As(err, &ce) && errors.Is(err, cube.ErrBusy):
		return max(ce.RetryAfter, cube.MinRetryAfter)
	}
	return 0
}

// store says how the events store failed, in the cube package's fixed
// words, never in the store's own (which may name hosts and users).
func store(status int, err error) string {
	var ce *cube.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return standard(status, err) + ": the events store failed: " + ce.Message
	}
	return standard(status, err) + ": the events store failed"
}

// clientGone is nginx's words for its 499, which net/http has none for. A
// caller that half-closed its connection still reads it.
func clientGone(int, error) string {
	return "499 Client Closed Request: the connection was closed before the answer; keep it open, both ways, until the answer arrives"
}

// badAnswer says what is wrong with Cube's answer.
func badAnswer(status int, err error) string {
	var ce *cube.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return standard(status, err) + ": Cube's answer cannot be used: " + ce.Message
	}
	return standard(status, err) + ": Cube's answer cannot be used"
}
