package cubememory

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/cube"
)

// TestResultCachePolicy runs the result cache's own tests
// (resultcache.test.js) on Cube's classes: the estimate of an answer's
// size against the heap, the bounds per answer, per project and overall,
// who is evicted first, drops and expiry, and the answers Cube's queue
// keeps for callers who stopped waiting.
func TestResultCachePolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", "--expose-gc", "--test", "--test-reporter=spec", "resultcache.test.js")
	cmd.Dir = filepath.Join(root, "test", "cubememory")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node --test: %v\n%s", err, out.String())
	}
	t.Logf("%s", out.String())
}

// Thirty distinct exports of project 1, each megabytes (the 16
// loads of 6.4 MB ended a Cube with a 192 MB heap): each is answered in
// full and not cached, Cube stays up throughout, and project 2's cached
// answers stay cached.
const (
	exports    = 30
	exportRows = 12000
)

func TestLargeAnswersNotCached(t *testing.T) {
	s, log := env(t)
	c := newClient(s.CubeURL)
	b := cacheBounds(t, log)
	pid := s.CubePID()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	before := primeDashboard(ctx, t, c)
	rss := sampleRSS(pid)
	var largest, total int
	for offset := range exports {
		a, err := load(ctx, c, exporter, exportQuery(exportRows, offset))
		if err != nil {
			rss.Stop()
			t.Fatalf("export %d: %v\nCube's exits: %s\nCube's log: %s", offset, err, cubeExits(), lastLines(log))
		}
		if len(a.Data) != exportRows {
			t.Fatalf("export %d: %d rows, want %d", offset, len(a.Data), exportRows)
		}
		if !a.LastRefreshTime.IsZero() {
			t.Errorf("export %d (%d bytes): cached (refreshed at %s), want answered and not kept", offset, a.bytes, a.LastRefreshTime)
		}
		largest, total = max(largest, a.bytes), total+a.bytes
	}
	maxRSS, err := rss.Stop()
	if err != nil {
		t.Fatalf("Cube (pid %d) is gone: %v\nCube's log: %s", pid, err, lastLines(log))
	}
	if got := s.CubePID(); got != pid || s.CubeRestarts() > 0 {
		t.Fatalf("Cube exited (pid %d, then %d): %s", pid, got, cubeExits())
	}
	if err := ready(s.CubeURL); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d exports of %d rows, %.1f MB as JSON each at most, %.0f MB in all; Cube's RSS at most %.0f MB",
		exports, exportRows, float64(largest)/(1<<20), float64(total)/(1<<20), maxRSS)

	// Cube says why each was not kept, naming the project only.
	refused := 0
	for _, l := range lines(log, "Answer not cached: larger than the largest cached answer") {
		bytes, _ := l["bytes"].(float64)
		if l["tenant"] == fmt.Sprintf("CUBE_APP_gitlab_project_%d", exporter) && bytes > b.maxEntryBytes {
			refused++
		}
	}
	if refused < exports {
		t.Errorf("Cube logged %d large answers of project %d not cached, want at least %d", refused, exporter, exports)
	}
	checkDashboardCached(ctx, t, c, before)
	checkMemoryLine(t, log, b)
}

// TestProjectEvictsItsOwnAnswers: project 1 asking for more distinct
// cacheable answers than its share of the cache holds loses its own oldest
// ones and keeps its newest, while project 2's cached answers stay.
func TestProjectEvictsItsOwnAnswers(t *testing.T) {
	s, log := env(t)
	c := newClient(s.CubeURL)
	b := cacheBounds(t, log)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	// Each answer an eighth of a project's share, and well under the
	// largest cached answer: sixteen of them are twice the share.
	const heapPerRow = 130
	rows := int(min(b.tenantBytes/8, b.maxEntryBytes/2) / heapPerRow)
	// Distinct answers: each from its own offset, every one full.
	const answers, step = 16, 300
	if (answers-1)*step+rows > exporterSize {
		t.Fatalf("project %d has %d events, too few for %d answers of %d rows", exporter, exporterSize, answers, rows)
	}
	before := primeDashboard(ctx, t, c)
	first := make([]answer, answers)
	for i := range answers {
		a, err := load(ctx, c, exporter, slowEventsQuery(rows, i*step))
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		if len(a.Data) != rows || a.LastRefreshTime.IsZero() {
			t.Fatalf("answer %d: %d rows, refreshed at %s: want %d rows, cached", i, len(a.Data), a.LastRefreshTime, rows)
		}
		first[i] = a
	}
	newest, err := load(ctx, c, exporter, slowEventsQuery(rows, (answers-1)*step))
	if err != nil {
		t.Fatal(err)
	}
	if !newest.LastRefreshTime.Equal(first[answers-1].LastRefreshTime) {
		t.Errorf("project %d's newest answer was computed again (at %s, first at %s): want it kept",
			exporter, newest.LastRefreshTime, first[answers-1].LastRefreshTime)
	}
	oldest, err := load(ctx, c, exporter, slowEventsQuery(rows, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !oldest.LastRefreshTime.After(first[0].LastRefreshTime) {
		t.Errorf("project %d's oldest answer is still cached (refreshed at %s) after %d answers of %d rows: want it evicted for its share",
			exporter, oldest.LastRefreshTime, answers, rows)
	}
	checkDashboardCached(ctx, t, c, before)
	checkMemoryLine(t, log, b)
}

// primeDashboard loads project 2's dashboard queries, twice each, and
// returns the first answers: the second must come from the cache, or the
// checks of what stays cached would prove nothing.
func primeDashboard(ctx context.Context, t *testing.T, c *cube.Client) []answer {
	t.Helper()
	out := make([]answer, len(dashboardQueries))
	for i, q := range dashboardQueries {
		a, err := load(ctx, c, bystander, q)
		if err != nil {
			t.Fatal(err)
		}
		again, err := load(ctx, c, bystander, q)
		if err != nil {
			t.Fatal(err)
		}
		if a.LastRefreshTime.IsZero() || !again.LastRefreshTime.Equal(a.LastRefreshTime) {
			t.Fatalf("project %d's %s twice: refreshed at %s then %s, want the second from the cache",
				bystander, q, a.LastRefreshTime, again.LastRefreshTime)
		}
		out[i] = a
	}
	return out
}

// checkDashboardCached: project 2's dashboard answers are still the
// cached ones of before.
func checkDashboardCached(ctx context.Context, t *testing.T, c *cube.Client, before []answer) {
	t.Helper()
	for i, q := range dashboardQueries {
		a, err := load(ctx, c, bystander, q)
		if err != nil {
			t.Fatal(err)
		}
		if !a.LastRefreshTime.Equal(before[i].LastRefreshTime) {
			t.Errorf("project %d's %s was computed again (at %s, cached at %s): its cached answer was evicted",
				bystander, q, a.LastRefreshTime, before[i].LastRefreshTime)
		}
	}
}

// checkMemoryLine waits for Cube's next memory line (every 30 s) and
// checks that the answers it keeps are within the cache's bound and its
// heap within its limit.
func checkMemoryLine(t *testing.T, log *logcheck.Buffer, b bounds) {
	t.Helper()
	n := len(lines(log, "Cube memory"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := wait.For(ctx, "Cube's next memory line", func() bool { return len(lines(log, "Cube memory")) > n }); err != nil {
		t.Fatal(err)
	}
	l := lines(log, "Cube memory")[n]
	num := func(k string) float64 { f, _ := l[k].(float64); return f }
	if cached := num("resultCacheMB") * (1 << 20); cached > b.maxBytes {
		t.Errorf("Cube keeps %.1f MB of answers, over its bound of %.1f MB", cached/(1<<20), b.maxBytes/(1<<20))
	}
	if used, limit := num("heapUsedMB"), num("heapLimitMB"); used <= 0 || used >= limit {
		t.Errorf("Cube's heap: %v MB used of %v MB", used, limit)
	}
	t.Logf("Cube's memory: %v", l)
}

func lastLines(log *logcheck.Buffer) string {
	return logcheck.LastLines(log.String(), 10)
}
