package neighbours

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"productanalytics/internal/procstat"
	"productanalytics/internal/wait"
)

// shape is one kind of expensive request project 1 may send, at a limit
// of rows.
type shape struct {
	name string
	// query is the shape at limit rows, from offset on: a new offset is a
	// new answer, which Cube's result cache does not hold.
	query func(limit, offset int) string
	// limit is the largest the budget allows (largestAllowed).
	limit int
}

// largestExport is an export of a dozen columns, which the budget should
// still allow at some thousands of rows.
var largestExport = shape{name: "export, 12 columns", query: func(limit, offset int) string {
	return exportQuery(members(12), limit, offset)
}}

// worstShapes are the most expensive requests the budget lets project 1
// send: exports at a dozen columns, ungrouped exports of 25, twelve
// compared ranges, blends of ten, each at the largest limit allowed.
func worstShapes() []shape {
	byHour := func(rangeKey string, rng any, limit, offset int) map[string]any {
		return map[string]any{
			"measures":       []string{"TrackedEvents.uniqueUsersCount", "TrackedEvents.count"},
			"timeDimensions": []map[string]any{{"dimension": "TrackedEvents.derivedTstamp", "granularity": "hour", rangeKey: rng}},
			"limit":          limit, "offset": offset,
		}
	}
	return []shape{
		largestExport,
		{name: "ungrouped export, 25 columns", query: func(limit, offset int) string {
			return mustJSON(map[string]any{"dimensions": members(25), "ungrouped": true, "limit": limit, "offset": offset})
		}},
		{name: "12 compared 30-day ranges by hour", query: func(limit, offset int) string {
			ranges := make([]string, 12)
			for i := range ranges {
				ranges[i] = "last 30 days"
			}
			return mustJSON(byHour("compareDateRange", ranges, limit, offset))
		}},
		{name: "blend of 10 series by hour over 30 days", query: func(limit, offset int) string {
			qs := make([]map[string]any, 10)
			for i := range qs {
				qs[i] = byHour("dateRange", "last 30 days", limit, offset*10+i)
			}
			return mustJSON(qs)
		}},
	}
}

// largestByDryRun finds, by bisection with dry-runs through the API
// (which the budget refuses as it refuses loads, and which cost Cube no
// answer), the largest limit at which the API takes s, to within 1%; 0
// when it refuses every limit.
func largestByDryRun(ctx context.Context, s shape) (int, error) {
	auth := "Bearer " + callerToken
	allowed := func(limit int) (bool, error) {
		a := ask(ctx, "POST", apiPath(pusher, "dry-run"), auth, `{"query":`+s.query(limit, 0)+`}`)
		switch {
		case a.err == nil && a.status == 200:
			return true, nil
		case a.err == nil && a.status == 400:
			return false, nil
		}
		return false, fmt.Errorf("dry-run of %s at limit %d: %s", s.name, limit, a)
	}
	lo, hi := 0, exportRows+1 // lo is allowed (0: none yet), hi is refused
	if ok, err := allowed(exportRows); err != nil || ok {
		return exportRows, err
	}
	for hi-lo > max(1, hi/100) {
		mid := (lo + hi) / 2
		ok, err := allowed(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// largestAllowed is largestByDryRun confirmed by a load, lowered while
// the load is refused. A load the budget allows that is not answered (a
// 5xx, Cube down) is a finding, not the end of the benchmark: it is
// returned in failures, Cube is started again if it went down, and the
// limit lowered, so that the phases still measure the largest load Cube
// answers.
func largestAllowed(ctx context.Context, tb testing.TB, s shape) (limit int, a answer, failures []string, err error) {
	lo, err := largestByDryRun(ctx, s)
	if err != nil {
		return 0, answer{}, nil, err
	}
	for limit := lo; limit >= 1; limit = limit * 3 / 4 {
		a := apiLoad(ctx, pusher, s.query(limit, 0))
		switch {
		case a.err == nil && a.status == 200:
			return limit, a, failures, nil
		case a.err == nil && a.status == 400:
			continue
		}
		// A Cube out of heap exits seconds after its last answer.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		wait.For(wctx, "Cube to exit", func() bool { return cubeUp(wctx, 0) != nil })
		cancel()
		down := cubeUp(ctx, 0)
		f := fmt.Sprintf("%s at limit %d, allowed, got %s", s.name, limit, a)
		if down != nil {
			f += fmt.Sprintf("; Cube went down: %v", down)
			restartCube(tb)
		}
		failures = append(failures, f)
	}
	return 0, answer{}, failures, fmt.Errorf("%s: refused at every limit", s.name)
}

// tallies counts project 1's answers by path and status.
type tallies struct {
	mu    sync.Mutex
	count map[string]map[string]int
	bytes map[string]int64
}

func (t *tallies) add(path string, a answer) {
	status := "no answer"
	if a.err == nil {
		status = strconv.Itoa(a.status)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count == nil {
		t.count, t.bytes = map[string]map[string]int{}, map[string]int64{}
	}
	if t.count[path] == nil {
		t.count[path] = map[string]int{}
	}
	t.count[path][status]++
	if a.err == nil && a.status == 200 {
		t.bytes[path] += int64(a.size)
	}
}

// phase is what one phase of the benchmark measured.
type phase struct {
	neighbour, ready []sample
	maxRSS           int64
	// down is why Cube was not up at the phase's end, if it was not.
	down error
}

// measure watches project 2 and Cube's /readyz from now for d, while
// load (when set) runs with a context that ends with the phase.
func measure(ctx context.Context, neighbourW, readyW *watcher, d time.Duration, load func(context.Context)) phase {
	var p phase
	pid := env.CubePID()
	from := time.Now()
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	if load != nil {
		wg.Go(func() { load(lctx) })
	}
	// Cube's resident memory, each second.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for lctx.Err() == nil {
		if st, err := procstat.Of(pid); err == nil {
			p.maxRSS = max(p.maxRSS, st.RSS)
		}
		select {
		case <-lctx.Done():
		case <-tick.C:
		}
	}
	to := time.Now()
	wg.Wait()
	p.neighbour, p.ready = neighbourW.between(from, to), readyW.between(from, to)
	p.down = cubeUp(ctx, pid)
	return p
}

// durationEnv reads a duration from the environment.
func durationEnv(b *testing.B, name string, def time.Duration) time.Duration {
	raw := os.Getenv(name)
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: want a duration such as 60s", name, raw)
	}
	return d
}

// intEnv reads a positive whole number from the environment.
func intEnv(b *testing.B, name string, def int) int {
	raw := os.Getenv(name)
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a whole number, at least 1", name, raw)
	}
	return n
}

// BenchmarkNeighbours measures project 2's cached dashboard answers
// through the API alone for NEIGHBOURS_DURATION (default 60 s), then
// beside project 1 at its worst allowed behaviour for as long:
// NEIGHBOURS_WORKERS (default 8) workers, half through the API and half
// straight to Cube with include_token's token, each sending, without
// pause, the most expensive shapes the budget allows at their largest
// allowed limit, each one a new answer (a new offset), waiting only as a
// 429's Retry-After asks. It prints project 2's median and p90 in both
// phases side by side with their ratio, Cube's /readyz latency and
// resident memory in both, project 1's answers by status, and whether
// project 2's median stays within 3× of alone. It never fails on speed.
//
// Run with make bench-neighbours.
func BenchmarkNeighbours(b *testing.B) {
	d := durationEnv(b, "NEIGHBOURS_DURATION", time.Minute)
	workers := intEnv(b, "NEIGHBOURS_WORKERS", 8)
	ctx := context.Background()
	neighbourW, err := watchNeighbour(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer neighbourW.stop()
	readyW := watchReady(ctx)
	defer readyW.stop()

	shapes := worstShapes()
	fmt.Println("project 1's worst allowed requests (the largest limit the budget takes, found by dry-runs):")
	var crashes []string
	for i := range shapes {
		limit, a, c, err := largestAllowed(ctx, b, shapes[i])
		for _, c := range c {
			fmt.Println("  allowed but not answered:", c)
		}
		crashes = append(crashes, c...)
		if err != nil {
			b.Fatal(err)
		}
		shapes[i].limit = limit
		fmt.Printf("  %-42s limit %6d: %6.2f MB answered in %s\n", shapes[i].name, limit, float64(a.size)/(1<<20), a.took.Round(time.Millisecond))
	}

	for b.Loop() {
		alone := measure(ctx, neighbourW, readyW, d, nil)
		var t tallies
		var offsets atomic.Int64
		beside := measure(ctx, neighbourW, readyW, d, func(ctx context.Context) {
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() { worker(ctx, w, shapes, &offsets, &t) })
			}
			wg.Wait()
		})
		ratio := report(d, workers, alone, beside, &t, len(crashes))
		b.ReportMetric(ratio, "median-ratio")
	}
}

// worker sends project 1's worst shapes one after the other until ctx
// ends: even workers through the API, odd ones straight to Cube.
func worker(ctx context.Context, w int, shapes []shape, offsets *atomic.Int64, t *tallies) {
	path := "through the API"
	if w%2 == 1 {
		path = "straight to Cube"
	}
	for i := w; ctx.Err() == nil; i++ {
		s := shapes[i%len(shapes)]
		// Offsets from 1, so that no answer is one the probe left cached.
		q := s.query(s.limit, int(offsets.Add(1)))
		var a answer
		if w%2 == 0 {
			a = apiLoad(ctx, pusher, q)
		} else {
			token, err := tokens.get(ctx)
			if err != nil {
				a = answer{err: err}
			} else {
				a = cubeLoad(ctx, token, q)
			}
		}
		if ctx.Err() != nil {
			return // cut by the phase's end: not an answer
		}
		t.add(path, a)
		if a.err == nil && a.status == 429 {
			// As a client does: back after the time the answer names.
			s, _ := strconv.Atoi(a.retryAfter)
			pause := time.NewTimer(time.Duration(max(s, 1)) * time.Second)
			select {
			case <-ctx.Done():
			case <-pause.C:
			}
			pause.Stop()
		}
	}
}

// report prints the two phases side by side and returns the ratio of
// project 2's medians.
func report(d time.Duration, workers int, alone, beside phase, t *tallies, crashes int) float64 {
	a50, a90, amax := latencies(alone.neighbour)
	b50, b90, bmax := latencies(beside.neighbour)
	r50, r90, rmax := latencies(alone.ready)
	s50, s90, smax := latencies(beside.ready)
	ratio := func(x, y time.Duration) string {
		if x <= 0 {
			return "-"
		}
		return fmt.Sprintf("×%.2f", float64(y)/float64(x))
	}
	notOK := func(ss []sample) int {
		n := 0
		for _, s := range ss {
			if !s.ok {
				n++
			}
		}
		return n
	}
	fmt.Printf("\nproject 2's cached dashboard answers through the API, %s alone, then %s beside project 1 (%d workers)\n", d, d, workers)
	fmt.Printf("  %-34s %14s %14s %8s\n", "", "alone", "beside", "ratio")
	row := func(name string, x, y time.Duration) {
		fmt.Printf("  %-34s %14s %14s %8s\n", name, ms(x), ms(y), ratio(x, y))
	}
	fmt.Printf("  %-34s %14d %14d\n", "project 2: answers", len(alone.neighbour), len(beside.neighbour))
	fmt.Printf("  %-34s %14d %14d\n", "project 2: answers not 200", notOK(alone.neighbour), notOK(beside.neighbour))
	row("project 2: median", a50, b50)
	row("project 2: p90", a90, b90)
	row("project 2: max", amax, bmax)
	row("Cube /readyz: median", r50, s50)
	row("Cube /readyz: p90", r90, s90)
	row("Cube /readyz: max", rmax, smax)
	fmt.Printf("  %-34s %14d %14d\n", "Cube /readyz: not 200", notOK(alone.ready), notOK(beside.ready))
	fmt.Printf("  %-34s %11.0f MB %11.0f MB\n", "Cube RSS: max", float64(alone.maxRSS)/(1<<20), float64(beside.maxRSS)/(1<<20))
	for _, p := range []struct {
		name string
		phase
	}{{"alone", alone}, {"beside project 1", beside}} {
		if p.down != nil {
			fmt.Printf("  Cube did not stay up %s: %v; its log ends:\n%s\n", p.name, p.down, cubeTail())
		}
	}
	t.mu.Lock()
	for _, path := range slices.Sorted(maps.Keys(t.count)) {
		fmt.Printf("  project 1 %s: %s (%.0f MB answered)\n", path, tally(t.count[path]), float64(t.bytes[path])/(1<<20))
	}
	t.mu.Unlock()
	r := 0.0
	if a50 > 0 {
		r = float64(b50) / float64(a50)
	}
	verdict := "holds"
	if r > 3 || notOK(beside.neighbour) > 0 || beside.down != nil {
		verdict = "does NOT hold"
	}
	if crashes > 0 {
		verdict = fmt.Sprintf("does NOT hold (%d allowed requests were not answered while finding the largest)", crashes)
	}
	fmt.Printf("acceptance: project 2's median beside project 1 is %s of alone (want within ×3, every answer 200, Cube up): %s\n\n",
		ratio(a50, b50), verdict)
	return r
}
