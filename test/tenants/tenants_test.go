package tenants

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/cube"
)

// The test Cube's bounds: small, so that a handful of projects goes past
// them. Keep-alives are short so that idle closing shows within a test's
// wait, and long enough that a query's own steps never outlast them.
const (
	maxTenants       = 3
	tenantKeepAlive  = 4 * time.Second
	maxOpenDatabases = 2
	dbKeepAlive      = 2 * time.Second
)

// The test projects and their events: distinct counts, so that an answer
// carried to another project shows. Project 9 has no file.
var events = map[int64]int{1: 101, 2: 203, 3: 307, 4: 401, 5: 503}

const noFile = 9

// countQuery asks for a project's number of events.
const countQuery = `{"measures":["TrackedEvents.count"]}`

// env starts the tests' stack once: the API is not needed, only Cube with
// small bounds.
func env(t *testing.T) (*stack.Stack, *cubeLog) {
	t.Helper()
	testStack.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if testStack.err = stack.InstallCube(ctx, root, os.Stderr); testStack.err != nil {
			return
		}
		tmp, err := os.MkdirTemp("", "pa-tenants-")
		if err == nil {
			// As the system names the files Cube holds open.
			tmp, err = filepath.EvalSymlinks(tmp)
		}
		if err != nil {
			testStack.err = err
			return
		}
		testStack.tmp = tmp
		dataDir = filepath.Join(tmp, "events")
		var specs []string
		for p := int64(1); p <= 5; p++ {
			specs = append(specs, fmt.Sprintf("%d:%d", p, events[p]))
		}
		if testStack.err = generate(ctx, dataDir, strings.Join(specs, ",")); testStack.err != nil {
			return
		}
		testStack.log = &cubeLog{}
		testStack.env, testStack.err = stack.Start(ctx, stack.Options{
			Root: root, DataDir: dataDir, CubeLog: testStack.log,
			CubeEnv: []string{
				fmt.Sprintf("CUBE_MAX_TENANTS=%d", maxTenants),
				fmt.Sprintf("CUBE_TENANT_KEEP_ALIVE=%d", int(tenantKeepAlive/time.Second)),
				fmt.Sprintf("CUBE_MAX_OPEN_DATABASES=%d", maxOpenDatabases),
				fmt.Sprintf("CUBE_DATABASE_KEEP_ALIVE=%d", int(dbKeepAlive/time.Second)),
			},
		})
		if testStack.err != nil {
			testStack.err = fmt.Errorf("%w\n%s", testStack.err, logcheck.LastLines(testStack.log.String(), 20))
		}
	})
	if testStack.err != nil {
		t.Fatal(testStack.err)
	}
	return testStack.env, testStack.log
}

var dataDir string

// count loads project's number of events.
func count(t *testing.T, c *cube.Client, project int64) loaded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r, err := load(ctx, c, project, countQuery)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func countOf(t *testing.T, r loaded) string {
	t.Helper()
	if len(r.Data) != 1 {
		t.Fatalf("want one row, got %v", r.Data)
	}
	return fmt.Sprint(r.Data[0]["TrackedEvents.count"])
}

// TestModelCompiledOnce: every project's queries, a project without data
// included, go through one compiled data model.
func TestModelCompiledOnce(t *testing.T) {
	s, log := env(t)
	c := newClient(s.CubeURL)
	for p := int64(1); p <= 5; p++ {
		if got, want := countOf(t, count(t, c, p)), fmt.Sprint(events[p]); got != want {
			t.Errorf("project %d: got %s events, want %s", p, got, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := load(ctx, c, noFile, countQuery); err == nil || !strings.Contains(err.Error(), `schema "gitlab_project_9" does not exist`) {
		t.Errorf("project %d without a file: got %v, want its schema missing", noFile, err)
	}
	if got := log.Compilations(); got != 1 {
		t.Errorf("Cube compiled its data model %d times, want once", got)
	}
}

// TestAnswersStayWithTheirProject sends the same query for every project,
// round after round, one at a time and then many at once, while the small
// bounds drop and rebuild the projects' orchestrators and databases in
// between: each answer is always its own project's.
func TestAnswersStayWithTheirProject(t *testing.T) {
	s, _ := env(t)
	c := newClient(s.CubeURL)
	for round := range 3 {
		for p := int64(1); p <= 5; p++ {
			if got, want := countOf(t, count(t, c, p)), fmt.Sprint(events[p]); got != want {
				t.Fatalf("round %d, project %d: got %s events, want %s", round, p, got, want)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		p := int64(i%5 + 1)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r, err := load(ctx, c, p, countQuery)
			switch {
			case err != nil:
				errs <- err
			case len(r.Data) != 1 || fmt.Sprint(r.Data[0]["TrackedEvents.count"]) != fmt.Sprint(events[p]):
				errs <- fmt.Errorf("project %d at once with others: got %v, want %d events", p, r.Data, events[p])
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDatabasesBounded: however many projects are queried, at most
// CUBE_MAX_OPEN_DATABASES of their files are open in Cube's process once
// their queries are done, and every one is closed after
// CUBE_DATABASE_KEEP_ALIVE unused.
func TestDatabasesBounded(t *testing.T) {
	s, log := env(t)
	c := newClient(s.CubeURL)
	seen := 0
	for p := int64(1); p <= 5; p++ {
		count(t, c, p)
		seen = max(seen, len(projectFilesOpen(t, s.CubePID())))
		wait.Until(t, fmt.Sprintf("at most %d project files open after project %d's query", maxOpenDatabases, p), func() bool {
			return len(projectFilesOpen(t, s.CubePID())) <= maxOpenDatabases
		})
	}
	if seen == 0 {
		t.Fatal("no project file was ever seen open: the check of open files sees nothing")
	}
	// Cube logs a close once it is done, after the file is closed.
	wait.Until(t, "Cube's log line of a database closed for the limit", func() bool {
		return anyReason(log.lines("Tenant database closed"), "limit")
	})
	wait.Until(t, "every project file closed once unused", func() bool {
		return len(projectFilesOpen(t, s.CubePID())) == 0
	})
	wait.Until(t, "Cube's log line of a database closed for being unused", func() bool {
		return anyReason(log.lines("Tenant database closed"), "idle")
	})
	// And reopened on the next query.
	if got, want := countOf(t, count(t, c, 3)), fmt.Sprint(events[3]); got != want {
		t.Errorf("project 3 after its database closed: got %s events, want %s", got, want)
	}
}

// TestTenantsDropped: Cube keeps at most CUBE_MAX_TENANTS orchestrators
// and drops each after CUBE_TENANT_KEEP_ALIVE unused; a dropped tenant's
// cached answer goes with it, and its next query is answered anew.
func TestTenantsDropped(t *testing.T) {
	s, log := env(t)
	c := newClient(s.CubeURL)
	first := count(t, c, 4)
	again := count(t, c, 4)
	if !again.LastRefreshTime.Equal(first.LastRefreshTime) {
		t.Fatalf("the same query twice at once was computed twice (%s, %s): the cache check below would prove nothing",
			first.LastRefreshTime, again.LastRefreshTime)
	}
	for p := int64(1); p <= 5; p++ {
		if p != 4 {
			count(t, c, p)
		}
	}
	// Cube logs each orchestrator it adds with the number it then holds.
	wait.Until(t, "Cube's log line of project 5's orchestrator added", func() bool {
		for _, line := range log.lines("Tenant orchestrator added") {
			if line["tenant"] == "CUBE_APP_gitlab_project_5" {
				return true
			}
		}
		return false
	})
	for _, line := range log.lines("Tenant orchestrator added") {
		if n, _ := line["tenants"].(float64); n > maxTenants {
			t.Errorf("Cube held %v orchestrators, want at most %d", n, maxTenants)
		}
	}
	wait.Until(t, "project 4's orchestrator dropped", func() bool {
		for _, line := range log.lines("Tenant orchestrator dropped") {
			if line["tenant"] == "CUBE_APP_gitlab_project_4" {
				return true
			}
		}
		return false
	})
	after := count(t, c, 4)
	if got, want := countOf(t, after), fmt.Sprint(events[4]); got != want {
		t.Errorf("project 4 after its drop: got %s events, want %s", got, want)
	}
	if !after.LastRefreshTime.After(first.LastRefreshTime) {
		t.Errorf("project 4's answer after its drop was refreshed at %s, as before it (%s): the cached answer survived",
			after.LastRefreshTime, first.LastRefreshTime)
	}
	wait.Until(t, "an orchestrator dropped for being unused", func() bool {
		return anyReason(log.lines("Tenant orchestrator dropped"), "idle")
	})
}

func anyReason(lines []map[string]any, reason string) bool {
	for _, l := range lines {
		if l["reason"] == reason {
			return true
		}
	}
	return false
}

// projectFilesOpen lists the project files the process pid holds open.
func projectFilesOpen(t *testing.T, pid int) []string {
	t.Helper()
	files, err := openFiles(pid)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if strings.HasPrefix(f, dataDir) && strings.HasSuffix(f, ".duckdb") {
			out = append(out, f)
		}
	}
	return out
}
