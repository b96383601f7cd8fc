package warmup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/motoserver"
	"productanalytics/internal/stack"
	"productanalytics/shared/app"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/deploy"
	"productanalytics/shared/recent"
)

// The benchmark's knobs, from the environment: WARMUP_PROJECTS (projects
// warmed), WARMUP_EVENTS (events per project), WARMUP_CUBES (Cube
// deployments), WARMUP_PROBES (projects opened with and without a warm-up).
const (
	defaultProjects = 1000
	defaultEvents   = 300
	defaultCubes    = 3
	defaultProbes   = 25
	// maxConcurrency is the template's WarmupMaxConcurrency default: the
	// most worker invocations at once.
	maxConcurrency = 20
	// checkers load the dashboards at once to check them cached.
	checkers = 8
)

// BenchmarkWarmup warms WARMUP_PROJECTS small projects over WARMUP_CUBES
// local Cubes the way the deployed warm-up does: each project is marked
// opened in the table of recently opened projects (DynamoDB, moto), the
// planner (its handler, configured from template.yaml) lists them and
// sends their batches to the FIFO queue (SQS, moto), and the worker's
// handler warms the messages as Lambda's event source hands them out (one
// message per invocation, one invocation at a time per message group, at
// most WarmupMaxConcurrency at once). A proxy in front of each Cube counts
// the warm-up's calls in flight. Then every dashboard query of every
// project is loaded through the API, to count those answered from Cube's
// cache, and a project's first dashboard opening is timed after the
// warm-up beside one of a project never warmed.
//
// Run with make bench-warmup. Its data is generated once into
// .local/bench-warmup (per version of the generator and loader) and kept.
func BenchmarkWarmup(b *testing.B) {
	projects := intEnv(b, "WARMUP_PROJECTS", defaultProjects)
	events := intEnv(b, "WARMUP_EVENTS", defaultEvents)
	cubes := intEnv(b, "WARMUP_CUBES", defaultCubes)
	probes := intEnv(b, "WARMUP_PROBES", defaultProbes)
	ctx := context.Background()

	// Named after the data's version: files an older loader wrote lack
	// tables the model reads.
	version, err := stack.DataVersion(root)
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(root, ".local", "bench-warmup", fmt.Sprintf("events-%d-%s", events, version))
	genStart := time.Now()
	if err := generate(ctx, dir, projects+probes, events); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("data: %d projects of %d events in %s (%s)\n", projects+probes, events, strings.TrimPrefix(dir, root+string(filepath.Separator)), time.Since(genStart).Round(time.Second))
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		b.Fatal(err)
	}
	cubeLog := &logcheck.Buffer{}
	s := startStack(b, dir, cubes, cubeLog)

	// Each Cube behind a proxy that counts the warm-up's calls in flight.
	vars := s.FunctionEnv("")
	deps, err := deploy.Parse(vars["CUBE_DEPLOYMENTS"])
	if err != nil || len(deps) != cubes {
		// One Cube is configured as CUBE_API_URL: a one-deployment list.
		deps = []deploy.Deployment{{Name: "default", URL: vars["CUBE_API_URL"], KeySecretID: vars["CUBE_API_KEY_SECRET_ID"]}}
	}
	counters := map[string]*counter{}
	var spec []string
	for _, d := range deps {
		c := proxy(b, d.URL)
		counters[d.Name] = c
		spec = append(spec, d.Name+"="+c.url+"="+d.KeySecretID)
	}
	delete(vars, "CUBE_API_URL")
	delete(vars, "CUBE_API_KEY_SECRET_ID")
	vars["CUBE_DEPLOYMENTS"] = strings.Join(spec, ",")

	// Batches wait in the dispatcher's hands as in the event source's,
	// hidden all along.
	q := createQueuesVisible(b, s.MotoURL, "bench-warmup", 3, 3600)
	const table = "bench-recently-opened"
	db := createTable(b, s.MotoURL, table)
	vars = stackVars(s, q, table)
	vars["CUBE_DEPLOYMENTS"] = strings.Join(spec, ",")
	for k, v := range motoEnv(s.MotoURL) {
		b.Setenv(k, v) // the SDK's own configuration, read from the process
	}
	planEnv, workEnv := functionEnv(b, "WarmupFunction", vars), functionEnv(b, "WarmworkerFunction", vars)
	fmt.Printf("the worker: WARMUP_SLOTS=%s per deployment, WARMUP_QUERY_CONCURRENCY=%s, WARMUP_BATCH_PROJECTS=%s\n",
		planEnv["WARMUP_SLOTS"], workEnv["WARMUP_QUERY_CONCURRENCY"], planEnv["WARMUP_BATCH_PROJECTS"])
	slots, _ := strconv.Atoi(planEnv["WARMUP_SLOTS"])
	perBatch, _ := strconv.Atoi(workEnv["WARMUP_QUERY_CONCURRENCY"])

	marker := recent.NewMarker(db, recent.Options{Table: table}, slog.New(slog.NewJSONHandler(os.Stderr, nil)))
	for p := int64(1); p <= int64(projects); p++ {
		if !marker.Opened(ctx, p) {
			b.Fatalf("project %d could not be marked opened", p)
		}
	}
	logs := &logcheck.Buffer{}
	planner := app.WarmupPlanner(ctx, app.Options{Getenv: func(k string) string { return planEnv[k] }, Log: logs})
	worker := app.WarmupWorker(ctx, app.Options{Getenv: func(k string) string { return workEnv[k] }, Log: logs, SecretsManager: s.SecretsManager()})

	for b.Loop() {
		start := time.Now()
		plan, err := planner(ctx, json.RawMessage(`{"projects":[]}`))
		if err != nil || plan.Projects != projects {
			b.Fatalf("plan %+v: %v\n%s", plan, err, lastLines(logs.String()))
		}
		planned := time.Since(start)
		failed := dispatch(b, q, worker, plan.Batches)
		took := time.Since(start)
		if failed > 0 {
			b.Errorf("%d batches failed:\n%s", failed, lastLines(logs.String()))
		}
		ok, qfailed := summaries(logs.String())

		fmt.Printf("\nwarm-up of %d projects over %d Cubes (%d batches of up to %s projects; per Cube at most %d batches at once, %d queries each):\n",
			projects, len(deps), plan.Batches, planEnv["WARMUP_BATCH_PROJECTS"], slots, perBatch)
		fmt.Printf("  planned in %s (the recent projects listed from the table and sent to the queue)\n", planned.Round(time.Millisecond))
		peak := int64(0)
		for _, d := range deps {
			c := counters[d.Name]
			n := plan.Deployments[d.Name]
			fmt.Printf("  %-8s %4d projects  %5d calls  at most %2d in flight (bound %d)  %5.0f projects/min\n",
				d.Name, n, c.total.Load(), c.peak.Load(), slots*perBatch, float64(n)/took.Minutes())
			peak = max(peak, c.peak.Load())
			if c.peak.Load() > int64(slots*perBatch) {
				b.Errorf("%s had %d warm-up calls in flight, above its bound of %d", d.Name, c.peak.Load(), slots*perBatch)
			}
		}
		fmt.Printf("  total %s for %d queries warmed (%d failed): within the 15-minute schedule: %v\n", took.Round(time.Second), ok, qfailed, took < 15*time.Minute)

		checkStart := time.Now()
		cached, warmed, total, misses := checkCached(b, s.APIURL, projects, start, checkStart)
		fmt.Printf("  then %d of %d dashboard queries answered from Cube's cache, %d of them with the warm-up's own answer (checked in %s)\n",
			cached, total, warmed, time.Since(checkStart).Round(time.Second))
		if len(misses) > 0 {
			fmt.Printf("  not the warm-up's answer: %s\n", strings.Join(misses[:min(len(misses), 10)], "; "))
		}
		fmt.Printf("  Cube's memory: %s\n", memoryLines(cubeLog.String()))

		warmMs, coldMs := openings(b, s.APIURL, projects, probes)
		fmt.Printf("  a first dashboard opening (%d panels at once), median of %d: %.0f ms after the warm-up, %.0f ms without it (%.1fx)\n",
			len(dashboards.Queries(time.Now())), probes, warmMs, coldMs, coldMs/warmMs)

		b.ReportMetric(took.Seconds(), "s/warm-up")
		b.ReportMetric(float64(projects)/float64(len(deps))/took.Minutes(), "projects/min/Cube")
		b.ReportMetric(float64(peak), "max-in-flight/Cube")
		b.ReportMetric(100*float64(cached)/float64(total), "%cached")
		b.ReportMetric(100*float64(warmed)/float64(total), "%warm-up's-answer")
		b.ReportMetric(warmMs, "warmed-open-ms")
		b.ReportMetric(coldMs, "cold-open-ms")
	}
}

// dispatch does what Lambda's event source does with a FIFO queue: it
// hands each message to the worker, one invocation per message, one at a
// time per message group, at most maxConcurrency at once; it deletes the
// messages warmed and lets the failed ones go back. It returns when want
// messages have been handed out once, with the number of failed ones.
func dispatch(b *testing.B, q queues, worker func(context.Context, events.SQSEvent) (events.SQSEventResponse, error), want int) int {
	var (
		mu      sync.Mutex
		busy    = map[string]bool{}                // groups with an invocation running
		waiting = map[string][]events.SQSMessage{} // received, not yet handed out
		done    = make(chan bool, want)
		slots   = make(chan struct{}, maxConcurrency)
		handed  = 0
		failed  = 0
		wg      sync.WaitGroup
	)
	var next func(group string)
	next = func(group string) {
		// mu held: start the group's next message, if any and if free.
		if busy[group] || len(waiting[group]) == 0 {
			return
		}
		rec := waiting[group][0]
		waiting[group] = waiting[group][1:]
		busy[group] = true
		handed++
		wg.Go(func() {
			slots <- struct{}{}
			resp, err := worker(context.Background(), events.SQSEvent{Records: []events.SQSMessage{rec}})
			<-slots
			if err != nil {
				b.Error(err)
			}
			q.settle(b, []events.SQSMessage{rec}, resp)
			mu.Lock()
			busy[group] = false
			next(group)
			mu.Unlock()
			done <- len(resp.BatchItemFailures) == 0
		})
	}
	deadline := time.Now().Add(30 * time.Minute)
	for finished := 0; finished < want; {
		select {
		case ok := <-done:
			finished++
			if !ok {
				failed++
			}
			continue
		default:
		}
		mu.Lock()
		pending := handed < want
		mu.Unlock()
		if time.Now().After(deadline) {
			b.Fatalf("the warm-up did not finish within 30 minutes")
		}
		if !pending {
			ok := <-done
			finished++
			if !ok {
				failed++
			}
			continue
		}
		// Long polling: the receive waits up to a second for a message.
		for _, r := range q.receiveWait(b, 10, 1) {
			mu.Lock()
			g := r.Attributes["MessageGroupId"]
			waiting[g] = append(waiting[g], r)
			next(g)
			mu.Unlock()
		}
	}
	wg.Wait()
	return failed
}

// summaries adds up the ok and failed queries of the worker's summaries.
func summaries(logs string) (ok, failed int) {
	for l := range strings.SplitSeq(logs, "\n") {
		var m struct {
			Msg    string `json:"msg"`
			OK     int    `json:"ok"`
			Failed int    `json:"failed"`
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "warm-up" {
			ok += m.OK
			failed += m.Failed
		}
	}
	return ok, failed
}

// checkCached loads every dashboard query of projects 1..n through the API
// and counts those answered from Cube's cache (every result computed
// before the load was sent), and among them those whose every result was
// computed between from and to: the warm-up's own answer.
func checkCached(b *testing.B, apiURL string, n int, from, to time.Time) (cached, warmed, total int, misses []string) {
	type job struct {
		project int64
		name    string
		query   []byte
	}
	jobs := make(chan job)
	var hits, own, all atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range checkers {
		wg.Go(func() {
			for j := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				l, err := load(ctx, apiURL, j.project, j.query)
				cancel()
				all.Add(1)
				if err != nil {
					b.Error(err)
					continue
				}
				if l.cachedBefore(l.sent) {
					hits.Add(1)
				}
				if l.cachedBefore(to) && !l.refresh[0].Before(from) {
					own.Add(1)
					continue
				}
				mu.Lock()
				misses = append(misses, fmt.Sprintf("project %d %s: %d computed at %v, asked at %s", j.project, j.name, l.status, l.refresh, l.sent.UTC().Format("15:04:05.000")))
				mu.Unlock()
			}
		})
	}
	queries := dashboards.Queries(time.Now())
	for p := int64(1); p <= int64(n); p++ {
		for _, q := range queries {
			jobs <- job{p, q.Name, q.Query}
		}
	}
	close(jobs)
	wg.Wait()
	return int(hits.Load()), int(own.Load()), int(all.Load()), misses
}

// memoryLines sums up Cube's memory lines (cube/README.md, Cube's
// memory), which carry no deployment's name: the most any one Cube held in
// its result cache, and had evicted from it.
func memoryLines(log string) string {
	var cacheMB, evicted, answers, tenants float64
	for l := range strings.SplitSeq(log, "\n") {
		var m struct {
			Message       string  `json:"message"`
			ResultCacheMB float64 `json:"resultCacheMB"`
			Evicted       float64 `json:"evicted"`
			Answers       float64 `json:"answers"`
			Tenants       float64 `json:"tenants"`
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Message == "Cube memory" {
			cacheMB, evicted = max(cacheMB, m.ResultCacheMB), max(evicted, m.Evicted)
			answers, tenants = max(answers, m.Answers), max(tenants, m.Tenants)
		}
	}
	return fmt.Sprintf("at most %.1f MB in a Cube's result cache, %.0f answers, %.0f projects; %.0f evicted by one Cube", cacheMB, answers, tenants, evicted)
}

// openings times a first dashboard opening (every panel at once, as the
// page sends them) of probes warmed projects, spread over 1..n, beside
// probes projects above n that no warm-up touched, taken in turns; it
// returns the medians in ms.
func openings(b *testing.B, apiURL string, n, probes int) (warmMs, coldMs float64) {
	var warm, cold []float64
	for i := range probes {
		warm = append(warm, open(b, apiURL, int64(1+i*n/probes)))
		cold = append(cold, open(b, apiURL, int64(n+1+i)))
	}
	return median(warm), median(cold)
}

// open opens project's dashboard: its queries at once, timed until the last
// answer.
func open(b *testing.B, apiURL string, project int64) float64 {
	start := time.Now()
	var wg sync.WaitGroup
	for _, q := range dashboards.Queries(start) {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			l, err := load(ctx, apiURL, project, q.Query)
			if err != nil || l.status != http.StatusOK {
				b.Errorf("project %d %s: %v %d %s", project, q.Name, err, l.status, l.body)
			}
		})
	}
	wg.Wait()
	return float64(time.Since(start).Microseconds()) / 1000
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// counter is a reverse proxy in front of one Cube that counts the calls in
// flight through it.
type counter struct {
	url                   string
	inFlight, peak, total atomic.Int64
}

func proxy(b *testing.B, target string) *counter {
	u, err := url.Parse(target)
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	c.url = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.inFlight.Add(1)
		defer c.inFlight.Add(-1)
		c.total.Add(1)
		for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return c
}

// receiveWait is receive with long polling: it waits up to wait seconds
// for a message.
func (q queues) receiveWait(tb testing.TB, max, wait int32) []events.SQSMessage {
	tb.Helper()
	return q.receiveFrom(tb, q.url, max, wait)
}

// motoEnv points the process's AWS SDK at the emulator at url.
func motoEnv(url string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL_SQS": url, "AWS_ENDPOINT_URL_DYNAMODB": url, "AWS_ENDPOINT_URL_SECRETS_MANAGER": url,
		"AWS_REGION": motoserver.Region, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
	}
}

// generate writes the projects 1..n of events each that have no file in
// dir yet (the benchmark's data is kept between runs).
func generate(ctx context.Context, dir string, n, events int) error {
	var missing []string
	for p := 1; p <= n; p++ {
		if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("project_%d.duckdb", p))); err != nil {
			missing = append(missing, fmt.Sprintf("%d:%d", p, events))
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

func intEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q is not a positive whole number", name, v)
	}
	return n
}
