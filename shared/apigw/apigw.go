// Package apigw serves an http.Handler to API Gateway: it turns HTTP API
// (payload 2.0) and REST API (payload 1.0) proxy events into http.Requests and
// the handler's answer into the matching response event.
package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/shared/trace"
)

// ErrUnsupportedEvent is returned for an event that is not an API Gateway
// proxy event.
var ErrUnsupportedEvent = errors.New("unsupported event: expected an API Gateway proxy event (payload 1.0 or 2.0)")

// Handler returns a Lambda handler serving h to API Gateway. Payload 2.0
// events are answered with 2.0 responses, 1.0 events with 1.0 responses.
func Handler(h http.Handler) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var probe struct {
			Version    string `json:"version"`
			RouteKey   string `json:"routeKey"`
			HTTPMethod string `json:"httpMethod"`
		}
		if err := json.Unmarshal(event, &probe); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnsupportedEvent, err)
		}
		switch {
		case probe.Version == "2.0" || probe.RouteKey != "" && probe.HTTPMethod == "":
			var e events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(event, &e); err != nil {
				return nil, fmt.Errorf("decoding a payload 2.0 event: %w", err)
			}
			r, err := requestV2(ctx, &e)
			if err != nil {
				return nil, err
			}
			a, err := serve(h, r)
			if err != nil {
				return nil, err
			}
			return a.v2(), nil
		case probe.HTTPMethod != "":
			var e events.APIGatewayProxyRequest
			if err := json.Unmarshal(event, &e); err != nil {
				return nil, fmt.Errorf("decoding a payload 1.0 event: %w", err)
			}
			r, err := requestV1(ctx, &e)
			if err != nil {
				return nil, err
			}
			a, err := serve(h, r)
			if err != nil {
				return nil, err
			}
			return a.v1(), nil
		}
		return nil, ErrUnsupportedEvent
	}
}

// serve runs the request an event became through h and returns the answer
// to put in the response event.
func serve(h http.Handler, r *http.Request) (answer, error) {
	w := &recorder{header: http.Header{}}
	h.ServeHTTP(w, r)
	a := w.answer()
	if !a.fits() {
		// The handler should have checked with Fits; Lambda would fail the
		// invoke anyway, with a less clear error.
		return a, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(a.body))
	}
	return a, nil
}

func requestV2(ctx context.Context, e *events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	path := e.RawPath
	if path == "" {
		path = e.RequestContext.HTTP.Path
	}
	ctx = trace.WithGatewayRequestID(ctx, e.RequestContext.RequestID)
	r, err := newRequest(ctx, e.RequestContext.HTTP.Method, path, e.RawQueryString, e.Body, e.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	for k, v := range e.Headers {
		// Payload 2.0 joins repeated headers with commas.
		r.Header.Set(k, v)
	}
	if len(e.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(e.Cookies, "; "))
	}
	finish(r, e.RequestContext.RequestID, e.RequestContext.HTTP.SourceIP)
	return r, nil
}

func requestV1(ctx context.Context, e *events.APIGatewayProxyRequest) (*http.Request, error) {
	q := url.Values{}
	for k, vs := range e.MultiValueQueryStringParameters {
		q[k] = vs
	}
	for k, v := range e.QueryStringParameters {
		if _, ok := q[k]; !ok {
			q.Set(k, v)
		}
	}
	ctx = trace.WithGatewayRequestID(ctx, e.RequestContext.RequestID)
	r, err := newRequest(ctx, e.HTTPMethod, e.Path, q.Encode(), e.Body, e.IsBase64Encoded)
	if err != nil {
		return nil, err
	}
	for k, vs := range e.MultiValueHeaders {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	for k, v := range e.Headers {
		if r.Header.Get(k) == "" {
			r.Header.Set(k, v)
		}
	}
	finish(r, e.RequestContext.RequestID, e.RequestContext.Identity.SourceIP)
	return r, nil
}

func newRequest(ctx context.Context, method, path, rawQuery, body string, b64 bool) (*http.Request, error) {
	data := []byte(body)
	if b64 {
		var err error
		if data, err = base64.StdEncoding.DecodeString(body); err != nil {
			return nil, fmt.Errorf("decoding the event's base64 body: %w", err)
		}
	}
	u := &url.URL{Path: path, RawQuery: rawQuery}
	if path == "" {
		u.Path = "/"
	}
	r, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("building the request from the event: %w", err)
	}
	r.RequestURI = u.RequestURI()
	return r, nil
}

// finish sets what the gateway knows of the request: its id, when the caller
// sent none, and the caller's address.
func finish(r *http.Request, requestID, sourceIP string) {
	if r.Header.Get("X-Request-Id") == "" && requestID != "" {
		r.Header.Set("X-Request-Id", requestID)
	}
	if host := r.Header.Get("Host"); host != "" {
		r.Host = host
	}
	r.RemoteAddr = sourceIP
}

// MaxResponseBytes is the largest answer a synchronous Lambda invocation
// may return, the whole response event included.
const MaxResponseBytes = 6 << 20

// headroom is kept below MaxResponseBytes for the response event's own
// fields and headers.
const headroom = 64 << 10

// ErrTooLarge is returned for an answer larger than Lambda may return.
var ErrTooLarge = errors.New("the answer is larger than a Lambda function may return")

// Fits reports whether an answer with this body stays within what a Lambda
// function may return once it is a response event: the handler checks it
// before answering, so that it can answer something else.
func Fits(h http.Header, body []byte) bool {
	if text(h, body) {
		return encodedFits(body)
	}
	return base64.StdEncoding.EncodedLen(len(body)) <= MaxResponseBytes-headroom
}

// recorder is the http.ResponseWriter the handler writes the answer into.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// answer is the handler's answer as a response event carries it: the body
// as text when it is UTF-8, in base64 otherwise.
type answer struct {
	status int
	header http.Header
	body   string
	b64    bool
}

func (w *recorder) answer() answer {
	a := answer{status: w.status, header: w.header}
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if b := w.body.Bytes(); text(w.header, b) {
		a.body = string(b)
	} else {
		a.body, a.b64 = base64.StdEncoding.EncodeToString(b), true
	}
	return a
}

// text reports whether a body goes into the response event as text: UTF-8,
// and not encoded (a gzipped body is bytes, which API Gateway takes in
// base64).
func text(h http.Header, body []byte) bool {
	return h.Get("Content-Encoding") == "" && utf8.Valid(body)
}

// fits reports whether the answer stays within what Lambda may return once
// its body is a JSON string in the response event.
func (a answer) fits() bool { return encodedFits(a.body) }

// encodedFits reports whether body, as the JSON string of a response event,
// leaves the headroom below MaxResponseBytes.
func encodedFits[T string | []byte](body T) bool {
	limit := MaxResponseBytes - headroom
	n := len(body)
	if n > limit {
		return false
	}
	for i := 0; i < len(body); i++ {
		// encoding/json writes these as \" and \\, or at most \u00XX.
		switch c := body[i]; {
		case c == '"' || c == '\\':
			n++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			n += 5
		}
	}
	return n <= limit
}

func (a answer) v2() events.APIGatewayV2HTTPResponse {
	headers := make(map[string]string, len(a.header))
	var cookies []string
	for k, vs := range a.header {
		if k == "Set-Cookie" {
			cookies = vs
			continue
		}
		headers[k] = strings.Join(vs, ",")
	}
	return events.APIGatewayV2HTTPResponse{StatusCode: a.status, Headers: headers, Cookies: cookies, Body: a.body, IsBase64Encoded: a.b64}
}

func (a answer) v1() events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: a.status, MultiValueHeaders: a.header, Body: a.body, IsBase64Encoded: a.b64}
}
