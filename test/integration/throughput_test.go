package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
)

// BenchmarkOneCube is what one Cube (the local one, over DuckDB) serves
// through the API to callers at once, the figures the template's limits
// are chosen from. "cached": the dashboards' queries of project 1 answered
// from Cube's cache, as after a warm-up; "computing": each query new to
// Cube (a filter value of its own), so that DuckDB computes each one.
// The callers take turns between projects 1 and 2, each of which has its
// share of Cube (cube/front.js) and of the API (MAX_IN_FLIGHT_PER_PROJECT):
// past them a caller is refused with 429, which is counted, not failed.
// Reported: answers per second, the share refused, and the median and
// 99th percentile latency of the answers, at each number of callers.
func BenchmarkOneCube(b *testing.B) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	auth := "Bearer " + stack.Token(time.Hour, 1, 2)
	// errRefused is a 429: the caller's project is over its share.
	errRefused := errors.New("refused: over the project's share")
	post := func(project int, query string) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", env.APIURL+"/api/v4/projects/"+strconv.Itoa(project)+"/product_analytics/request/load", strings.NewReader(`{"query":`+query+`}`))
		req.Header.Set("Authorization", auth)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			return 0, errRefused
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"results"`) {
			return 0, fmt.Errorf("%d %s", resp.StatusCode, truncate(string(body), 200))
		}
		return time.Since(start), nil
	}
	var cached []string
	for _, q := range dashboards.Queries(time.Now()) {
		cached = append(cached, string(q.Query))
		for _, project := range []int{1, 2} {
			if _, err := post(project, string(q.Query)); err != nil {
				b.Fatal(err)
			}
		}
	}
	computing := func(i int) string {
		return fmt.Sprintf(`{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.pageUrlpath","operator":"notEquals","values":["/bench-%d-%d"]}]}`, time.Now().UnixNano(), i)
	}
	run := func(b *testing.B, callers int, query func(int) string) {
		jobs := make(chan int)
		var mu sync.Mutex
		var took []time.Duration
		var failed error
		refused := 0
		var wg sync.WaitGroup
		start := time.Now()
		for range callers {
			wg.Go(func() {
				for i := range jobs {
					d, err := post(1+i%2, query(i))
					mu.Lock()
					switch {
					case errors.Is(err, errRefused):
						refused++
					case err != nil && failed == nil:
						failed = err
					case err == nil:
						took = append(took, d)
					}
					mu.Unlock()
				}
			})
		}
		for i := 0; b.Loop(); i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		elapsed := time.Since(start)
		if failed != nil {
			b.Fatal(failed)
		}
		if len(took) == 0 {
			b.Fatalf("every one of %d requests was refused", refused)
		}
		slices.Sort(took)
		b.ReportMetric(float64(len(took))/elapsed.Seconds(), "answers/s")
		b.ReportMetric(100*float64(refused)/float64(refused+len(took)), "refused-%")
		b.ReportMetric(median(took), "median-ms")
		b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	}
	for _, callers := range []int{1, 8, 32, 64} {
		b.Run(fmt.Sprintf("cached/callers=%d", callers), func(b *testing.B) {
			run(b, callers, func(i int) string { return cached[i%len(cached)] })
		})
	}
	for _, callers := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("computing/callers=%d", callers), func(b *testing.B) {
			run(b, callers, computing)
		})
	}
}
