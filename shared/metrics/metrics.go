// Package metrics names what the functions measure, and puts it into the
// log lines they already write, in CloudWatch's embedded metric format
// (package emf), so that CloudWatch derives the metrics from the logs with
// no call of the functions' own.
package metrics

import (
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"productanalytics/shared/emf"
)

// DefaultNamespace is the CloudWatch namespace when none is configured.
const DefaultNamespace = "ProductAnalytics"

// Dimensions.
const (
	// Endpoint is the call: load, dry-run, meta, or NoEndpoint.
	Endpoint = "Endpoint"
	// StatusClass is the answer's status class: 2xx, 4xx or 5xx.
	StatusClass = "StatusClass"
	// Reason is why a request was not answered 200 (the api package's
	// names of causes, e.g. ProjectNotFound, CubeTimeout).
	Reason = "Reason"
)

// NoEndpoint is the Endpoint of a request for no route of the API.
const NoEndpoint = "none"

// Metrics of each request.
const (
	// Requests counts answers, by endpoint and status class, by status
	// class, and in all.
	Requests = "Requests"
	// Latency is the time from the request to its answer, in ms.
	Latency = "Latency"
	// CubeLatency is the time spent in Cube calls, polls included, in ms.
	CubeLatency = "CubeLatency"
	// ContinueWaitPolls counts re-sends to Cube after "Continue wait".
	ContinueWaitPolls = "ContinueWaitPolls"
	// ContinueWaitAnswers counts answers that told the caller to continue
	// waiting: Cube was still computing at the deadline.
	ContinueWaitAnswers = "ContinueWaitAnswers"
	// Refusals counts answers other than 200, by reason.
	Refusals = "Refusals"
)

// Metrics of what happens below the handler, counted per process.
const (
	// SecretFetches counts calls to Secrets Manager, SecretFetchFailures
	// the failed ones.
	SecretFetches       = "SecretFetches"
	SecretFetchFailures = "SecretFetchFailures"
	// AccessCacheHits and AccessCacheMisses count the lookups of the
	// GitLab access mode's decision cache.
	AccessCacheHits   = "AccessCacheHits"
	AccessCacheMisses = "AccessCacheMisses"
)

// Metrics of the warm-up, one value per run.
const (
	WarmupQueriesOK     = "WarmupQueriesOK"
	WarmupQueriesFailed = "WarmupQueriesFailed"
	WarmupDuration      = "WarmupDuration"
)

// Counters count, for the whole process, what happens below the request
// handler: secret fetches and access-cache lookups. The parts that see
// them call its methods; each log line then carries what happened since
// the previous one, so that CloudWatch's sums are the true totals. Per
// process rather than per request because a secret fetch belongs to no
// request (the cold start's prefetch, a fetch shared by many).
type Counters struct {
	secretFetches, secretFailures atomic.Int64
	cacheHits, cacheMisses        atomic.Int64
}

// SecretFetched counts one call to Secrets Manager and whether it failed.
func (c *Counters) SecretFetched(err error) {
	c.secretFetches.Add(1)
	if err != nil {
		c.secretFailures.Add(1)
	}
}

// AccessCacheLookup counts one lookup of the access decision cache.
func (c *Counters) AccessCacheLookup(hit bool) {
	if hit {
		c.cacheHits.Add(1)
	} else {
		c.cacheMisses.Add(1)
	}
}

// take returns the counts since the last take, as metrics, and starts
// counting again from zero.
func (c *Counters) take() []emf.Metric {
	if c == nil {
		return nil
	}
	var out []emf.Metric
	add := func(name string, n *atomic.Int64) {
		if v := n.Swap(0); v != 0 {
			out = append(out, emf.Metric{Name: name, Unit: emf.Count, Value: float64(v)})
		}
	}
	add(SecretFetches, &c.secretFetches)
	add(SecretFetchFailures, &c.secretFailures)
	add(AccessCacheHits, &c.cacheHits)
	add(AccessCacheMisses, &c.cacheMisses)
	return out
}

// Recorder turns what a request or a warm-up did into the embedded
// metrics of its log line. A nil Recorder records nothing.
type Recorder struct {
	namespace string
	counters  *Counters
	log       *slog.Logger
}

// NewRecorder returns a Recorder publishing to namespace, taking the
// process's counts from counters (which may be nil). A line that cannot
// carry its metrics is logged to log, once per cause.
func NewRecorder(namespace string, counters *Counters, log *slog.Logger) *Recorder {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	return &Recorder{namespace: namespace, counters: counters, log: log}
}

// Namespace is the CloudWatch namespace the metrics go to.
func (r *Recorder) Namespace() string { return r.namespace }

// Request is what one request's log line tells of it.
type Request struct {
	// At is when the request arrived.
	At time.Time
	// Endpoint is its call, empty for no route.
	Endpoint string
	Status   int
	Duration time.Duration
	// CubeCalled says whether Cube was called; CubeTime, Polls and
	// ContinueWait tell how it went.
	CubeCalled   bool
	CubeTime     time.Duration
	Polls        int
	ContinueWait bool
	// Reason names the cause of an answer other than 200.
	Reason string
}

// Request returns the metrics of one request, as log attributes.
func (r *Recorder) Request(q Request) []slog.Attr {
	if r == nil {
		return nil
	}
	endpoint := q.Endpoint
	if endpoint == "" {
		endpoint = NoEndpoint
	}
	l := emf.Line{
		Namespace:  r.namespace,
		Time:       q.At,
		Dimensions: map[string]string{Endpoint: endpoint, StatusClass: statusClass(q.Status)},
		Directives: []emf.Directive{
			{
				Dimensions: [][]string{{Endpoint, StatusClass}, {StatusClass}, {}},
				Metrics:    []emf.Metric{{Name: Requests, Unit: emf.Count, Value: 1}},
			},
			{
				Dimensions: [][]string{{Endpoint}, {}},
				Metrics:    []emf.Metric{{Name: Latency, Unit: emf.Milliseconds, Value: ms(q.Duration)}},
			},
		},
	}
	if q.CubeCalled {
		l.Directives = append(l.Directives, emf.Directive{
			Dimensions: [][]string{{Endpoint}, {}},
			Metrics: []emf.Metric{
				{Name: CubeLatency, Unit: emf.Milliseconds, Value: ms(q.CubeTime)},
				{Name: ContinueWaitPolls, Unit: emf.Count, Value: float64(q.Polls)},
				{Name: ContinueWaitAnswers, Unit: emf.Count, Value: b2f(q.ContinueWait)},
			},
		})
	}
	if q.Status != 200 && q.Reason != "" {
		l.Dimensions[Reason] = q.Reason
		l.Directives = append(l.Directives, emf.Directive{
			Dimensions: [][]string{{Reason}},
			Metrics:    []emf.Metric{{Name: Refusals, Unit: emf.Count, Value: 1}},
		})
	}
	return r.attrs(l)
}

// Warmup is what a warm-up's summary tells of it.
type Warmup struct {
	At         time.Time
	OK, Failed int
	Duration   time.Duration
}

// Warmup returns the metrics of one warm-up run, as log attributes.
func (r *Recorder) Warmup(w Warmup) []slog.Attr {
	if r == nil {
		return nil
	}
	return r.attrs(emf.Line{
		Namespace: r.namespace,
		Time:      w.At,
		Directives: []emf.Directive{{
			Dimensions: [][]string{{}},
			Metrics: []emf.Metric{
				{Name: WarmupQueriesOK, Unit: emf.Count, Value: float64(w.OK)},
				{Name: WarmupQueriesFailed, Unit: emf.Count, Value: float64(w.Failed)},
				{Name: WarmupDuration, Unit: emf.Milliseconds, Value: ms(w.Duration)},
			},
		}},
	})
}

// attrs adds the process's counts to l and returns its attributes. A line
// that breaks the format (a namespace the configuration let through, say)
// loses its metrics, never the log line itself.
func (r *Recorder) attrs(l emf.Line) []slog.Attr {
	if counts := r.counters.take(); len(counts) > 0 {
		l.Directives = append(l.Directives, emf.Directive{Dimensions: [][]string{{}}, Metrics: counts})
	}
	attrs, err := l.Attrs()
	if err != nil {
		if r.log != nil {
			r.log.Error("the log line's metrics break the embedded metric format; they are left out", "error", err.Error())
		}
		return nil
	}
	return attrs
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "5xx"
	}
	return strconv.Itoa(status/100) + "xx"
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
