package warmup_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
	"productanalytics/shared/dashboards"
	"productanalytics/shared/warmup"
)

// TestWarmedAnswersOutlastTheRefreshKey: after the cubes' refresh key
// changed, a view of a warmed dashboard is still answered from Cube's
// cache, and the answer is renewed behind the view; the next warm-up waits
// for its own renewals, so that its answers are the new ones when it ends.
// The keys are 6 s here (CUBE_REFRESH_SECONDS, CUBE_TEST_SLOW_REFRESH)
// instead of five minutes.
func TestWarmedAnswersOutlastTheRefreshKey(t *testing.T) {
	const (
		every = 6 * time.Second
		// How long the store takes for a SlowEvents query: a view answered
		// sooner did not wait for the store.
		slow = 8 * time.Second
	)
	s := startStackWith(t, stack.Options{DataDir: testData(t), Cubes: 1, TestModel: true, SlowQuery: slow,
		CubeEnv: []string{fmt.Sprintf("CUBE_REFRESH_SECONDS=%d", int(every.Seconds())), fmt.Sprintf("CUBE_TEST_SLOW_REFRESH=%d", int(every.Seconds()))}})
	runner := warmup.NewRunner(cubeClients(t, s, maps.Clone(s.FunctionEnv(""))), slog.New(slog.NewJSONHandler(io.Discard, nil)), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	warm := func(queries ...warmup.NamedQuery) warmup.Summary {
		t.Helper()
		sum, err := runner.Run(ctx, warmup.Input{Projects: []int64{1}, Queries: queries, Concurrency: 4})
		if err != nil || sum.Failed != 0 {
			t.Fatalf("warm-up: %v, %d failed: %+v", err, sum.Failed, sum.Results)
		}
		return sum
	}
	// keyChanged waits until Cube's key, FLOOR(epoch / 6), has moved past
	// the one of at, and Cube has had its renewal threshold (every / 10)
	// and a margin to look at it again.
	keyChanged := func(at time.Time) {
		t.Helper()
		next := at.Truncate(every).Add(every + 2*time.Second)
		wait.Until(t, "the refresh key to change", func() bool { return time.Now().After(next) })
	}
	// view opens the dashboard as a viewer does, every panel at once,
	// dated as the warm-up dated its queries.
	view := func(dated time.Time) map[string]loaded {
		t.Helper()
		out := map[string]loaded{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, q := range dashboards.Queries(dated) {
			wg.Go(func() {
				l, err := load(ctx, s.APIURL, 1, q.Query)
				if err != nil || l.status != 200 {
					t.Errorf("%s: %v %d %s", q.Name, err, l.status, l.body)
				}
				mu.Lock()
				out[q.Name] = l
				mu.Unlock()
			})
		}
		wg.Wait()
		return out
	}

	t.Run("dashboards", func(t *testing.T) {
		first := warm()
		warmed := time.Now()
		keyChanged(warmed)
		// The first view after the key changed: no renewal is under way,
		// so every answer is the warm-up's.
		for name, l := range view(first.Started) {
			if !l.cachedBefore(l.sent) || l.refresh[0].After(warmed) {
				t.Errorf("%s: computed at %v for a view sent at %s; want the warm-up's answer (it ended at %s)",
					name, l.refresh, l.sent.Format(time.TimeOnly+".000"), warmed.Format(time.TimeOnly+".000"))
			}
		}
		// Renewed behind that view.
		err := wait.For(ctx, "the answers renewed behind the view", func() bool {
			for _, l := range view(first.Started) {
				if len(l.refresh) == 0 || !l.refresh[0].After(warmed) {
					return false
				}
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}

		// The next warm-up, after the key changed again, renews before it
		// answers: when it ends, its own answers are in the cache.
		keyChanged(time.Now())
		second := warm()
		for name, l := range view(second.Started) {
			if len(l.refresh) == 0 || l.refresh[0].Before(second.Started) {
				t.Errorf("%s: computed at %v, before the second warm-up began at %s: the warm-up did not renew it",
					name, l.refresh, second.Started.Format(time.TimeOnly+".000"))
			}
		}
	})

	// A renewal that takes the store 8 s: every view while it runs is
	// answered at once, from the cache, until the renewed answer is there.
	t.Run("a slow renewal", func(t *testing.T) {
		q := warmup.NamedQuery{Name: "slow", Query: []byte(`{"measures":["SlowEvents.count"]}`)}
		warm(q)
		warmed := time.Now()
		keyChanged(warmed)
		views := 0
		err := wait.For(ctx, "the slow answer renewed behind the views", func() bool {
			l, err := load(ctx, s.APIURL, 1, q.Query)
			took := time.Since(l.sent)
			views++
			if err != nil || l.status != 200 || !l.cachedBefore(time.Now()) {
				t.Fatalf("view %d: %v %d %s", views, err, l.status, l.body)
			}
			// A view that waited for the renewal takes seconds of the
			// store's 8, or gets an answer computed seconds after it was
			// sent; one answered from the cache takes milliseconds, and
			// gets the cached answer or the renewed one if it landed while
			// the view was on its way.
			if after := l.refresh[0].Sub(l.sent); took > slow/2 || after > slow/2 {
				t.Fatalf("view %d took %s, answered with a result computed %s after it was sent: it waited for the renewal",
					views, took.Round(time.Millisecond), after.Round(time.Millisecond))
			}
			return l.refresh[0].After(warmed)
		})
		if err != nil {
			t.Fatal(err)
		}
		if views < 2 {
			t.Errorf("%d views before the renewed answer; want it renewed behind the first", views)
		}
		t.Logf("%d views answered from the cache while the renewal ran", views-1)
	})
}
