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
	"productanalytics/shared/access/gitlabtest"
)

// TestGitLabModeEndToEnd runs a second local stack, as `make run` would
// with AUTH_MODE=gitlab, against a stand-in GitLab started here: callers
// send GitLab tokens, the API asks the stand-in, and the real Cube answers
// only those GitLab lets read the project.
func TestGitLabModeEndToEnd(t *testing.T) {
	gl := gitlabtest.NewStandard()
	defer gl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &logcheck.Buffer{}
	s, err := stack.Start(ctx, stack.Options{
		Root: root, DataDir: dataDir, Log: logs,
		// Long bounds: a loaded machine must not turn an answer into a
		// timeout, nor let the reporter's cached access expire mid-test.
		Env: map[string]string{"AUTH_MODE": "gitlab", "GITLAB_URL": gl.URL, "GITLAB_TIMEOUT": "10s", "GITLAB_ALLOW_TTL": "1h"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()

	pat := func(role string) http.Header {
		return gitlabtest.Header(gitlabtest.PrivateToken, gitlabtest.Token(gitlabtest.PrivateToken, role))
	}
	oauth := func(role string) http.Header {
		return gitlabtest.Header(gitlabtest.OAuth, gitlabtest.Token(gitlabtest.OAuth, role))
	}
	loadBody := `{"query":` + seedSessions + `,"queryType":"multi"}`
	tests := []struct {
		name    string
		header  http.Header
		method  string
		project string
		fail    bool // the stand-in GitLab answers 500
		status  int
		message string // "" when Cube's data is expected
	}{
		{"reporter's PRIVATE-TOKEN gets data", pat("reporter-via-project"), "POST", "1", false, 200, ""},
		{"developer via group, OAuth token, meta", oauth("developer-via-group"), "GET", "1", false, 200, ""},
		{"guest", pat("guest-via-project"), "POST", "1", false, 401, "Access Denied"},
		{"guest via group", oauth("guest-via-group"), "POST", "1", false, 401, "Access Denied"},
		{"hidden project", pat("maintainer-via-project"), "POST", "4", false, 404, "404 Project Not Found"},
		{"revoked token", pat("revoked"), "POST", "1", false, 401, "401 Unauthorized"},
		{"a JWT means nothing to GitLab", http.Header{"Authorization": {"Bearer " + stack.Token(time.Hour, 1)}}, "POST", "1", false, 401, "401 Unauthorized"},
		{"GitLab failing", pat("maintainer-via-group"), "POST", "1", true, 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fail {
				gl.Fail(500, 0, "")
				defer gl.Fail(0, 0, "")
			}
			path := "/api/v4/projects/" + tt.project + "/product_analytics/request/load"
			body := io.Reader(strings.NewReader(loadBody))
			if tt.method == "GET" {
				path, body = "/api/v4/projects/"+tt.project+"/product_analytics/request/meta", nil
			}
			req, _ := http.NewRequestWithContext(ctx, tt.method, s.APIURL+path, body)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("%d %s; want %d", resp.StatusCode, truncate(string(b), 300), tt.status)
			}
			var out struct {
				Message *string           `json:"message"`
				Results []json.RawMessage `json:"results"`
				Cubes   []json.RawMessage `json:"cubes"`
			}
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("not JSON: %s", truncate(string(b), 300))
			}
			switch {
			case tt.status == 200 && len(out.Results) == 0 && len(out.Cubes) == 0:
				t.Fatalf("no data: %s", truncate(string(b), 300))
			case tt.message != "" && (out.Message == nil || *out.Message != tt.message):
				t.Fatalf("body %s; want message %q", b, tt.message)
			}
		})
	}
	// The reporter's second request is answered from the cache.
	calls := gl.Calls()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.APIURL+"/api/v4/projects/1/product_analytics/request/load", strings.NewReader(loadBody))
	req.Header = pat("reporter-via-project")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || gl.Calls() != calls {
		t.Fatalf("second request: %d after %d GitLab calls; want 200 from the cache", resp.StatusCode, gl.Calls()-calls)
	}
	// Each request's line is written after its answer: wait for them all.
	wait.Until(t, fmt.Sprintf("%d request log lines", len(tests)+1), func() bool {
		return strings.Count(logs.String(), `"msg":"request"`) == len(tests)+1
	})
	out := logs.String()
	var tokens []string
	for _, kind := range []gitlabtest.Kind{gitlabtest.PrivateToken, gitlabtest.OAuth} {
		for _, r := range append(gitlabtest.Roles(), gitlabtest.Role{Name: "revoked"}) {
			tokens = append(tokens, gitlabtest.Token(kind, r.Name))
		}
	}
	if err := logcheck.Leak(out, tokens...); err != nil {
		t.Fatal(err)
	}
}
