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
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"productanalytics/shared/access"
	"productanalytics/shared/cube"
	"productanalytics/shared/request"
)

// Cube is what the handler needs of a Cube client.
type Cube interface {
	Do(ctx context.Context, req cube.Request) (*cube.Response, error)
}

// Handler serves the product analytics API.
type Handler struct {
	access    access.Checker
	cube      Cube
	log       *slog.Logger
	endpoints []cube.Endpoint
}

// NewHandler returns the API handler. endpoints limits the calls it serves
// (a Lambda function serves one); none means all.
func NewHandler(checker access.Checker, c Cube, log *slog.Logger, endpoints ...cube.Endpoint) *Handler {
	if len(endpoints) == 0 {
		endpoints = []cube.Endpoint{cube.Load, cube.DryRun, cube.Meta}
	}
	return &Handler{access: checker, cube: c, log: log, endpoints: endpoints}
}

// outcome is what one request's log line tells.
type outcome struct {
	projectID int64
	endpoint  cube.Endpoint
	cubeTime  time.Duration
	polls     int
	reason    error
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := RequestID(r.Header)
	w.Header().Set("X-Request-Id", id)
	var o outcome
	status := h.serve(w, r, id, &o)
	attrs := []slog.Attr{
		slog.String("request_id", id),
		slog.String("method", r.Method),
		slog.Int("status", status),
		slog.Float64("duration_ms", ms(time.Since(start))),
	}
	if o.endpoint != "" {
		attrs = append(attrs, slog.String("endpoint", string(o.endpoint)))
	}
	if o.projectID != 0 {
		attrs = append(attrs, slog.Int64("project_id", o.projectID))
	}
	if o.cubeTime > 0 {
		attrs = append(attrs, slog.Float64("cube_ms", ms(o.cubeTime)), slog.Int("polls", o.polls))
	}
	level := slog.LevelInfo
	if o.reason != nil {
		attrs = append(attrs, slog.String("reason", o.reason.Error()))
		if status >= 500 {
			level = slog.LevelError
		}
	}
	h.log.LogAttrs(r.Context(), level, "request", attrs...)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// serve answers the request and returns the status it answered with.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, requestID string, o *outcome) int {
	idText, endpoint, ok := route(r.URL.Path)
	if !ok || !h.serves(endpoint) {
		return writeMessage(w, http.StatusNotFound, "404 Not Found")
	}
	o.endpoint = endpoint
	if !allowed(endpoint, r.Method) {
		w.Header().Set("Allow", "POST")
		if endpoint == cube.Meta {
			w.Header().Set("Allow", "GET, POST")
		}
		return writeMessage(w, http.StatusMethodNotAllowed, "405 Method Not Allowed")
	}
	projectID, err := request.ProjectID(idText)
	if err != nil {
		return writeError(w, err)
	}
	if err := h.access.CheckProject(r.Context(), r.Header, projectID); err != nil {
		o.reason = err
		status, msg := access.Status(err)
		return writeMessage(w, status, msg)
	}
	o.projectID = projectID
	req := cube.Request{Endpoint: endpoint, ProjectID: projectID, RequestID: requestID}
	includeToken := false
	if endpoint != cube.Meta {
		body, err := readBody(r)
		if err != nil {
			return writeError(w, err)
		}
		parsed, err := request.ParseBody(body)
		if err != nil {
			return writeError(w, err)
		}
		param, err := request.IncludeTokenParam(r.URL.Query().Get("include_token"))
		if err != nil {
			return writeError(w, err)
		}
		req.Query, includeToken = parsed.Query.AppendJSON(nil), parsed.IncludeToken || param
	}
	cubeStart := time.Now()
	res, err := h.cube.Do(r.Context(), req)
	o.cubeTime = time.Since(cubeStart)
	if res != nil {
		o.polls = res.Polls
	}
	if err != nil {
		o.reason = err
		var ce *cube.Error
		if errors.As(err, &ce) {
			return writeMessage(w, ce.Status, ce.Message)
		}
		return writeMessage(w, http.StatusBadGateway, "502 Bad Gateway")
	}
	body := res.Body
	if includeToken {
		body = withToken(body, res.Token)
	}
	return writeJSON(w, http.StatusOK, body)
}

func (h *Handler) serves(e cube.Endpoint) bool {
	for _, s := range h.endpoints {
		if s == e {
			return true
		}
	}
	return false
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

// allowed reports whether method is served by an endpoint. GitLab registers
// meta as POST while documenting GET, so it takes both.
func allowed(e cube.Endpoint, method string) bool {
	return method == http.MethodPost || e == cube.Meta && method == http.MethodGet
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > request.MaxBodyBytes {
		return nil, request.ErrBodyTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, request.MaxBodyBytes+1))
	if err != nil {
		return nil, &request.Error{Problem: "the request body could not be read"}
	}
	if len(b) > request.MaxBodyBytes {
		return nil, request.ErrBodyTooLarge
	}
	return b, nil
}

// withToken adds "token" to the top level of Cube's JSON object answer.
func withToken(body []byte, token string) []byte {
	i := 0
	for i < len(body) && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t') {
		i++
	}
	if i == len(body) || body[i] != '{' {
		return body
	}
	out := make([]byte, 0, len(body)+len(token)+16)
	out = append(out, `{"token":`...)
	out = strconv.AppendQuote(out, token)
	rest := body[i+1:]
	j := 0
	for j < len(rest) && (rest[j] == ' ' || rest[j] == '\n' || rest[j] == '\r' || rest[j] == '\t') {
		j++
	}
	if j < len(rest) && rest[j] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

func writeError(w http.ResponseWriter, err error) int {
	if errors.Is(err, request.ErrBodyTooLarge) {
		return writeMessage(w, http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	}
	var re *request.Error
	if errors.As(err, &re) {
		return writeMessage(w, http.StatusBadRequest, re.Error())
	}
	return writeMessage(w, http.StatusBadRequest, "400 Bad request")
}

// writeMessage answers GitLab's error shape, {"message": ...}.
func writeMessage(w http.ResponseWriter, status int, msg string) int {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	return writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) int {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
	return status
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
