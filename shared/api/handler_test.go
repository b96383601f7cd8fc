package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/attacks"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/seed"
	"productanalytics/shared/access"
	"productanalytics/shared/cube"
)

const (
	callerKey = "caller-key-for-api-tests-9f3c1a"
	cubeKey   = "cube-api-key-for-api-tests-77e2b4"
)

// logs collects every log line the handlers of this package's tests write,
// so that TestMain can check that no key or token ever reached them.
var logs = &logcheck.Buffer{}

func TestMain(m *testing.M) {
	code := m.Run()
	out := logs.String()
	if code == 0 {
		if err := logcheck.Leak(out, callerKey, cubeKey); err != nil {
			fmt.Println("log check:", err)
			code = 1
		} else {
			fmt.Printf("log check: %d lines, no key or token\n", strings.Count(out, "\n"))
		}
	}
	os.Exit(code)
}

// fakeCube is an httptest Cube that verifies the token it is sent and
// answers with a scripted function.
type fakeCube struct {
	*httptest.Server
	calls  atomic.Int64
	mu     sync.Mutex
	appIDs []string
	bodies [][]byte
	answer func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newFakeCube(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, body []byte)) *fakeCube {
	f := &fakeCube{answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		claims := jwt.MapClaims{}
		_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()).
			ParseWithClaims(r.Header.Get("Authorization"), claims, func(*jwt.Token) (any, error) { return []byte(cubeKey), nil })
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"Invalid token"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.appIDs = append(f.appIDs, claims["appId"].(string))
		f.bodies = append(f.bodies, body)
		f.mu.Unlock()
		f.answer(w, r, body)
	}))
	t.Cleanup(f.Close)
	return f
}

type staticKeys string

func (k staticKeys) Get(context.Context) (string, error)             { return string(k), nil }
func (k staticKeys) Refresh(context.Context, string) (string, error) { return string(k), nil }

func newTestHandler(t *testing.T, f *fakeCube, endpoints ...cube.Endpoint) *Handler {
	t.Helper()
	return NewHandler(newTestChecker(), newTestClient(f), slog.New(slog.NewJSONHandler(logs, nil)), Options{Endpoints: endpoints})
}

func newTestChecker() access.Checker {
	return access.NewJWT(access.JWTOptions{Key: func(context.Context) (string, error) { return callerKey, nil }})
}

func newTestClient(f *fakeCube) *cube.Client {
	// Bounds far above a loopback call, however loaded the machine.
	return cube.NewClient(staticKeys(cubeKey), cube.Options{BaseURL: f.URL, Issuer: "test", WaitDeadline: 20 * time.Second, RequestTimeout: 10 * time.Second})
}

func callerToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(callerKey))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func project1Token(t *testing.T) string {
	return callerToken(t, jwt.MapClaims{"projects": []int{1}})
}

var (
	seedTracked  = seed.Body(seed.TrackedEvents)
	seedSessions = seed.Body(seed.Sessions)
)

const (
	cubeAnswer = `{"queryType":"regularQuery","results":[{"data":[{"TrackedEvents.docPath":"/blog","TrackedEvents.count":"83"}]}],"slowQuery":false}`
)

func okCube(w http.ResponseWriter, r *http.Request, body []byte) { io.WriteString(w, cubeAnswer) }

func serve(h http.Handler, method, path, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func message(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var m struct {
		Message *string `json:"message"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m.Message == nil {
		t.Fatalf("body %q is not {\"message\": ...}", w.Body.String())
	}
	return *m.Message
}

// The query Cube gets is the API's own encoding of what it checked, which
// means to Cube what the caller's query means.
func TestSeedExamplesReachCube(t *testing.T) {
	f := newFakeCube(t, okCube)
	h := newTestHandler(t, f)
	for i, body := range []string{seedTracked, seedSessions} {
		for _, prefix := range []string{"", "/api/v4"} {
			w := serve(h, "POST", prefix+"/projects/1/product_analytics/request/load", "Bearer "+project1Token(t), body)
			if w.Code != 200 || w.Body.String() != cubeAnswer {
				t.Fatalf("example %d%s: %d %s", i, prefix, w.Code, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q", ct)
			}
			f.mu.Lock()
			appID, sent := f.appIDs[len(f.appIDs)-1], f.bodies[len(f.bodies)-1]
			f.mu.Unlock()
			if appID != "gitlab_project_1" {
				t.Fatalf("Cube saw appId %q", appID)
			}
			var want, got map[string]json.RawMessage
			json.Unmarshal([]byte(body), &want)
			json.Unmarshal(sent, &got)
			if !sameQuery(t, want["query"], got["query"]) || string(got["queryType"]) != `"multi"` {
				t.Fatalf("Cube got %s; want the caller's query %s", sent, want["query"])
			}
		}
	}
}

func TestEndpoints(t *testing.T) {
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		fmt.Fprintf(w, `{"endpoint":%q,"method":%q}`, r.URL.Path, r.Method)
	})
	h := newTestHandler(t, f)
	auth := "Bearer " + project1Token(t)
	tests := []struct {
		method, path, body string
		status             int
		cubePath           string
	}{
		{"POST", "/projects/1/product_analytics/request/load", seedTracked, 200, "/cubejs-api/v1/load"},
		{"POST", "/projects/1/product_analytics/request/dry-run", seedTracked, 200, "/cubejs-api/v1/dry-run"},
		{"GET", "/projects/1/product_analytics/request/meta", "", 200, "/cubejs-api/v1/meta"},
		{"POST", "/projects/1/product_analytics/request/meta", "", 200, "/cubejs-api/v1/meta"},
		{"GET", "/api/v4/projects/1/product_analytics/request/meta", "", 200, "/cubejs-api/v1/meta"},
		// As Cube's own client sends a query, and Cube takes it.
		{"GET", "/projects/1/product_analytics/request/load?queryType=multi&query=" + url.QueryEscape(seed.TrackedEvents), "", 200, "/cubejs-api/v1/load"},
		{"GET", "/projects/1/product_analytics/request/dry-run?query=" + url.QueryEscape(seed.Sessions), "", 200, "/cubejs-api/v1/dry-run"},
		{"GET", "/projects/1/product_analytics/request/load", "", 400, ""},
		{"PUT", "/projects/1/product_analytics/request/load", seedTracked, 405, ""},
		{"DELETE", "/projects/1/product_analytics/request/meta", "", 405, ""},
		{"POS", "/projects/1/product_analytics/request/load", seedTracked, 405, ""},
		{"ET", "/projects/1/product_analytics/request/meta", "", 405, ""},
		{"POST", "/projects/1/product_analytics/request/explain", seedTracked, 404, ""},
		{"POST", "/projects/1/product_analytics/load", seedTracked, 404, ""},
		{"GET", "/", "", 404, ""},
	}
	for _, tt := range tests {
		before := f.calls.Load()
		w := serve(h, tt.method, tt.path, auth, tt.body)
		if w.Code != tt.status {
			t.Errorf("%s %s = %d %s; want %d", tt.method, tt.path, w.Code, w.Body, tt.status)
			continue
		}
		if tt.cubePath != "" {
			var got struct{ Endpoint, Method string }
			json.Unmarshal(w.Body.Bytes(), &got)
			wantMethod := "POST"
			if strings.HasSuffix(tt.cubePath, "meta") {
				wantMethod = "GET"
			}
			if got.Endpoint != tt.cubePath || got.Method != wantMethod {
				t.Errorf("%s %s reached Cube as %s %s", tt.method, tt.path, got.Method, got.Endpoint)
			}
		} else {
			message(t, w)
			if f.calls.Load() != before {
				t.Errorf("%s %s called Cube", tt.method, tt.path)
			}
		}
	}
	if w := serve(h, "PUT", "/projects/1/product_analytics/request/load", auth, ""); w.Header().Get("Allow") != "GET, POST" {
		t.Errorf("405 without Allow: %v", w.Header())
	}
}

func TestOneEndpointPerFunction(t *testing.T) {
	f := newFakeCube(t, okCube)
	h := newTestHandler(t, f, cube.Meta)
	auth := "Bearer " + project1Token(t)
	if w := serve(h, "GET", "/projects/1/product_analytics/request/meta", auth, ""); w.Code != 200 {
		t.Fatalf("meta = %d", w.Code)
	}
	if w := serve(h, "POST", "/projects/1/product_analytics/request/load", auth, seedTracked); w.Code != 404 {
		t.Fatalf("load on the meta function = %d; want 404", w.Code)
	}
}

func TestRefusalsNeverCallCube(t *testing.T) {
	f := newFakeCube(t, okCube)
	h := newTestHandler(t, f)
	now := time.Now()
	tok := func(c jwt.MapClaims) string { return "Bearer " + callerToken(t, c) }
	other, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"projects": []int{1}, "exp": now.Add(time.Hour).Unix()}).SignedString([]byte("not-the-key"))
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"projects": []int{1}, "exp": now.Add(time.Hour).Unix()}).SignedString([]byte(callerKey))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"projects": []int{1}, "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	big := `{"query":{"measures":["TrackedEvents.count"]},"pad":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name, method, path, auth, body string
		status                         int
		message                        string
	}{
		{"no header", "POST", "/projects/1/product_analytics/request/load", "", seedTracked, 401, "401 Unauthorized"},
		{"not bearer", "POST", "/projects/1/product_analytics/request/load", "Token abc", seedTracked, 401, "401 Unauthorized"},
		{"garbage", "POST", "/projects/1/product_analytics/request/load", "Bearer garbage", seedTracked, 401, "401 Unauthorized"},
		{"alg none", "POST", "/projects/1/product_analytics/request/load", "Bearer " + none, seedTracked, 401, "401 Unauthorized"},
		{"HS512", "POST", "/projects/1/product_analytics/request/load", "Bearer " + hs512, seedTracked, 401, "401 Unauthorized"},
		{"wrong signature", "POST", "/projects/1/product_analytics/request/load", "Bearer " + other, seedTracked, 401, "401 Unauthorized"},
		{"expired", "POST", "/projects/1/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}, "exp": now.Add(-time.Hour).Unix()}), seedTracked, 401, "401 Unauthorized"},
		{"nbf in the future", "POST", "/projects/1/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}, "nbf": now.Add(time.Hour).Unix()}), seedTracked, 401, "401 Unauthorized"},
		{"claim missing", "POST", "/projects/1/product_analytics/request/load", tok(jwt.MapClaims{"sub": "alice"}), seedTracked, 401, "401 Unauthorized"},
		{"project not in claim", "POST", "/projects/2/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), seedTracked, 404, "404 Project Not Found"},
		// A claim's IDs follow the path's rule: one spelling per project.
		{"claim 02 for project 2", "POST", "/projects/2/product_analytics/request/load", tok(jwt.MapClaims{"projects": []string{"1", "02"}}), seedTracked, 401, "401 Unauthorized"},
		{"claim +2 for project 2", "POST", "/projects/2/product_analytics/request/load", tok(jwt.MapClaims{"projects": "+2"}), seedTracked, 401, "401 Unauthorized"},
		{"claim 2.0 for project 2", "GET", "/projects/2/product_analytics/request/meta", tok(jwt.MapClaims{"projects": []any{json.Number("2.0")}}), "", 401, "401 Unauthorized"},
		{"meta of another project", "GET", "/projects/2/product_analytics/request/meta", tok(jwt.MapClaims{"projects": []int{1}}), "", 404, "404 Project Not Found"},
		{"id 01", "POST", "/projects/01/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), seedTracked, 400, "id is invalid"},
		{"id 1.0", "POST", "/projects/1.0/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), seedTracked, 400, "id is invalid"},
		{"id -1", "POST", "/projects/-1/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), seedTracked, 400, "id is invalid"},
		{"id +1", "POST", "/projects/+1/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), seedTracked, 400, "id is invalid"},
		{"id past 63 bits", "POST", "/projects/9223372036854775808/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), seedTracked, 400, "id is invalid"},
		{"bad query", "POST", "/projects/1/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), `{"query":{"measures":["nope"]}}`, 400, "query.measures[0] is not a member name"},
		{"bad query on dry-run", "POST", "/projects/1/product_analytics/request/dry-run", tok(jwt.MapClaims{"projects": []int{1}}), `{"query":{"measures":["TrackedEvents.count"],"limit":99999}}`, 400, "query.limit is 99999"},
		{"malformed JSON", "POST", "/projects/1/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), `{"query":{`, 400, "not valid JSON"},
		{"include_token garbage", "POST", "/projects/1/product_analytics/request/load?include_token=perhaps", tok(jwt.MapClaims{"projects": []int{1}}), seedTracked, 400, "include_token is invalid"},
		{"body over 1 MB", "POST", "/projects/1/product_analytics/request/load", tok(jwt.MapClaims{"projects": []int{1}}), big, 413, "413 Request Entity Too Large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(h, tt.method, tt.path, tt.auth, tt.body)
			if w.Code != tt.status {
				t.Fatalf("status %d %s; want %d", w.Code, w.Body, tt.status)
			}
			if got := message(t, w); !strings.Contains(got, tt.message) {
				t.Fatalf("message %q; want %q", got, tt.message)
			}
		})
	}
	if n := f.calls.Load(); n != 0 {
		t.Fatalf("Cube was called %d times for refused requests", n)
	}
}

func TestIncludeToken(t *testing.T) {
	f := newFakeCube(t, okCube)
	h := newTestHandler(t, f)
	auth := "Bearer " + project1Token(t)
	withToken := strings.Replace(seedTracked, `"queryType":"multi"`, `"queryType":"multi","include_token":true`, 1)
	for _, tc := range []struct{ path, body string }{
		{"/projects/1/product_analytics/request/load", withToken},
		{"/projects/1/product_analytics/request/dry-run?include_token=true", seedTracked},
	} {
		w := serve(h, "POST", tc.path, auth, tc.body)
		var got map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
			t.Fatalf("%s: %d %s", tc.path, w.Code, w.Body)
		}
		var tok string
		json.Unmarshal(got["token"], &tok)
		claims := jwt.MapClaims{}
		if _, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"})).ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(cubeKey), nil }); err != nil {
			t.Fatalf("%s: token does not verify with the Cube key: %v", tc.path, err)
		}
		exp, _ := claims.GetExpirationTime()
		iat, _ := claims.GetIssuedAt()
		if claims["appId"] != "gitlab_project_1" || exp.Sub(iat.Time) != 180*time.Second {
			t.Fatalf("%s: token claims %v", tc.path, claims)
		}
		if string(got["results"]) == "" || string(got["queryType"]) != `"regularQuery"` {
			t.Fatalf("%s: Cube's answer lost: %s", tc.path, w.Body)
		}
	}
	// Without the flag the answer is Cube's, byte for byte.
	if w := serve(h, "POST", "/projects/1/product_analytics/request/load", auth, seedTracked); w.Body.String() != cubeAnswer {
		t.Fatalf("answer changed without include_token: %s", w.Body)
	}
}

func TestWithToken(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":1}`, `{"token":"T","a":1}`},
		{`{}`, `{"token":"T"}`},
		{` { } `, `{"token":"T" } `},
		{"{\n\"a\":1}", "{\"token\":\"T\",\n\"a\":1}"},
		{`[1]`, `[1]`},
	}
	for _, tt := range tests {
		got := string(withToken([]byte(tt.in), "T").bytes())
		if got != tt.want {
			t.Errorf("withToken(%q) = %q; want %q", tt.in, got, tt.want)
		}
		if tt.in[0] != '[' && !json.Valid([]byte(got)) {
			t.Errorf("withToken(%q) is not JSON", tt.in)
		}
	}
}

func TestCubeFailures(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter, r *http.Request, body []byte)
		status  int
		message string
	}{
		{"missing database", func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"Error: Code: 81. DB::Exception: Database gitlab_project_1 doesn't exist. (UNKNOWN_DATABASE)"}`)
		}, 404, "404 Clickhouse Database Not Found"},
		{"user error with stack", func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.WriteHeader(400)
			io.WriteString(w, `{"type":"UserError","error":"'nope' not found for path 'TrackedEvents.nope'","stack":"UserError: at /srv/cube/node_modules/x.js:1"}`)
		}, 400, "'nope' not found for path 'TrackedEvents.nope'"},
		{"html", func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.WriteHeader(502)
			io.WriteString(w, `<html>Bad gateway</html>`)
		}, 502, "502 Bad Gateway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler(t, newFakeCube(t, tt.answer))
			w := serve(h, "POST", "/projects/1/product_analytics/request/load", "Bearer "+project1Token(t), seedTracked)
			if w.Code != tt.status || message(t, w) != tt.message && !strings.HasPrefix(message(t, w), tt.message) {
				t.Fatalf("%d %s; want %d %q", w.Code, w.Body, tt.status, tt.message)
			}
			if strings.Contains(w.Body.String(), "stack") || strings.Contains(w.Body.String(), "/srv/") {
				t.Fatalf("Cube's stack leaked: %s", w.Body)
			}
		})
	}
}

func TestContinueWaitIsPolled(t *testing.T) {
	var n atomic.Int64
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if n.Add(1) <= 2 {
			io.WriteString(w, `{"error":"Continue wait"}`)
			return
		}
		io.WriteString(w, cubeAnswer)
	})
	h := newTestHandler(t, f)
	w := serve(h, "POST", "/projects/1/product_analytics/request/load", "Bearer "+project1Token(t), seedTracked)
	if w.Code != 200 || w.Body.String() != cubeAnswer || n.Load() != 3 {
		t.Fatalf("%d %s after %d calls", w.Code, w.Body, n.Load())
	}
	if !strings.Contains(logs.String(), `"polls":2`) {
		t.Fatalf("the log line does not count the polls")
	}
}

func TestRequestIDForwardedAndLogged(t *testing.T) {
	var seen atomic.Value
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		seen.Store(r.Header.Get("x-request-id"))
		io.WriteString(w, cubeAnswer)
	})
	h := newTestHandler(t, f)
	r := httptest.NewRequest("POST", "/projects/1/product_analytics/request/load", strings.NewReader(seedTracked))
	r.Header.Set("Authorization", "Bearer "+project1Token(t))
	r.Header.Set("X-Request-Id", "req-abc.123")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if seen.Load() != "req-abc.123" || w.Header().Get("X-Request-Id") != "req-abc.123" {
		t.Fatalf("request id: Cube saw %v, answer has %q", seen.Load(), w.Header().Get("X-Request-Id"))
	}
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"request_id":"req-abc.123"`) {
			json.Unmarshal([]byte(l), &line)
		}
	}
	for _, k := range []string{"project_id", "endpoint", "status", "duration_ms", "cube_ms", "polls"} {
		if _, ok := line[k]; !ok {
			t.Errorf("log line lacks %s: %v", k, line)
		}
	}
	// API Gateway's own ids are kept.
	if id := RequestID(http.Header{"X-Request-Id": {"Cz3kPg1XoAMEb0w="}}); id != "Cz3kPg1XoAMEb0w=" {
		t.Fatalf("RequestID replaced API Gateway's id with %q", id)
	}
	// An id that could forge log content is replaced.
	if id := RequestID(http.Header{"X-Request-Id": {"a\"b\nc"}}); strings.ContainsAny(id, "\"\n") || len(id) != 32 {
		t.Fatalf("RequestID kept an unsafe id: %q", id)
	}
}

// sameQuery reports whether two Cube queries mean the same: equal as JSON
// once an object order is written as the pairs Cube turns it into.
func sameQuery(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	x, y := orderAsPairs(t, a), orderAsPairs(t, b)
	return reflect.DeepEqual(x, y)
}

func orderAsPairs(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var q map[string]any
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatalf("query %s: %v", raw, err)
	}
	var parts struct{ Order json.RawMessage }
	json.Unmarshal(raw, &parts)
	if len(parts.Order) > 0 && parts.Order[0] == '{' {
		// Keys in the caller's order, which map decoding would lose.
		dec := json.NewDecoder(bytes.NewReader(parts.Order))
		dec.Token()
		var pairs []any
		for dec.More() {
			k, _ := dec.Token()
			v, _ := dec.Token()
			pairs = append(pairs, []any{k, v})
		}
		q["order"] = pairs
	}
	return q
}

// TestAttacksNeverReachCube: every attack on the query, through load and
// dry-run, is answered 400 with a message naming the field it came
// through, and Cube is never called.
func TestAttacksNeverReachCube(t *testing.T) {
	f := newFakeCube(t, okCube)
	h := newTestHandler(t, f)
	for _, a := range attacks.All(2) {
		for _, endpoint := range []string{"load", "dry-run"} {
			t.Run(endpoint+" "+a.Name, func(t *testing.T) {
				w := serve(h, "POST", "/api/v4/projects/1/product_analytics/request/"+endpoint, "Bearer "+project1Token(t), `{"query":`+a.Query+`}`)
				if msg := message(t, w); w.Code != 400 || !strings.HasPrefix(msg, a.Field) {
					t.Fatalf("%d %q; want 400 naming %s", w.Code, msg, a.Field)
				}
			})
		}
	}
	if n := f.calls.Load(); n != 0 {
		t.Fatalf("Cube was called %d times", n)
	}
}
