package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// heapShape is one answer measured: rows of columns text dimensions.
type heapShape struct{ rows, columns int }

func (s heapShape) cells() int { return s.rows * s.columns }

func (s heapShape) query() string {
	dims := make([]string, s.columns)
	for i := range dims {
		dims[i] = "TrackedEvents." + stringDimensions[i]
	}
	q, err := json.Marshal(map[string]any{"dimensions": dims, "ungrouped": true, "limit": s.rows})
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
	shapes := []heapShape{{1, 1}, {10000, 12}, {50000, 12}, {50000, 25}}
	if s := os.Getenv("GUARD_HEAP_SHAPES"); s != "" {
		// rows x columns, comma-separated: e.g. 50000x12,20000x25
		shapes = nil
		for _, f := range strings.Split(s, ",") {
			var sh heapShape
			if _, err := fmt.Sscanf(f, "%dx%d", &sh.rows, &sh.columns); err != nil || sh.columns > len(stringDimensions) {
				b.Fatalf("GUARD_HEAP_SHAPES: %q is not rows x columns (at most %d columns)", f, len(stringDimensions))
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
		if err := env.StartCube(ctx); err != nil {
			b.Fatal(err)
		}
		before := len(log.String())
		// The model is compiled on the first query: not part of the answer.
		if _, err := loadRows(ctx, c, `{"measures":["TrackedEvents.count"]}`); err != nil {
			b.Fatalf("the first query, at %d MB: %v", heapMB, err)
		}
		n, size, err := loadRowsSized(ctx, c, shape.query())
		switch {
		case err == nil && n == shape.rows:
			return true, size
		case err == nil:
			b.Fatalf("%d rows for %dx%d: the project has too few events", n, shape.rows, shape.columns)
		case strings.Contains(log.String()[before:], "heap out of memory"):
			return false, 0
		}
		b.Fatalf("%dx%d at %d MB failed, and not for want of heap: %v\n%s", shape.rows, shape.columns, heapMB, err,
			logcheck.LastLines(log.String(), 20))
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
				b.Fatalf("%dx%d: Cube cannot answer it even with %d MB", shape.rows, shape.columns, hi)
			}
			for hi-lo > heapStepMB {
				mid := (lo + hi) / 2
				if ok, _ := answers(shape, mid); ok {
					hi = mid
				} else {
					lo = mid
				}
			}
			results = append(results, result{shape, hi, size})
			fmt.Printf("  %6d rows x %2d columns = %8d cells: answered with %4d MB of heap, not with %4d (answer %.1f MB)\n",
				shape.rows, shape.columns, shape.cells(), hi, lo, float64(size)/(1<<20))
		}
	}
	b.StopTimer()
	base := results[0]
	fmt.Printf("Cube's heap per answered cell, over the smallest answer's %d MB (bisection step %d MB):\n", base.heapMB, heapStepMB)
	for _, r := range results[1:] {
		extra := float64(r.heapMB-base.heapMB) * (1 << 20)
		perCell := extra / float64(r.shape.cells()-base.shape.cells())
		fmt.Printf("  %6d x %2d: %5.0f bytes of heap per cell; %4.0f bytes of JSON per cell\n",
			r.shape.rows, r.shape.columns, perCell, float64(r.bytes)/float64(r.shape.cells()))
		b.ReportMetric(perCell, fmt.Sprintf("heapB/cell@%dx%d", r.shape.rows, r.shape.columns))
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
