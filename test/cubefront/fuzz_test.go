package cubefront

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
)

// The fuzz's routes: Cube's every route, the served ones several times over
// (they lead furthest into Cube's code), and spellings of them.
var servedPaths = []string{
	"/cubejs-api/v1/load", "/cubejs-api/v1/load", "/cubejs-api/v1/load", "/cubejs-api/v1/dry-run",
	"/cubejs-api/v1/dry-run", "/cubejs-api/v1/sql", "/cubejs-api/v1/meta", "/cubejs-api/v1/meta?extended",
	"/readyz", "/livez",
}

var otherPaths = append([]string{
	"/cubejs-api/v1/load?", "/cubejs-api/v1/load#x", "/cubejs-api/v1/../v1/load", "/cubejs-api/v1/load;x",
}, refusedPaths...)

var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PROPFIND"}

// Members of the data model, and words that are not.
var fuzzMembers = []string{
	"TrackedEvents.count", "TrackedEvents.pageViewsCount", "TrackedEvents.uniqueUsersCount", "TrackedEvents.docPath",
	"TrackedEvents.derivedTstamp", "TrackedEvents.pageTitle", "TrackedEvents.customEventProps", "Sessions.count",
	"Sessions.startAt", "Sessions.averageDurationMinutes", "ReturningUsers.allSessionsCount", "ReturningUsers.first_timestamp",
	"TrackedEvents.derivedTstamp.day", "TrackedEvents", "TrackedEvents.", ".count", "TrackedEvents.nope", "Nope.count",
	"TrackedEvents.count.extra", "constructor", "__proto__", "TrackedEvents.__proto__", "TrackedEvents.toString", "",
	"TrackedEvents.count'; DROP TABLE x; --", "../../etc/passwd", "TrackedEvents.ΔΔ", "TrackedEvents.count\u0000",
}

var fuzzFields = []string{"measures", "dimensions", "segments", "timeDimensions", "filters", "order", "limit", "offset",
	"timezone", "total", "ungrouped", "renewQuery", "responseFormat", "__proto__", "constructor", "x"}

// fuzzer makes requests from one random source.
type fuzzer struct {
	r *rand.Rand
	// tokens are Cube tokens: projects 1 and 2, one without data, and
	// ones Cube must refuse.
	tokens []string
}

func newFuzzer(tb testing.TB, seed uint64) *fuzzer {
	expired, err := cube.MintToken(stack.LocalCubeKey, 1, "cubefront-test", time.Now().Add(-time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	return &fuzzer{
		r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		tokens: []string{
			token(tb, 1), token(tb, 1), token(tb, 2), token(tb, 3), token(tb, 999999999999),
			"Bearer " + token(tb, 2), "", "x", "Bearer", "Bearer  " + token(tb, 1), expired, "eyJhbGciOiJub25lIn0.eyJhcHBJZCI6Imdp.",
		},
	}
}

func (f *fuzzer) pick(xs []string) string { return xs[f.r.IntN(len(xs))] }

// value is a random JSON value, nested at most depth deep.
func (f *fuzzer) value(depth int) any {
	switch n := f.r.IntN(10); {
	case n < 3 || depth <= 0:
		switch f.r.IntN(7) {
		case 0:
			return f.pick(fuzzMembers)
		case 1:
			return f.r.IntN(200000) - 100000
		case 2:
			return f.r.Float64() * 1e12
		case 3:
			return nil
		case 4:
			return f.r.IntN(2) == 0
		case 5:
			return strings.Repeat(f.pick([]string{"a", "/", "\\", "\"", "é", "%"}), f.r.IntN(3000))
		default:
			return f.pick([]string{"day", "second", "last 7 days", "from 1000 years ago to now", "UTC", "asc", "equals", "2024-01-01"})
		}
	case n < 6:
		out := make([]any, f.r.IntN(6))
		for i := range out {
			out[i] = f.value(depth - 1)
		}
		return out
	default:
		out := map[string]any{}
		for range f.r.IntN(5) {
			out[f.pick(fuzzFields)] = f.value(depth - 1)
		}
		return out
	}
}

// query is a Cube query, mostly well formed, some of it random.
func (f *fuzzer) query() any {
	q := map[string]any{"measures": []any{f.pick(fuzzMembers)}}
	if f.r.IntN(2) == 0 {
		q["dimensions"] = []any{f.pick(fuzzMembers)}
	}
	if f.r.IntN(3) == 0 {
		td := map[string]any{"dimension": "TrackedEvents.derivedTstamp",
			"granularity": f.pick([]string{"second", "minute", "day", "month", "year", "week", "fortnight"})}
		if f.r.IntN(2) == 0 {
			td["dateRange"] = f.pick([]string{"last 7 days", "from 1000 years ago to now", "this year", "nonsense"})
		} else {
			td["compareDateRange"] = []any{"last week", "this week", []any{"2020-01-01", "2020-01-31"}}
		}
		q["timeDimensions"] = []any{td}
	}
	if f.r.IntN(3) == 0 {
		q["filters"] = []any{map[string]any{"member": f.pick(fuzzMembers), "operator": f.pick([]string{"equals", "contains", "set", "gt", "nope"}), "values": f.value(2)}}
	}
	if f.r.IntN(4) == 0 {
		q["limit"] = f.r.IntN(60000)
	}
	if f.r.IntN(6) == 0 {
		q[f.pick(fuzzFields)] = f.value(3)
	}
	if f.r.IntN(8) == 0 {
		q["ungrouped"] = true
	}
	return q
}

// mutate changes a few bytes of b: flips, cuts, repeats.
func (f *fuzzer) mutate(b []byte) []byte {
	b = append([]byte(nil), b...)
	for range 1 + f.r.IntN(4) {
		if len(b) == 0 {
			break
		}
		i := f.r.IntN(len(b))
		switch f.r.IntN(4) {
		case 0:
			b[i] = byte(f.r.IntN(256))
		case 1:
			b = b[:i]
		case 2:
			b = append(b[:i], append([]byte(f.pick([]string{"{", "[", "\"", ",", "}", "]", ":", "null", "\\u0000", "1e999"})), b[i:]...)...)
		default:
			j := min(len(b), i+f.r.IntN(64))
			b = append(b[:j], append(append([]byte(nil), b[i:j]...), b[j:]...)...)
		}
	}
	return b
}

// fuzzRequest is one request of the fuzz.
type fuzzRequest struct {
	method, path string
	body         []byte
	header       map[string]string
}

func (f *fuzzer) request() fuzzRequest {
	// Mostly what leads into Cube's code: a served route, its method, a
	// valid token.
	req := fuzzRequest{method: f.pick([]string{"GET", "POST"}), path: f.pick(servedPaths), header: map[string]string{}}
	if f.r.IntN(4) == 0 {
		req.method = f.pick(fuzzMethods)
	}
	if f.r.IntN(4) == 0 {
		req.path = f.pick(otherPaths)
	}
	if f.r.IntN(3) > 0 {
		req.header["Authorization"] = f.tokens[f.r.IntN(3)]
	} else if tok := f.pick(f.tokens); tok != "" {
		req.header["Authorization"] = tok
	}
	var query any = f.query()
	switch f.r.IntN(8) {
	case 0:
		blend := make([]any, 1+f.r.IntN(14))
		for i := range blend {
			blend[i] = f.query()
		}
		query = blend
	case 1:
		query = f.value(4)
	}
	qb, _ := json.Marshal(query)
	if f.r.IntN(5) == 0 {
		qb = f.mutate(qb)
	}
	switch f.r.IntN(6) {
	case 0:
		req.path += "?query=" + url.QueryEscape(string(qb))
	case 1:
		req.path += "?queryType=multi&query=" + url.QueryEscape(string(qb))
	case 2:
		req.path += f.pick([]string{"?query[measures][0]=TrackedEvents.count", "?query=a&query=b", "?query=", "?query=%ZZ",
			"?extended", "?query=" + strings.Repeat("x", 8000), "?query=" + strings.Repeat("y", 20000), "?" + strings.Repeat("a=1&", 3000)})
	}
	if req.method != "GET" || f.r.IntN(10) == 0 {
		switch f.r.IntN(7) {
		case 0:
			req.body = nil
		case 1:
			req.body = f.mutate([]byte(`{"query":` + string(qb) + `,"queryType":"multi"}`))
		case 2:
			b, _ := json.Marshal(f.value(5))
			req.body = b
		case 3:
			req.body = []byte(`{"query":` + strconv.Quote(string(qb)) + `}`)
		case 4:
			if f.r.IntN(10) == 0 {
				req.body = []byte(`{"query":{"measures":["TrackedEvents.count"]},"pad":"` + strings.Repeat("z", 1100*1024) + `"}`)
			} else {
				req.body = []byte(`{"transformedQuery":` + string(qb) + `,"references":{}}`)
			}
		default:
			req.body = []byte(`{"query":` + string(qb) + `,"queryType":"multi"}`)
		}
		req.header["Content-Type"] = f.pick([]string{"application/json", "application/json", "application/json", "text/plain",
			"application/x-www-form-urlencoded", "application/json; charset=utf-16", "application/json; charset=nope", ""})
	}
	if f.r.IntN(10) == 0 {
		req.header["Content-Encoding"] = f.pick([]string{"gzip", "deflate", "br", "identity", "nope"})
	}
	if f.r.IntN(20) == 0 {
		req.header["X-Huge"] = strings.Repeat("h", f.pick2(1000, 20000))
	}
	if f.r.IntN(4) == 0 {
		req.header["X-Request-Id"] = f.pick([]string{"x", strings.Repeat("r", 5000), "\u00e9", "a b"})
	}
	return req
}

func (f *fuzzer) pick2(a, b int) int {
	if f.r.IntN(2) == 0 {
		return a
	}
	return b
}

// fuzzDuration is FUZZ_DURATION (default 20s): how long TestRouteFuzz runs.
// `FUZZ_DURATION=2m go test -run RouteFuzz -v ./test/cubefront` runs it as
// long as the acceptance asks.
func fuzzDuration(t *testing.T) time.Duration {
	s := os.Getenv("FUZZ_DURATION")
	if s == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("FUZZ_DURATION=%q is not a duration such as 2m", s)
	}
	return d
}

// TestRouteFuzz sends random routes, methods, bodies, query strings and
// headers straight to Cube, with valid and invalid tokens, from four
// clients at once for FUZZ_DURATION: Cube never exits, never answers a stack
// or a path, answers each with a status (a 5xx only for the server's own
// failure, never seen here) and keeps each log line bounded.
// FUZZ_SEED replays a run.
func TestRouteFuzz(t *testing.T) {
	duration := fuzzDuration(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FUZZ_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("FUZZ_SEED=%q: %v", s, err)
		}
	}
	t.Logf("fuzz seed %d (replay with FUZZ_SEED=%d)", seed, seed)
	const workers = 4
	// The bound of the loop, whatever the machine's speed.
	const maxRequests = 1_000_000
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var (
		sent     atomic.Int64
		mu       sync.Mutex
		statuses = map[string]int{}
		failures []string
		wg       sync.WaitGroup
	)
	failed := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
		cancel()
	}
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := newFuzzer(t, seed+uint64(w))
			for ctx.Err() == nil && sent.Add(1) <= maxRequests {
				req := f.request()
				// Each request bounded, so that the fuzz ends in its time.
				rctx, rcancel := context.WithTimeout(ctx, time.Minute)
				a, err := send(rctx, req.method, req.path, req.body, req.header)
				rcancel()
				key := ""
				switch {
				case err != nil && ctx.Err() != nil:
					return
				case err != nil:
					// Cube may close a connection whose body it will not read
					// (413), or one whose request Node's parser refuses.
					key = "closed"
					if e := alive(); e != nil {
						failed("after %s %.120s (%v): %v", req.method, req.path, err, e)
					}
				default:
					key = strconv.Itoa(a.status)
					if what := internals(a.body); what != "" {
						failed("%s %.120s answered %d with %s: %.500s", req.method, req.path, a.status, what, a.body)
					}
					if a.status >= 500 {
						failed("%s %.2000s (body %.200q) answered %d: %.300s", req.method, req.path, req.body, a.status, a.body)
					}
				}
				mu.Lock()
				statuses[key]++
				mu.Unlock()
			}
		}()
	}
	// Cube's process is watched while the fuzz runs, not only at its end.
	watch := time.NewTicker(2 * time.Second)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-watch.C:
			if err := alive(); err != nil {
				failed("while fuzzing: %v", err)
			}
		}
	}
	watch.Stop()
	elapsed := time.Since(start)
	keys := make([]string, 0, len(statuses))
	total := 0
	for k, n := range statuses {
		keys = append(keys, k)
		total += n
	}
	sort.Strings(keys)
	var line strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&line, " %s:%d", k, statuses[k])
	}
	t.Logf("%d requests in %s (%.0f/s); answers by status:%s", total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), line.String())
	for _, f := range failures {
		t.Error(f)
	}
	cubeUp(t)
	for _, l := range logLines() {
		if len(l) > maxLogLine {
			t.Errorf("a log line of %d bytes; want at most %d: %.200s", len(l), maxLogLine, l)
			break
		}
	}
}
