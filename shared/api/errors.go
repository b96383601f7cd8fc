package api

import (
	"errors"
	"fmt"
	"net/http"

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
)

// answers maps what went wrong to what the caller gets: the status, and
// GitLab's words where GitLab has its own. It is the one place that
// decides a status; the README's table of statuses mirrors it.
var answers = []struct {
	cause   error
	status  int
	message func(status int, err error) string
}{
	{ErrNoRoute, http.StatusNotFound, standard},
	{ErrMethod, http.StatusMethodNotAllowed, standard},
	{request.ErrInvalid, http.StatusBadRequest, own},
	{request.ErrBodyTooLarge, http.StatusRequestEntityTooLarge, standard},
	{access.ErrUnauthenticated, http.StatusUnauthorized, standard},
	{access.ErrProjectNotFound, http.StatusNotFound, gitlab("404 Project Not Found")},
	{access.ErrAccessDenied, http.StatusUnauthorized, gitlab("Access Denied")},
	{access.ErrUnavailable, http.StatusServiceUnavailable, with("caller access cannot be checked")},
	{cube.ErrQuery, http.StatusBadRequest, cubes},
	{cube.ErrDatabaseNotFound, http.StatusNotFound, gitlab("404 Clickhouse Database Not Found")},
	{cube.ErrFailed, http.StatusBadGateway, cubes},
	{cube.ErrBadAnswer, http.StatusBadGateway, badAnswer},
	{cube.ErrKeyRefused, http.StatusBadGateway, with("Cube refused the API key")},
	{cube.ErrUnreachable, http.StatusBadGateway, with("Cube is unreachable")},
	{cube.ErrTimeout, http.StatusGatewayTimeout, with("Cube did not answer in time")},
	{cube.ErrKeyUnavailable, http.StatusServiceUnavailable, with("the Cube API key cannot be read")},
	{ErrUnconfigured, http.StatusServiceUnavailable, with("the service is not configured")},
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

// badAnswer says what is wrong with Cube's answer.
func badAnswer(status int, err error) string {
	var ce *cube.Error
	if errors.As(err, &ce) && ce.Message != "" {
		return standard(status, err) + ": Cube's answer cannot be used: " + ce.Message
	}
	return standard(status, err) + ": Cube's answer cannot be used"
}
