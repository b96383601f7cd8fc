// Package api is the HTTP face of the product analytics API: GitLab's routes,
// status codes and bodies, over the access, request and cube packages. The
// Lambda functions and the local server serve the same Handler.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"productanalytics/shared/access"
	"productanalytics/shared/cube"
	"productanalytics/shared/funnels"
	"productanalytics/shared/metrics"
	"productanalytics/shared/request"
	"productanalytics/shared/trace"
)

// Cube is what the handler needs of a Cube client.
type Cube interface {
	Do(ctx context.Context, req cube.Request) (*cube.Response, error)
}

// Handler serves the product analytics API.
type Handler struct {
	access   access.Checker
	cube     Cube
	log      *slog.Logger
	opts     Options
	gzip     gzipPool
	inFlight *inFlight
}

// Options tune a Handler. The zero value serves every endpoint, with no
// limit on the size of an answer.
type Options struct {
	// Endpoints limits the calls served (a Lambda function serves one);
	// none means all.
	Endpoints []cube.Endpoint
	// AnswerFits, when set, says whether an answer, as it would be sent
	// (header and body, gzipped when the caller accepts it), fits what the
	// transport can carry (a Lambda function's 6 MB); one that does not is
	// answered ErrAnswerTooLarge.
	AnswerFits func(header http.Header, body []byte) bool
	// Metrics, when set, adds CloudWatch's embedded metrics to each
	// request's log line.
	Metrics *metrics.Recorder
	// MaxInFlightPerProject, when above 0, is the most requests of one
	// project served at once; past it, the caller is answered 429 with a
	// Retry-After. It bounds what one process serves (the local server); a
	// Lambda execution serves one request at a time, so there the bound
	// on a project is Cube's own.
	MaxInFlightPerProject int
	// Funnels, when set, are the projects' funnel definitions: a query of
	// a funnel cube passes only for a project that has that funnel, and
	// GET .../product_analytics/funnels lists a project's funnels. Unset,
	// the listing is empty and funnel members are left to Cube, which
	// knows each project's own funnels only.
	Funnels Funnels
}

// Funnels is what the handler needs of the projects' funnel definitions
// (*funnels.Cache).
type Funnels interface {
	Set(ctx context.Context, projectID int64) (funnels.Set, error)
}

// NewHandler returns the API handler.
func NewHandler(checker access.Checker, c Cube, log *slog.Logger, opts Options) *Handler {
	if len(opts.Endpoints) == 0 {
		opts.Endpoints = []cube.Endpoint{cube.Load, cube.DryRun, cube.Meta}
	}
	return &Handler{access: checker, cube: c, log: log, opts: opts, inFlight: newInFlight(opts.MaxInFlightPerProject)}
}

// outcome is what one request's log line tells.
type outcome struct {
	projectID int64
	endpoint  cube.Endpoint
	cubeTime  time.Duration
	polls     int
	reason    error
	encoding  string // of the answer sent, when not identity
	bytes     int64  // of the answer's body as sent
	// cubeCalled and continueWait say whether Cube was called, and
	// whether the answer tells the caller to continue waiting.
	cubeCalled, continueWait bool
	// counted says the request holds one of its project's places in
	// flight, until its answer is sent.
	counted bool
	// cutShort is why a streamed answer stopped after its head went out:
	// Cube's side failed, or the caller's.
	cutShort error
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := RequestID(r.Header)
	// The trace header goes with the request to Cube (the Cube client
	// forwards it) and into the log line.
	r = r.WithContext(trace.NewContext(r.Context(), trace.Incoming(r.Context(), r.Header)))
	var o outcome
	defer func() {
		if o.counted {
			h.inFlight.release(o.projectID)
		}
	}()
	a, err := h.serve(w, r, id, &o)
	if err != nil && errors.Is(r.Context().Err(), context.Canceled) {
		// net/http cancels the request once the caller has closed its
		// connection, or only its sending half: a failure of ours then
		// (Cube's call, cut short) is the caller's leaving. What already
		// blames the caller stays: a body cut off at the server's read
		// bound cancels the request too.
		if status, _ := Answer(err); status >= 500 {
			err = fmt.Errorf("%w: %w", ErrClientGone, err)
		}
	}
	status := h.write(w, r, id, a, err, &o)
	if o.cutShort != nil {
		// The head said 200 and part of the answer went out: the caller's
		// client sees the transfer fail, which is what is logged.
		cause := ErrAnswerCutShort
		if errors.Is(r.Context().Err(), context.Canceled) {
			cause = ErrClientGone
		}
		o.reason = fmt.Errorf("%w: %w", cause, o.cutShort)
		status, _ = Answer(o.reason)
	}
	logRequest(h.log, h.opts.Metrics, r, id, status, start, o)
	if o.cutShort != nil {
		// Ends the connection without the answer's end (the last chunk),
		// so that no client takes what it got for the whole answer.
		panic(http.ErrAbortHandler)
	}
}

// serve answers a request: Cube's answer, or what went wrong.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, requestID string, o *outcome) (answer, error) {
	if id, ok := funnelsRoute(r.URL.Path); ok && slices.Contains(h.opts.Endpoints, cube.Meta) {
		return h.listFunnels(w, r, id, o)
	}
	idText, endpoint, ok := route(r.URL.Path)
	if !ok || !slices.Contains(h.opts.Endpoints, endpoint) {
		return answer{}, ErrNoRoute
	}
	o.endpoint = endpoint
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		return answer{}, ErrMethod
	}
	// Access first, so that a refused caller learns nothing of the request's
	// validity, and waits for no body.
	projectID, err := h.authorize(r, idText, o)
	if err != nil {
		return answer{}, err
	}
	call, err := request.Read(w, r, idText, endpoint != cube.Meta)
	if err != nil {
		return answer{}, err
	}
	if err := h.checkFunnels(r.Context(), projectID, call); err != nil {
		return answer{}, err
	}
	// Counted once the request is known good, so that neither a stranger
	// nor a bad request takes the project's places; held until the answer
	// is sent, since a streamed answer still comes from Cube.
	if !h.inFlight.acquire(projectID) {
		return answer{}, projectBusy{h.inFlight.limit}
	}
	o.counted = true
	// Without a transport's limit to check first, a large answer streams
	// from Cube to the caller as it arrives.
	req := cube.Request{Endpoint: endpoint, ProjectID: projectID, RequestID: requestID, Stream: h.opts.AnswerFits == nil}
	if len(call.Queries) > 0 {
		req.Query = call.AppendQuery(nil)
	}
	cubeStart := time.Now()
	res, err := h.cube.Do(r.Context(), req)
	o.cubeTime, o.cubeCalled = time.Since(cubeStart), true
	if res != nil {
		o.polls, o.continueWait = res.Polls, res.ContinueWait
	}
	if err != nil {
		return answer{}, err
	}
	switch {
	case res.Stream != nil && call.IncludeToken:
		return streamWithToken(res.Stream, res.Token), nil
	case res.Stream != nil:
		return answer{stream: res.Stream, streamLen: res.Length}, nil
	case call.IncludeToken:
		return withToken(res.Body, res.Token), nil
	}
	return answer{body: res.Body}, nil
}

// write sends the answer: a with 200, or err's status and GitLab's
// {"message": ...} (with the same text in "error", for Cube's clients).
// Every answer of the API goes out here, with its request id and no
// caching, and returns the status the caller received.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, requestID string, a answer, err error, o *outcome) int {
	hd := w.Header()
	hd.Set("X-Request-Id", requestID)
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	// Added to what is there: CORS, in front, varies on Origin.
	addVary(hd, "Accept-Encoding")
	if err == nil {
		if err = h.sendAnswer(w, r, a, o); err == nil {
			return http.StatusOK
		}
	}
	o.reason = err
	status, msg := Answer(err)
	if d := RetryAfter(err); d > 0 {
		hd.Set("Retry-After", strconv.Itoa(int(d/time.Second)))
	}
	// GitLab's clients read message; Cube's own client reads error.
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}{msg, msg})
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	n, _ := w.Write(body)
	o.bytes = int64(n)
	return status
}

// logRequest writes the one log line of a request, with its metrics.
func logRequest(log *slog.Logger, m *metrics.Recorder, r *http.Request, id string, status int, start time.Time, o outcome) {
	took := time.Since(start)
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.Int("status", status),
		slog.Float64("duration_ms", ms(took)),
	}
	attrs = append(attrs, traceAttrs(r.Context(), id)...)
	if o.endpoint != "" {
		attrs = append(attrs, slog.String("endpoint", string(o.endpoint)))
	}
	if o.projectID != 0 {
		attrs = append(attrs, slog.Int64("project_id", o.projectID))
	}
	if o.cubeTime > 0 {
		attrs = append(attrs, slog.Float64("cube_ms", ms(o.cubeTime)), slog.Int("polls", o.polls))
	}
	attrs = append(attrs, slog.Int64("bytes", o.bytes))
	if o.encoding != "" {
		attrs = append(attrs, slog.String("encoding", o.encoding))
	}
	level := slog.LevelInfo
	if o.reason != nil {
		attrs = append(attrs, slog.String("reason", o.reason.Error()))
		if status >= 500 {
			level = slog.LevelError
		}
	}
	attrs = append(attrs, m.Request(metrics.Request{
		At: start, Endpoint: string(o.endpoint), Status: status, Duration: took,
		CubeCalled: o.cubeCalled, CubeTime: o.cubeTime, Polls: o.polls, ContinueWait: o.continueWait,
		Reason: reasonName(o.reason),
	})...)
	log.LogAttrs(r.Context(), level, "request", attrs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Unconfigured serves every request with ErrUnconfigured (503), through
// the same writer and log line (and metrics, m may be nil) as the API: it
// stands in for the API when the configuration is invalid, whose cause was
// logged at start.
func Unconfigured(log *slog.Logger, m *metrics.Recorder) http.Handler {
	h := &Handler{log: log}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := RequestID(r.Header)
		o := outcome{}
		status := h.write(w, r, id, answer{}, ErrUnconfigured, &o)
		logRequest(log, m, r, id, status, start, o)
	})
}

// addVary adds name to the Vary header unless it is already listed.
func addVary(hd http.Header, name string) {
	for _, v := range hd.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, name) {
				return
			}
		}
	}
	hd.Add("Vary", name)
}

// route matches /projects/{id}/product_analytics/request/{load|dry-run|meta},
// with or without the /api/v4 prefix GitLab serves it under.
func route(path string) (id string, e cube.Endpoint, ok bool) {
	path = strings.TrimPrefix(path, "/api/v4")
	rest, ok := strings.CutPrefix(path, "/projects/")
	if !ok {
		return "", "", false
	}
	id, rest, ok = strings.Cut(rest, "/")
	if !ok {
		return "", "", false
	}
	action, ok := strings.CutPrefix(rest, "product_analytics/request/")
	if !ok {
		return "", "", false
	}
	switch e := cube.Endpoint(strings.TrimSuffix(action, "/")); e {
	case cube.Load, cube.DryRun, cube.Meta:
		return id, e, true
	}
	return "", "", false
}

// RequestID returns the caller's X-Request-Id when it is a sane token, else a
// new random id, so every log line and Cube call can be traced.
func RequestID(h http.Header) string {
	if v := h.Get("X-Request-Id"); v != "" && len(v) <= 128 && saneID(v) {
		return v
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func saneID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		// Base64 characters too: API Gateway's own request ids end in "=".
		if !(c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=' ||
			c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// authorize reads the path's project id and checks that the caller may
// read that project, which o then names.
func (h *Handler) authorize(r *http.Request, idText string, o *outcome) (int64, error) {
	projectID, err := request.ProjectID(idText)
	if err != nil {
		return 0, err
	}
	if err := h.access.CheckProject(r.Context(), r.Header, projectID); err != nil {
		return 0, err
	}
	o.projectID = projectID
	return projectID, nil
}
