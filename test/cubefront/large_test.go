package cubefront

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/wait"
)

// TestLargeAnswersTakeTurns: while one project's large load (more cells
// than CUBE_LARGE_ANSWER_CELLS) holds Cube's only place for large answers,
// another project's large load waits its turn and is told to continue
// waiting, whichever project it is, and small loads are answered as usual.
func TestLargeAnswersTakeTurns(t *testing.T) {
	// 50,000 rows of two columns: 100,000 cells, a large answer.
	large := loadPath(`{"dimensions":["TrackedEvents.eventId","TrackedEvents.event"],"limit":50000}`)
	small := loadPath(`{"measures":["TrackedEvents.count"]}`)
	// Answered once first, so that Cube has it cached: a "Continue wait"
	// for it can then come only from waiting for the place.
	if a := mustSend(t, http.MethodGet, large, nil, withToken(t, 2)); a.status != http.StatusOK || !strings.Contains(string(a.body), `"results"`) {
		t.Fatalf("project 2's large load alone: %d %.300s; want 200", a.status, a.body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() {
		// Project 1 keeps a large slow load in flight, asking again after
		// each "Continue wait".
		q := fmt.Sprintf(`{"dimensions":["SlowEvents.eventId","SlowEvents.event"],"limit":50000,"filters":[{"member":"SlowEvents.event","operator":"notEquals","values":["large-%d"]}]}`, time.Now().UnixNano())
		h := withToken(t, 1)
		for ctx.Err() == nil {
			send(ctx, http.MethodGet, loadPath(q), nil, h) //nolint:errcheck
		}
	})
	wait.Until(t, "project 2's large load to wait for project 1's and be told to continue waiting", func() bool {
		a := mustSend(t, http.MethodGet, large, nil, withToken(t, 2))
		if a.status != http.StatusOK {
			t.Fatalf("project 2's large load: %d %.300s; want 200", a.status, a.body)
		}
		return strings.Contains(string(a.body), `"error":"Continue wait"`)
	})
	for range 3 {
		if a := mustSend(t, http.MethodGet, small, nil, withToken(t, 2)); a.status != http.StatusOK || !strings.Contains(string(a.body), `"results"`) {
			t.Fatalf("project 2's small load beside the large ones: %d %.300s; want 200", a.status, a.body)
		}
	}
	cancel()
	wg.Wait()
	wait.Until(t, "project 2's large load to be answered once project 1's has gone", func() bool {
		a := mustSend(t, http.MethodGet, large, nil, withToken(t, 2))
		return a.status == http.StatusOK && strings.Contains(string(a.body), `"results"`)
	})
	cubeUp(t)
}
