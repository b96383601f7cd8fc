package api

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/wait"
	"productanalytics/shared/metrics"
)

// observed is a handler whose log lines a test reads.
type observed struct {
	*Handler
	lines *logcheck.Buffer
}

func newObserved(t *testing.T, f *fakeCube, opts Options) observed {
	t.Helper()
	lines := &logcheck.Buffer{}
	log := slog.New(slog.NewJSONHandler(io.MultiWriter(lines, logs), nil))
	opts.Metrics = metrics.NewRecorder("ProductAnalytics/test", nil, log)
	return observed{NewHandler(newTestChecker(), newTestClient(f), log, opts), lines}
}

// line returns the log line of the request sent with X-Request-Id id.
func (o observed) line(t *testing.T, id string) map[string]any {
	t.Helper()
	for l := range strings.SplitSeq(o.lines.String(), "\n") {
		if strings.Contains(l, `"request_id":"`+id+`"`) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	t.Fatalf("no log line of %s in\n%s", id, o.lines)
	return nil
}

func serveID(h http.Handler, id, path, auth, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Authorization", auth)
	r.Header.Set("X-Request-Id", id)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestProjectInFlightLimit: a project with as many requests in progress as
// the limit has the next refused 429 at once, with Retry-After, counted in
// the metrics; other projects are served meanwhile; refusals of other
// kinds take no place; and once its requests are answered the project is
// served again and forgotten.
func TestProjectInFlightLimit(t *testing.T) {
	release := make(chan struct{})
	var held sync.WaitGroup
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if strings.Contains(string(body), "hold") {
			held.Done()
			<-release
		}
		io.WriteString(w, cubeAnswer)
	})
	const limit = 2
	h := newObserved(t, f, Options{MaxInFlightPerProject: limit})
	both := "Bearer " + callerToken(t, jwt.MapClaims{"projects": []int{1, 2}})
	holding := `{"query":{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.event","operator":"equals","values":["hold"]}]}}`
	load := func(p int) string { return fmt.Sprintf("/projects/%d/product_analytics/request/load", p) }

	held.Add(limit)
	answers := make(chan *httptest.ResponseRecorder, limit)
	for i := range limit {
		go func() { answers <- serveID(h, fmt.Sprintf("held-%d", i), load(1), both, holding) }()
	}
	held.Wait() // both are in Cube

	tests := []struct {
		name, path, body string
		status           int
		message          string
	}{
		{"one more of the project", load(1), seedTracked, 429, "429 Too Many Requests: this project already has 2 requests in progress, the most one project may have at once; retry after 1 second"},
		{"its meta too", "/projects/1/product_analytics/request/meta", "", 429, "429 Too Many Requests"},
		{"another project", load(2), seedTracked, 200, ""},
		{"a bad query of the project", load(1), `{"query":{"limit":60000}}`, 400, "query.limit"},
		{"a project the caller may not read", load(3), seedTracked, 404, "404 Project Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := strings.ReplaceAll(tt.name, " ", "-")
			w := serveID(h, id, tt.path, both, tt.body)
			if w.Code != tt.status {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.status != 429 {
				if tt.message != "" && !strings.Contains(message(t, w), tt.message) {
					t.Fatalf("message %q, want %q", message(t, w), tt.message)
				}
				return
			}
			if msg := message(t, w); !strings.HasPrefix(msg, tt.message) {
				t.Errorf("message %q, want %q", msg, tt.message)
			}
			if got := w.Header().Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After %q, want 1", got)
			}
			line := h.line(t, id)
			if line["status"] != 429.0 || line["level"] != "INFO" || !strings.Contains(fmt.Sprint(line["reason"]), "too many requests in progress") {
				t.Errorf("log line %v", line)
			}
			if _, ok := line["cube_ms"]; ok {
				t.Errorf("a refused request called Cube: %v", line)
			}
		})
	}
	got := published(t, h.lines.String())
	for _, want := range []string{"Refusals{Reason=ProjectBusy}=1", "Requests{Endpoint=load,StatusClass=4xx}=1"} {
		if !slices.Contains(got, want) {
			t.Errorf("published %v, want %s", got, want)
		}
	}

	close(release)
	for range limit {
		if w := <-answers; w.Code != 200 {
			t.Errorf("a held request: %d %s", w.Code, w.Body)
		}
	}
	if w := serveID(h, "after", load(1), both, seedTracked); w.Code != 200 {
		t.Fatalf("after the held requests: %d %s", w.Code, w.Body)
	}
	if n := h.inFlight.projects(); n != 0 {
		t.Fatalf("%d projects still counted with nothing in progress", n)
	}
}

// TestInFlightCountsConcurrently: however requests of many projects come
// and go at once, no project is counted past the limit and none is left
// counted after.
func TestInFlightCountsConcurrently(t *testing.T) {
	f := newInFlight(3)
	var mu sync.Mutex
	in := map[int64]int{}
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 200 {
				p := int64((g + i) % 5)
				if !f.acquire(p) {
					continue
				}
				mu.Lock()
				in[p]++
				if in[p] > 3 {
					t.Errorf("project %d counted %d in flight, past 3", p, in[p])
				}
				mu.Unlock()
				mu.Lock()
				in[p]--
				mu.Unlock()
				f.release(p)
			}
		})
	}
	wg.Wait()
	if n := f.projects(); n != 0 {
		t.Fatalf("%d projects left counted", n)
	}
	if none := newInFlight(0); !none.acquire(1) || none.projects() != 0 {
		t.Fatal("no limit counted or refused")
	}
}

// TestCubeBusyAndStoreFailures: Cube's 429 reaches the caller as 429 with
// Cube's Retry-After, bounded; a failure of the store as 503 with fixed
// words, logged as an error with Cube's own text; both counted.
func TestCubeBusyAndStoreFailures(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		error      string
		want       int
		message    string
		wantRetry  string
		level      string
		reason     string
	}{
		{"Cube busy", 429, "3", "too many queries in progress for this tenant", 429,
			"429 Too Many Requests: Cube is working on as much as it takes at once, of this project's queries or of large answers; retry after 3 seconds", "3", "INFO", "CubeBusy"},
		{"Cube busy, no Retry-After", 429, "", "busy", 429, "retry after 1 second", "1", "INFO", "CubeBusy"},
		{"Cube busy, a day", 429, "86400", "busy", 429, "retry after 60 seconds", "60", "INFO", "CubeBusy"},
		{"DuckDB out of memory", 400, "", "Error: Out of Memory Error: could not allocate block of size 256.0 KiB (244.0 MiB/244.1 MiB used)", 503,
			"503 Service Unavailable: the events store failed: it ran out of memory for this query; a shorter date range or fewer dimensions need less", "", "ERROR", "StoreFailed"},
		{"ClickHouse unreachable", 500, "", "Error: Query failed: Error: connect ECONNREFUSED 10.0.3.7:8123; query id: 1", 503,
			"503 Service Unavailable: the events store failed: the store refused the connection or could not be reached", "", "ERROR", "StoreFailed"},
		{"the caller's mistake", 400, "", "'nope' not found for path 'TrackedEvents.nope'", 400, "'nope' not found for path 'TrackedEvents.nope'", "", "INFO", "CubeQueryError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
				json.NewEncoder(w).Encode(map[string]string{"error": tt.error, "stack": "Error\n    at /srv/cube/x.js:1"})
			})
			h := newObserved(t, f, Options{})
			w := serveID(h, "req", "/projects/1/product_analytics/request/load", "Bearer "+project1Token(t), seedTracked)
			if w.Code != tt.want || !strings.Contains(message(t, w), tt.message) {
				t.Fatalf("got %d %s; want %d %q", w.Code, w.Body, tt.want, tt.message)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetry)
			}
			if tt.want == 503 && (strings.Contains(w.Body.String(), "10.0.3.7") || strings.Contains(w.Body.String(), "MiB")) {
				t.Errorf("the store's own words reached the caller: %s", w.Body)
			}
			if strings.Contains(w.Body.String(), "/srv/") {
				t.Errorf("Cube's stack reached the caller: %s", w.Body)
			}
			line := h.line(t, "req")
			if line["level"] != tt.level {
				t.Errorf("logged at %v, want %s", line["level"], tt.level)
			}
			if tt.want == 503 && !strings.Contains(fmt.Sprint(line["reason"]), tt.error[len("Error: "):]) {
				t.Errorf("the log line's reason %q lacks Cube's text", line["reason"])
			}
			if got := published(t, h.lines.String()); !slices.Contains(got, "Refusals{Reason="+tt.reason+"}=1") {
				t.Errorf("published %v, want Refusals{Reason=%s}=1", got, tt.reason)
			}
		})
	}
}

// TestVaryIsMerged: what a handler in front (CORS) put in Vary stays, and
// Accept-Encoding is listed once.
func TestVaryIsMerged(t *testing.T) {
	f := newFakeCube(t, okCube)
	h := newTestHandler(t, f)
	tests := []struct {
		name   string
		before []string
		want   []string
	}{
		{"none before", nil, []string{"Accept-Encoding"}},
		{"CORS's Origin", []string{"Origin"}, []string{"Origin", "Accept-Encoding"}},
		{"already listed", []string{"Origin, accept-encoding"}, []string{"Origin, accept-encoding"}},
		{"everything", []string{"*"}, []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			front := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for _, v := range tt.before {
					w.Header().Add("Vary", v)
				}
				h.ServeHTTP(w, r)
			})
			for _, path := range []string{"/projects/1/product_analytics/request/load", "/projects/2/product_analytics/request/load"} {
				w := serve(front, "POST", path, "Bearer "+project1Token(t), seedTracked)
				if got := w.Header().Values("Vary"); !slices.Equal(got, tt.want) {
					t.Errorf("%s: Vary %q, want %q (answered %d)", path, got, tt.want, w.Code)
				}
			}
		})
	}
}

// TestClientHalfClose: a real TCP client that sends its request and closes
// its sending half, as some clients and proxies do, makes net/http cancel
// the request. Cube's call, cut short by it, is no fault of the API: the
// client reads 499, logged at info and counted as a 4xx, never a 5xx.
func TestClientHalfClose(t *testing.T) {
	inCube := make(chan struct{}, 1)
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		inCube <- struct{}{}
		// Until the API gives up on it: the client is gone.
		<-r.Context().Done()
	})
	h := newObserved(t, f, Options{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /projects/1/product_analytics/request/load HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer %s\r\n"+
		"X-Request-Id: half-closed\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		project1Token(t), len(seedTracked), seedTracked)
	<-inCube
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer after a half-close: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != StatusClientClosedRequest || !strings.Contains(string(body), "499 Client Closed Request") {
		t.Fatalf("got %d %s, want 499", resp.StatusCode, body)
	}
	var line map[string]any
	wait.Until(t, "the request's log line", func() bool {
		return strings.Contains(h.lines.String(), `"request_id":"half-closed"`)
	})
	line = h.line(t, "half-closed")
	if line["level"] != "INFO" || line["status"] != 499.0 {
		t.Errorf("log line %v; want status 499 at INFO", line)
	}
	got := published(t, h.lines.String())
	for _, want := range []string{"Requests{StatusClass=4xx}=1", "Refusals{Reason=ClientGone}=1"} {
		if !slices.Contains(got, want) {
			t.Errorf("published %v, want %s", got, want)
		}
	}
	if slices.Contains(got, "Requests{StatusClass=5xx}=1") {
		t.Errorf("counted as a 5xx: %v", got)
	}
}

// TestAnswerCutShort: a streamed answer that Cube stops sending half way
// never reaches the caller as a whole one: the connection ends without the
// answer's end, so the caller's client fails, and the log line says 502,
// at error level, counted as AnswerCutShort.
func TestAnswerCutShort(t *testing.T) {
	big := `{"results":[{"data":"` + strings.Repeat("x", 256<<10) + `"}]}`
	f := newFakeCube(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		io.WriteString(w, big[:len(big)/2])
		w.(http.Flusher).Flush()
		// Cube goes away half way through.
		panic(http.ErrAbortHandler)
	})
	h := newObserved(t, f, Options{})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, enc := range []string{"identity", "gzip"} {
		t.Run(enc, func(t *testing.T) {
			id := "cut-" + enc
			req, _ := http.NewRequest("POST", srv.URL+"/projects/1/product_analytics/request/load", strings.NewReader(seedTracked))
			req.Header.Set("Authorization", "Bearer "+project1Token(t))
			req.Header.Set("X-Request-Id", id)
			req.Header.Set("Accept-Encoding", enc)
			// The head may not even have gone out (gzip holds a small
			// beginning back): either way the transfer fails.
			if got, err := readWhole(req); err == nil {
				t.Fatalf("read %d bytes of %d without an error: a cut answer passed for a whole one", len(got), len(big))
			}
			var line map[string]any
			wait.Until(t, "the request's log line", func() bool {
				return strings.Contains(h.lines.String(), `"request_id":"`+id+`"`)
			})
			line = h.line(t, id)
			if line["status"] != 502.0 || line["level"] != "ERROR" || line["Reason"] != "AnswerCutShort" {
				t.Errorf("log line %v; want 502 at ERROR, Reason AnswerCutShort", line)
			}
		})
	}
}

// readWhole sends req and reads its answer, gunzipped when it is gzip.
func readWhole(req *http.Request) ([]byte, error) {
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		z, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, err
		}
		r = z
	}
	return io.ReadAll(r)
}
