// Package warmup runs the dashboards' queries for each project ahead of the
// people who open the dashboards, so that Cube answers them from its cache.
package warmup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"productanalytics/shared/cube"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/metrics"
	"productanalytics/shared/trace"
)

// Cube is what a warm-up needs of a Cube client.
type Cube interface {
	Do(ctx context.Context, req cube.Request) (*cube.Response, error)
}

// Input says what to warm. It is the JSON a schedule or a direct invocation
// sends.
type Input struct {
	// Projects to warm; required.
	Projects []int64 `json:"projects"`
	// Queries to run for each project (default: the dashboards' queries,
	// dated at run time).
	Queries []NamedQuery `json:"queries,omitempty"`
	// Concurrency is how many queries run at once (default 4).
	Concurrency int `json:"concurrency,omitempty"`
	// QueryTimeout bounds each query, Continue-wait polls included
	// (default 2m), e.g. "90s".
	QueryTimeout Duration `json:"queryTimeout,omitempty"`
	// Deadline bounds the whole run (default: the invocation's own deadline).
	Deadline Duration `json:"deadline,omitempty"`
	// PreAggregations also asks Cube to build each project's
	// pre-aggregations.
	PreAggregations bool `json:"preAggregations,omitempty"`
	// Funnels also warms each project's funnels, which its meta lists, over
	// the dashboards' date range.
	Funnels bool `json:"funnels,omitempty"`

	// logAttrs go on the run's summary line (the batch it warms).
	logAttrs []slog.Attr
}

// NamedQuery is one query to warm.
type NamedQuery struct {
	Name  string          `json:"name"`
	Query json.RawMessage `json:"query"`
}

// Duration is a time.Duration written as "90s" in JSON.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`a duration is a string such as "90s": %w`, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 90s", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// Result is the outcome of one project's query.
type Result struct {
	Project    int64   `json:"project"`
	Query      string  `json:"query"`
	OK         bool    `json:"ok"`
	Error      string  `json:"error,omitempty"`
	Rows       int     `json:"rows"`
	DurationMs float64 `json:"durationMs"`
	Polls      int     `json:"polls"`
	// Retry says the failure may pass (Cube unreachable, busy, failing or
	// slow), unlike a project without data or a refused query.
	Retry bool `json:"retry,omitempty"`
}

// PreAggregationResult is the outcome of asking Cube to build a project's
// pre-aggregations.
type PreAggregationResult struct {
	Project int64  `json:"project"`
	Status  string `json:"status"` // started, unavailable or failed
	Detail  string `json:"detail,omitempty"`
}

// Summary is a warm-up's report.
type Summary struct {
	Started         time.Time              `json:"started"`
	DurationMs      float64                `json:"durationMs"`
	OK              int                    `json:"ok"`
	Failed          int                    `json:"failed"`
	Results         []Result               `json:"results"`
	PreAggregations []PreAggregationResult `json:"preAggregations,omitempty"`
	Funnels         []FunnelResult         `json:"funnels,omitempty"`
}

// ErrAllFailed is returned when no query succeeded, so that the scheduler
// retries a total failure (and not a partial one).
var ErrAllFailed = errors.New("every warm-up query failed")

// Runner runs warm-ups with one Cube client.
type Runner struct {
	cube    Cube
	log     *slog.Logger
	metrics *metrics.Recorder
}

// NewRunner returns a Runner; m, when not nil, adds the run's metrics to
// its summary's log line. c is the API's Cube client: with several Cube
// deployments it sends each project's calls to the project's deployment.
func NewRunner(c Cube, log *slog.Logger, m *metrics.Recorder) *Runner {
	return &Runner{cube: c, log: log, metrics: m}
}

// Run warms every project-query pair of in, at most in.Concurrency at once.
// It returns the summary, and ErrAllFailed (wrapped) when nothing succeeded.
func (r *Runner) Run(ctx context.Context, in Input) (Summary, error) {
	now := time.Now()
	sum := Summary{Started: now.UTC()}
	if err := r.defaults(&in, now); err != nil {
		return sum, err
	}
	if in.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(in.Deadline))
		defer cancel()
	}
	timeout := time.Duration(in.QueryTimeout)
	queries := make([][]NamedQuery, len(in.Projects))
	for i := range in.Projects {
		queries[i] = in.Queries
	}
	if in.Funnels {
		// The funnels differ per project: each project's meta says which
		// it has, asked once, with the same bound on calls in flight.
		from, to := dateRange(in.Queries)
		sum.Funnels = make([]FunnelResult, len(in.Projects))
		pool(in.Concurrency, len(in.Projects), func(i int) {
			fq, res := r.funnels(ctx, in.Projects[i], from, to, timeout)
			sum.Funnels[i] = res
			queries[i] = append(slices.Clip(in.Queries), fq...)
		})
	}
	type job struct {
		project int64
		q       NamedQuery
	}
	var jobs []job
	for i, p := range in.Projects {
		for _, q := range queries[i] {
			jobs = append(jobs, job{project: p, q: q})
		}
	}
	sum.Results = make([]Result, len(jobs))
	pool(in.Concurrency, len(jobs), func(i int) {
		sum.Results[i] = r.warm(ctx, jobs[i].project, jobs[i].q, timeout)
	})
	if in.PreAggregations {
		for _, p := range in.Projects {
			sum.PreAggregations = append(sum.PreAggregations, r.preAggregations(ctx, p))
		}
	}
	for _, res := range sum.Results {
		if res.OK {
			sum.OK++
			continue
		}
		sum.Failed++
		r.log.LogAttrs(ctx, slog.LevelWarn, "warm-up query failed", append(trace.Attrs(ctx), slog.Int64("project_id", res.Project),
			slog.String("query", res.Query), slog.String("reason", res.Error), slog.Float64("duration_ms", res.DurationMs))...)
	}
	took := time.Since(now)
	sum.DurationMs = ms(took)
	attrs := append(trace.Attrs(ctx), slog.Int("ok", sum.OK), slog.Int("failed", sum.Failed), slog.Float64("duration_ms", sum.DurationMs))
	attrs = append(attrs, in.logAttrs...)
	attrs = append(attrs, slog.Any("summary", sum))
	attrs = append(attrs, r.metrics.Warmup(metrics.Warmup{At: now, OK: sum.OK, Failed: sum.Failed, Duration: took})...)
	r.log.LogAttrs(ctx, slog.LevelInfo, "warm-up", attrs...)
	if sum.OK == 0 {
		return sum, fmt.Errorf("%w (%d queries)", ErrAllFailed, sum.Failed)
	}
	return sum, nil
}

// pool runs do(0) to do(n-1), at most workers at once, and returns when all
// have returned.
func pool(workers, n int, do func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				do(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// defaults fills in what in leaves out; the dashboards' queries are dated
// at now, the run's start.
func (r *Runner) defaults(in *Input, now time.Time) error {
	if len(in.Projects) == 0 {
		return errors.New("no projects to warm: the input needs \"projects\": [ids]")
	}
	for _, p := range in.Projects {
		if p <= 0 {
			return fmt.Errorf("project %d is not a project ID", p)
		}
	}
	if len(in.Queries) == 0 {
		for _, q := range dashboards.Queries(now) {
			in.Queries = append(in.Queries, NamedQuery{Name: q.Name, Query: q.Query})
		}
	}
	for i, q := range in.Queries {
		if len(q.Query) == 0 || q.Query[0] != '{' {
			return fmt.Errorf("query %d (%q) is not a JSON object", i, q.Name)
		}
		if q.Name == "" {
			in.Queries[i].Name = "query-" + strconv.Itoa(i)
		}
	}
	if in.Concurrency <= 0 {
		in.Concurrency = 4
	}
	if in.QueryTimeout <= 0 {
		in.QueryTimeout = Duration(2 * time.Minute)
	}
	return nil
}

// warm runs one query the way the API would, through the same client: same
// project token, same Continue-wait polling.
func (r *Runner) warm(ctx context.Context, project int64, q NamedQuery, timeout time.Duration) Result {
	res := Result{Project: project, Query: q.Name}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	query, err := renewing(q.Query)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	out, err := r.cube.Do(ctx, cube.Request{Endpoint: cube.Load, ProjectID: project, Query: query, RequestID: "warmup-" + strconv.FormatInt(project, 10) + "-" + q.Name})
	res.DurationMs = ms(time.Since(start))
	if out != nil {
		res.Polls = out.Polls
	}
	switch {
	case err != nil:
		res.Error, res.Retry = err.Error(), retryable(err)
	case out.ContinueWait:
		res.Error = "Cube was still computing at the deadline; it goes on, and a later run finds it cached"
	default:
		res.Rows, err = rows(out.Body)
		if err != nil {
			res.Error = err.Error()
		} else {
			res.OK = true
		}
	}
	return res
}

// renewing returns query asking Cube to renew its answer before answering:
// a view is answered from Cube's cache and renewed behind it, which would
// leave the renewals of a whole warm-up to run at once, outside its
// concurrency; asked with renewQuery, each warm-up call waits for its own.
// The answer is cached under the same key, whatever renewQuery says.
func renewing(query json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(query, &fields); err != nil {
		return nil, fmt.Errorf("reading the query: %w", err)
	}
	fields["renewQuery"] = json.RawMessage("true")
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, fmt.Errorf("writing the query: %w", err)
	}
	return out, nil
}

// preAggregations asks Cube to build the project's pre-aggregations.
func (r *Runner) preAggregations(ctx context.Context, project int64) PreAggregationResult {
	res := PreAggregationResult{Project: project}
	body, _ := json.Marshal(map[string]any{
		"action": "post",
		"selector": map[string]any{
			"contexts":  []any{map[string]any{"securityContext": map[string]string{"appId": cube.AppID(project)}}},
			"timezones": []string{"UTC"},
		},
	})
	out, err := r.cube.Do(ctx, cube.Request{Endpoint: cube.PreAggregationJobs, ProjectID: project, Body: body})
	var ce *cube.Error
	switch {
	case err == nil:
		res.Status, res.Detail = "started", string(out.Body)
	case errors.As(err, &ce) && (ce.Status == 404 || ce.Status == 403 || ce.Status == 400):
		// Not served by this Cube, not allowed to this token, or nothing to
		// build: not a failure of the warm-up.
		res.Status, res.Detail = "unavailable", ce.Message
	default:
		res.Status, res.Detail = "failed", err.Error()
	}
	return res
}

// rows counts the rows of a multi load answer.
func rows(body []byte) (int, error) {
	var a struct {
		Results []struct {
			Data []json.RawMessage `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return 0, fmt.Errorf("reading Cube's answer: %w", err)
	}
	n := 0
	for _, r := range a.Results {
		n += len(r.Data)
	}
	return n, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
