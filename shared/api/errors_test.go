package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/shared/access"
	"productanalytics/shared/cube"
	"productanalytics/shared/metrics"
	"productanalytics/shared/request"
)

func TestAnswer(t *testing.T) {
	tests := []struct {
		err     error
		status  int
		message string
	}{
		{ErrNoRoute, 404, "404 Not Found"},
		{ErrMethod, 405, "405 Method Not Allowed"},
		{&request.Error{Field: "query.limit", Problem: "is 60000, outside 1 to 50000"}, 400, "query.limit is 60000, outside 1 to 50000"},
		{request.ErrBodyTooLarge, 413, "413 Request Entity Too Large"},
		{access.ErrUnauthenticated, 401, "401 Unauthorized"},
		{fmt.Errorf("checking: %w", access.ErrProjectNotFound), 404, "404 Project Not Found"},
		{access.ErrAccessDenied, 401, "Access Denied"},
		{access.ErrUnavailable, 503, "503 Service Unavailable: caller access cannot be checked"},
		{&cube.Error{Kind: cube.ErrQuery, Status: 400, Message: "'nope' not found for path 'TrackedEvents.nope'"}, 400, "'nope' not found for path 'TrackedEvents.nope'"},
		{&cube.Error{Kind: cube.ErrDatabaseNotFound, Status: 400, Message: "Catalog Error: ..."}, 404, "404 Clickhouse Database Not Found"},
		{&cube.Error{Kind: cube.ErrFailed, Status: 500, Message: "Error: Query limit exceeded"}, 502, "Error: Query limit exceeded"},
		{&cube.Error{Kind: cube.ErrBadAnswer, Status: 200, Message: "the answer is not JSON"}, 502, "502 Bad Gateway: Cube's answer cannot be used: the answer is not JSON"},
		{&cube.Error{Kind: cube.ErrKeyRefused, Status: 403}, 502, "502 Bad Gateway: Cube refused the API key"},
		{&cube.Error{Kind: cube.ErrUnreachable, Err: errors.New("dial tcp: connection refused")}, 502, "502 Bad Gateway: Cube is unreachable"},
		{&cube.Error{Kind: cube.ErrTimeout}, 504, "504 Gateway Timeout: Cube did not answer in time"},
		{&cube.Error{Kind: cube.ErrKeyUnavailable}, 503, "503 Service Unavailable: the Cube API key cannot be read"},
		{ErrUnconfigured, 503, "503 Service Unavailable: the service is not configured"},
		{ErrAnswerTooLarge, 502, "502 Bad Gateway: the answer is larger than the 6 MB a Lambda function may return; ask for fewer rows (query.limit and query.offset), or for a gzip answer (Accept-Encoding: gzip)"},
		{projectBusy{16}, 429, "429 Too Many Requests: this project already has 16 requests in progress, the most one project may have at once; retry after 1 second"},
		{&cube.Error{Kind: cube.ErrBusy, Status: 429, RetryAfter: 5 * time.Second}, 429, "429 Too Many Requests: Cube is working on as much as it takes at once, of this project's queries or of large answers; retry after 5 seconds"},
		{&cube.Error{Kind: cube.ErrStore, Status: 400, Message: "it ran out of memory", Err: errors.New("Out of Memory Error: at 10.0.0.3")}, 503, "503 Service Unavailable: the events store failed: it ran out of memory"},
		{&cube.Error{Kind: cube.ErrStore, Status: 400}, 503, "503 Service Unavailable: the events store failed"},
		// A caller gone outranks what failed for want of it.
		{fmt.Errorf("%w: %w", ErrClientGone, &cube.Error{Kind: cube.ErrUnreachable}), 499, "499 Client Closed Request: the connection was closed before the answer; keep it open, both ways, until the answer arrives"},
		{errors.New("a bug"), 500, "500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			status, message := Answer(tt.err)
			if status != tt.status || message != tt.message {
				t.Errorf("got %d %q, want %d %q", status, message, tt.status, tt.message)
			}
		})
	}
}

// An answer the transport cannot carry is answered 502, and logged so.
func TestAnswerThatDoesNotFit(t *testing.T) {
	f := newFakeCube(t, okCube)
	logs := &logcheck.Buffer{}
	h := NewHandler(newTestChecker(), newTestClient(f), slog.New(slog.NewJSONHandler(logs, nil)),
		Options{AnswerFits: func(_ http.Header, body []byte) bool { return len(body) < 10 }})
	w := serve(h, "POST", "/projects/1/product_analytics/request/load", "Bearer "+project1Token(t), seedTracked)
	if w.Code != 502 || !strings.Contains(w.Body.String(), "ask for fewer rows") {
		t.Fatalf("got %d %s, want 502 asking for fewer rows", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), `"status":502`) {
		t.Fatalf("logged %s, want status 502", logs)
	}
}

// The stand-in for an unconfigured API answers as the API does: 503, with
// the request id and no caching, and logs the status it answered.
func TestUnconfigured(t *testing.T) {
	logs := &logcheck.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	h := Unconfigured(log, metrics.NewRecorder("ProductAnalytics/test", nil, log))
	r := httptest.NewRequest("POST", "/projects/1/product_analytics/request/load", strings.NewReader(seedTracked))
	r.Header.Set("X-Request-Id", "req-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 503 || w.Body.String() != `{"message":"503 Service Unavailable: the service is not configured","error":"503 Service Unavailable: the service is not configured"}` {
		t.Fatalf("got %d %s", w.Code, w.Body)
	}
	for k, want := range map[string]string{"X-Request-Id": "req-1", "Cache-Control": "no-store", "Content-Type": "application/json"} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(logs.String(), `"request_id":"req-1","method":"POST","status":503`) {
		t.Errorf("logged %s", logs)
	}
	// A stack that cannot serve shows in the 5xx alarm's metric.
	got := published(t, logs.String())
	for _, want := range []string{"Requests{StatusClass=5xx}=1", "Refusals{Reason=Unconfigured}=1"} {
		if !slices.Contains(got, want) {
			t.Errorf("published %v, want %s", got, want)
		}
	}
}
