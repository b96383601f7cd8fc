package cubefront

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"productanalytics/internal/wait"
)

// loadPath is a GET load of query, as Cube's client sends it.
func loadPath(query string) string {
	return "/cubejs-api/v1/load?queryType=multi&query=" + url.QueryEscape(query)
}

// hold keeps one of project 1's requests in flight at Cube until ctx ends:
// a SlowEvents query of its own (so that Cube's cache cannot answer it), polled
// again after each "Continue wait" as clients do.
func hold(ctx context.Context, t *testing.T, n int, wg *sync.WaitGroup) {
	defer wg.Done()
	q := fmt.Sprintf(`{"measures":["SlowEvents.count"],"filters":[{"member":"SlowEvents.event","operator":"notEquals","values":["hold-%d-%s"]}]}`,
		n, strconv.FormatInt(int64(cubePID), 10))
	h := withToken(t, 1)
	for ctx.Err() == nil {
		// Errors are the test ending the hold; anything else shows below.
		send(ctx, http.MethodGet, loadPath(q), nil, h) //nolint:errcheck
	}
}

// TestTenantInFlightLimit: while project 1 holds its limit of requests in
// flight at Cube, its next load waits, then is told to continue waiting;
// one past the queue's places gets 429 with Retry-After, counted in Cube's
// log; project 2 is answered meanwhile; and once project
// 1's clients go, their places are free again.
func TestTenantInFlightLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for n := range maxInFlight {
		wg.Add(1)
		go hold(ctx, t, n, &wg)
	}
	fast := loadPath(`{"measures":["TrackedEvents.count"]}`)
	// A load that waited out its place in the queue is told to ask again,
	// as for a query still computing.
	wait.Until(t, "project 1's load over its limit to be told to continue waiting", func() bool {
		a := mustSend(t, http.MethodGet, fast, nil, withToken(t, 1))
		if a.status != http.StatusOK {
			t.Fatalf("project 1 with a place in the queue: answer %d %.300s; want 200", a.status, a.body)
		}
		return strings.Contains(string(a.body), `"error":"Continue wait"`)
	})
	// Past the queue's places, a request is refused.
	var refused answer
	wait.Until(t, "project 1's request past its queue to be refused", func() bool {
		type result struct {
			a   answer
			err error
		}
		results := make(chan result, maxQueued+1)
		h := withToken(t, 1)
		for range maxQueued + 1 {
			go func() {
				a, err := send(context.Background(), http.MethodGet, fast, nil, h)
				results <- result{a, err}
			}()
		}
		got := false
		for range maxQueued + 1 {
			r := <-results
			if r.err != nil {
				t.Fatal(r.err)
			}
			a := r.a
			switch {
			case a.status == http.StatusTooManyRequests:
				refused, got = a, true
			case a.status != http.StatusOK:
				t.Fatalf("project 1: answer %d %.300s; want 200 or 429", a.status, a.body)
			}
		}
		return got
	})
	if ra, err := strconv.Atoi(refused.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After %q; want a whole number of seconds", refused.header.Get("Retry-After"))
	}
	want := fmt.Sprintf(`{"error":"This project already has %d requests running at Cube, the most one project may have at once (CUBE_TENANT_MAX_IN_FLIGHT=%d): retry after 1 s"}`, maxInFlight, maxInFlight)
	if string(refused.body) != want {
		t.Errorf("429 body %s; want %s", refused.body, want)
	}

	// Project 2's share is its own.
	for range 3 {
		a := mustSend(t, http.MethodGet, fast, nil, withToken(t, 2))
		if a.status != http.StatusOK || !strings.Contains(string(a.body), `"results"`) {
			t.Fatalf("project 2 while project 1 is at its limit: %d %.300s; want 200", a.status, a.body)
		}
	}
	wait.Until(t, "Cube's log to count the refusal", func() bool {
		return len(logLines(`"message":"Tenant over its in-flight limit"`, `"appId":"gitlab_project_1"`)) > 0
	})

	// The holders' clients go: their places are free again.
	cancel()
	wg.Wait()
	wait.Until(t, "project 1 to be answered once its clients have gone", func() bool {
		a := mustSend(t, http.MethodGet, fast, nil, withToken(t, 1))
		return a.status == http.StatusOK
	})
	cubeUp(t)
}
