// Package cube is the client of Cube's REST API: it mints the project-scoped
// token, sends the query, polls "Continue wait" until a deadline, and turns
// Cube's failures into the answers GitLab gives.
package cube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"productanalytics/shared/trace"
)

// Endpoint is one of Cube's REST API calls.
type Endpoint string

// The Cube calls the API forwards.
const (
	Load   Endpoint = "load"
	DryRun Endpoint = "dry-run"
	Meta   Endpoint = "meta"
	// PreAggregationJobs starts or reads pre-aggregation builds.
	PreAggregationJobs Endpoint = "pre-aggregations/jobs"
)

// Keys serves the Cube API key. Refresh is called when Cube rejected a token
// signed with used, which happens when the key was rotated.
type Keys interface {
	Get(ctx context.Context) (string, error)
	Refresh(ctx context.Context, used string) (string, error)
}

// The defaults of Options, which a zero value takes.
const (
	// Cube answers within its continue-wait (5 s) unless its one thread
	// is building large answers, which took more than 10 s on a loaded
	// Cube (make bench-neighbours); still inside DefaultWaitDeadline.
	DefaultRequestTimeout   = 20 * time.Second
	DefaultWaitDeadline     = 25 * time.Second
	DefaultMaxResponseBytes = 64 << 20
)

// Options configure a Client. Zero values take the defaults above.
type Options struct {
	// BaseURL is Cube's address, without /cubejs-api.
	BaseURL string
	// Issuer is the iss claim of the tokens minted for Cube.
	Issuer string
	// RequestTimeout bounds one HTTP exchange with Cube.
	RequestTimeout time.Duration
	// WaitDeadline bounds the whole call, Continue-wait polls included;
	// past it the caller is told to continue waiting.
	WaitDeadline time.Duration
	// HTTPClient is the client to use (default: a keep-alive client of
	// this package's own).
	HTTPClient *http.Client
	// MaxResponseBytes bounds the answer read from Cube.
	MaxResponseBytes int64
	// Now is the clock the tokens' iat and exp are taken from (default
	// time.Now); deadlines always follow the real clock.
	Now func() time.Time
}

// Client calls Cube. Build one per process; it is safe for concurrent use.
type Client struct {
	base   string
	keys   Keys
	http   *http.Client
	opts   Options
	sleep  func(context.Context, time.Duration) error
	tokens tokens
}

// NewHTTPClient returns the keep-alive client Cube is called with.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// NewClient returns a Client for the Cube at opts.BaseURL.
func NewClient(keys Keys, opts Options) *Client {
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.WaitDeadline <= 0 {
		opts.WaitDeadline = DefaultWaitDeadline
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := opts.HTTPClient
	if h == nil {
		h = NewHTTPClient()
	}
	return &Client{
		base:  strings.TrimRight(opts.BaseURL, "/") + "/cubejs-api/v1/",
		keys:  keys,
		http:  h,
		opts:  opts,
		sleep: sleepCtx,
	}
}

// Request is one call for one project.
type Request struct {
	Endpoint  Endpoint
	ProjectID int64
	// Query is the Cube query (load and dry-run only), sent unchanged.
	Query json.RawMessage
	// Body is the whole body of a call that takes no query
	// (PreAggregationJobs).
	Body json.RawMessage
	// RequestID is forwarded as x-request-id.
	RequestID string
	// Stream leaves a successful answer of more than StreamAbove bytes in
	// Response.Stream, to be copied to the caller as it arrives, instead of
	// reading it into Response.Body.
	Stream bool
}

// StreamAbove is the size past which an answer may be streamed: far above
// "Continue wait" and any error, which are always read whole.
const StreamAbove = 64 << 10

// Response is Cube's answer to pass to the caller with status 200: its data,
// or {"error":"Continue wait"} when the deadline passed first.
type Response struct {
	// Body is the answer, unless it is in Stream.
	Body []byte
	// Stream, when not nil, is a streamed answer of Length bytes (-1 when
	// unknown); the caller copies and must Close it, and the call's
	// deadlines run until then.
	Stream io.ReadCloser
	Length int64
	// Token is the Cube token the answer was obtained with.
	Token string
	// Polls counts the re-sends after "Continue wait".
	Polls int
	// ContinueWait is set when Body tells the caller to continue waiting.
	ContinueWait bool
	// Deployment names the Cube deployment that answered, when the call
	// was routed (Routed.Do).
	Deployment string
}

var continueWaitBody = []byte(`{"error":"Continue wait"}`)

// answerMargin is the time kept, before the context's deadline, to answer.
const answerMargin = 200 * time.Millisecond

// Do sends req to Cube, re-sending it while Cube answers "Continue wait"
// until the deadline. A failure of Cube is an *Error (errors.Is tells its
// Kind); a Response is returned alongside an error when Cube was reached,
// for its poll count.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	// One deadline bounds the whole call, on the context, so that every send
	// and every pause ends with it. It stops a little before the caller's own
	// deadline (the Lambda invoke's), so that "Continue wait" still reaches
	// the caller.
	deadline := time.Now().Add(c.opts.WaitDeadline)
	if d, ok := ctx.Deadline(); ok && d.Add(-answerMargin).Before(deadline) {
		deadline = d.Add(-answerMargin)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	streaming := false
	defer func() {
		if !streaming {
			cancel()
		}
	}()
	key, err := c.keys.Get(ctx)
	if err != nil {
		return nil, &Error{Kind: ErrKeyUnavailable, Err: err}
	}
	body, err := c.requestBody(req)
	if err != nil {
		return nil, err
	}
	res := &Response{}
	refreshed := false
	backoff := 50 * time.Millisecond
	for {
		// Taken for each send: a wait may outlast a token (the warm-up's
		// does), and a refreshed key needs a new one.
		if res.Token, err = c.tokens.get(key, req.ProjectID, c.opts.Issuer, c.opts.Now()); err != nil {
			return res, fmt.Errorf("signing the Cube token: %w", err)
		}
		rep, stream, err := c.send(ctx, req, body, res.Token)
		status, answer := rep.status, rep.body
		if stream != nil {
			// The deadline runs until the caller has the whole answer.
			streaming = true
			res.Stream, res.Length = stream.withCancel(cancel), stream.length
			return res, nil
		}
		if err != nil {
			if res.Polls > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// Cube was still working on it: tell the caller to ask again.
				res.Body, res.ContinueWait = continueWaitBody, true
				return res, nil
			}
			return res, err
		}
		switch {
		case status == http.StatusOK && isContinueWait(answer):
			if !time.Now().Add(backoff).Before(deadline) {
				res.Body, res.ContinueWait = continueWaitBody, true
				return res, nil
			}
			if err := c.sleep(ctx, backoff); err != nil {
				res.Body, res.ContinueWait = continueWaitBody, true
				return res, nil
			}
			backoff = min(backoff*2, 500*time.Millisecond)
			res.Polls++
		case status == http.StatusOK:
			if !looksLikeJSON(answer) {
				return res, &Error{Kind: ErrBadAnswer, Status: status, Message: "the answer is not JSON"}
			}
			res.Body = answer
			return res, nil
		case status == http.StatusForbidden && !refreshed && cubeError(answer) == "Invalid token":
			// The key may have been rotated since it was cached.
			refreshed = true
			if key, err = c.keys.Refresh(ctx, key); err != nil {
				return res, &Error{Kind: ErrKeyUnavailable, Err: err}
			}
		case status == http.StatusTooManyRequests:
			// Never re-sent here: asking again at once is what Cube just
			// refused. The caller is told when to ask.
			return res, &Error{Kind: ErrBusy, Status: status, Message: bounded(cubeError(answer)), RetryAfter: retryAfter(rep.retryAfter, time.Now())}
		default:
			return res, failure(status, answer)
		}
	}
}

func (c *Client) requestBody(req Request) ([]byte, error) {
	switch req.Endpoint {
	case Meta:
		return nil, nil
	case Load, DryRun:
		b := make([]byte, 0, len(req.Query)+32)
		b = append(b, `{"query":`...)
		b = append(b, req.Query...)
		b = append(b, `,"queryType":"multi"}`...)
		return b, nil
	case PreAggregationJobs:
		return req.Body, nil
	}
	return nil, fmt.Errorf("unknown Cube endpoint %q", req.Endpoint)
}

// exchange is Cube's answer to one exchange, read whole.
type exchange struct {
	status int
	body   []byte
	// retryAfter is Cube's Retry-After header, as sent.
	retryAfter string
}

// send makes one HTTP exchange with Cube. A successful answer larger than
// StreamAbove, when req.Stream asks for it, comes back as a stream instead
// of read.
func (c *Client) send(ctx context.Context, req Request, body []byte, token string) (exchange, *stream, error) {
	if err := ctx.Err(); err != nil {
		return exchange{}, nil, transportError(ctx, err)
	}
	// The exchange's own bound runs until Cube's answer has arrived,
	// except that a streamed answer, once Cube has begun it, has the rest
	// of the call's deadline to arrive: 12 MB can take longer than one
	// exchange's bound on a loaded machine, and an answer cut there would
	// reach the caller cut.
	ctx, cancelCause := context.WithCancelCause(ctx)
	bound := time.AfterFunc(c.opts.RequestTimeout, func() { cancelCause(errExchangeTimeout) })
	cancel := func() {
		bound.Stop()
		cancelCause(nil)
	}
	streamed := false
	defer func() {
		if !streamed {
			cancel()
		}
	}()
	method, reader := http.MethodGet, io.Reader(nil)
	if body != nil {
		method, reader = http.MethodPost, bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, c.base+string(req.Endpoint), reader)
	if err != nil {
		return exchange{}, nil, fmt.Errorf("building the request to Cube: %w", err)
	}
	hreq.Header.Set("Authorization", token)
	hreq.Header.Set("Accept", "application/json")
	if body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if req.RequestID != "" {
		hreq.Header.Set("x-request-id", req.RequestID)
	}
	// The X-Ray trace goes on too: a load balancer in front of Cube logs
	// it and keeps its Root, so that the trace reaches Cube's side.
	if h := trace.FromContext(ctx); h != "" {
		hreq.Header.Set(trace.Header, h)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return exchange{}, nil, transportError(ctx, err)
	}
	tooLarge := &Error{Kind: ErrBadAnswer, Status: resp.StatusCode, Message: fmt.Sprintf("the answer is larger than %d bytes; lower the query's limit", c.opts.MaxResponseBytes)}
	if resp.ContentLength > c.opts.MaxResponseBytes {
		resp.Body.Close()
		return exchange{}, nil, tooLarge
	}
	if req.Stream && resp.StatusCode == http.StatusOK && resp.ContentLength > StreamAbove &&
		strings.Contains(resp.Header.Get("Content-Type"), "json") {
		streamed = true
		bound.Stop()
		return exchange{status: resp.StatusCode}, &stream{body: resp.Body, cancels: []context.CancelFunc{cancel}, length: resp.ContentLength}, nil
	}
	defer resp.Body.Close()
	// Read once into a buffer of the announced size, rather than growing
	// (and copying) one: answers reach 12 MB.
	buf := bytes.NewBuffer(make([]byte, 0, max(resp.ContentLength, 0)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1)); err != nil {
		return exchange{}, nil, transportError(ctx, err)
	}
	if int64(buf.Len()) > c.opts.MaxResponseBytes {
		return exchange{}, nil, tooLarge
	}
	return exchange{status: resp.StatusCode, body: buf.Bytes(), retryAfter: resp.Header.Get("Retry-After")}, nil, nil
}

// stream is an answer being read from Cube; closing it ends the exchange
// and the call's deadlines.
type stream struct {
	body    io.ReadCloser
	cancels []context.CancelFunc
	length  int64
}

func (s *stream) Read(p []byte) (int, error) { return s.body.Read(p) }

func (s *stream) Close() error {
	err := s.body.Close()
	for _, cancel := range s.cancels {
		cancel()
	}
	return err
}

func (s *stream) withCancel(cancel context.CancelFunc) *stream {
	s.cancels = append(s.cancels, cancel)
	return s
}

// errExchangeTimeout ends an exchange that outlasted Options.RequestTimeout.
var errExchangeTimeout = errors.New("the exchange with Cube outlasted its bound")

func transportError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(context.Cause(ctx), errExchangeTimeout) {
		return &Error{Kind: ErrTimeout, Err: err}
	}
	return &Error{Kind: ErrUnreachable, Err: err}
}

// failure describes an unsuccessful answer of Cube.
func failure(status int, answer []byte) *Error {
	msg := cubeError(answer)
	e := &Error{Status: status, Message: msg}
	switch {
	case msg == "":
		e.Kind, e.Message = ErrBadAnswer, "an HTTP "+strconv.Itoa(status)+" answer without a JSON error"
	case status == http.StatusForbidden && msg == "Invalid token":
		// Cube refused our own token: the key is wrong, not the caller's query.
		e.Kind, e.Message = ErrKeyRefused, ""
	case status == http.StatusForbidden:
		e.Kind = ErrBadAnswer
	case isMissingDatabase(msg):
		e.Kind = ErrDatabaseNotFound
	case storeFailure(msg) != "":
		// Whatever Cube's status (it answers DuckDB's out of memory
		// 400): not the caller's mistake. The caller gets the reason in
		// fixed words; Cube's text, which may name hosts and users, stays
		// in the log.
		e.Kind, e.Message, e.Err = ErrStore, storeFailure(msg), errors.New(bounded(msg))
	case status >= 500:
		e.Kind = ErrFailed
	default:
		e.Kind = ErrQuery
	}
	return e
}

// cubeError returns the error text of a Cube error body, "" if it has none.
// Cube's stack, type and anything else are dropped.
func cubeError(answer []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(answer, &e) != nil || len(e.Error) == 0 || string(e.Error) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil {
		return s
	}
	var obj struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(e.Error, &obj) == nil && obj.Message != "" {
		return obj.Message
	}
	return string(e.Error)
}

// isMissingDatabase recognises "this project has no events store" in the
// wording of ClickHouse, PostgreSQL and DuckDB.
func isMissingDatabase(msg string) bool {
	switch {
	case strings.Contains(msg, "UNKNOWN_DATABASE"), strings.Contains(msg, "UNKNOWN_TABLE"),
		strings.Contains(msg, "Code: 81."), strings.Contains(msg, "Code: 60."),
		strings.Contains(msg, "Code: 81,"), strings.Contains(msg, "Code: 60,"):
		return true // ClickHouse; before 19.x "Code: 81, e.displayText() = ..."
	case strings.Contains(msg, "AUTHENTICATION_FAILED"), strings.Contains(msg, "Code: 516."),
		strings.Contains(msg, "Code: 192,"), strings.Contains(msg, "Code: 193,"):
		// ClickHouse refused the project's own user (cube/clickhouse.js),
		// which exists only with the project's database. Current releases
		// do not say whether the user or its password was wrong; old ones
		// did (192 UNKNOWN_USER, 193 WRONG_PASSWORD).
		return true
	case !strings.Contains(msg, "does not exist"):
		return false
	case strings.Contains(msg, "relation "), strings.Contains(msg, "schema "):
		return true // PostgreSQL
	case strings.Contains(msg, "Catalog Error") &&
		(strings.Contains(msg, "Table with name") || strings.Contains(msg, "Schema with name")):
		return true // DuckDB
	}
	return false
}

// The bounds of a Retry-After passed on to the caller.
const (
	MinRetryAfter = time.Second
	MaxRetryAfter = time.Minute
)

// retryAfter reads Cube's Retry-After (seconds, or an HTTP date) as whole
// seconds within MinRetryAfter and MaxRetryAfter; anything else, or none,
// is MinRetryAfter.
func retryAfter(header string, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	d := MinRetryAfter
	if n, err := strconv.ParseInt(header, 10, 64); err == nil {
		d = time.Duration(min(max(n, 0), int64(MaxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(header); err == nil {
		d = t.Sub(now).Round(time.Second)
	}
	return min(max(d, MinRetryAfter), MaxRetryAfter)
}

// maxMessage bounds the text of Cube's kept in an error: a message that
// echoes a huge query would otherwise fill the log line.
const maxMessage = 500

// bounded is msg cut to maxMessage bytes, on a rune boundary.
func bounded(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "..."
}

func isContinueWait(answer []byte) bool {
	if len(answer) > 64 || !bytes.Contains(answer, []byte("Continue wait")) {
		return false
	}
	return cubeError(answer) == "Continue wait"
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
