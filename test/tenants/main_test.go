// Package tenants measures and tests what each project costs the local Cube:
// the data model compiled once for every project, and per-project state
// (DuckDB databases, orchestrators, cached answers) kept only while used, in
// bounded caches whose evictions release what they held. The tests run a
// Cube with small bounds and check evictions, their release and that
// tenants never share an answer; BenchmarkTenants (make bench-tenants) runs
// a Cube with its defaults over up to a thousand projects.
package tenants

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
)

var root string

func TestMain(m *testing.M) {
	var err error
	if root, err = stack.Root("."); err != nil {
		fmt.Fprintln(os.Stderr, "tenants:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code2 := closeTestStack(); code == 0 {
		code = code2
	}
	os.Exit(code)
}

// localKeys serves the local stack's Cube key to a cube.Client.
type localKeys struct{}

func (localKeys) Get(context.Context) (string, error) { return stack.LocalCubeKey, nil }
func (localKeys) Refresh(context.Context, string) (string, error) {
	return stack.LocalCubeKey, nil
}

// newClient returns a Cube client for the Cube at url, which polls through
// "Continue wait" for as long as a busy machine may need.
func newClient(url string) *cube.Client {
	return cube.NewClient(localKeys{}, cube.Options{
		BaseURL: url, Issuer: "tenants-test", RequestTimeout: time.Minute, WaitDeadline: 3 * time.Minute,
	})
}

// loaded is one load answer's first result.
type loaded struct {
	Data            []map[string]any `json:"data"`
	LastRefreshTime time.Time        `json:"lastRefreshTime"`
}

// load sends query for project straight to Cube with a token for that
// project, as the API does, and returns the first result.
func load(ctx context.Context, c *cube.Client, project int64, query string) (loaded, error) {
	resp, err := c.Do(ctx, cube.Request{Endpoint: cube.Load, ProjectID: project, Query: json.RawMessage(query)})
	if err != nil {
		return loaded{}, fmt.Errorf("project %d: %w", project, err)
	}
	if resp.ContinueWait {
		return loaded{}, fmt.Errorf("project %d: still Continue wait after the client's deadline", project)
	}
	var out struct {
		Results []loaded `json:"results"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil || len(out.Results) != 1 {
		return loaded{}, fmt.Errorf("project %d: not a load answer (%v): %.300s", project, err, resp.Body)
	}
	return out.Results[0], nil
}

// cubeLog keeps Cube's log for the tests' checks and counts what the
// tests and the benchmark look for, whatever its length.
type cubeLog struct {
	logcheck.Buffer
	mu           sync.Mutex
	partial      []byte
	compilations int
}

func (l *cubeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if bytes.Contains(l.partial[:i], []byte(`"message":"Compiling schema"`)) {
			l.compilations++
		}
		l.partial = l.partial[i+1:]
	}
	l.mu.Unlock()
	return l.Buffer.Write(p)
}

// Compilations is how many times Cube has compiled its data model.
func (l *cubeLog) Compilations() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.compilations
}

// lines returns the JSON lines of Cube's log whose message is msg.
func (l *cubeLog) lines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["message"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// cubeRSS returns a reading of the resident memory of env's Cube in MB,
// failing b when it cannot be read.
func cubeRSS(b *testing.B, env *stack.Stack) func() float64 {
	return func() float64 {
		mb, err := rssMB(env.CubePID())
		if err != nil {
			b.Fatal(err)
		}
		return mb
	}
}

// rssMB is the resident memory of process pid in MB, as ps reports it (in
// KB on Linux and macOS alike).
func rssMB(pid int) (float64, error) {
	out, err := exec.Command("ps", "-o", "rss=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return 0, fmt.Errorf("ps -o rss= -p %d: %w", pid, err)
	}
	kb, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("ps -o rss= -p %d printed %q", pid, out)
	}
	return kb / 1024, nil
}

// generate writes the projects of specs ("id:events,...", as demodata's
// -projects) that have no file in dir yet (the benchmark's data is kept
// between runs).
func generate(ctx context.Context, dir, specs string) error {
	var missing []string
	for _, spec := range strings.Split(specs, ",") {
		id, _, _ := strings.Cut(spec, ":")
		if _, err := os.Stat(filepath.Join(dir, "project_"+id+".duckdb")); err != nil {
			missing = append(missing, spec)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "run", "./cmd/demodata", "-data", dir, "-projects", strings.Join(missing, ","))
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("generating the projects' data: %w\n%s", err, logcheck.LastLines(out.String(), 10))
	}
	return nil
}

// sameEvents is specs for projects 1..n of events each.
func sameEvents(n, events int) string {
	specs := make([]string, n)
	for p := range n {
		specs[p] = fmt.Sprintf("%d:%d", p+1, events)
	}
	return strings.Join(specs, ",")
}

// testStack is the stack the tests share, started by the first test that
// needs it (closeTestStack stops it).
var testStack struct {
	once sync.Once
	env  *stack.Stack
	log  *cubeLog
	tmp  string
	err  error
}

func closeTestStack() int {
	if testStack.tmp != "" {
		defer os.RemoveAll(testStack.tmp)
	}
	if testStack.env == nil {
		return 0
	}
	if err := testStack.env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		return 1
	}
	if err := logcheck.Leak(testStack.log.String(), stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
		fmt.Fprintln(os.Stderr, "tenants:", err)
		return 1
	}
	return 0
}
