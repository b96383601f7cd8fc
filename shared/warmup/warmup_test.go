package warmup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"productanalytics/internal/wait"
	"productanalytics/shared/cube"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/emf"
	"productanalytics/shared/metrics"
	"productanalytics/shared/trace"
)

// fakeCube answers per project: projects in missing have no database, and
// every answer has as many rows as the project id.
type fakeCube struct {
	missing map[int64]bool
	// down projects' Cube is unreachable.
	down  map[int64]bool
	delay time.Duration
	// meta answers a project's meta (default: no cubes).
	meta func(project int64) string
	// gather holds every query until that many have been in flight at
	// once: a runner that never runs them side by side never gets an answer.
	gather   int64
	inFlight atomic.Int64
	peak     atomic.Int64
	mu       sync.Mutex
	seen     []cube.Request
	jobs     func(project int64) (*cube.Response, error)
}

func (f *fakeCube) Do(ctx context.Context, req cube.Request) (*cube.Response, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	f.mu.Lock()
	f.seen = append(f.seen, req)
	f.mu.Unlock()
	if f.gather > 0 {
		if err := wait.For(ctx, fmt.Sprintf("%d queries in flight at once", f.gather), func() bool { return f.peak.Load() >= f.gather }); err != nil {
			return nil, &cube.Error{Kind: cube.ErrTimeout, Err: err}
		}
	}
	if req.Endpoint == cube.PreAggregationJobs {
		return f.jobs(req.ProjectID)
	}
	if f.down[req.ProjectID] {
		return nil, &cube.Error{Kind: cube.ErrUnreachable, Err: errors.New("connection refused")}
	}
	if req.Endpoint == cube.Meta {
		if f.meta == nil {
			return &cube.Response{Body: []byte(`{"cubes":[]}`)}, nil
		}
		return &cube.Response{Body: []byte(f.meta(req.ProjectID))}, nil
	}
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return &cube.Response{Body: []byte(`{"error":"Continue wait"}`), ContinueWait: true, Polls: 3}, nil
	}
	if f.missing[req.ProjectID] {
		return &cube.Response{}, &cube.Error{Kind: cube.ErrDatabaseNotFound, Status: 400, Message: "Catalog Error: Schema with name gitlab_project_3 does not exist!"}
	}
	data := strings.TrimSuffix(strings.Repeat(`{"x":"1"},`, int(req.ProjectID)), ",")
	return &cube.Response{Body: []byte(`{"results":[{"data":[` + data + `]}]}`), Polls: 1}, nil
}

func runner(c Cube) *Runner { return NewRunner(c, slog.New(slog.NewJSONHandler(io.Discard, nil)), nil) }

func TestRunDefaultsToTheDashboards(t *testing.T) {
	f := &fakeCube{gather: 3}
	sum, err := runner(f).Run(context.Background(), Input{Projects: []int64{1, 2}, Concurrency: 3, QueryTimeout: Duration(wait.Deadline)})
	if err != nil {
		t.Fatal(err)
	}
	want := len(dashboards.Queries(time.Now()))
	if sum.OK != 2*want || sum.Failed != 0 || len(sum.Results) != 2*want {
		t.Fatalf("summary: ok %d failed %d results %d; want %d ok", sum.OK, sum.Failed, len(sum.Results), 2*want)
	}
	for _, r := range sum.Results {
		if !r.OK || r.Rows != int(r.Project) || r.Polls != 1 || r.Query == "" {
			t.Errorf("result %+v", r)
		}
	}
	if p := f.peak.Load(); p != 3 {
		t.Errorf("peak in flight %d; want the concurrency, 3", p)
	}
	// Every request names its own project, and asks Cube to renew the
	// answer before answering (renewing), the dashboard's query otherwise.
	queries := map[string]string{}
	for _, q := range dashboards.Queries(sum.Started) {
		queries[q.Name] = string(q.Query)
	}
	for _, req := range f.seen {
		if req.Endpoint != cube.Load || !strings.HasPrefix(req.RequestID, "warmup-") {
			t.Errorf("request %+v", req)
			continue
		}
		var sent, asked map[string]any
		name := strings.TrimPrefix(req.RequestID, fmt.Sprintf("warmup-%d-", req.ProjectID))
		if err := json.Unmarshal(req.Query, &sent); err != nil || json.Unmarshal([]byte(queries[name]), &asked) != nil {
			t.Errorf("%s: query %s, dashboard's %s", req.RequestID, req.Query, queries[name])
			continue
		}
		if sent["renewQuery"] != true {
			t.Errorf("%s: renewQuery %v, want true", req.RequestID, sent["renewQuery"])
		}
		delete(sent, "renewQuery")
		if fmt.Sprint(sent) != fmt.Sprint(asked) {
			t.Errorf("%s: sent %v, want the dashboard's %v", req.RequestID, sent, asked)
		}
	}
}

func TestRenewing(t *testing.T) {
	for _, tc := range []struct {
		name, query, want string
	}{
		{"adds it", `{"measures":["TrackedEvents.count"]}`, `{"measures":["TrackedEvents.count"],"renewQuery":true}`},
		{"overrides false", `{"renewQuery":false,"limit":5}`, `{"limit":5,"renewQuery":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := renewing(json.RawMessage(tc.query))
			if err != nil || string(got) != tc.want {
				t.Errorf("renewing(%s) = %s, %v; want %s", tc.query, got, err, tc.want)
			}
		})
	}
	if _, err := renewing(json.RawMessage(`[1]`)); err == nil {
		t.Error("renewing an array: no error")
	}
}

func TestPartialAndTotalFailure(t *testing.T) {
	f := &fakeCube{missing: map[int64]bool{3: true}}
	q := []NamedQuery{{Name: "count", Query: json.RawMessage(`{"measures":["TrackedEvents.count"]}`)}}
	sum, err := runner(f).Run(context.Background(), Input{Projects: []int64{1, 3}, Queries: q})
	if err != nil {
		t.Fatalf("a partial failure failed the invocation: %v", err)
	}
	if sum.OK != 1 || sum.Failed != 1 {
		t.Fatalf("summary %+v", sum)
	}
	for _, r := range sum.Results {
		if r.Project == 3 && (r.OK || !strings.HasPrefix(r.Error, cube.ErrDatabaseNotFound.Error())) {
			t.Errorf("project 3: %+v", r)
		}
	}
	sum, err = runner(f).Run(context.Background(), Input{Projects: []int64{3}, Queries: q})
	if !errors.Is(err, ErrAllFailed) || sum.Failed != 1 {
		t.Fatalf("total failure: %v, %+v", err, sum)
	}
}

// TestSummaryLineCarriesMetrics reads the summary's log line as CloudWatch
// would: the run's successes, failures and duration; it and the line of
// the failed query name the run's trace.
func TestSummaryLineCarriesMetrics(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	r := NewRunner(&fakeCube{missing: map[int64]bool{3: true}}, log, metrics.NewRecorder("ProductAnalytics/test", nil, log))
	q := []NamedQuery{{Name: "count", Query: json.RawMessage(`{"measures":["TrackedEvents.count"]}`)}}
	ctx := trace.NewContext(context.Background(), "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1")
	if _, err := r.Run(ctx, Input{Projects: []int64{1, 2, 3}, Queries: q}); err != nil {
		t.Fatal(err)
	}
	var summary string
	traced := 0
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"warm-up"`) {
			summary = line
		}
		if strings.Contains(line, `"trace_id":"1-5759e988-bd862e3fe1be46a994272793"`) {
			traced++
		}
	}
	if traced != 2 {
		t.Errorf("%d lines name the trace, want the failure's and the summary's:\n%s", traced, logs.String())
	}
	data, err := emf.Extract([]byte(summary))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	got := map[string]float64{}
	for _, d := range data {
		if d.Namespace != "ProductAnalytics/test" || len(d.Dimensions) != 0 {
			t.Errorf("%s in %s with dimensions %v, want ProductAnalytics/test and none", d.Name, d.Namespace, d.Dimensions)
		}
		got[d.Name] = d.Values[0]
	}
	if got[metrics.WarmupQueriesOK] != 2 || got[metrics.WarmupQueriesFailed] != 1 || got[metrics.WarmupDuration] <= 0 {
		t.Errorf("got %v, want 2 ok, 1 failed and a duration", got)
	}
}

func TestQueryTimeout(t *testing.T) {
	f := &fakeCube{delay: time.Minute}
	start := time.Now()
	sum, err := runner(f).Run(context.Background(), Input{Projects: []int64{1}, QueryTimeout: Duration(50 * time.Millisecond),
		Queries: []NamedQuery{{Name: "slow", Query: json.RawMessage(`{}`)}}})
	if !errors.Is(err, ErrAllFailed) || !strings.Contains(sum.Results[0].Error, "still computing") {
		t.Fatalf("%v %+v", err, sum)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("the query timeout was not honoured: %s", time.Since(start))
	}
}

func TestPreAggregations(t *testing.T) {
	f := &fakeCube{jobs: func(p int64) (*cube.Response, error) {
		switch p {
		case 1:
			return &cube.Response{Body: []byte(`["job-token"]`)}, nil
		case 2:
			return nil, &cube.Error{Kind: cube.ErrBadAnswer, Status: http.StatusForbidden, Message: "API scope is missing: jobs"}
		}
		return nil, &cube.Error{Kind: cube.ErrUnreachable, Err: errors.New("connection refused")}
	}}
	sum, _ := runner(f).Run(context.Background(), Input{Projects: []int64{1, 2, 3}, PreAggregations: true,
		Queries: []NamedQuery{{Name: "q", Query: json.RawMessage(`{}`)}}})
	want := map[int64]string{1: "started", 2: "unavailable", 3: "failed"}
	if len(sum.PreAggregations) != 3 {
		t.Fatalf("%+v", sum.PreAggregations)
	}
	for _, p := range sum.PreAggregations {
		if p.Status != want[p.Project] {
			t.Errorf("project %d: %s (%s); want %s", p.Project, p.Status, p.Detail, want[p.Project])
		}
	}
	for _, req := range f.seen {
		if req.Endpoint == cube.PreAggregationJobs && !strings.Contains(string(req.Body), `"appId":"gitlab_project_`) {
			t.Errorf("jobs body %s", req.Body)
		}
	}
}

func TestParseEvent(t *testing.T) {
	tests := []struct {
		name, event string
		projects    int
		concurrency int
		err         string
	}{
		{"schedule input", `{"projects":[1,2],"concurrency":2,"queryTimeout":"90s"}`, 2, 2, ""},
		{"eventbridge envelope", `{"version":"0","detail-type":"Scheduled Event","source":"aws.events","detail":{"projects":[7]}}`, 1, 0, ""},
		{"bad duration", `{"projects":[1],"queryTimeout":"soon"}`, 0, 0, "not a positive duration"},
		{"not an object", `[1]`, 0, 0, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseEvent(json.RawMessage(tt.event))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || len(in.Projects) != tt.projects || in.Concurrency != tt.concurrency {
				t.Errorf("got %+v, %v; want %d projects, concurrency %d", in, err, tt.projects, tt.concurrency)
			}
		})
	}
	for _, bad := range []Input{{}, {Projects: []int64{0}}, {Projects: []int64{1}, Queries: []NamedQuery{{Name: "x", Query: json.RawMessage(`[]`)}}}} {
		if _, err := runner(&fakeCube{}).Run(context.Background(), bad); err == nil || errors.Is(err, ErrAllFailed) {
			t.Errorf("input %+v accepted: %v", bad, err)
		}
	}
}
