package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"productanalytics/internal/logcheck"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// storeMemory is the memory each project's DuckDB database may use in the
// stack of TestACubeWithLittleForEachProject: far too little for the
// sessions of project 1's 100,000 events, which DuckDB groups whole.
const storeMemory = "2MB"

// TestACubeWithLittleForEachProject runs a second stack whose Cube gives
// each project's database a tiny memory limit and each project one request
// at a time, with no queue, and checks what reaches the caller through the
// API when Cube or its store refuses:
//   - the store runs out of memory, as a project of millions of events does
//     with the default limit: 503 with a clear message, logged as an error
//     and counted, never the 400 of a mistake; the caller's own mistake, on
//     the same stack, stays 400, and what fits is answered;
//   - Cube refuses a project past its share with 429: the caller gets 429
//     with Cube's Retry-After, while another project is served.
func TestACubeWithLittleForEachProject(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	logs, cubeLog := &logcheck.Buffer{}, &logcheck.Buffer{}
	s, err := stack.Start(ctx, stack.Options{
		Root: root, DataDir: dataDir, Log: logs, CubeLog: cubeLog,
		// A slow query holds its project's one place at Cube: Cube
		// answers it before it would say "Continue wait".
		TestModel: true, SlowQuery: 4 * time.Second, ContinueWait: 10 * time.Second,
		CubeEnv: []string{"CUBE_DATABASE_MEMORY_LIMIT=" + storeMemory, "CUBE_TENANT_MAX_IN_FLIGHT=1", "CUBE_TENANT_QUEUE_WAIT=0"},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, cubeLog.String())
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := logcheck.Leak(logs.String()+cubeLog.String(), stack.LocalCubeKey, stack.LocalCallerKey); err != nil {
			t.Error(err)
		}
	}()
	load := func(id string, project int64, query string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%s/api/v4/projects/%d/product_analytics/request/load", s.APIURL, project), strings.NewReader(`{"query":`+query+`}`))
		req.Header.Set("Authorization", "Bearer "+stack.Token(time.Hour, 1, 2))
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			return nil, ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	t.Run("a store failure is not the caller's fault", func(t *testing.T) {
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
				resp, body := load(id, 1, tt.query)
				if resp == nil {
					return
				}
				var m struct{ Message string }
				json.Unmarshal([]byte(body), &m)
				if resp.StatusCode != tt.status || tt.status != 200 && !strings.Contains(m.Message, tt.message) {
					t.Fatalf("got %d %s; want %d %q", resp.StatusCode, body, tt.status, tt.message)
				}
				if strings.Contains(body, "MiB") || strings.Contains(body, "stack") {
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
	})

	t.Run("Cube's 429 passed on", func(t *testing.T) {
		slow := fmt.Sprintf(`{"measures":["SlowEvents.count"],"filters":[{"member":"SlowEvents.event","operator":"notEquals","values":["busy-%d"]}]}`, time.Now().UnixNano())
		var wg sync.WaitGroup
		wg.Go(func() {
			if resp, body := load("holding", 1, slow); resp != nil && resp.StatusCode != 200 {
				t.Errorf("the request holding the project's place: %d %s", resp.StatusCode, body)
			}
		})
		defer wg.Wait()
		wait.Until(t, "Cube's log of the request holding the project's place", func() bool {
			return strings.Contains(cubeLog.String(), `"requestId":"holding`)
		})
		resp, body := load("refused", 1, `{"measures":["TrackedEvents.count"]}`)
		if resp == nil {
			return
		}
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" ||
			!strings.Contains(body, `"message":"429 Too Many Requests: Cube is working on as much as it takes at once, of this project's queries or of large answers; retry after 1 second"`) {
			t.Errorf("got %d %v %s; want 429 with Cube's Retry-After", resp.StatusCode, resp.Header, body)
		}
		if strings.Contains(body, "CUBE_TENANT") {
			t.Errorf("Cube's own words reached the caller: %s", body)
		}
		if resp, body := load("other-project", 2, `{"measures":["TrackedEvents.count"]}`); resp != nil && resp.StatusCode != 200 {
			t.Errorf("another project meanwhile: %d %s", resp.StatusCode, body)
		}
		line := lineOf(t, logs, "refused")
		if line["status"] != 429.0 || line["level"] != "INFO" || line["Reason"] != "CubeBusy" || line["polls"] != 0.0 {
			t.Errorf("the refusal's log line: %v; want 429 at INFO, Reason CubeBusy, asked once", line)
		}
	})
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
