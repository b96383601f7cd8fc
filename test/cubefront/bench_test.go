package cubefront

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
)

// exportQuery is one of project 1's large answers straight from Cube: every
// event, a dozen columns, as an export asks; offset makes each its own
// answer.
func exportQuery(offset int) string {
	dims := []string{"eventId", "event", "docPath", "pageTitle", "pageUrl", "pageReferrer", "agentName", "osName",
		"browserLanguage", "viewportSize", "userId", "derivedTstamp"}
	for i, d := range dims {
		dims[i] = strconv.Quote("TrackedEvents." + d)
	}
	return fmt.Sprintf(`{"dimensions":[%s],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","dateRange":"from 1 year ago to now"}],"ungrouped":true,"limit":%d,"offset":%d}`,
		strings.Join(dims, ","), fairShareRows, offset)
}

const (
	fairShareEvents  = 30000
	fairShareRows    = 30000
	fairShareWorkers = 8
)

// The small query project 2 asks again and again, answered from Cube's cache.
const cachedQuery = `{"measures":["TrackedEvents.count"],"dimensions":["TrackedEvents.docPath"],"limit":20}`

// BenchmarkFairShare measures what a project's limit of requests in flight
// at Cube (CUBE_TENANT_MAX_IN_FLIGHT) buys another project: project 1 sends
// 30,000-row, 12-column exports from 8 clients straight to Cube (each client
// pauses 100 ms after a 429, as a client honouring Retry-After would pause
// longer), while project 2 asks a cached query again and again; for each
// limit, a Cube of its own. It prints project 2's median and p90 alone and
// under that load, their ratio, and what project 1 got done.
// FAIR_SHARE_LIMITS (default 0,8,4,2,1; 0: no limit) and FAIR_SHARE_WINDOW
// (default 20s) choose the runs.
//
//	go test -run '^$' -bench FairShare -benchtime 1x ./test/cubefront/
func BenchmarkFairShare(b *testing.B) {
	limits := limitsEnv(b, 0, 8, 4, 2, 1)
	window := 20 * time.Second
	if s := os.Getenv("FAIR_SHARE_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("FAIR_SHARE_WINDOW=%q: %v", s, err)
		}
		window = d
	}
	ctx := context.Background()
	dataDir := filepath.Join(b.TempDir(), "events")
	if err := stack.GenerateData(ctx, root, dataDir, os.Stderr, "-projects", fmt.Sprintf("1:%d,2:1000", fairShareEvents)); err != nil {
		b.Fatal(err)
	}
	var rows []string
	for _, limit := range limits {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			r := fairShare(b, dataDir, limit, window)
			rows = append(rows, r)
		})
	}
	fmt.Println("limit | p2 median alone | p2 median loaded | ratio | p2 p90 alone | p2 p90 loaded | ratio | p1 answers | p1 429s | Cube alive")
	for _, r := range rows {
		fmt.Println(r)
	}
}

// fairShare runs one limit's measurement and returns its table row.
func fairShare(b *testing.B, dataDir string, limit int, window time.Duration) string {
	log := &logcheck.Buffer{}
	s, err := stack.Start(context.Background(), stack.Options{
		Root: root, DataDir: dataDir, CubeLog: log,
		CubeEnv: []string{fmt.Sprintf("CUBE_TENANT_MAX_IN_FLIGHT=%d", limit)},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pid := s.CubePID()
	h1, h2 := withToken(b, 1), withToken(b, 2)
	ctx := context.Background()
	// Warm: project 2's query cached, project 1's database open.
	for _, q := range []struct {
		h    map[string]string
		path string
	}{{h2, loadPath(cachedQuery)}, {h1, loadPath(cachedQuery)}} {
		if a, err := sendTo(ctx, s.CubeURL, http.MethodGet, q.path, nil, q.h); err != nil || a.status != http.StatusOK {
			b.Fatalf("warming: %v %d %.300s", err, a.status, a.body)
		}
	}
	alone := latencies(ctx, s.CubeURL, h2, window/2)

	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var answered, refused atomic.Int64
	for w := range fairShareWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; lctx.Err() == nil; i++ {
				body := []byte(`{"query":` + exportQuery((w*7+i)%4) + `,"queryType":"multi"}`)
				a, err := sendTo(lctx, s.CubeURL, http.MethodPost, "/cubejs-api/v1/load", body, h1)
				switch {
				case err != nil:
				case a.status == http.StatusTooManyRequests:
					refused.Add(1)
					select {
					case <-lctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				case a.status == http.StatusOK:
					answered.Add(1)
				}
			}
		}()
	}
	loaded := latencies(ctx, s.CubeURL, h2, window)
	cancel()
	wg.Wait()
	up := "yes"
	if s.CubePID() != pid {
		up = "no: restarted"
	} else if _, err := sendTo(ctx, s.CubeURL, http.MethodGet, "/readyz", nil, nil); err != nil {
		up = "no: " + err.Error()
	}
	ma, ml := pct(alone, 50), pct(loaded, 50)
	pa, pl := pct(alone, 90), pct(loaded, 90)
	b.ReportMetric(float64(ml)/float64(max(ma, 1)), "median-ratio")
	return fmt.Sprintf("%s | %s | %s | ×%.1f | %s | %s | ×%.1f | %d | %d | %s",
		map[bool]string{true: "none", false: strconv.Itoa(limit)}[limit == 0],
		ma.Round(10*time.Microsecond), ml.Round(10*time.Microsecond), float64(ml)/float64(max(ma, 1)),
		pa.Round(10*time.Microsecond), pl.Round(10*time.Microsecond), float64(pl)/float64(max(pa, 1)),
		answered.Load(), refused.Load(), up)
}

// latencies asks project 2's cached query, one at a time, for d, and
// returns how long each answer took.
func latencies(ctx context.Context, base string, h map[string]string, d time.Duration) []time.Duration {
	var out []time.Duration
	end := time.Now().Add(d)
	path := loadPath(cachedQuery)
	for time.Now().Before(end) {
		start := time.Now()
		a, err := sendTo(ctx, base, http.MethodGet, path, nil, h)
		if err != nil || a.status != http.StatusOK {
			out = append(out, time.Minute) // a failure counts as the slowest answer
			continue
		}
		out = append(out, time.Since(start))
	}
	return out
}

// pct is the p-th percentile of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// BenchmarkDashboardOpening opens every dashboard panel of project 1 (30,000
// events) at once straight at Cube, its cache cold (a new date range each
// round), polling "Continue wait" as clients do, under each limit of
// FAIR_SHARE_LIMITS (default 4, the default): it prints how many panels got
// a 429 and how long the last one took. A limit that refuses part of an
// ordinary dashboard is too low.
//
//	go test -run '^$' -bench DashboardOpening -benchtime 1x ./test/cubefront/
func BenchmarkDashboardOpening(b *testing.B) {
	limits := limitsEnv(b, 4)
	dataDir := filepath.Join(b.TempDir(), "events")
	if err := stack.GenerateData(context.Background(), root, dataDir, os.Stderr, "-projects", fmt.Sprintf("1:%d,2:1000", fairShareEvents)); err != nil {
		b.Fatal(err)
	}
	fmt.Println("limit | range (days) | panels | 429s | other failures | last panel answered after")
	for _, limit := range limits {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			s, err := stack.Start(context.Background(), stack.Options{
				Root: root, DataDir: dataDir,
				CubeEnv: []string{fmt.Sprintf("CUBE_TENANT_MAX_IN_FLIGHT=%d", limit)},
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			h := withToken(b, 1)
			for _, days := range []int{7, 30, 90, 365} {
				queries := dashboards.QueriesOver(time.Now(), days)
				var wg sync.WaitGroup
				var refused, failed atomic.Int64
				start := time.Now()
				for _, q := range queries {
					wg.Add(1)
					go func() {
						defer wg.Done()
						body := []byte(`{"query":` + string(q.Query) + `,"queryType":"multi"}`)
						for {
							a, err := sendTo(context.Background(), s.CubeURL, http.MethodPost, "/cubejs-api/v1/load", body, h)
							switch {
							case err != nil:
								failed.Add(1)
							case a.status == http.StatusTooManyRequests:
								refused.Add(1)
							case a.status == http.StatusOK && strings.Contains(string(a.body), `"Continue wait"`):
								continue
							case a.status != http.StatusOK:
								failed.Add(1)
							}
							return
						}
					}()
				}
				wg.Wait()
				fmt.Printf("%d | %d | %d | %d | %d | %s\n", limit, days, len(queries), refused.Load(), failed.Load(), time.Since(start).Round(time.Millisecond))
			}
		})
	}
}

// limitsEnv is FAIR_SHARE_LIMITS (whole numbers, comma-separated), or def.
func limitsEnv(b *testing.B, def ...int) []int {
	s := os.Getenv("FAIR_SHARE_LIMITS")
	if s == "" {
		return def
	}
	var limits []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			b.Fatalf("FAIR_SHARE_LIMITS=%q: want whole numbers such as 0,4,2", s)
		}
		limits = append(limits, n)
	}
	return limits
}
