package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
	"productanalytics/shared/request"
)

// stringDimensions are TrackedEvents' text dimensions: an export of the
// widest rows a caller can ask for.
var stringDimensions = []string{
	"eventId", "event", "eventName", "pageUrl", "baseUrl", "pageUrlhosts", "pageUrlpath", "pageTitle",
	"pageReferrer", "useragent", "targetUrl", "elementId", "customEventName", "customEventProps",
	"customUserProps", "userId", "agentName", "agentVersion", "osFamily", "osName", "osVersion",
	"osVersionMajor", "browserLanguage", "documentLanguage", "viewportSize",
}

// heapShape is what is measured: loads of rows of columns text
// dimensions, parallel of them at once (1 when zero), each a distinct query
// (by offset) so that Cube answers each on its own.
type heapShape struct{ rows, columns, parallel int }

func (s heapShape) loads() int { return max(s.parallel, 1) }

// cells is the cells of all the loads together.
func (s heapShape) cells() int { return s.rows * s.columns * s.loads() }

func (s heapShape) String() string {
	if s.loads() == 1 {
		return fmt.Sprintf("%d rows x %d columns", s.rows, s.columns)
	}
	return fmt.Sprintf("%d x (%d rows x %d columns)", s.loads(), s.rows, s.columns)
}

func (s heapShape) query(offset int) string {
	dims := make([]string, s.columns)
	for i := range dims {
		dims[i] = "TrackedEvents." + stringDimensions[i]
	}
	q, err := json.Marshal(map[string]any{"dimensions": dims, "ungrouped": true, "limit": s.rows, "offset": offset})
	if err != nil {
		panic(err) // strings and ints always marshal
	}
	return string(q)
}

// The heaps tried, in MB: bisection between them stops within heapStepMB.
const (
	heapLowMB  = 48
	heapHighMB = 1536
	heapStepMB = 8
)

// BenchmarkCubeHeap measures the heap Cube needs to answer one load: for
// each answer shape, the smallest V8 heap (--max-old-space-size) under which
// a fresh Cube answers it, found by bisection. The difference between
// shapes, over their difference in cells, is the heap one answered cell
// costs: the figure the API's cost budget (request.MaxCells) is chosen
// from. Cube runs without its query guard here, so that it can be asked
// for answers past the budget.
//
//	go test ./test/guard -run '^$' -bench CubeHeap -benchtime 1x -timeout 90m
func BenchmarkCubeHeap(b *testing.B) {
	shapes := []heapShape{{1, 1, 1}, {10000, 12, 1}, {50000, 12, 1}, {50000, 25, 1}, {50000, 12, 4}}
	if s := os.Getenv("GUARD_HEAP_SHAPES"); s != "" {
		// rows x columns [x loads at once], comma-separated, the smallest
		// first: e.g. 1x1,50000x12,50000x12x4
		shapes = nil
		for _, f := range strings.Split(s, ",") {
			var sh heapShape
			n, _ := fmt.Sscanf(strings.ReplaceAll(f, "x", " "), "%d %d %d", &sh.rows, &sh.columns, &sh.parallel)
			if n < 2 || sh.columns > len(stringDimensions) || sh.rows < 1 || sh.columns < 1 {
				b.Fatalf("GUARD_HEAP_SHAPES: %q is not rows x columns [x loads] (at most %d columns)", f, len(stringDimensions))
			}
			shapes = append(shapes, sh)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Minute)
	defer cancel()
	root, err := stack.Root(".")
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "events")
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		b.Fatal(err)
	}
	if err := stack.GenerateData(ctx, root, dir, os.Stderr, "-projects", "1:60000"); err != nil {
		b.Fatal(err)
	}
	log := &logcheck.Buffer{}
	env, err := stack.Start(ctx, stack.Options{
		Root: root, DataDir: dir, TestModel: true, WithoutQueryGuard: true,
		ContinueWait: 30 * time.Second, CubeLog: log,
	})
	if err != nil {
		b.Fatalf("%v\n%s", err, logcheck.LastLines(log.String(), 20))
	}
	defer env.Close()
	c := cube.NewClient(localKeys{}, cube.Options{
		BaseURL: env.CubeURL, Issuer: "heap-benchmark", RequestTimeout: 3 * time.Minute,
		WaitDeadline: 5 * time.Minute, MaxResponseBytes: 1 << 30,
	})
	// answers starts a fresh Cube with heapMB and reports whether it
	// answers shape whole.
	answers := func(shape heapShape, heapMB int) (bool, int) {
		b.Setenv("NODE_OPTIONS", fmt.Sprintf("--max-old-space-size=%d", heapMB))
		before := len(log.String())
		outOfHeap := func() bool { return strings.Contains(log.String()[before:], "heap out of memory") }
		if err := env.StartCube(ctx); err != nil {
			if outOfHeap() {
				return false, 0 // too small to start at all
			}
			b.Fatal(err)
		}
		// The model is compiled on the first query: not part of the answer.
		if _, err := loadRows(ctx, c, `{"measures":["TrackedEvents.count"]}`); err != nil {
			if outOfHeap() {
				return false, 0
			}
			b.Fatalf("the first query, at %d MB: %v", heapMB, err)
		}
		type answer struct{ rows, size int }
		answered := make([]answer, shape.loads())
		errs := make([]error, shape.loads())
		var wg sync.WaitGroup
		for i := range shape.loads() {
			wg.Go(func() {
				answered[i].rows, answered[i].size, errs[i] = loadRowsSized(ctx, c, shape.query(i))
			})
		}
		wg.Wait()
		err := errors.Join(errs...)
		switch {
		case err == nil && answered[0].rows == shape.rows:
			return true, answered[0].size
		case err == nil:
			b.Fatalf("%d rows for %v: the project has too few events", answered[0].rows, shape)
		case outOfHeap():
			return false, 0
		}
		b.Fatalf("%v at %d MB failed, and not for want of heap: %v\n%s", shape, heapMB, err, logcheck.LastLines(log.String(), 20))
		return false, 0
	}
	type result struct {
		shape  heapShape
		heapMB int
		bytes  int
	}
	var results []result
	b.ResetTimer()
	for range b.N {
		results = results[:0]
		for _, shape := range shapes {
			lo, hi := heapLowMB, heapHighMB
			ok, size := answers(shape, hi)
			if !ok {
				b.Fatalf("%v: Cube cannot answer it even with %d MB", shape, hi)
			}
			for hi-lo > heapStepMB {
				mid := (lo + hi) / 2
				ok, _ := answers(shape, mid)
				if ok {
					hi = mid
				} else {
					lo = mid
				}
				fmt.Printf("    %v at %d MB: answered %v\n", shape, mid, ok)
			}
			results = append(results, result{shape, hi, size})
			fmt.Printf("  %-32v = %8d cells: answered with %4d MB of heap, not with %4d (each answer %.1f MB)\n",
				shape, shape.cells(), hi, lo, float64(size)/(1<<20))
		}
	}
	b.StopTimer()
	base := results[0]
	fmt.Printf("Cube's heap per answered cell, over the smallest answer's %d MB (each heap found within %d MB):\n", base.heapMB, heapStepMB)
	for _, r := range results[1:] {
		extra := float64(r.heapMB-base.heapMB) * (1 << 20)
		perCell := extra / float64(r.shape.cells()-base.shape.cells())
		fmt.Printf("  %-32v: %5.0f bytes of heap per cell; %4.0f bytes of JSON per cell\n",
			r.shape, perCell, float64(r.bytes*r.shape.loads())/float64(r.shape.cells()))
		b.ReportMetric(perCell, fmt.Sprintf("heapB/cell@%dx%dx%d", r.shape.rows, r.shape.columns, r.shape.loads()))
	}
	fmt.Printf("the budget: %d cells a call\n", request.MaxCells)
}

// localKeys serves the local stack's Cube key to a cube.Client.
type localKeys struct{}

func (localKeys) Get(context.Context) (string, error) { return stack.LocalCubeKey, nil }
func (localKeys) Refresh(context.Context, string) (string, error) {
	return stack.LocalCubeKey, nil
}

// loadRows sends query to Cube for project 1 and returns the rows answered.
func loadRows(ctx context.Context, c *cube.Client, query string) (int, error) {
	n, _, err := loadRowsSized(ctx, c, query)
	return n, err
}

// loadRowsSized is loadRows, with the answer's size in bytes.
func loadRowsSized(ctx context.Context, c *cube.Client, query string) (int, int, error) {
	resp, err := c.Do(ctx, cube.Request{Endpoint: cube.Load, ProjectID: 1, Query: json.RawMessage(query)})
	if err != nil {
		return 0, 0, err
	}
	if resp.ContinueWait {
		return 0, 0, errors.New("still Continue wait after the client's deadline")
	}
	var out struct {
		Results []struct {
			Data []json.RawMessage `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil || len(out.Results) != 1 {
		return 0, 0, fmt.Errorf("the answer is not one result (%v): %s", err, truncate(string(resp.Body), 200))
	}
	return len(out.Results[0].Data), len(resp.Body), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// BenchmarkCubeExportsAtTheBudget runs what one project may do at its
// worst within the budget, on a Cube with the stack's heap (CubeHeapMB, or
// NODE_OPTIONS=--max-old-space-size=N): with the result cache filled by
// four other projects' answers, rounds of 4 exports at once (the in-flight
// limit of a project) of 50,000 rows × 12 columns, the largest the budget
// allows. It fails if Cube ends.
//
//	go test ./test/guard -run '^$' -bench ExportsAtTheBudget -benchtime 1x -timeout 30m
func BenchmarkCubeExportsAtTheBudget(b *testing.B) {
	const rounds, atOnce = 8, 4
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	root, err := stack.Root(".")
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(b.TempDir(), "events")
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		b.Fatal(err)
	}
	if err := stack.GenerateData(ctx, root, dir, os.Stderr, "-projects", "1:60000,2:20000,3:20000,4:20000,5:20000"); err != nil {
		b.Fatal(err)
	}
	log := &logcheck.Buffer{}
	env, err := stack.Start(ctx, stack.Options{Root: root, DataDir: dir, ContinueWait: 30 * time.Second, CubeLog: log})
	if err != nil {
		b.Fatalf("%v\n%s", err, logcheck.LastLines(log.String(), 20))
	}
	defer env.Close()
	c := cube.NewClient(localKeys{}, cube.Options{
		BaseURL: env.CubeURL, Issuer: "heap-benchmark", RequestTimeout: 5 * time.Minute,
		WaitDeadline: 8 * time.Minute, MaxResponseBytes: 1 << 30,
	})
	load := func(project int64, q string) error {
		_, err := c.Do(ctx, cube.Request{Endpoint: cube.Load, ProjectID: project, Query: json.RawMessage(q)})
		return err
	}
	fill := heapShape{rows: 2000, columns: 12}
	export := heapShape{rows: 50000, columns: 12}
	if export.cells() != request.MaxCells {
		b.Fatalf("the export is %d cells, the budget %d", export.cells(), request.MaxCells)
	}
	b.ResetTimer()
	for range b.N {
		for p := int64(2); p <= 5; p++ {
			for i := range 20 {
				if err := load(p, fill.query(i*fill.rows)); err != nil {
					b.Fatalf("project %d's answer %d: %v", p, i, err)
				}
			}
		}
		for round := range rounds {
			errs := make([]error, atOnce)
			var wg sync.WaitGroup
			for i := range atOnce {
				// Distinct offsets: each export is built anew.
				wg.Go(func() { errs[i] = load(1, export.query(round*atOnce+i)) })
			}
			wg.Wait()
			if strings.Contains(log.String(), "heap out of memory") {
				b.Fatalf("round %d: Cube ended (%v)\n%s", round, errors.Join(errs...), logcheck.LastLines(log.String(), 20))
			}
			if err := errors.Join(errs...); err != nil {
				b.Fatalf("round %d: %v", round, err)
			}
			fmt.Printf("round %d: %d exports of %v at once answered, Cube up\n", round, atOnce, export)
		}
	}
}
