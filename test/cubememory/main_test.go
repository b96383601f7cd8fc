// Package cubememory tests that Cube's memory stays bounded whatever
// allowed answers its tenants ask for: the result cache (cube/resultcache.js)
// keeps answers in bytes overall, per project and per answer, so that
// distinct large exports, which used to fill Cube's heap until it died, are
// answered and not kept, and a project's answers evict its own before
// anyone else's. The tests run a real Cube through internal/stack with its
// defaults; BenchmarkLargeAnswersHeap runs large answers for ten minutes
// and prints Cube's heap as Cube logs it.
package cubememory

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/procstat"
	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
)

// The projects: project 1 large enough for exports of megabytes, project 2
// a small one whose dashboard answers are kilobytes.
const (
	exporter      = 1
	exporterSize  = 20000
	bystander     = 2
	bystanderSize = 500
)

var root string

func TestMain(m *testing.M) {
	var err error
	if root, err = stack.Root("."); err != nil {
		fmt.Fprintln(os.Stderr, "cubememory:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code2 := closeTestStack(); code == 0 {
		code = code2
	}
	os.Exit(code)
}

// testStack is the stack the tests share, started by the first test that
// needs it.
var testStack struct {
	once sync.Once
	env  *stack.Stack
	log  *logcheck.Buffer
	// stackLog has the stack's own lines: a Cube that exited, with its
	// exit status.
	stackLog *logcheck.Buffer
	tmp      string
	err      error
}

// env starts the tests' stack once: Cube with its default bounds and the
// test model, whose SlowEvents cube has a refresh key that never changes
// (with no delay here), so that a cached answer stays the same answer for
// as long as the cache keeps it. Cube is supervised, so that a Cube that
// exits is logged with its exit status; the tests fail on any restart.
// cacheEnv is the tests' result cache: bounds of their own, not the heap's
// defaults, since the project's data is sized for a share of 12 MB and
// answers of 3 MB. The benchmark (make bench-memory) measures Cube as it
// runs, with the defaults.
func cacheEnv() []string {
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		return nil
	}
	return []string{"CUBE_RESULT_CACHE_MB=48"}
}

func env(tb testing.TB) (*stack.Stack, *logcheck.Buffer) {
	tb.Helper()
	testStack.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if testStack.err = stack.InstallCube(ctx, root, os.Stderr); testStack.err != nil {
			return
		}
		if testStack.tmp, testStack.err = os.MkdirTemp("", "pa-cubememory-"); testStack.err != nil {
			return
		}
		data := filepath.Join(testStack.tmp, "events")
		projects := fmt.Sprintf("%d:%d,%d:%d", exporter, exporterSize, bystander, bystanderSize)
		if testStack.err = stack.GenerateData(ctx, root, data, os.Stderr, "-projects", projects); testStack.err != nil {
			return
		}
		testStack.log, testStack.stackLog = &logcheck.Buffer{}, &logcheck.Buffer{}
		testStack.env, testStack.err = stack.Start(ctx, stack.Options{
			Root: root, DataDir: data, CubeLog: testStack.log, Log: testStack.stackLog, TestModel: true, SuperviseCube: true,
			CubeEnv: cacheEnv(),
		})
		if testStack.err != nil {
			testStack.err = fmt.Errorf("%w\n%s", testStack.err, logcheck.LastLines(testStack.log.String(), 20))
		}
	})
	if testStack.err != nil {
		tb.Fatal(testStack.err)
	}
	return testStack.env, testStack.log
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
		fmt.Fprintln(os.Stderr, "cubememory:", err)
		return 1
	}
	return 0
}

// localKeys serves the local stack's Cube key to a cube.Client.
type localKeys struct{}

func (localKeys) Get(context.Context) (string, error) { return stack.LocalCubeKey, nil }
func (localKeys) Refresh(context.Context, string) (string, error) {
	return stack.LocalCubeKey, nil
}

// newClient returns a client straight to the Cube at url, as the API calls
// it, polling through "Continue wait" as long as a busy machine needs.
func newClient(url string) *cube.Client {
	return cube.NewClient(localKeys{}, cube.Options{
		BaseURL: url, Issuer: "cubememory-test", RequestTimeout: 2 * time.Minute, WaitDeadline: 4 * time.Minute,
	})
}

// answer is one load answer's first result: its rows and when Cube
// computed it, which Cube sends only for an answer it has cached (a cached
// answer comes back with the time it was first computed).
type answer struct {
	Data            []map[string]any `json:"data"`
	LastRefreshTime time.Time        `json:"lastRefreshTime"`
	bytes           int
}

// load sends query for project straight to Cube.
func load(ctx context.Context, c *cube.Client, project int64, query string) (answer, error) {
	resp, err := c.Do(ctx, cube.Request{Endpoint: cube.Load, ProjectID: project, Query: json.RawMessage(query)})
	if err != nil {
		return answer{}, fmt.Errorf("project %d: %w", project, err)
	}
	if resp.ContinueWait {
		return answer{}, fmt.Errorf("project %d: still Continue wait after the client's deadline", project)
	}
	var out struct {
		Results []answer `json:"results"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil || len(out.Results) != 1 {
		return answer{}, fmt.Errorf("project %d: not a load answer (%v): %.300s", project, err, resp.Body)
	}
	out.Results[0].bytes = len(resp.Body)
	return out.Results[0], nil
}

// exportQuery is an ungrouped export of project 1's events, a dozen
// columns of rows rows from offset: megabytes, within what the API and
// Cube's guard allow (50,000 rows).
func exportQuery(rows, offset int) string {
	return fmt.Sprintf(`{"dimensions":["TrackedEvents.eventId","TrackedEvents.event","TrackedEvents.eventName",`+
		`"TrackedEvents.derivedTstamp","TrackedEvents.pageUrl","TrackedEvents.pageTitle","TrackedEvents.pageReferrer",`+
		`"TrackedEvents.useragent","TrackedEvents.docPath","TrackedEvents.userId","TrackedEvents.customEventName",`+
		`"TrackedEvents.baseUrl"],"ungrouped":true,"order":[["TrackedEvents.eventId","asc"]],"limit":%d,"offset":%d}`,
		rows, offset)
}

// slowEventsQuery lists SlowEvents (the test cube whose refresh key never
// changes) by event and time, one row per event nearly: rows rows from
// offset, about 130 bytes each in Cube's heap.
func slowEventsQuery(rows, offset int) string {
	return fmt.Sprintf(`{"measures":["SlowEvents.count"],"dimensions":["SlowEvents.event","SlowEvents.derivedTstamp"],`+
		`"order":[["SlowEvents.derivedTstamp","asc"],["SlowEvents.event","asc"]],"limit":%d,"offset":%d}`, rows, offset)
}

// dashboardQueries are small answers of project 2, as a dashboard's
// panels ask them, on SlowEvents so that they stay cached while kept.
var dashboardQueries = []string{
	`{"measures":["SlowEvents.count"]}`,
	`{"measures":["SlowEvents.count"],"dimensions":["SlowEvents.event"]}`,
	`{"measures":["SlowEvents.count"],"timeDimensions":[{"dimension":"SlowEvents.derivedTstamp","granularity":"day"}]}`,
}

// lines returns the JSON lines of Cube's log whose message is msg.
func lines(log *logcheck.Buffer, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), msg) {
			continue
		}
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["message"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// bounds is the result cache's bounds, as Cube logged them at start.
type bounds struct{ maxBytes, maxEntryBytes, tenantBytes float64 }

func cacheBounds(tb testing.TB, log *logcheck.Buffer) bounds {
	tb.Helper()
	l := lines(log, "Result cache bounds")
	if len(l) == 0 {
		tb.Fatal(`Cube logged no "Result cache bounds" line`)
	}
	num := func(k string) float64 { f, _ := l[0][k].(float64); return f }
	b := bounds{num("maxBytes"), num("maxEntryBytes"), num("tenantBytes")}
	if b.maxBytes <= 0 || b.maxEntryBytes <= 0 || b.tenantBytes <= 0 {
		tb.Fatalf("Cube's result cache bounds are not all set: %v", l[0])
	}
	return b
}

// rssSampler records the highest resident memory of a process, sampled
// every 200 ms until stopped.
type rssSampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	max  int64
	err  error
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			st, err := procstat.Of(pid)
			if err != nil {
				s.err = err
				return
			}
			s.max = max(s.max, st.RSS)
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the highest RSS in MB, or the error
// that ended it (the process gone).
func (s *rssSampler) Stop() (float64, error) {
	close(s.stop)
	<-s.done
	return float64(s.max) / (1 << 20), s.err
}

// cubeExits is the stack's log lines of Cube exiting, with their exit
// status and Cube's last output.
func cubeExits() string {
	var out []string
	for _, l := range strings.Split(testStack.stackLog.String(), "\n") {
		if strings.Contains(l, "cube exited") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ready reports whether the Cube at url answers /readyz.
func ready(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("Cube's /readyz: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("Cube's /readyz answered %d", resp.StatusCode)
	}
	return nil
}
