package neighbours

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
)

// sample is one answer a watcher got.
type sample struct {
	start, end time.Time
	what       string // what was asked, e.g. a panel's name
	// ok: the answer a healthy service gives (for project 2, a 200 that
	// carries results, not "Continue wait").
	ok bool
	// got describes an answer that was not ok.
	got string
}

func (s sample) took() time.Duration { return s.end.Sub(s.start) }

// watcher asks one thing after another for as long as it runs, at most
// once per every (0: without pause), and keeps each answer's outcome.
type watcher struct {
	ask    func(ctx context.Context, i int) (what string, ok bool, got string)
	every  time.Duration
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	samples []sample
}

// start runs w until stop.
func (w *watcher) start(ctx context.Context) {
	w.done = make(chan struct{})
	ctx, w.cancel = context.WithCancel(ctx)
	go w.loop(ctx)
}

func (w *watcher) loop(ctx context.Context) {
	defer close(w.done)
	var pace *time.Ticker
	if w.every > 0 {
		pace = time.NewTicker(w.every)
		defer pace.Stop()
	}
	for i := 0; ctx.Err() == nil; i++ {
		start := time.Now()
		what, ok, got := w.ask(ctx, i)
		if ctx.Err() != nil {
			return // the watch ended, not the answer
		}
		w.mu.Lock()
		w.samples = append(w.samples, sample{start: start, end: time.Now(), what: what, ok: ok, got: got})
		w.mu.Unlock()
		if pace != nil {
			select {
			case <-ctx.Done():
			case <-pace.C:
			}
		}
	}
}

// stop ends the loop and waits for it.
func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// during returns the answers whose requests started from from on, up to
// and including the first one that started after to: every answer asked
// while something ran, and the first one after it.
func (w *watcher) during(from, to time.Time) []sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []sample
	for _, s := range w.samples {
		if s.start.Before(from) {
			continue
		}
		out = append(out, s)
		if s.start.After(to) {
			break
		}
	}
	return out
}

// between returns the answers whose requests started in [from, to).
func (w *watcher) between(from, to time.Time) []sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []sample
	for _, s := range w.samples {
		if !s.start.Before(from) && s.start.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// answeredAfter reports whether an answer whose request started after t
// has come.
func (w *watcher) answeredAfter(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.samples) > 0 && w.samples[len(w.samples)-1].start.After(t)
}

// neighbourToken is a caller token for project 2 only, valid for longer
// than any run.
var neighbourToken = stack.Token(24*time.Hour, neighbour)

// watchNeighbour warms project 2's dashboard queries (each answered once,
// so that what follows is Cube's cached answer) and starts asking them
// through the API, one after the other without pause: the neighbour whose
// answers must stay 200 and fast.
func watchNeighbour(ctx context.Context) (*watcher, error) {
	queries := dashboards.Queries(time.Now())
	if err := warmNeighbour(ctx, queries); err != nil {
		return nil, err
	}
	w := &watcher{ask: func(ctx context.Context, i int) (string, bool, string) {
		q := queries[i%len(queries)]
		// One call, not re-sent: "Continue wait" from the API means
		// project 2 waited through the API's whole deadline.
		a := exchange(ctx, "POST", apiPath(neighbour, "load"), "Bearer "+neighbourToken, `{"query":`+string(q.Query)+`,"queryType":"multi"}`)
		if a.err == nil && a.status == 200 && !a.continueWait() && strings.Contains(string(a.body), `"results"`) {
			return q.Name, true, ""
		}
		return q.Name, false, a.String()
	}}
	w.start(ctx)
	return w, nil
}

// warmNeighbour asks each of project 2's dashboard queries until it is
// answered with results.
func warmNeighbour(ctx context.Context, queries []dashboards.Query) error {
	for _, q := range queries {
		a := apiLoad(ctx, neighbour, string(q.Query))
		if a.err != nil || a.status != 200 || !strings.Contains(string(a.body), `"results"`) {
			return fmt.Errorf("project %d's panel %s before the test: %s", neighbour, q.Name, a)
		}
	}
	return nil
}

// watchReady asks Cube's /readyz every 100 ms: how long Cube's one event
// loop takes to answer its cheapest route.
func watchReady(ctx context.Context) *watcher {
	w := &watcher{every: 100 * time.Millisecond, ask: func(ctx context.Context, _ int) (string, bool, string) {
		a := exchange(ctx, "GET", env.CubeURL+"/readyz", "", "")
		if a.err == nil && a.status == 200 {
			return "readyz", true, ""
		}
		return "readyz", false, a.String()
	}}
	w.start(ctx)
	return w
}

// latencies returns the median, 90th percentile and maximum of samples'
// times.
func latencies(ss []sample) (p50, p90, most time.Duration) {
	if len(ss) == 0 {
		return 0, 0, 0
	}
	d := make([]time.Duration, len(ss))
	for i, s := range ss {
		d[i] = s.took()
	}
	slices.Sort(d)
	return quantile(d, 0.5), quantile(d, 0.9), d[len(d)-1]
}

// quantile is the q-quantile of sorted d (nearest rank).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d)) + 0.5)
	return d[min(max(i-1, 0), len(d)-1)]
}
