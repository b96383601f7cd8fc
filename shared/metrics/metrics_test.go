package metrics_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/shared/emf"
	"productanalytics/shared/metrics"
)

// published logs attrs as one JSON line and returns what CloudWatch would
// publish from it, as "Name{Dim=value,...}=value" strings, sorted.
func published(t *testing.T, attrs []slog.Attr) []string {
	t.Helper()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).LogAttrs(t.Context(), slog.LevelInfo, "request", attrs...)
	data, err := emf.Extract(buf.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	var out []string
	for _, d := range data {
		if d.Namespace != "ProductAnalytics/test" {
			t.Errorf("%s in namespace %q, want ProductAnalytics/test", d.Name, d.Namespace)
		}
		out = append(out, datum(d))
	}
	sort.Strings(out)
	return out
}

func datum(d emf.Datum) string {
	var dims []string
	for k, v := range d.Dimensions {
		dims = append(dims, k+"="+v)
	}
	sort.Strings(dims)
	return fmt.Sprintf("%s{%s}=%v %s", d.Name, strings.Join(dims, ","), d.Values[0], d.Unit)
}

func TestRequestMetrics(t *testing.T) {
	at := time.UnixMilli(1700000000000)
	tests := []struct {
		name string
		req  metrics.Request
		want []string
	}{
		{
			name: "a load answered by Cube after two polls",
			req:  metrics.Request{At: at, Endpoint: "load", Status: 200, Duration: 1500 * time.Millisecond, CubeCalled: true, CubeTime: 1400 * time.Millisecond, Polls: 2},
			want: []string{
				"ContinueWaitAnswers{Endpoint=load}=0 Count", "ContinueWaitAnswers{}=0 Count",
				"ContinueWaitPolls{Endpoint=load}=2 Count", "ContinueWaitPolls{}=2 Count",
				"CubeLatency{Endpoint=load}=1400 Milliseconds", "CubeLatency{}=1400 Milliseconds",
				"Latency{Endpoint=load}=1500 Milliseconds", "Latency{}=1500 Milliseconds",
				"Requests{Endpoint=load,StatusClass=2xx}=1 Count", "Requests{StatusClass=2xx}=1 Count", "Requests{}=1 Count",
			},
		},
		{
			name: "a meta told to continue waiting",
			req:  metrics.Request{At: at, Endpoint: "meta", Status: 200, Duration: 25 * time.Second, CubeCalled: true, CubeTime: 25 * time.Second, Polls: 40, ContinueWait: true},
			want: []string{
				"ContinueWaitAnswers{Endpoint=meta}=1 Count", "ContinueWaitAnswers{}=1 Count",
				"ContinueWaitPolls{Endpoint=meta}=40 Count", "ContinueWaitPolls{}=40 Count",
				"CubeLatency{Endpoint=meta}=25000 Milliseconds", "CubeLatency{}=25000 Milliseconds",
				"Latency{Endpoint=meta}=25000 Milliseconds", "Latency{}=25000 Milliseconds",
				"Requests{Endpoint=meta,StatusClass=2xx}=1 Count", "Requests{StatusClass=2xx}=1 Count", "Requests{}=1 Count",
			},
		},
		{
			name: "a refusal before Cube",
			req:  metrics.Request{At: at, Endpoint: "dry-run", Status: 404, Duration: 2 * time.Millisecond, Reason: "ProjectNotFound"},
			want: []string{
				"Latency{Endpoint=dry-run}=2 Milliseconds", "Latency{}=2 Milliseconds",
				"Refusals{Reason=ProjectNotFound}=1 Count",
				"Requests{Endpoint=dry-run,StatusClass=4xx}=1 Count", "Requests{StatusClass=4xx}=1 Count", "Requests{}=1 Count",
			},
		},
		{
			name: "Cube failing",
			req:  metrics.Request{At: at, Endpoint: "load", Status: 504, Duration: 10 * time.Second, CubeCalled: true, CubeTime: 10 * time.Second, Reason: "CubeTimeout"},
			want: []string{
				"ContinueWaitAnswers{Endpoint=load}=0 Count", "ContinueWaitAnswers{}=0 Count",
				"ContinueWaitPolls{Endpoint=load}=0 Count", "ContinueWaitPolls{}=0 Count",
				"CubeLatency{Endpoint=load}=10000 Milliseconds", "CubeLatency{}=10000 Milliseconds",
				"Latency{Endpoint=load}=10000 Milliseconds", "Latency{}=10000 Milliseconds",
				"Refusals{Reason=CubeTimeout}=1 Count",
				"Requests{Endpoint=load,StatusClass=5xx}=1 Count", "Requests{StatusClass=5xx}=1 Count", "Requests{}=1 Count",
			},
		},
		{
			name: "no route",
			req:  metrics.Request{At: at, Status: 404, Duration: time.Millisecond, Reason: "NoRoute"},
			want: []string{
				"Latency{Endpoint=none}=1 Milliseconds", "Latency{}=1 Milliseconds",
				"Refusals{Reason=NoRoute}=1 Count",
				"Requests{Endpoint=none,StatusClass=4xx}=1 Count", "Requests{StatusClass=4xx}=1 Count", "Requests{}=1 Count",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := metrics.NewRecorder("ProductAnalytics/test", &metrics.Counters{}, nil)
			got := published(t, r.Request(tt.req))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestCountersGoToTheNextLine checks that each line carries what happened
// since the previous one: the sums CloudWatch makes are the true totals.
func TestCountersGoToTheNextLine(t *testing.T) {
	c := &metrics.Counters{}
	r := metrics.NewRecorder("ProductAnalytics/test", c, nil)
	at := time.UnixMilli(1700000000000)
	req := metrics.Request{At: at, Endpoint: "meta", Status: 200, Duration: time.Millisecond}

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			c.SecretFetched(nil)
			c.AccessCacheLookup(i%2 == 0)
		})
	}
	wg.Wait()
	c.SecretFetched(errors.New("throttled"))
	c.AccessCacheLookup(false)

	counts := func(lines [][]string) map[string]string {
		out := map[string]string{}
		for _, l := range lines {
			for _, d := range l {
				for _, name := range []string{metrics.SecretFetches, metrics.SecretFetchFailures, metrics.AccessCacheHits, metrics.AccessCacheMisses} {
					if strings.HasPrefix(d, name+"{}") {
						out[name] += strings.TrimPrefix(d, name+"{}=")
					}
				}
			}
		}
		return out
	}
	first := published(t, r.Request(req))
	want := map[string]string{
		metrics.SecretFetches: "11 Count", metrics.SecretFetchFailures: "1 Count",
		metrics.AccessCacheHits: "5 Count", metrics.AccessCacheMisses: "6 Count",
	}
	if got := counts([][]string{first}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("first line: got %v, want %v", got, want)
	}
	second := published(t, r.Request(req))
	if got := counts([][]string{second}); len(got) != 0 {
		t.Errorf("second line, nothing since: got %v, want no counts", got)
	}
	c.SecretFetched(nil)
	third := published(t, r.Warmup(metrics.Warmup{At: at, OK: 1}))
	if got := counts([][]string{third}); fmt.Sprint(got) != fmt.Sprint(map[string]string{metrics.SecretFetches: "1 Count"}) {
		t.Errorf("warm-up line after one fetch: got %v", got)
	}
}

func TestWarmupMetrics(t *testing.T) {
	r := metrics.NewRecorder("ProductAnalytics/test", nil, nil)
	got := published(t, r.Warmup(metrics.Warmup{At: time.UnixMilli(1700000000000), OK: 26, Failed: 2, Duration: 4200 * time.Millisecond}))
	want := []string{"WarmupDuration{}=4200 Milliseconds", "WarmupQueriesFailed{}=2 Count", "WarmupQueriesOK{}=26 Count"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *metrics.Recorder
	if got := r.Request(metrics.Request{At: time.Now(), Status: 200}); got != nil {
		t.Errorf("got %v, want no attributes", got)
	}
	if got := r.Warmup(metrics.Warmup{At: time.Now()}); got != nil {
		t.Errorf("got %v, want no attributes", got)
	}
}

// TestABadNamespaceLosesTheMetricsNotTheLine checks that a line whose
// metrics cannot be written says why and carries none.
func TestABadNamespaceLosesTheMetricsNotTheLine(t *testing.T) {
	var logs bytes.Buffer
	r := metrics.NewRecorder("AWS/Lambda", nil, slog.New(slog.NewJSONHandler(&logs, nil)))
	if got := r.Request(metrics.Request{At: time.Now(), Endpoint: "load", Status: 200}); got != nil {
		t.Errorf("got %v, want no attributes", got)
	}
	if !strings.Contains(logs.String(), "embedded metric format") {
		t.Errorf("got log %q, want the reason", logs.String())
	}
}
