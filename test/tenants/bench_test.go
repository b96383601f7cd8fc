package tenants

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/shared/cube"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/warmup"
)

// The benchmark's knobs, from the environment: TENANTS (the numbers of
// active projects measured, ascending), TENANT_EVENTS (events per project),
// TENANT_PROBES (new projects timed at each step), TENANT_WARM_GAP (how long
// after a warm-up its projects are viewed: longer than Cube's default
// ten-second refresh key).
const (
	defaultSteps   = "10,100,500,1000"
	defaultEvents  = 200
	defaultProbes  = 25
	defaultWarmGap = 15 * time.Second
	inFlight       = 4 // first queries at once, as GitLab's warm-up sends them
)

// BenchmarkTenants measures what each active project costs one Cube, with
// Cube's own defaults, over TENANTS projects that each hold a little demo
// data: Cube's RSS once every project has had its first query (against a
// baseline of one project), at each step and over two more passes over all
// of them (the plateau); how many times Cube compiled its data model; the
// first query of a project Cube has not seen beside a second query of the
// same project (both miss Cube's result cache, so that the difference is
// the project's own setup: model, orchestrator, database); and a project's
// first view of a dashboard panel TENANT_WARM_GAP after a warm-up of its
// dashboards, and whether the warm-up's answer served it.
//
// Run with make bench-tenants. Its data is generated once into
// .local/bench-tenants and kept.
func BenchmarkTenants(b *testing.B) {
	steps := intsEnv(b, "TENANTS", defaultSteps)
	events := intEnv(b, "TENANT_EVENTS", defaultEvents)
	probes := intEnv(b, "TENANT_PROBES", defaultProbes)
	gap := defaultWarmGap
	if v := os.Getenv("TENANT_WARM_GAP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("TENANT_WARM_GAP: %v", err)
		}
		gap = d
	}
	maxN := steps[len(steps)-1]
	// Projects 1..maxN become active step by step; the probes are new ones
	// above them, two sets per step (timed, and warmed).
	total := maxN + 2*probes*len(steps)

	ctx := context.Background()
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, ".local", "bench-tenants", fmt.Sprintf("events-%d", events))
	genStart := time.Now()
	if err := generate(ctx, dir, sameEvents(total, events)); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("data: %d projects of %d events in %s (%s)\n", total, events, strings.TrimPrefix(dir, root+string(filepath.Separator)), time.Since(genStart).Round(time.Second))

	log := &cubeLog{}
	env, err := stack.Start(ctx, stack.Options{Root: root, DataDir: dir, CubeLog: log})
	if err != nil {
		b.Fatalf("%v\n%s", err, logcheck.LastLines(log.String(), 20))
	}
	defer env.Close()
	defer func() {
		if b.Failed() {
			fmt.Printf("Cube's log ends:\n%s\n", logcheck.LastLines(log.String(), 20))
		}
	}()
	c := newClient(env.CubeURL)
	rss := cubeRSS(b, env)
	now := time.Now()
	panel := dashboards.Queries(now)[1].Query // events over time, by day
	nextProbe := int64(maxN + 1)

	b.ResetTimer()
	for b.Loop() {
		started := rss()
		if _, err := load(ctx, c, 1, string(panel)); err != nil {
			b.Fatal(err)
		}
		base := rss()
		fmt.Printf("Cube RSS: %.0f MB at start, %.0f MB with one project (the baseline)\n", started, base)
		rows := []stepRow{}
		active := 1
		for _, n := range steps {
			activate(b, c, active+1, n, panel)
			active = n
			row := stepRow{projects: n, rss: rss(), compilations: log.Compilations()}
			row.newMs, row.knownMs = timeNewAndKnown(b, c, &nextProbe, probes)
			row.warmMs, row.warmHits = timeWarmed(b, c, &nextProbe, probes, gap)
			rows = append(rows, row)
			fmt.Printf("  %d projects: %.0f MB\n", n, row.rss)
		}
		var passes []float64
		for pass := range 2 {
			q := dashboards.Queries(now)[4+pass].Query // total events, then total users
			activate(b, c, 1, maxN, q)
			passes = append(passes, rss())
		}
		// What a project's whole dashboards cost once answered: their
		// answers, cached, beside the one or two of the passes.
		before := rss()
		n := min(maxN, dashboardProjects)
		warm(b, c, 1, int64(n))
		dash := (rss() - before) / float64(n)
		printTable(os.Stdout, base, rows, passes, log.Compilations())
		fmt.Printf("dashboards: all %d panels answered for %d projects: %+.3f MB/project\n", len(dashboards.Queries(now)), n, dash)
		last := rows[len(rows)-1]
		b.ReportMetric((last.rss-base)/float64(last.projects-1), "MB/project")
		b.ReportMetric(medianDiff(last.newMs, last.knownMs), "ms-new-minus-known")
		b.ReportMetric(float64(log.Compilations()), "compilations")
	}
}

// dashboardProjects is how many projects get their whole dashboards
// answered at the end.
const dashboardProjects = 200

// warm runs the dashboards' queries for projects from..to as the warm-up
// function does.
func warm(b *testing.B, c *cube.Client, from, to int64) warmup.Summary {
	b.Helper()
	projects := make([]int64, 0, to-from+1)
	for p := from; p <= to; p++ {
		projects = append(projects, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	runner := warmup.NewRunner(c, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	sum, err := runner.Run(ctx, warmup.Input{Projects: projects, Concurrency: inFlight, QueryTimeout: warmup.Duration(5 * time.Minute)})
	if err != nil || sum.Failed > 0 {
		b.Fatalf("warm-up: %v (%d of %d failed)", err, sum.Failed, sum.OK+sum.Failed)
	}
	return sum
}

// stepRow is one step's figures.
type stepRow struct {
	projects, compilations int
	rss                    float64
	newMs, knownMs, warmMs []float64
	warmHits               int
}

// activate sends query for projects from..to, inFlight at once.
func activate(b *testing.B, c *cube.Client, from, to int, query []byte) {
	b.Helper()
	next := make(chan int64)
	errs := make(chan error, inFlight)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for p := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				_, err := load(ctx, c, p, string(query))
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for p := from; p <= to; p++ {
		select {
		case next <- int64(p):
		case err := <-errs:
			close(next)
			wg.Wait()
			b.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// timeNewAndKnown times, one query at a time, the first query of each of
// probes new projects and then a second one of the same project. Both miss
// Cube's result cache (their filter values are new), so that the difference
// is what a project Cube has not seen costs.
func timeNewAndKnown(b *testing.B, c *cube.Client, next *int64, probes int) (newMs, knownMs []float64) {
	b.Helper()
	for range probes {
		p := *next
		*next++
		newMs = append(newMs, timed(b, c, p, uncached(p, "first")))
		knownMs = append(knownMs, timed(b, c, p, uncached(p, "second")))
	}
	return newMs, knownMs
}

// timeWarmed warms probes new projects' dashboards as the warm-up function
// does, waits gap, and times each project's first view of a panel the
// warm-up ran. hits counts the views answered from the warm-up's result.
func timeWarmed(b *testing.B, c *cube.Client, next *int64, probes int, gap time.Duration) (ms []float64, hits int) {
	b.Helper()
	first := *next
	*next += int64(probes)
	sum := warm(b, c, first, *next-1)
	warmed := time.Now()
	time.Sleep(gap) // the time between a warm-up and its viewers, the scenario measured
	panel := string(dashboards.Queries(sum.Started)[1].Query)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for p := first; p < *next; p++ {
		start := time.Now()
		r, err := load(ctx, c, p, panel)
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, msSince(start))
		if r.LastRefreshTime.Before(warmed) {
			hits++
		}
	}
	return ms, hits
}

// uncached is a query no project has sent before: the panel's query with a
// filter value of its own.
func uncached(project int64, which string) string {
	return fmt.Sprintf(`{"measures":["TrackedEvents.count"],`+
		`"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day","dateRange":"last 7 days"}],`+
		`"filters":[{"member":"TrackedEvents.pageUrlpath","operator":"notEquals","values":["/probe-%d-%s-%d"]}],`+
		`"limit":100,"timezone":"UTC"}`, project, which, time.Now().UnixNano())
}

func timed(b *testing.B, c *cube.Client, project int64, query string) float64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := load(ctx, c, project, query); err != nil {
		b.Fatal(err)
	}
	return msSince(start)
}

func printTable(w io.Writer, base float64, rows []stepRow, passes []float64, compilations int) {
	fmt.Fprintf(w, "\nCube RSS baseline with one project: %.0f MB\n", base)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "projects\tRSS MB\tMB/project\tmarginal MB/project\tcompilations\tnew ms\tknown ms\tnew-known ms\twarmed view ms\tfrom warm-up\t")
	prevN, prevRSS := 1, base
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%.0f\t%.3f\t%.3f\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d/%d\t\n",
			r.projects, r.rss, (r.rss-base)/float64(r.projects-1), (r.rss-prevRSS)/float64(r.projects-prevN),
			r.compilations, median(r.newMs), median(r.knownMs), medianDiff(r.newMs, r.knownMs),
			median(r.warmMs), r.warmHits, len(r.warmMs))
		prevN, prevRSS = r.projects, r.rss
	}
	tw.Flush()
	last := rows[len(rows)-1]
	fmt.Fprintf(w, "plateau: RSS after passes over all %d projects: %.0f MB (first), ", last.projects, last.rss)
	for i, p := range passes {
		fmt.Fprintf(w, "%.0f MB (pass %d) ", p, i+2)
	}
	fmt.Fprintf(w, "\ncompilations of the data model in all: %d\n", compilations)
	fmt.Fprintln(w, "new, known, warmed: medians; new-known: median of each new project's first query minus its second,")
	fmt.Fprintln(w, "sent right after (both miss Cube's result cache); warmed: a dashboard panel viewed after a warm-up")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// medianDiff is the median of a[i]-b[i]: pairs timed one after the other
// share the machine's load of the moment, which the difference cancels.
func medianDiff(a, b []float64) float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return median(d)
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

func intEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s must be a positive integer, got %q", name, v)
	}
	return n
}

func intsEnv(b *testing.B, name, def string) []int {
	v := os.Getenv(name)
	if v == "" {
		v = def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 || len(out) > 0 && n <= out[len(out)-1] {
			b.Fatalf("%s must list ascending numbers of projects above 1, got %q", name, v)
		}
		out = append(out, n)
	}
	return out
}
