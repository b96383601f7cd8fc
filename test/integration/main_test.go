// Package integration tests the product analytics API end to end on the
// local stack: the real Cube over demo data, the real AWS SDK against
// moto_server, and the API's handler as the Lambda functions run it.
package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// The stack every test here shares: two Cube deployments over the same
// events, cube-1 and cube-2, each with its own key. Project 1 goes to
// cube-2 by rendezvous hashing, project 2 to cube-1 by placement
// (placements), so that every test's calls cross both. Cube's
// continue-wait timeout is short and its test-only SlowEvents cube takes
// longer than it, so that polling shows.
var (
	env           *stack.Stack
	root, dataDir string
	apiLogs       = &logcheck.Buffer{}
	cubeLogs      = &logcheck.Buffer{}
	continueWt    = time.Second
	slowQuery     = 2500 * time.Millisecond
	cubes         = 2
	placements    = "2=cube-1"
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
	tmp, data, err := stack.TestData(ctx, root, "pa-integration-", os.Stderr)
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	dataDir = data
	env, err = stack.Start(ctx, stack.Options{
		Root: root, DataDir: dataDir, ContinueWait: continueWt, TestModel: true, SlowQuery: slowQuery,
		Cubes: cubes, Env: map[string]string{"CUBE_PLACEMENTS": placements},
		Log: apiLogs, CubeLog: cubeLogs,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, cubeLogs.String())
		return fail(err)
	}
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		code = 1
	}
	if code == 0 {
		code = checkLogs(apiLogs.String() + cubeLogs.String())
	}
	return code
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "integration:", err)
	return 1
}

// checkLogs fails the run when any key or token reached the API's or Cube's
// logs during the tests.
func checkLogs(logs string) int {
	if !strings.Contains(logs, `"msg":"request"`) {
		// A run filtered to tests that call no API has nothing to check.
		fmt.Println("log check: no request was logged")
		return 0
	}
	keys := []string{stack.LocalCallerKey}
	for i := range cubes {
		keys = append(keys, stack.LocalCubeKeyOf(i))
	}
	if err := logcheck.Leak(logs, keys...); err != nil {
		return fail(err)
	}
	fmt.Printf("log check: %d lines from the API and Cube, no key or token\n", strings.Count(logs, "\n"))
	return 0
}

// answer is an API answer.
type answer struct {
	status int
	body   []byte
	took   time.Duration
	// id is the X-Request-Id the request was sent with.
	id string
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, truncate(string(a.body), 400)) }

// call sends a request to the API with a caller token for project.
func call(t testing.TB, method, path string, project int64, body string) answer {
	t.Helper()
	a, err := send(method, path, project, body)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// send is call for goroutines other than the test's: it returns its error.
func send(method, path string, project int64, body string) (answer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, env.APIURL+path, r)
	if project > 0 {
		req.Header.Set("Authorization", "Bearer "+stack.Token(time.Hour, project))
	}
	req.Header.Set("Content-Type", "application/json")
	id := fmt.Sprintf("it-%d", requestIDs.Add(1))
	req.Header.Set("X-Request-Id", id)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return answer{status: resp.StatusCode, body: b, took: time.Since(start), id: id}, nil
}

// requestIDs numbers the requests the tests send, so that each one's log
// line can be found.
var requestIDs atomic.Int64

// logLine waits for the API's log line of the request a answered, which the
// API writes after its answer, and returns it.
func logLine(t testing.TB, a answer) map[string]any {
	t.Helper()
	var line map[string]any
	wait.Until(t, "the API's log line of request "+a.id, func() bool {
		for _, l := range strings.Split(apiLogs.String(), "\n") {
			if strings.Contains(l, `"request_id":"`+a.id+`"`) {
				return json.Unmarshal([]byte(l), &line) == nil
			}
		}
		return false
	})
	return line
}

// polls returns how many times the API re-sent a request to Cube after
// "Continue wait", from its log line.
func polls(t testing.TB, a answer) int {
	t.Helper()
	n, _ := logLine(t, a)["polls"].(float64)
	return int(n)
}

func load(t testing.TB, project int64, query string) answer {
	t.Helper()
	return call(t, "POST", fmt.Sprintf("/api/v4/projects/%d/product_analytics/request/load", project), project, `{"query":`+query+`,"queryType":"multi"}`)
}

// rows returns results[0].data of a load answer.
func rows(t testing.TB, a answer) []map[string]any {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("load: %s", a)
	}
	var out struct {
		Results []struct {
			Data []map[string]any `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(a.body, &out); err != nil || len(out.Results) == 0 {
		t.Fatalf("load answer is not a multi result: %s", a)
	}
	return out.Results[0].Data
}

// sqlRows runs SQL straight on project's events file, beside the running
// Cube.
func sqlRows(t testing.TB, project int64, query string) []map[string]any {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(stack.CubeDir(root), "scripts", "query.js"), eventsdb.Path(dataDir, project), query)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("query.js: %v\n%s", err, stderr.String())
	}
	var r []map[string]any
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("query.js output: %v\n%s", err, out)
	}
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
