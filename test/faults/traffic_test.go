package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/rie"
	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// answer is what one caller got.
type answer struct {
	start, end time.Time
	status     int    // 0: no answer at all
	message    string // GitLab's message of a refusal or failure
	err        error
}

func (a answer) took() time.Duration { return a.end.Sub(a.start) }

// what is the answer as a caller sees it: "200", GitLab's message ("502
// Bad Gateway: ..."), or the error of a call that got no answer.
func (a answer) what() string {
	switch {
	case a.err != nil:
		return "no answer: " + a.err.Error()
	case a.status == http.StatusOK:
		return "200"
	case a.message != "":
		return a.message // GitLab's messages begin with the status
	}
	return fmt.Sprint(a.status)
}

// target is an entry point of the API: the local server, or a function
// under the emulator.
type target struct {
	name string
	call func(ctx context.Context) answer
}

// localServer is the API at base, asked the seed's load example for project 1.
func localServer(name, base string) target {
	body := seed.Body(seed.TrackedEvents)
	auth := "Bearer " + stack.Token(time.Hour, 1)
	return target{name: name, call: func(ctx context.Context) answer {
		a := answer{start: time.Now()}
		defer func() { a.end = time.Now() }()
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v4/projects/1/product_analytics/request/load", strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			a.err = err
			a.end = time.Now()
			return a
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.status, a.err = resp.StatusCode, err
		a.message = messageOf(b)
		a.end = time.Now()
		return a
	}}
}

// function is the load function under the emulator, invoked with
// events/load-v2.json (the same query, for project 1).
func function(t *testing.T, name string, e *rie.Emulator) target {
	event, err := os.ReadFile(filepath.Join(root, "events", "load-v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	return target{name: name, call: func(ctx context.Context) answer {
		a := answer{start: time.Now()}
		out, err := e.Invoke(ctx, event)
		a.end = time.Now()
		if err != nil {
			a.err = err
			return a
		}
		var resp struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			a.err = fmt.Errorf("the function's answer %.200s: %w", out, err)
			return a
		}
		a.status, a.message = resp.StatusCode, messageOf([]byte(resp.Body))
		return a
	}}
}

// emulate runs the load function under the emulator with the API's
// configuration for this stack, env over it.
func emulate(t *testing.T, name string, over map[string]string) *rie.Emulator {
	t.Helper()
	e := env.APIEnv()
	for k, v := range apiEnv() {
		e[k] = v
	}
	for k, v := range over {
		e[k] = v
	}
	return rie.Start(t, rie.Options{Bootstrap: bootstrap, Env: rie.EnvFromMap(e), FunctionName: name, Output: apiLogs})
}

func messageOf(body []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	json.Unmarshal(body, &m)
	return m.Message
}

// traffic is callers asking a target at a steady pace, as long as the
// test runs.
type traffic struct {
	target
	mu      sync.Mutex
	answers []answer
}

// pace is the least time between the calls of one caller, so that counts
// of answers read as rates: 10 calls a second each.
const pace = 100 * time.Millisecond

// flow starts workers callers on tg; they stop when the test ends.
func flow(t *testing.T, tg target, workers int) *traffic {
	tr := &traffic{target: tg}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for ctx.Err() == nil {
				// Bounded past the API's own deadline, so that a caller
				// never waits forever whatever the API does.
				cctx, ccancel := context.WithTimeout(ctx, 2*waitDeadline)
				a := tr.call(cctx)
				ccancel()
				if ctx.Err() != nil {
					return
				}
				tr.mu.Lock()
				tr.answers = append(tr.answers, a)
				tr.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return tr
}

// startedIn returns the answers to calls started in [from, to), in the
// order they started.
func (tr *traffic) startedIn(from, to time.Time) []answer {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []answer
	for _, a := range tr.answers {
		if !a.start.Before(from) && a.start.Before(to) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// await waits until the answers to calls started since from satisfy cond.
func (tr *traffic) await(t *testing.T, what string, from time.Time, cond func([]answer) bool) {
	t.Helper()
	wait.Until(t, tr.name+": "+what, func() bool { return cond(tr.startedIn(from, far)) })
}

var far = time.Now().Add(24 * time.Hour)

// served: at least n answers of 200.
func served(n int) func([]answer) bool {
	return func(as []answer) bool { return count(as, func(a answer) bool { return a.status == 200 }) >= n }
}

// answered: at least n answers, whatever they are.
func answered(n int) func([]answer) bool {
	return func(as []answer) bool { return len(as) >= n }
}

func count(as []answer, f func(answer) bool) int {
	n := 0
	for _, a := range as {
		if f(a) {
			n++
		}
	}
	return n
}

// firstServed is the first 200 among as, by start; ok false if none.
func firstServed(as []answer) (answer, bool) {
	i := slices.IndexFunc(as, func(a answer) bool { return a.status == 200 })
	if i < 0 {
		return answer{}, false
	}
	return as[i], true
}

// tally sums answers up for the fault table: "7 × 502 Bad Gateway: Cube is
// unreachable (5 ms to 31 ms)".
func tally(as []answer) string {
	type group struct {
		n        int
		min, max time.Duration
	}
	groups := map[string]*group{}
	var order []string
	for _, a := range as {
		g := groups[a.what()]
		if g == nil {
			g = &group{min: a.took()}
			groups[a.what()] = g
			order = append(order, a.what())
		}
		g.n++
		g.min, g.max = min(g.min, a.took()), max(g.max, a.took())
	}
	var parts []string
	for _, w := range order {
		g := groups[w]
		parts = append(parts, fmt.Sprintf("%d × %s (%s to %s)", g.n, w, g.min.Round(time.Millisecond), g.max.Round(time.Millisecond)))
	}
	if len(parts) == 0 {
		return "no calls"
	}
	return strings.Join(parts, "; ")
}

// row logs a row of the fault table.
func row(t *testing.T, fault, target, got string, recovery time.Duration) {
	t.Logf("FAULT TABLE | %s | %s | %s | recovered %s after the part was back", fault, target, got, recovery.Round(10*time.Millisecond))
}
