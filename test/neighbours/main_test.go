// Package neighbours tests, on the real local stack, that one project cannot
// take the shared Cube down or starve another project: each request that
// once ended Cube or stalled it for everyone (the can-use route with no
// body, a 25-column ungrouped export, twelve compared date ranges over a
// thousand years, a run of distinct 6 MB exports, a blend of a thousand
// queries), sent straight to Cube with the token include_token hands out
// and through the API, is refused with a clear 4xx or answered within
// budget, Cube keeps its process and stays ready, and project 2's
// dashboards through the API keep answering 200 meanwhile.
// BenchmarkNeighbours (make bench-neighbours) measures project 2's cached
// answers alone and beside project 1 at its worst allowed behaviour.
package neighbours

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
)

// The two projects: the one that pushes, and its neighbour on the same
// Cube. The demo data gives project 1 100,000 events, enough for a
// 50,000-row export, and project 2 10,000.
const (
	pusher    = 1
	neighbour = 2
)

// answerDeadline is how long one request may be re-sent on "Continue
// wait" before it counts as unanswered: long, because the machine may be
// shared and Cube under load; an answer that comes returns at once.
const answerDeadline = 2 * time.Minute

var (
	env      *stack.Stack
	root     string
	apiLogs  = &logcheck.Buffer{}
	cubeLogs = &logcheck.Buffer{}
	// client carries every request of the tests: enough idle connections
	// for the benchmark's workers, so that none pays a new connection.
	client = &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}}
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var err error
	if root, err = stack.Root("."); err != nil {
		return fail(err)
	}
	tmp, dataDir, err := stack.TestData(ctx, root, "pa-neighbours-", os.Stderr)
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	// As make run starts it, but unsupervised: a Cube that exits stays
	// down, so that a crash shows as one, and the tests restart it
	// themselves before the next case.
	env, err = stack.Start(ctx, stack.Options{Root: root, DataDir: dataDir, Log: apiLogs, CubeLog: cubeLogs})
	if err != nil {
		fmt.Fprintln(os.Stderr, logcheck.LastLines(cubeLogs.String(), 20))
		return fail(err)
	}
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		code = 1
	}
	if code == 0 {
		if err := logcheck.Leak(apiLogs.String()+cubeLogs.String(), stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
			code = fail(err)
		}
	}
	return code
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "neighbours:", err)
	return 1
}

// answer is what one request got in the end, after re-sending it on
// "Continue wait".
type answer struct {
	status int
	// body is the answer's first bytes, for messages; size is its length.
	body       []byte
	size       int
	retryAfter string
	took       time.Duration
	// err is a failure to get any answer (refused connection, deadline).
	err error
}

// bodyKept is how much of an answer's body is kept for checks and
// messages; the rest is read and counted only.
const bodyKept = 64 << 10

func (a answer) String() string {
	if a.err != nil {
		return "no answer: " + a.err.Error()
	}
	return fmt.Sprintf("%d (%d bytes, %s) %s", a.status, a.size, a.took.Round(time.Millisecond), truncate(string(a.body), 300))
}

// continueWait tells Cube's "not yet" answer, which a client re-sends.
func (a answer) continueWait() bool {
	return a.status == 200 && a.size < 200 && strings.Contains(string(a.body), "Continue wait")
}

// message is the text of a refusal: the API's "message", or Cube's
// "error".
func (a answer) message() string {
	var m struct{ Message, Error string }
	json.Unmarshal(a.body, &m)
	if m.Message != "" {
		return m.Message
	}
	return m.Error
}

// exchange sends one request and reads its whole answer.
func exchange(ctx context.Context, method, url, auth, body string) answer {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return answer{err: fmt.Errorf("building %s %s: %w", method, url, err)}
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	kept, err := io.ReadAll(io.LimitReader(resp.Body, bodyKept))
	rest, err2 := io.Copy(io.Discard, resp.Body)
	a := answer{status: resp.StatusCode, body: kept, size: len(kept) + int(rest), retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
	if err == nil {
		err = err2
	}
	if err != nil {
		a.err = fmt.Errorf("reading the answer of %s %s: %w", method, url, err)
	}
	return a
}

// ask sends a request as a client does: again while the answer is
// "Continue wait", until answerDeadline. took is the whole time.
func ask(ctx context.Context, method, url, auth, body string) answer {
	ctx, cancel := context.WithTimeout(ctx, answerDeadline)
	defer cancel()
	start := time.Now()
	for {
		a := exchange(ctx, method, url, auth, body)
		a.took = time.Since(start)
		if a.err != nil || !a.continueWait() {
			return a
		}
		if ctx.Err() != nil {
			a.err = fmt.Errorf("still Continue wait after %s", answerDeadline)
			return a
		}
	}
}

// apiPath is the API's path of an endpoint (load, dry-run, meta, or any
// other) for project.
func apiPath(project int64, endpoint string) string {
	return fmt.Sprintf("%s/api/v4/projects/%d/product_analytics/request/%s", env.APIURL, project, endpoint)
}

// apiLoad sends query (one query or an array) to the API's load for
// project, with a caller token for that project only.
func apiLoad(ctx context.Context, project int64, query string) answer {
	return ask(ctx, "POST", apiPath(project, "load"), "Bearer "+stack.Token(time.Hour, project), `{"query":`+query+`,"queryType":"multi"}`)
}

// cubeLoad sends query straight to Cube's load with a Cube token, as a
// caller holding include_token's token may.
func cubeLoad(ctx context.Context, token, query string) answer {
	return ask(ctx, "POST", env.CubeURL+"/cubejs-api/v1/load", token, `{"query":`+query+`,"queryType":"multi"}`)
}

// cubeTokens hands out the Cube token the API gives a caller of the
// pushing project with include_token, fetched again well before it
// expires (it is valid at least 120 s when handed out).
type cubeTokens struct {
	mu      sync.Mutex
	token   string
	fetched time.Time
}

var tokens cubeTokens

// get returns a valid Cube token for the pushing project.
func (c *cubeTokens) get(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Since(c.fetched) < time.Minute {
		return c.token, nil
	}
	a := ask(ctx, "POST", apiPath(pusher, "load"), "Bearer "+stack.Token(time.Hour, pusher),
		`{"query":{"measures":["TrackedEvents.count"]},"queryType":"multi","include_token":true}`)
	var out struct{ Token string }
	if json.Unmarshal(a.body, &out) != nil || a.err != nil || a.status != 200 || out.Token == "" {
		return "", fmt.Errorf("include_token for project %d: %s", pusher, a)
	}
	c.token, c.fetched = out.Token, time.Now()
	return c.token, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
