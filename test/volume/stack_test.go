package volume

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"time"

	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
)

// generateCSV writes the demo data generator's CSVs into dir: the same
// events as stack.GenerateData loads, given the same args.
func generateCSV(ctx context.Context, root, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", "./cmd/demodata", "-csv-only", dir}, args...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("generating the events' CSV: %w\n%s", err, out)
	}
	return nil
}

// answer is the API's final answer to a load, after any "Continue wait".
type answer struct {
	status int
	body   []byte
	took   time.Duration // from the first request to the final answer
	polls  int           // "Continue wait" answers before it
}

func (a answer) String() string { return fmt.Sprintf("%d %.300s", a.status, a.body) }

// load sends query to s's API for project, and sends it again on each
// "Continue wait", as the dashboards' client does, until ctx ends.
func load(ctx context.Context, s *stack.Stack, project int64, query []byte) (answer, error) {
	path := fmt.Sprintf("%s/api/v4/projects/%d/product_analytics/request/load", s.APIURL, project)
	body := seed.Body(string(query))
	token := "Bearer " + stack.Token(time.Hour, project)
	start := time.Now()
	for polls := 0; ; polls++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, path, strings.NewReader(body))
		if err != nil {
			return answer{}, err
		}
		req.Header.Set("Authorization", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return answer{}, fmt.Errorf("asking the API: %w", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return answer{}, fmt.Errorf("reading the API's answer: %w", err)
		}
		if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"Continue wait"`)) {
			var cw struct{ Error string }
			if json.Unmarshal(b, &cw) == nil && cw.Error == "Continue wait" {
				continue
			}
		}
		return answer{status: resp.StatusCode, body: b, took: time.Since(start), polls: polls}, nil
	}
}

// resultRows returns results[0].data of a load answer.
func resultRows(a answer) ([]map[string]any, error) {
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("load: %s", a)
	}
	var out struct {
		Results []struct {
			Data []map[string]any `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(a.body, &out); err != nil || len(out.Results) != 1 {
		return nil, fmt.Errorf("the answer is not one result: %s", a)
	}
	return out.Results[0].Data, nil
}

// rootDir is the project's root folder.
func rootDir() (string, error) { return stack.Root(".") }
