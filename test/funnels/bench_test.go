package funnels

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
)

// BenchmarkFunnelQuery times the demo funnel's load through the API on
// project 1 of FUNNEL_BENCH_DATA (a folder of DuckDB files, such as make
// bench-data's .local/bench-data/1000000-*/events; skipped without it),
// over 7, 30 and 90 days, beside the dashboards' events count over the
// same range: each a query Cube has not cached (a range ending a
// millisecond earlier each round), the median of FUNNEL_BENCH_ROUNDS (5).
func BenchmarkFunnelQuery(b *testing.B) {
	dir := os.Getenv("FUNNEL_BENCH_DATA")
	if dir == "" {
		b.Skip("FUNNEL_BENCH_DATA names no data folder")
	}
	rounds := 5
	if v := os.Getenv("FUNNEL_BENCH_ROUNDS"); v != "" {
		fmt.Sscan(v, &rounds)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	defs := b.TempDir()
	if err := os.CopyFS(defs, os.DirFS(filepath.Join(root, "cube", "demo", "funnels"))); err != nil {
		b.Fatal(err)
	}
	log := &logcheck.Buffer{}
	s, err := stack.Start(ctx, stack.Options{Root: root, DataDir: dir, CubeLog: log, CubeEnv: []string{"CUBE_FUNNELS_DIR=" + defs}})
	if err != nil {
		b.Fatalf("%v\n%s", err, logcheck.LastLines(log.String(), 10))
	}
	defer s.Close()
	const name = "install_with_docker"
	events := func(from, to time.Time) string {
		return fmt.Sprintf(`{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","dateRange":["%s","%s"]}]}`,
			from.Format("2006-01-02T15:04:05.000"), to.Format("2006-01-02T15:04:05.000"))
	}
	timed := func(query string) float64 {
		start := time.Now()
		a, err := call(ctx, apiURL(s, 1, "request/load"), token(1), seed.Body(query))
		if err != nil || a.status != 200 {
			b.Fatalf("%v %s", err, a)
		}
		return float64(time.Since(start).Microseconds()) / 1000
	}
	// The ranges end on the data's last day (bench-data's -end is fixed):
	// the funnel's date is its latest page view.
	a, err := call(ctx, apiURL(s, 1, "request/load"), token(1), seed.Body(
		`{"measures":["install_with_docker.count"],"timeDimensions":[{"dimension":"install_with_docker.date","granularity":"day"}]}`))
	var latest struct {
		Results []struct {
			Data []map[string]string `json:"data"`
		} `json:"results"`
	}
	if err != nil || json.Unmarshal(a.body, &latest) != nil || len(latest.Results) != 1 || len(latest.Results[0].Data) != 1 {
		b.Fatalf("the data's last day: %v %s", err, a)
	}
	lastDay, err := time.Parse("2006-01-02T15:04:05.000", latest.Results[0].Data[0]["install_with_docker.date.day"])
	if err != nil {
		b.Fatal(err)
	}
	last := lastDay.Add(24*time.Hour - time.Millisecond)
	timed(funnelQuery(name, last.AddDate(0, 0, -1), last)) // compiles the project's model
	b.ResetTimer()
	for b.Loop() {
		for _, days := range []int{7, 30, 90} {
			var funnel, count []float64
			for r := range rounds {
				to := last.Add(-time.Duration(r+1) * time.Millisecond)
				from := to.AddDate(0, 0, -days)
				funnel = append(funnel, timed(funnelQuery(name, from, to)))
				count = append(count, timed(events(from, to)))
			}
			slices.Sort(funnel)
			slices.Sort(count)
			fmt.Printf("%d days: the funnel %.0f ms, the events count %.0f ms (medians of %d, through the API, Cube's cache missed)\n",
				days, funnel[len(funnel)/2], count[len(count)/2], rounds)
			b.ReportMetric(funnel[len(funnel)/2], fmt.Sprintf("ms-funnel-%dd", days))
		}
	}
}
