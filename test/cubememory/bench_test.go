package cubememory

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/wait"
)

// The soak's knobs, from the environment: CUBEMEMORY_DURATION (how long
// large answers are asked for) and CUBEMEMORY_WORKERS (how many at once,
// within the requests one project may have in flight at Cube).
const (
	defaultSoakDuration = 10 * time.Minute
	defaultSoakWorkers  = 2
)

// BenchmarkLargeAnswersHeap asks Cube for distinct large allowed answers
// (project 1's twelve-column exports of 12,000 rows, every offset a new
// answer) for CUBEMEMORY_DURATION, with project 2's dashboard asked for
// beside them, and prints Cube's memory line every 30 s as Cube logs it:
// its V8 heap in use and at its peak since the previous line, the heap's
// limit, RSS and the answers it keeps. It fails if Cube stops or an answer
// fails, and reports the highest heap and RSS seen.
//
//	go test -run '^$' -bench LargeAnswersHeap -benchtime 1x -timeout 30m ./test/cubememory/
func BenchmarkLargeAnswersHeap(b *testing.B) {
	duration := defaultSoakDuration
	if v := os.Getenv("CUBEMEMORY_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("CUBEMEMORY_DURATION: %v", err)
		}
		duration = d
	}
	workers := defaultSoakWorkers
	if v := os.Getenv("CUBEMEMORY_WORKERS"); v != "" {
		if _, err := fmt.Sscan(v, &workers); err != nil || workers < 1 {
			b.Fatalf("CUBEMEMORY_WORKERS: want a positive number, got %q", v)
		}
	}
	s, log := env(b)
	c := newClient(s.CubeURL)
	pid := s.CubePID()
	rss := sampleRSS(pid)
	ctx, cancel := context.WithTimeout(context.Background(), duration+10*time.Minute)
	defer cancel()

	b.ResetTimer()
	start := time.Now()
	end := start.Add(duration)
	var (
		next, loads, dashboards atomic.Int64
		failed                  atomic.Pointer[error]
		wg                      sync.WaitGroup
	)
	fail := func(err error) { failed.CompareAndSwap(nil, &err) }
	for range workers {
		wg.Go(func() {
			for time.Now().Before(end) && failed.Load() == nil {
				offset := int(next.Add(1)) % (exporterSize - exportRows)
				a, err := load(ctx, c, exporter, exportQuery(exportRows, offset))
				if err != nil {
					fail(err)
					return
				}
				if len(a.Data) != exportRows {
					fail(fmt.Errorf("export at offset %d: %d rows, want %d", offset, len(a.Data), exportRows))
					return
				}
				loads.Add(1)
			}
		})
	}
	wg.Go(func() {
		// A viewer's pace: a panel a second.
		pace := time.NewTicker(time.Second)
		defer pace.Stop()
		for i := 0; time.Now().Before(end) && failed.Load() == nil; i++ {
			if _, err := load(ctx, c, bystander, dashboardQueries[i%len(dashboardQueries)]); err != nil {
				fail(err)
				return
			}
			dashboards.Add(1)
			<-pace.C
		}
	})

	// Cube's memory lines, printed as they come.
	printed := len(lines(log, "Cube memory"))
	var peakHeap, limit float64
	report := func() {
		all := lines(log, "Cube memory")
		for _, l := range all[printed:] {
			num := func(k string) float64 { f, _ := l[k].(float64); return f }
			peakHeap, limit = max(peakHeap, num("heapPeakMB")), num("heapLimitMB")
			fmt.Printf("%4.0fs  heap %6.1f MB used, %6.1f MB peak, of %4.0f MB  RSS %6.1f MB  kept %5.1f MB (%v cached, %v for a re-send), refused %v, evicted %v  exports %d\n",
				time.Since(start).Seconds(), num("heapUsedMB"), num("heapPeakMB"), num("heapLimitMB"), num("rssMB"),
				num("resultCacheMB"), l["answers"], l["waiting"], l["refused"], l["evicted"], loads.Load())
		}
		printed = len(all)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-tick.C:
		}
		report()
	}
	b.StopTimer()
	maxRSS, rssErr := rss.Stop()
	if err := failed.Load(); err != nil {
		// The stack logs an exit once it has reaped Cube.
		exitCtx, exitCancel := context.WithTimeout(context.Background(), 10*time.Second)
		wait.For(exitCtx, "the stack's line of Cube's exit", func() bool { return cubeExits() != "" })
		exitCancel()
		b.Fatalf("%v\nCube's exits: %s\nCube's log: %s", *err, cubeExits(), logcheck.LastLines(log.String(), 20))
	}
	if n := s.CubeRestarts(); n > 0 {
		b.Fatalf("Cube exited %d times: %s", n, cubeExits())
	}
	if rssErr != nil {
		b.Fatalf("Cube (pid %d) is gone: %v", pid, rssErr)
	}
	if err := ready(s.CubeURL); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("%s: %d exports of %d rows and %d dashboard answers; Cube's heap at most %.1f MB of %.0f MB, RSS at most %.0f MB\n",
		time.Since(start).Round(time.Second), loads.Load(), exportRows, dashboards.Load(), peakHeap, limit, maxRSS)
	b.ReportMetric(peakHeap, "heap-peak-MB")
	b.ReportMetric(maxRSS, "rss-max-MB")
	b.ReportMetric(float64(loads.Load()), "exports")
}
