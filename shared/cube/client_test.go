package cube

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testIssuer = "gitlab.example.com"

// testQuery has spacing, non-ASCII text and HTML characters that any
// re-encoding on the way to Cube would change.
const testQuery = `{ "measures": ["TrackedEvents.count"],
  "filters": [{"member":"TrackedEvents.pageTitle","operator":"equals","values":["café <b>&"]}],
  "limit": 100 }`

// testAnswer must reach the caller byte for byte, odd spacing included.
const testAnswer = `{"queryType":"regularQuery","results":[{"data":[{"TrackedEvents.pageTitle":"café <b>&","TrackedEvents.count":"83"}]}],  "slowQuery":false}` + "\n"

const continueWait = `{"error":"Continue wait"}`

// testClock stands still at the start of the current second, so that every
// token minted in a test carries the same iat and re-sends are
// byte-identical. Deadlines never pass on it, so it must not be used where
// the client's deadlines matter.
func testClock() func() time.Time {
	base := time.Now().Truncate(time.Second)
	return func() time.Time { return base }
}

// hang is how long the fake Cube holds an answer that should never arrive,
// and promptly half of it: a call bounded by a timeout of a second or less
// returns well within it even on a loaded machine, and a call that waited
// for the hung answer does not.
const (
	hang     = 10 * time.Second
	promptly = hang / 2
)

// deadlineRecorder records the deadline of each request's context, to check
// how the client bounds its sends without timing it.
type deadlineRecorder struct {
	mu        sync.Mutex
	deadlines []time.Time
}

func (d *deadlineRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	dl, _ := r.Context().Deadline()
	d.mu.Lock()
	d.deadlines = append(d.deadlines, dl)
	d.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// fakeKeys stands in for the secrets cache: Refresh "discovers" refreshTo,
// as after a rotation.
type fakeKeys struct {
	mu         sync.Mutex
	key        string
	refreshTo  string
	getErr     error
	refreshErr error
	gets       int
	refreshes  int
	used       []string
}

func (k *fakeKeys) Get(context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gets++
	if k.getErr != nil {
		return "", k.getErr
	}
	return k.key, nil
}

func (k *fakeKeys) Refresh(_ context.Context, used string) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refreshes++
	k.used = append(k.used, used)
	if k.refreshErr != nil {
		return "", k.refreshErr
	}
	k.key = k.refreshTo
	return k.key, nil
}

func (k *fakeKeys) counts() (gets, refreshes int, used []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gets, k.refreshes, slices.Clone(k.used)
}

// reply is one answer of the fake Cube.
type reply struct {
	status      int
	body        string
	contentType string
	// delay holds the answer back; a client that gives up cuts it short.
	delay time.Duration
	// retryAfter, when set, is sent as the Retry-After header.
	retryAfter string
}

// seen is one request as the fake Cube received it.
type seen struct {
	method, path, auth, requestID string
	body                          []byte
	signedWith                    string
}

// fakeCube plays Cube: it checks every request the way a strict Cube
// would (token signature, algorithm, claims) plus what the proxy promises
// (path, method, body envelope, request id), answers 403 "Invalid token" to
// tokens not signed with its current key, and otherwise plays a script.
type fakeCube struct {
	srv    *httptest.Server
	clock  func() time.Time
	accept string
	// keys are all the keys a test hands out, to tell which one signed a token.
	keys []string

	mu       sync.Mutex
	want     map[string]Request // by x-request-id
	script   []reply            // the i-th accepted request gets script[i]; the last repeats
	answer   func(Request) reply
	calls    []seen
	accepted int
	problems []string
}

func newFakeCube(t testing.TB, clock func() time.Time, accept string, keys ...string) *fakeCube {
	f := &fakeCube{clock: clock, accept: accept, keys: []string{accept}, want: map[string]Request{}}
	for _, k := range keys {
		if k != "" && !slices.Contains(f.keys, k) {
			f.keys = append(f.keys, k)
		}
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(func() {
		// Close waits for the handlers, so every problem is recorded by now.
		f.srv.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, p := range f.problems {
			t.Errorf("Cube side: %s", p)
		}
	})
	return f
}

func (f *fakeCube) expect(req Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.want[req.RequestID] = req
}

func (f *fakeCube) seenCalls() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeCube) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	body, err := io.ReadAll(r.Body)
	if err != nil {
		bad("reading the body: %v", err)
	}
	s := seen{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body}
	ids := r.Header.Values("X-Request-Id")
	if len(ids) > 1 {
		bad("x-request-id sent %d times", len(ids))
	}
	if len(ids) > 0 {
		s.requestID = ids[0]
	}
	f.mu.Lock()
	want, known := f.want[s.requestID]
	f.mu.Unlock()
	if !known {
		bad("unexpected x-request-id %q", s.requestID)
	} else {
		f.check(r, &s, want, bad)
	}

	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.problems = append(f.problems, problems...)
	var rep reply
	switch {
	case s.signedWith != f.accept:
		rep = reply{status: http.StatusForbidden, body: `{"error":"Invalid token"}`}
	case f.answer != nil:
		rep = f.answer(want)
	case len(f.script) > 0:
		rep = f.script[min(f.accepted, len(f.script)-1)]
	default:
		rep = reply{status: http.StatusOK, body: testAnswer}
	}
	if s.signedWith == f.accept {
		f.accepted++
	}
	f.mu.Unlock()

	if rep.delay > 0 {
		select {
		case <-time.After(rep.delay):
		case <-r.Context().Done():
			return
		}
	}
	ct := rep.contentType
	if ct == "" {
		ct = "application/json; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	if rep.retryAfter != "" {
		w.Header()["Retry-After"] = []string{rep.retryAfter}
	}
	w.WriteHeader(rep.status)
	io.WriteString(w, rep.body)
}

func (f *fakeCube) check(r *http.Request, s *seen, want Request, bad func(string, ...any)) {
	if p := "/cubejs-api/v1/" + string(want.Endpoint); s.path != p {
		bad("path %q, want %q", s.path, p)
	}
	if r.URL.RawQuery != "" {
		bad("query string %q, want none", r.URL.RawQuery)
	}
	if want.Endpoint == Meta {
		if s.method != http.MethodGet {
			bad("meta: method %s, want GET", s.method)
		}
		if len(s.body) != 0 || r.ContentLength > 0 {
			bad("meta: body %q, want none", s.body)
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			bad("meta: Content-Type %q, want none", ct)
		}
	} else {
		if s.method != http.MethodPost {
			bad("%s: method %s, want POST", want.Endpoint, s.method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			bad("%s: Content-Type %q, want application/json", want.Endpoint, ct)
		}
		if wantBody := `{"query":` + string(want.Query) + `,"queryType":"multi"}`; string(s.body) != wantBody {
			bad("%s: body\n%s\nwant\n%s", want.Endpoint, s.body, wantBody)
		}
		if !json.Valid(s.body) {
			bad("%s: body is not JSON: %s", want.Endpoint, s.body)
		}
	}

	if strings.HasPrefix(strings.ToLower(s.auth), "bearer") || strings.Count(s.auth, ".") != 2 || strings.ContainsAny(s.auth, " \t") {
		bad("Authorization %q is not a raw JWT", s.auth)
		return
	}
	var claims jwt.MapClaims
	for _, k := range f.keys {
		claims = jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(s.auth, claims, func(*jwt.Token) (any, error) { return []byte(k), nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(testIssuer), jwt.WithIssuedAt(),
			jwt.WithExpirationRequired(), jwt.WithTimeFunc(f.clock), jwt.WithJSONNumber())
		if err == nil && tok.Valid {
			s.signedWith = k
			break
		}
		if !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			bad("token rejected for another reason than its key: %v", err)
			return
		}
	}
	if s.signedWith == "" {
		bad("token signed with none of the keys handed out")
		return
	}
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"appId", "exp", "iat", "iss"}; !slices.Equal(keys, want) {
		bad("claims %v, want exactly %v", keys, want)
	}
	if app, want := claims["appId"], fmt.Sprintf("gitlab_project_%d", want.ProjectID); app != want {
		bad("appId %v, want %q", app, want)
	}
	iatN, ok1 := claims["iat"].(json.Number)
	expN, ok2 := claims["exp"].(json.Number)
	iat, err1 := iatN.Int64()
	exp, err2 := expN.Int64()
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		bad("iat %v / exp %v are not integers", claims["iat"], claims["exp"])
		return
	}
	if exp-iat != 180 {
		bad("exp - iat = %d, want 180", exp-iat)
	}
	if now := f.clock().Unix(); iat > now || iat < now-10 {
		bad("iat %d is not about now (%d)", iat, now)
	}
}

type doCase struct {
	name string
	// req defaults to a load for project 12; modify changes it.
	modify func(*Request)
	// script is what Cube answers to requests signed with its key.
	script []reply
	// clientKey is what Keys.Get returns, refreshTo what Refresh returns,
	// cubeKey the key Cube holds (default: all "key-1").
	clientKey, refreshTo, cubeKey string
	getErr, refreshErr            error
	opts                          func(*Options)
	ctxTimeout                    time.Duration
	closed                        bool

	wantKind         error // nil: success
	wantPlainError   bool  // an error that is not Cube's (a bad request)
	wantMessage      string
	wantBody         string
	wantPolls        int
	wantPollsAtLeast bool
	wantContinueWait bool
	wantCalls        int
	wantRefreshes    int
	wantNoResponse   bool
	sameToken        bool
	signedWith       string
	notInError       []string
	within, atLeast  time.Duration
	// check, when set, looks further at the error.
	check func(*testing.T, *Error)
}

func runDo(t *testing.T, tc doCase) {
	t.Helper()
	clock := time.Now
	if tc.sameToken {
		clock = testClock()
	}
	clientKey := cmp.Or(tc.clientKey, "key-1")
	cubeKey := cmp.Or(tc.cubeKey, clientKey)
	keys := &fakeKeys{key: clientKey, refreshTo: tc.refreshTo, getErr: tc.getErr, refreshErr: tc.refreshErr}
	f := newFakeCube(t, clock, cubeKey, clientKey, tc.refreshTo)
	f.script = tc.script
	req := Request{Endpoint: Load, ProjectID: 12, Query: json.RawMessage(testQuery), RequestID: "req-" + strings.ReplaceAll(tc.name, " ", "-")}
	if tc.modify != nil {
		tc.modify(&req)
	}
	f.expect(req)
	if tc.closed {
		f.srv.Close()
	}
	sends := &deadlineRecorder{}
	opts := Options{BaseURL: f.srv.URL, Issuer: testIssuer, Now: clock, RequestTimeout: 5 * time.Second, WaitDeadline: 5 * time.Second,
		HTTPClient: &http.Client{Transport: sends}}
	if tc.opts != nil {
		tc.opts(&opts)
	}
	c := NewClient(keys, opts)

	ctx := context.Background()
	if tc.ctxTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
		defer cancel()
	}
	start := time.Now()
	res, err := c.Do(ctx, req)
	elapsed := time.Since(start)

	// Each send ends before the caller's deadline, leaving time to answer:
	// checked on the deadlines the client set, not on the clock.
	if callerDeadline, ok := ctx.Deadline(); ok {
		sends.mu.Lock()
		for i, d := range sends.deadlines {
			if d.IsZero() || d.After(callerDeadline.Add(-answerMargin)) {
				t.Errorf("send %d may run until %v, past the caller's deadline less the margin (%v)", i, d, callerDeadline.Add(-answerMargin))
			}
		}
		sends.mu.Unlock()
	}

	if tc.within > 0 && elapsed > tc.within {
		t.Errorf("returned after %v, want within %v", elapsed, tc.within)
	}
	if elapsed < tc.atLeast {
		t.Errorf("returned after %v, want at least %v", elapsed, tc.atLeast)
	}
	switch {
	case tc.wantPlainError:
		var ce *Error
		if err == nil || errors.As(err, &ce) {
			t.Fatalf("error %v (%T), want a plain error", err, err)
		}
	case tc.wantKind == nil:
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
	default:
		var ce *Error
		if !errors.As(err, &ce) || !errors.Is(err, tc.wantKind) {
			t.Fatalf("error %v (%T), want an *Error of kind %q", err, err, tc.wantKind)
		}
		if tc.wantMessage != "" && ce.Message != tc.wantMessage {
			t.Errorf("message %q, want %q", ce.Message, tc.wantMessage)
		}
		for _, s := range tc.notInError {
			if strings.Contains(ce.Message, s) || strings.Contains(ce.Error(), s) {
				t.Errorf("error %q reveals %q", ce.Error(), s)
			}
		}
		if tc.check != nil {
			tc.check(t, ce)
		}
	}
	if tc.wantNoResponse {
		if res != nil {
			t.Errorf("Response %+v, want none", res)
		}
	} else {
		if res == nil {
			t.Fatal("no Response")
		}
		if tc.wantKind == nil && string(res.Body) != tc.wantBody {
			t.Errorf("body\n%q\nwant\n%q", res.Body, tc.wantBody)
		}
		if res.ContinueWait != tc.wantContinueWait {
			t.Errorf("ContinueWait %v, want %v", res.ContinueWait, tc.wantContinueWait)
		}
		if tc.wantPollsAtLeast && res.Polls < tc.wantPolls || !tc.wantPollsAtLeast && res.Polls != tc.wantPolls {
			t.Errorf("Polls %d, want %d (at least: %v)", res.Polls, tc.wantPolls, tc.wantPollsAtLeast)
		}
	}

	calls := f.seenCalls()
	wantCalls := tc.wantCalls
	if tc.wantPollsAtLeast && res != nil {
		wantCalls = res.Polls + 1
	}
	if len(calls) != wantCalls {
		t.Errorf("Cube got %d requests, want %d", len(calls), wantCalls)
	}
	if tc.wantKind == nil && len(calls) > 0 {
		last := calls[len(calls)-1]
		if res.Token != last.auth {
			t.Errorf("Response.Token is not the token Cube accepted")
		}
		if tc.signedWith != "" && last.signedWith != tc.signedWith {
			t.Errorf("answer obtained with a token signed by %q, want %q", last.signedWith, tc.signedWith)
		}
	}
	for i, c := range calls[min(1, len(calls)):] {
		first := calls[0]
		if c.method != first.method || c.path != first.path || string(c.body) != string(first.body) || c.requestID != first.requestID {
			t.Errorf("request %d differs from the first: %+v vs %+v", i+1, c, first)
		}
		if tc.sameToken && c.auth != first.auth {
			t.Errorf("request %d carries another token than the first", i+1)
		}
	}
	gets, refreshes, used := keys.counts()
	if gets != 1 {
		t.Errorf("Keys.Get called %d times, want 1", gets)
	}
	if refreshes != tc.wantRefreshes {
		t.Errorf("Keys.Refresh called %d times, want %d", refreshes, tc.wantRefreshes)
	}
	for _, u := range used {
		if u != clientKey {
			t.Errorf("Refresh told the rejected key was %q, want %q", u, clientKey)
		}
	}
}

func TestDoSuccess(t *testing.T) {
	meta := `{"cubes":[{"name":"TrackedEvents","measures":[{"name":"TrackedEvents.count","type":"number"}]}]}`
	dry := `{"queryType":"regularQuery","normalizedQueries":[{"measures":["TrackedEvents.count"]}],"queryOrder":[],"pivotQuery":{}}`
	for _, tc := range []doCase{
		{name: "load", wantBody: testAnswer, wantCalls: 1},
		{name: "dry-run", modify: func(r *Request) { r.Endpoint = DryRun },
			script: []reply{{status: 200, body: dry}}, wantBody: dry, wantCalls: 1},
		{name: "meta is a GET without body", modify: func(r *Request) { r.Endpoint, r.Query = Meta, nil },
			script: []reply{{status: 200, body: meta}}, wantBody: meta, wantCalls: 1},
		{name: "query array", modify: func(r *Request) {
			r.Query = json.RawMessage(`[{"measures":["Sessions.count"]},{"measures":["TrackedEvents.count"]}]`)
		},
			wantBody: testAnswer, wantCalls: 1},
		{name: "large project id", modify: func(r *Request) { r.ProjectID = 9007199254740993 }, wantBody: testAnswer, wantCalls: 1},
		{name: "no request id sends no header", modify: func(r *Request) { r.RequestID = "" }, wantBody: testAnswer, wantCalls: 1},
		{name: "base URL with trailing slash", opts: func(o *Options) { o.BaseURL += "/" }, wantBody: testAnswer, wantCalls: 1},
		{name: "answer that starts with whitespace is JSON", script: []reply{{status: 200, body: "\n  [1,2]"}}, wantBody: "\n  [1,2]", wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) { runDo(t, tc) })
	}
}

func TestDoContinueWait(t *testing.T) {
	cw := reply{status: 200, body: continueWait}
	for _, tc := range []doCase{
		{name: "twice then data", script: []reply{cw, cw, {status: 200, body: testAnswer}},
			wantBody: testAnswer, wantPolls: 2, wantCalls: 3, sameToken: true, within: promptly},
		{name: "dry-run too", modify: func(r *Request) { r.Endpoint = DryRun }, script: []reply{cw, {status: 200, body: testAnswer}},
			wantBody: testAnswer, wantPolls: 1, wantCalls: 2, sameToken: true},
		{name: "past the wait deadline", script: []reply{cw},
			opts:             func(o *Options) { o.WaitDeadline = 300 * time.Millisecond },
			wantBody:         continueWait,
			wantContinueWait: true, wantPolls: 1, wantPollsAtLeast: true, within: promptly},
		{name: "a context deadline shorter than the wait deadline", script: []reply{cw},
			opts:       func(o *Options) { o.WaitDeadline = 20 * time.Second },
			ctxTimeout: 300 * time.Millisecond, wantBody: continueWait,
			wantContinueWait: true, wantPolls: 1, wantPollsAtLeast: true, within: promptly},
		{name: "a poll that hangs until the context deadline", script: []reply{cw, {status: 200, body: testAnswer, delay: hang}},
			opts:       func(o *Options) { o.WaitDeadline = 20 * time.Second },
			ctxTimeout: 500 * time.Millisecond,
			wantBody:   continueWait, wantContinueWait: true, wantPolls: 1, wantCalls: 2,
			within: promptly, atLeast: 250 * time.Millisecond},
		{name: "a poll that hangs until the deadline", script: []reply{cw, {status: 200, body: testAnswer, delay: hang}},
			opts:     func(o *Options) { o.WaitDeadline = 500 * time.Millisecond },
			wantBody: continueWait, wantContinueWait: true, wantPolls: 1, wantCalls: 2,
			within: promptly, atLeast: 400 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) { runDo(t, tc) })
	}
}

func TestDoKeyRotation(t *testing.T) {
	for _, tc := range []doCase{
		{name: "refreshed key accepted", clientKey: "key-old", refreshTo: "key-new", cubeKey: "key-new",
			wantBody: testAnswer, wantCalls: 2, wantRefreshes: 1, signedWith: "key-new"},
		{name: "refreshed key still wrong: no loop", clientKey: "key-old", refreshTo: "key-newer", cubeKey: "key-newest",
			wantKind: ErrKeyRefused, wantCalls: 2, wantRefreshes: 1, notInError: []string{"key-old", "key-newer", "key-newest"}},
		{name: "refresh fails", clientKey: "key-old", cubeKey: "key-new", refreshErr: errors.New("secrets manager: AccessDenied"),
			wantKind: ErrKeyUnavailable, wantCalls: 1, wantRefreshes: 1},
		{name: "other 403 is not a rotation", script: []reply{{status: 403, body: `{"error":"Authorization header isn't set"}`}},
			wantKind: ErrBadAnswer, wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) { runDo(t, tc) })
	}
}

func TestDoFailures(t *testing.T) {
	stack := "UserError: 'nope' not found for path 'TrackedEvents.nope'\n    at CubeSymbols.resolveSymbolsCall (/cube/node_modules/@cubejs-backend/schema-compiler/dist/src/compiler/CubeSymbols.js:459:13)"
	userError, _ := json.Marshal(map[string]string{"type": "UserError", "error": "'nope' not found for path 'TrackedEvents.nope'", "stack": stack})
	html := "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
	for _, tc := range []doCase{
		{name: "Keys.Get fails", getErr: errors.New("secrets manager: ResourceNotFoundException arn:aws:secretsmanager:x"),
			wantKind: ErrKeyUnavailable, wantNoResponse: true},
		{name: "Cube 500 with a JSON error", script: []reply{{status: 500, body: `{"error":"Error: Query limit exceeded","stack":"at /cube/x.js:1"}`}},
			wantKind: ErrFailed, wantMessage: "Error: Query limit exceeded", wantCalls: 1, notInError: []string{"/cube/x.js"}},
		{name: "Cube 503 with HTML", script: []reply{{status: 503, body: html, contentType: "text/html"}},
			wantKind: ErrBadAnswer, wantCalls: 1, notInError: []string{"<html>"}},
		{name: "Cube 200 with HTML", script: []reply{{status: 200, body: html, contentType: "text/html"}},
			wantKind: ErrBadAnswer, wantCalls: 1, notInError: []string{"<html>"}},
		{name: "Cube 200 with an empty body", script: []reply{{status: 200, body: ""}},
			wantKind: ErrBadAnswer, wantCalls: 1},
		{name: "answer larger than the limit", opts: func(o *Options) { o.MaxResponseBytes = 64 },
			script:   []reply{{status: 200, body: `{"results":"` + strings.Repeat("x", 100) + `"}`}},
			wantKind: ErrBadAnswer, wantCalls: 1},
		{name: "Cube hangs past the request timeout", script: []reply{{status: 200, body: testAnswer, delay: hang}},
			opts:     func(o *Options) { o.RequestTimeout = 300 * time.Millisecond },
			wantKind: ErrTimeout, wantCalls: 1,
			within: promptly, atLeast: 250 * time.Millisecond},
		{name: "Cube hangs past the context deadline", script: []reply{{status: 200, body: testAnswer, delay: hang}},
			opts:       func(o *Options) { o.RequestTimeout, o.WaitDeadline = 20*time.Second, 20*time.Second },
			ctxTimeout: 300 * time.Millisecond,
			wantKind:   ErrTimeout, wantCalls: 1,
			within: promptly, atLeast: 50 * time.Millisecond},
		{name: "Cube unreachable", closed: true, wantKind: ErrUnreachable, within: promptly},
		{name: "UserError keeps the text, drops the stack", script: []reply{{status: 400, body: string(userError)}},
			wantKind: ErrQuery, wantMessage: "'nope' not found for path 'TrackedEvents.nope'", wantCalls: 1,
			notInError: []string{"/cube/", "node_modules", "CubeSymbols", "UserError:"}},
		{name: "unknown endpoint", modify: func(r *Request) { r.Endpoint = "sql" }, wantPlainError: true, wantNoResponse: true},
	} {
		t.Run(tc.name, func(t *testing.T) { runDo(t, tc) })
	}
}

func TestDoMissingDatabase(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		error  string
		want   error
	}{
		{"ClickHouse unknown database", 400, "Error: Code: 81. DB::Exception: Database gitlab_project_12 doesn't exist. (UNKNOWN_DATABASE) (version 23.8.2.7 (official build))", ErrDatabaseNotFound},
		{"ClickHouse unknown table", 500, "Error: Code: 60. DB::Exception: Table gitlab_project_12.snowplow_events doesn't exist. (UNKNOWN_TABLE) (version 23.8.2.7 (official build))", ErrDatabaseNotFound},
		{"ClickHouse 18 unknown database", 400, "Error: Query failed: Error: Code: 81, e.displayText() = DB::Exception: Database gitlab_project_12 doesn't exist, e.what() = DB::Exception\n; query id: 9e752ddd", ErrDatabaseNotFound},
		{"ClickHouse no user for the project", 400, "Error: Query failed: Error: Code: 516. DB::Exception: gitlab_project_3: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 24.8.4.13 (official build)); query id: 9e752ddd", ErrDatabaseNotFound},
		{"ClickHouse 18 no user for the project", 400, "Error: Query failed: Error: Code: 192, e.displayText() = DB::Exception: Unknown user gitlab_project_3, e.what() = DB::Exception\n; query id: 9e752ddd", ErrDatabaseNotFound},
		{"ClickHouse 18 wrong password", 400, "Error: Query failed: Error: Code: 193, e.displayText() = DB::Exception: Wrong password for user gitlab_project_3, e.what() = DB::Exception\n; query id: 9e752ddd", ErrDatabaseNotFound},
		{"ClickHouse access denied", 400, "Error: Query failed: Error: Code: 291, e.displayText() = DB::Exception: Access denied to database gitlab_project_2 for user gitlab_project_1, e.what() = DB::Exception\n; query id: 9e752ddd", ErrQuery},
		{"ClickHouse readonly", 400, "Error: Code: 164. DB::Exception: gitlab_project_1: Cannot execute query in readonly mode. (READONLY)", ErrQuery},
		{"Postgres relation", 400, `Error: relation "gitlab_project_3.snowplow_events" does not exist`, ErrDatabaseNotFound},
		{"Postgres schema", 400, `schema "gitlab_project_3" does not exist`, ErrDatabaseNotFound},
		{"DuckDB table", 400, "Catalog Error: Table with name snowplow_events does not exist!\nDid you mean \"main.snowplow_events\"?", ErrDatabaseNotFound},
		{"DuckDB schema", 500, "Catalog Error: Schema with name gitlab_project_3 does not exist!", ErrDatabaseNotFound},
		{"unknown member", 400, "'nope' not found for path 'TrackedEvents.nope'", ErrQuery},
		{"Postgres unknown column", 400, `column "nope" does not exist`, ErrQuery},
		{"DuckDB unknown function", 400, "Catalog Error: Scalar Function with name nope does not exist!", ErrQuery},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"error": tc.error, "stack": "Error\n    at /cube/node_modules/pg/lib/client.js:526:17"})
			runDo(t, doCase{name: tc.name, script: []reply{{status: tc.status, body: string(body)}},
				wantKind: tc.want, wantMessage: tc.error, wantCalls: 1, notInError: []string{"node_modules"}})
		})
	}
}

// TestDoConcurrent checks that parallel calls share the client safely and
// that each caller gets the answer for its own project.
func TestDoConcurrent(t *testing.T) {
	clock := time.Now
	keys := &fakeKeys{key: "key-1"}
	f := newFakeCube(t, clock, "key-1")
	f.answer = func(r Request) reply {
		return reply{status: 200, body: fmt.Sprintf(`{"project":%d}`, r.ProjectID), delay: 20 * time.Millisecond}
	}
	c := NewClient(keys, Options{BaseURL: f.srv.URL, Issuer: testIssuer, Now: clock})
	const n = 20
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{Endpoint: []Endpoint{Load, DryRun, Meta}[i%3], ProjectID: int64(i + 1), RequestID: fmt.Sprintf("req-%d", i)}
		if reqs[i].Endpoint != Meta {
			reqs[i].Query = json.RawMessage(fmt.Sprintf(`{"measures":["TrackedEvents.count"],"limit":%d}`, i+1))
		}
		f.expect(reqs[i])
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, req := range reqs {
		wg.Go(func() {
			res, err := c.Do(context.Background(), req)
			if err == nil && string(res.Body) != fmt.Sprintf(`{"project":%d}`, req.ProjectID) {
				err = fmt.Errorf("project %d got %s", req.ProjectID, res.Body)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := len(f.seenCalls()); got != n {
		t.Errorf("Cube got %d requests, want %d", got, n)
	}
}

func TestError(t *testing.T) {
	cause := errors.New("connection refused")
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Kind: ErrUnreachable, Err: cause}, "no connection to Cube: connection refused"},
		{&Error{Kind: ErrQuery, Status: 400, Message: "'x' not found"}, "the query was refused by Cube: 'x' not found"},
		{&Error{Kind: ErrKeyRefused, Status: 403}, "the API key was refused by Cube"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !errors.Is(tt.err, tt.err.Kind) {
				t.Error("errors.Is does not match the kind")
			}
			if errors.Is(tt.err, ErrTimeout) {
				t.Error("errors.Is matches another kind")
			}
			if tt.err.Err != nil && !errors.Is(tt.err, tt.err.Err) {
				t.Error("errors.Is does not reach the cause")
			}
		})
	}
}

func BenchmarkDo(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, testAnswer)
	}))
	defer srv.Close()
	c := NewClient(&fakeKeys{key: "key-1"}, Options{BaseURL: srv.URL, Issuer: testIssuer})
	req := Request{Endpoint: Load, ProjectID: 12, Query: json.RawMessage(testQuery), RequestID: "bench"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Do(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// A large successful answer comes back as a stream when asked for;
// "Continue wait", errors and small answers are read as before.
func TestDoStreams(t *testing.T) {
	big := `{"results":"` + strings.Repeat("x", StreamAbove) + `"}`
	cw := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		switch r.URL.Path {
		case "/cubejs-api/v1/load":
			if cw == 0 { // one Continue wait first, read whole
				cw++
				io.WriteString(w, continueWait)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			io.WriteString(w, big)
		default:
			io.WriteString(w, `{"cubes":[]}`)
		}
	}))
	defer srv.Close()
	c := NewClient(&fakeKeys{key: "k"}, Options{BaseURL: srv.URL, Issuer: testIssuer})
	tests := []struct {
		name       string
		req        Request
		wantStream bool
	}{
		{"large, asked to stream, after a Continue wait", Request{Endpoint: Load, ProjectID: 1, Query: json.RawMessage(`{}`), Stream: true}, true},
		{"large, not asked", Request{Endpoint: Load, ProjectID: 1, Query: json.RawMessage(`{}`)}, false},
		{"small, asked", Request{Endpoint: Meta, ProjectID: 1, Stream: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Do(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Stream != nil; got != tt.wantStream {
				t.Fatalf("streamed %v, want %v", got, tt.wantStream)
			}
			if res.Stream == nil {
				return
			}
			defer res.Stream.Close()
			b, err := io.ReadAll(res.Stream)
			if err != nil || string(b) != big || res.Length != int64(len(big)) || res.Polls != 1 {
				t.Fatalf("read %d bytes (%v), length %d, polls %d", len(b), err, res.Length, res.Polls)
			}
		})
	}
}

// A streamed answer that takes longer to arrive than one exchange's bound
// arrives whole: the bound is on Cube's beginning to answer; what is left
// of the call's deadline bounds the rest. Past that deadline, reading it
// fails rather than ending early.
func TestDoStreamOutlastsTheExchangeBound(t *testing.T) {
	const half = StreamAbove
	body := `{"results":"` + strings.Repeat("x", 2*half) + `"}`
	const bound = 200 * time.Millisecond
	for _, tc := range []struct {
		name           string
		hold, deadline time.Duration
		wantErr        bool
	}{
		{"within the call's deadline", 3 * bound, 20 * time.Second, false},
		{"past the call's deadline", 20 * time.Second, 3 * bound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Cube sends half of the answer at once, the rest after hold.
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				io.WriteString(w, body[:half])
				w.(http.Flusher).Flush()
				select {
				case <-time.After(tc.hold):
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, body[half:])
			}))
			defer srv.Close()
			c := NewClient(&fakeKeys{key: "k"}, Options{BaseURL: srv.URL, Issuer: testIssuer, RequestTimeout: bound, WaitDeadline: tc.deadline})
			res, err := c.Do(context.Background(), Request{Endpoint: Load, ProjectID: 1, Query: json.RawMessage(`{}`), Stream: true})
			if err != nil || res.Stream == nil {
				t.Fatalf("Do: %v, streamed %v", err, res != nil && res.Stream != nil)
			}
			defer res.Stream.Close()
			got, err := io.ReadAll(res.Stream)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("read %d bytes of %d past the call's deadline, without an error", len(got), len(body))
				}
				return
			}
			if err != nil || string(got) != body {
				t.Fatalf("read %d bytes of %d: %v", len(got), len(body), err)
			}
		})
	}
}
