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
	"testing"
	"time"

	"productanalytics/internal/eventsdb"
	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
)

// The stack every test here shares. Cube's continue-wait timeout is short
// and its test-only SlowEvents cube takes longer than it, so that polling
// shows.
var (
	env           *stack.Stack
	root, dataDir string
	apiLogs       = &logcheck.Buffer{}
	continueWt    = time.Second
	slowQuery     = 2500 * time.Millisecond
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
	tmp, err := os.MkdirTemp("", "pa-integration-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	dataDir = filepath.Join(tmp, "events")
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		return fail(err)
	}
	if err := stack.GenerateData(ctx, root, dataDir, os.Stderr); err != nil {
		return fail(err)
	}
	cubeLog := &logcheck.Buffer{}
	env, err = stack.Start(ctx, stack.Options{
		Root: root, DataDir: dataDir, ContinueWait: continueWt, TestModel: true, SlowQuery: slowQuery,
		Log: apiLogs, CubeLog: cubeLog,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, cubeLog.String())
		return fail(err)
	}
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		code = 1
	}
	if code == 0 {
		code = checkLogs(apiLogs.String() + cubeLog.String())
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
	if err := logcheck.Leak(logs, stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
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
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, truncate(string(a.body), 400)) }

// call sends a request to the API with a caller token for project.
func call(t testing.TB, method, path string, project int64, body string) answer {
	t.Helper()
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
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: b, took: time.Since(start)}
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
