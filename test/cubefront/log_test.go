package cubefront

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/wait"
)

// maxLogLine is cube/front.js's bound of a log line (LOG_LINE).
const maxLogLine = 16 * 1024

// TestLogBound: a request naming a 900 KB member, once cost Cube's log
// 2.7 MB, now costs it a few KB; each of its lines is valid JSON within the
// line bound.
func TestLogBound(t *testing.T) {
	cases := []struct {
		name, path string
		body       func(name string) string
	}{
		{"load", "/cubejs-api/v1/load", func(name string) string {
			return `{"query":{"measures":["TrackedEvents.` + name + `"]}}`
		}},
		{"dimension in a filter", "/cubejs-api/v1/dry-run", func(name string) string {
			return `{"query":{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.docPath","operator":"equals","values":["` + name + `"]}]}}`
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fmt.Sprintf("log-bound-%s-%d", strings.ReplaceAll(c.name, " ", "-"), time.Now().UnixNano())
			before := len(cubeLog.String())
			a := mustSend(t, http.MethodPost, c.path, []byte(c.body(strings.Repeat("a", 900*1024))), withToken(t, 1))
			if a.status != http.StatusBadRequest {
				t.Fatalf("answer %d %.300s; want 400", a.status, a.body)
			}
			if len(a.body) > 2048 {
				t.Errorf("the answer is %d bytes; want the error alone, not the name again", len(a.body))
			}
			// Lines reach the log in the order Cube writes them, and Cube
			// has written the request's before answering it: once a later
			// request's line is there, all of them are.
			marker := "Marker" + strings.ReplaceAll(id, "-", "")
			mustSend(t, http.MethodPost, "/cubejs-api/v1/dry-run", []byte(`{"query":{"measures":["TrackedEvents.`+marker+`"]}}`), withToken(t, 1))
			var at int
			wait.Until(t, "Cube's log of a later request", func() bool {
				at = strings.Index(cubeLog.String()[before:], marker)
				return at >= 0
			})
			logged := cubeLog.String()[before : before+at]
			grown := strings.LastIndexByte(logged, '\n') + 1
			var lines []string
			if grown > 0 {
				lines = strings.Split(strings.TrimSuffix(logged[:grown], "\n"), "\n")
			}
			t.Logf("a 900 KB name cost Cube's log %d bytes in %d lines", grown, len(lines))
			if grown > maxLogLine {
				t.Errorf("Cube's log grew by %d bytes; want at most %d", grown, maxLogLine)
			}
			for _, l := range lines {
				if len(l) > maxLogLine {
					t.Errorf("a log line of %d bytes; want at most %d", len(l), maxLogLine)
				}
				if !json.Valid([]byte(l)) {
					t.Errorf("a log line is not JSON: %.300s", l)
				}
			}
		})
	}
}
