package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"productanalytics/shared/app"
	"productanalytics/shared/cube"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/warmup"
)

// warmRunner is the warm-up as its Lambda function builds it, configured for
// the local stack.
func warmRunner(t testing.TB) runner {
	t.Helper()
	e := env.APIEnv()
	return app.Warmup(context.Background(), app.Options{Getenv: func(k string) string { return e[k] }, Log: apiLogs, SecretsManager: env.SecretsManager()})
}

// runner is the warm-up function's handler.
type runner func(context.Context, json.RawMessage) (warmup.Summary, error)

// Run invokes the warm-up with in, as its schedule would.
func (r runner) Run(ctx context.Context, in warmup.Input) (warmup.Summary, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return warmup.Summary{}, err
	}
	return r(ctx, b)
}

func TestWarmupDefaultQueries(t *testing.T) {
	sum, err := warmRunner(t).Run(context.Background(), warmup.Input{Projects: []int64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	// The queries as dated when the warm-up ran, even if a day ended since.
	queries := dashboards.Queries(sum.Started)
	if sum.OK != 2*len(queries) || sum.Failed != 0 {
		t.Fatalf("ok %d failed %d; want %d ok: %+v", sum.OK, sum.Failed, 2*len(queries), sum.Results)
	}
	byName := map[string]string{}
	for _, q := range queries {
		byName[q.Name] = string(q.Query)
	}
	for _, r := range sum.Results {
		if api := len(rows(t, load(t, r.Project, byName[r.Query]))); r.Rows != api || r.Rows == 0 {
			t.Errorf("project %d %s: the warm-up saw %d rows, the API %d", r.Project, r.Query, r.Rows, api)
		}
	}
}

func TestWarmupProjectWithoutData(t *testing.T) {
	sum, err := warmRunner(t).Run(context.Background(), warmup.Input{Projects: []int64{1, 3}})
	if err != nil {
		t.Fatalf("a partial failure failed the warm-up: %v", err)
	}
	for _, r := range sum.Results {
		switch {
		case r.Project == 1 && !r.OK:
			t.Errorf("project 1 %s: %s", r.Query, r.Error)
		case r.Project == 3 && (r.OK || !strings.HasPrefix(r.Error, cube.ErrDatabaseNotFound.Error())):
			t.Errorf("project 3 %s: ok %v, %q", r.Query, r.OK, r.Error)
		}
	}
	if _, err := warmRunner(t).Run(context.Background(), warmup.Input{Projects: []int64{3}}); !errors.Is(err, warmup.ErrAllFailed) {
		t.Fatalf("an all-failed warm-up returned %v", err)
	}
}

// TestWarmupMakesFirstLoadFast compares, in one run, the first load of a slow
// query nobody warmed with the first load of one the warm-up ran before.
// The cold load must wait for Cube to compute (it is polled), the warmed one
// is answered from Cube's cache at once (no poll). Their times are reported,
// and compared by BenchmarkSlowDashboardFirstLoad.
func TestWarmupMakesFirstLoadFast(t *testing.T) {
	cold, warm := slowFirstLoad(t, false), slowFirstLoad(t, true)
	t.Logf("first load of a slow query: %s cold, %s after a warm-up (%.0fx)", cold.took.Round(time.Millisecond), warm.took.Round(time.Millisecond), float64(cold.took)/float64(warm.took))
	if cold.took < slowQuery {
		t.Errorf("the cold load took %s, less than the query itself (%s)", cold.took, slowQuery)
	}
	if n := polls(t, cold); n < 1 {
		t.Errorf("the cold load was polled %d times; Cube should have answered Continue wait", n)
	}
	if n := polls(t, warm); n != 0 {
		t.Errorf("the warmed load was polled %d times; Cube should have answered from its cache", n)
	}
}

// slowFirstLoad asks the API for a slow query no one has asked before,
// warming it first when warmed is set.
func slowFirstLoad(t testing.TB, warmed bool) answer {
	t.Helper()
	q := fmt.Sprintf(`{"measures":["SlowEvents.count"],"dimensions":["SlowEvents.event"],"filters":[{"member":"SlowEvents.event","operator":"notEquals","values":["first-load-%d"]}]}`, time.Now().UnixNano())
	if warmed {
		sum, err := warmRunner(t).Run(context.Background(), warmup.Input{Projects: []int64{1}, Queries: []warmup.NamedQuery{{Name: "slow", Query: json.RawMessage(q)}}})
		if err != nil || sum.Results[0].Rows == 0 {
			t.Fatalf("warm-up: %v %+v", err, sum)
		}
	}
	a := load(t, 1, q)
	if len(rows(t, a)) == 0 || strings.Contains(string(a.body), "Continue wait") {
		t.Fatalf("slow query: %s", a)
	}
	return a
}

// BenchmarkSlowDashboardFirstLoad reports, side by side in each iteration,
// the first load of a slow query without and with a warm-up before it.
func BenchmarkSlowDashboardFirstLoad(b *testing.B) {
	var cold, warm time.Duration
	for b.Loop() {
		cold += slowFirstLoad(b, false).took
		warm += slowFirstLoad(b, true).took
	}
	n := float64(b.N)
	b.ReportMetric(float64(cold.Milliseconds())/n, "cold-ms/first-load")
	b.ReportMetric(float64(warm.Microseconds())/1000/n, "warmed-ms/first-load")
	b.ReportMetric(float64(cold)/float64(warm), "cold/warmed")
}

// TestWarmupPreAggregations asks the local Cube to build pre-aggregations,
// which its data model does not define and its tokens may not start: the
// summary says so, and the queries are warmed all the same.
func TestWarmupPreAggregations(t *testing.T) {
	sum, err := warmRunner(t).Run(context.Background(), warmup.Input{Projects: []int64{1}, PreAggregations: true,
		Queries: []warmup.NamedQuery{{Name: "count", Query: json.RawMessage(`{"measures":["TrackedEvents.count"]}`)}}})
	if err != nil || sum.OK != 1 {
		t.Fatalf("%v %+v", err, sum)
	}
	if len(sum.PreAggregations) != 1 || sum.PreAggregations[0].Status != "unavailable" || sum.PreAggregations[0].Detail == "" {
		t.Fatalf("pre-aggregations: %+v", sum.PreAggregations)
	}
	t.Logf("pre-aggregations: %s (%s)", sum.PreAggregations[0].Status, sum.PreAggregations[0].Detail)
}
