// Package soak drives the local stack with a steady mix of the API's calls
// at a fixed concurrency, for a bounded time and count, and measures what a
// long run costs: answers by status, latency, and the memory and file
// descriptors of the API's and Cube's processes as the run goes on. `make
// soak` runs it for ten minutes; a test runs it for one.
package soak

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"productanalytics/internal/procstat"
)

// Options configure a run. Zero values take the defaults.
type Options struct {
	// BaseURL is the API's address, http://127.0.0.1:PORT.
	BaseURL string
	// Token makes caller tokens for the API's key.
	Token Token
	// Concurrency is how many requests are in flight at once (default 16).
	Concurrency int
	// Duration bounds the run (default 10 minutes).
	Duration time.Duration
	// MaxRequests bounds how many requests are sent (default 10 million).
	MaxRequests int64
	// Samples is how many times during the run the processes are sampled,
	// besides at the start (default 10).
	Samples int
	// Processes are sampled by name (e.g. "API", "Cube").
	Processes []Process
	// LogBytes, when set, is sampled with the processes: the size of a
	// log the run makes grow (Cube's).
	LogBytes func() int64
	// Progress receives a line per sample; nil: none.
	Progress io.Writer
	// Seed fixes the mix's random choices (default 1).
	Seed uint64
}

// Process is a process sampled during the run.
type Process struct {
	Name string
	Pid  int
}

// Sample is the processes' state at one moment of the run.
type Sample struct {
	At       time.Duration
	Requests int64
	Stats    map[string]procstat.Stat
	LogBytes int64
	// Err says why a process could not be read (n/a on systems without
	// /proc).
	Err error
}

// Result is what a run measured.
type Result struct {
	Requests int64
	Elapsed  time.Duration
	// ByStatus counts the answers by status; 0 counts calls with no answer.
	ByStatus map[int]int64
	// ByCall counts the calls of each kind of the mix.
	ByCall map[string]int64
	// Unexpected counts answers whose status was not the call's; Examples
	// describe the first few.
	Unexpected int64
	Examples   []string
	// ContinueWait counts 200 answers telling the caller to ask again.
	ContinueWait int64
	// P50 and P99 are latency percentiles, within 2 %.
	P50, P99 time.Duration
	Samples  []Sample
}

// Run sends the mix until the duration or the count is reached, or ctx
// ends.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.BaseURL == "" || o.Token == nil {
		return Result{}, errors.New("soak: BaseURL and Token are required")
	}
	o.Concurrency = cmp.Or(o.Concurrency, 16)
	o.Duration = cmp.Or(o.Duration, 10*time.Minute)
	o.MaxRequests = cmp.Or(o.MaxRequests, 10_000_000)
	o.Samples = cmp.Or(o.Samples, 10)
	o.Seed = cmp.Or(o.Seed, 1)

	calls := mix(o.Token, time.Now())
	total := 0
	for _, c := range calls {
		total += c.weight
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: o.Concurrency,
		IdleConnTimeout:     30 * time.Second,
	}}
	defer client.CloseIdleConnections()

	var (
		sent, done atomic.Int64
		lat        histogram
		mu         sync.Mutex
		res        = Result{ByStatus: map[int]int64{}, ByCall: map[string]int64{}}
	)
	record := func(c *call, status int, took time.Duration, cw bool, detail string) {
		lat.add(took)
		done.Add(1)
		mu.Lock()
		defer mu.Unlock()
		res.ByStatus[status]++
		res.ByCall[c.name]++
		if cw {
			res.ContinueWait++
		}
		if status != c.status {
			res.Unexpected++
			if len(res.Examples) < 10 {
				res.Examples = append(res.Examples, fmt.Sprintf("%s: got %d %s; want %d", c.name, status, detail, c.status))
			}
		}
	}

	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(o.Duration))
	defer cancel()
	sample := func() Sample {
		s := Sample{At: time.Since(start), Requests: done.Load(), Stats: map[string]procstat.Stat{}}
		if o.LogBytes != nil {
			s.LogBytes = o.LogBytes()
		}
		var errs []error
		for _, p := range o.Processes {
			st, err := procstat.Of(p.Pid)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
				continue
			}
			s.Stats[p.Name] = st
		}
		s.Err = errors.Join(errs...)
		if o.Progress != nil {
			fmt.Fprintln(o.Progress, s.line(o.Processes))
		}
		return s
	}
	res.Samples = append(res.Samples, sample())

	var wg sync.WaitGroup
	for w := range o.Concurrency {
		r := rand.New(rand.NewPCG(o.Seed, uint64(w)))
		wg.Go(func() {
			for ctx.Err() == nil && sent.Add(1) <= o.MaxRequests {
				c := pick(calls, total, r)
				status, took, cw, detail := send(ctx, client, o.BaseURL, c, r)
				if ctx.Err() != nil && status == 0 {
					return // the run ended under it
				}
				record(c, status, took, cw, detail)
			}
		})
	}
	every := o.Duration / time.Duration(o.Samples)
	tick := time.NewTicker(every)
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
loop:
	for {
		select {
		case <-tick.C:
			res.Samples = append(res.Samples, sample())
		case <-stopped:
			break loop
		}
	}
	tick.Stop()
	res.Elapsed = time.Since(start)
	if last := res.Samples[len(res.Samples)-1]; res.Elapsed-last.At > every/2 {
		res.Samples = append(res.Samples, sample())
	}
	res.Requests = done.Load()
	res.P50, res.P99 = lat.quantile(0.50), lat.quantile(0.99)
	return res, nil
}

// send makes one call and returns the status (0 for no answer), how long
// it took, whether it was a Continue wait, and what to say of a surprise.
func send(ctx context.Context, client *http.Client, base string, c *call, r *rand.Rand) (int, time.Duration, bool, string) {
	req, err := c.build(base, r)
	if err != nil {
		return 0, 0, false, err.Error()
	}
	// Past the API's own 25 s wait deadline: a bound on the run, not on the
	// API.
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	resp, err := client.Do(req.WithContext(cctx))
	if err != nil {
		return 0, time.Since(start), false, err.Error()
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	took := time.Since(start)
	if err != nil {
		return 0, took, false, "reading the answer: " + err.Error()
	}
	cw := resp.StatusCode == http.StatusOK && strings.Contains(string(body[:min(len(body), 64)]), "Continue wait")
	return resp.StatusCode, took, cw, truncate(string(body), 200)
}

func newRequest(method, url, body string) (*http.Request, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("building %s %s: %w", method, url, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// histogram counts durations in buckets 2 % wide, from 1 µs up: bounded
// memory whatever the run's length.
type histogram struct {
	counts [1200]atomic.Int64
}

const bucketWidth = 1.02

func (h *histogram) add(d time.Duration) {
	us := max(float64(d)/float64(time.Microsecond), 1)
	i := min(int(math.Log(us)/math.Log(bucketWidth)), len(h.counts)-1)
	h.counts[i].Add(1)
}

// quantile returns the lower bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i := range h.counts {
		if seen += h.counts[i].Load(); seen >= rank {
			return time.Duration(math.Pow(bucketWidth, float64(i)) * float64(time.Microsecond))
		}
	}
	return 0
}

// line is a sample as a progress line.
func (s Sample) line(procs []Process) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %9d requests", s.At.Round(time.Second), s.Requests)
	for _, p := range procs {
		if st, ok := s.Stats[p.Name]; ok {
			fmt.Fprintf(&b, "  %s %6.1f MB %4d fds", p.Name, mb(st.RSS), st.FDs)
		} else {
			fmt.Fprintf(&b, "  %s n/a", p.Name)
		}
	}
	return b.String()
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// Report writes the result for a person: requests per second, answers by
// status and by call, latency, and the processes at the start, after the
// warm-up (a fifth of the run), in the middle and at the end, with the
// change from after the warm-up to the end.
func (r Result) Report(w io.Writer, procs []Process) {
	fmt.Fprintf(w, "%d requests in %s: %.0f requests/s\n", r.Requests, r.Elapsed.Round(time.Second), float64(r.Requests)/r.Elapsed.Seconds())
	statuses := slices.Sorted(maps.Keys(r.ByStatus))
	var parts []string
	for _, s := range statuses {
		parts = append(parts, fmt.Sprintf("%d: %d", s, r.ByStatus[s]))
	}
	fmt.Fprintf(w, "answers by status: %s (Continue wait: %d)\n", strings.Join(parts, ", "), r.ContinueWait)
	fmt.Fprintf(w, "unexpected statuses: %d\n", r.Unexpected)
	for _, e := range r.Examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintf(w, "latency: p50 %s, p99 %s\n", r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond))
	names := slices.Sorted(maps.Keys(r.ByCall))
	for _, n := range names {
		fmt.Fprintf(w, "  %-40s %d\n", n, r.ByCall[n])
	}
	if len(r.Samples) == 0 {
		return
	}
	if b := r.LogBytesPerRequest(); b > 0 {
		fmt.Fprintf(w, "log written: %.0f bytes per request\n", b)
	}
	warm, _ := r.AfterWarmup()
	end := r.Samples[len(r.Samples)-1]
	for _, c := range []struct {
		name string
		s    Sample
	}{{"start", r.Samples[0]}, {"warmed up", warm}, {"middle", r.Samples[len(r.Samples)/2]}, {"end", end}} {
		fmt.Fprintf(w, "%-10s %s\n", c.name, c.s.line(procs))
	}
	for _, p := range procs {
		a, okA := warm.Stats[p.Name]
		b, okB := end.Stats[p.Name]
		if okA && okB && a.RSS > 0 {
			fmt.Fprintf(w, "%s from %s to %s: RSS %+.1f %% (%.1f to %.1f MB), descriptors %d to %d\n",
				p.Name, warm.At.Round(time.Second), end.At.Round(time.Second), 100*float64(b.RSS-a.RSS)/float64(a.RSS), mb(a.RSS), mb(b.RSS), a.FDs, b.FDs)
		}
	}
}

// LogBytesPerRequest is how much the sampled log grew per request,
// over the intervals between samples in which it was not rotated; 0 when
// unknown.
func (r Result) LogBytesPerRequest() float64 {
	var grew, reqs int64
	for i := 1; i < len(r.Samples); i++ {
		a, b := r.Samples[i-1], r.Samples[i]
		if b.LogBytes >= a.LogBytes && b.Requests > a.Requests {
			grew += b.LogBytes - a.LogBytes
			reqs += b.Requests - a.Requests
		}
	}
	if reqs == 0 {
		return 0
	}
	return float64(grew) / float64(reqs)
}

// AfterWarmup returns the first sample taken a fifth of the way into the
// run or later (minute 2 of 10), and the last sample.
func (r Result) AfterWarmup() (warm, end Sample) {
	end = r.Samples[len(r.Samples)-1]
	for _, s := range r.Samples {
		if s.At >= r.Elapsed/5 {
			return s, end
		}
	}
	return end, end
}
