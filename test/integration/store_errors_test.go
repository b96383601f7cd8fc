package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// storeMemory is the memory each project's DuckDB database may use in the
// stack of TestStoreFailureIsNotTheCallersFault: far too little for the
// sessions of project 1's 100,000 events, which DuckDB groups whole.
const storeMemory = "2MB"

// TestStoreFailureIsNotTheCallersFault runs a second stack whose Cube gives
// each project's database a tiny memory limit, and asks it for what does
// not fit, as a project of millions of events does with the default limit:
// the store runs out of memory, and the caller gets 503 with a clear
// message, logged as an error and counted, never the 400 of a mistake. The
// caller's own mistake, on the same stack, stays 400.
func TestStoreFailureIsNotTheCallersFault(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logs, cubeLog := &logcheck.Buffer{}, &logcheck.Buffer{}
	s, err := stack.Start(ctx, stack.Options{
		Root: root, DataDir: dataDir, Log: logs, CubeLog: cubeLog,
		CubeEnv: []string{"CUBE_DATABASE_MEMORY_LIMIT=" + storeMemory},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, cubeLog.String())
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	sessions := `{"measures":["Sessions.count","Sessions.averageDurationMinutes"],"dimensions":["Sessions.agentName","Sessions.agentVersion"],"limit":5000}`
	tests := []struct {
		name, query string
		status      int
		message     string
		level       string
	}{
		{"sessions past the store's memory", sessions, 503, "503 Service Unavailable: the events store failed: it ran out of memory for this query", "ERROR"},
		{"an unknown member", `{"measures":["TrackedEvents.nope"]}`, 400, "TrackedEvents.nope", "INFO"},
		// The store itself answers what fits.
		{"a count that fits", `{"measures":["TrackedEvents.count"]}`, 200, "", "INFO"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("store-%d", i)
			req, _ := http.NewRequestWithContext(ctx, "POST", s.APIURL+"/api/v4/projects/1/product_analytics/request/load", strings.NewReader(`{"query":`+tt.query+`}`))
			req.Header.Set("Authorization", "Bearer "+stack.Token(time.Hour, 1))
			req.Header.Set("X-Request-Id", id)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var m struct{ Message string }
			json.Unmarshal(body, &m)
			if resp.StatusCode != tt.status || tt.status != 200 && !strings.Contains(m.Message, tt.message) {
				t.Fatalf("got %d %s; want %d %q", resp.StatusCode, body, tt.status, tt.message)
			}
			if strings.Contains(string(body), "MiB") || strings.Contains(string(body), "stack") {
				t.Errorf("the store's or Cube's own words reached the caller: %s", body)
			}
			line := lineOf(t, logs, id)
			if line["level"] != tt.level || line["status"] != float64(tt.status) {
				t.Errorf("log line %v; want status %d at %s", line, tt.status, tt.level)
			}
			if tt.status == 503 {
				if r, _ := line["reason"].(string); !strings.Contains(r, "Out of Memory Error") {
					t.Errorf("the log line's reason %q does not say what the store said", r)
				}
				if line["Reason"] != "StoreFailed" {
					t.Errorf("counted as %v, want Reason StoreFailed", line["Reason"])
				}
			}
		})
	}
}

// lineOf waits for the log line, in logs, of the request sent with
// X-Request-Id id; the API writes it after its answer.
func lineOf(t *testing.T, logs *logcheck.Buffer, id string) map[string]any {
	t.Helper()
	var line map[string]any
	wait.Until(t, "the API's log line of request "+id, func() bool {
		for l := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(l, `"request_id":"`+id+`"`) {
				return json.Unmarshal([]byte(l), &line) == nil
			}
		}
		return false
	})
	return line
}
