package funnels

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/seed"
	"productanalytics/internal/stack"
	"productanalytics/internal/wait"
)

// TestHostileDefinitions: definitions carrying quotes, SQL, path tricks,
// 10,000 steps or a megabyte are refused by Cube with their reasons, and
// are no cube; a valid funnel with odd targets answers, and nothing of its
// targets reaches the store's SQL as text.
func TestHostileDefinitions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := filepath.Join(funnelsDir, "2")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	step := func(name, target string) string {
		return "  - name: " + name + "\n    action: pageview\n    target: " + target + "\n"
	}
	hostile := map[string]struct{ data, reason string }{
		"quote.yml":     {"seconds_to_convert: 60\nsteps:\n" + step("a", `"/x' OR '1'='1"`), "step 1's target must be a page path"},
		"sql.yml":       {"seconds_to_convert: 60\nsteps:\n" + step("a", `"/'); DROP TABLE gitlab_project_1.snowplow_events; --"`), "step 1's target must be a page path"},
		"window.yml":    {"seconds_to_convert: '60) OR (1=1'\nsteps:\n" + step("a", "/"), "seconds_to_convert must be a whole number above 0"},
		"name.yml":      {"seconds_to_convert: 60\nsteps:\n" + step(`"a'--"`, "/"), "step 1's name must be"},
		"many.yml":      {"seconds_to_convert: 60\nsteps: [&s {name: a, action: pageview, target: /}" + strings.Repeat(", *s", 9999) + "]\n", "has 10000 steps: at most 20"},
		"big.yml":       {"seconds_to_convert: 60\nsteps:\n" + step("a", "/") + "#" + strings.Repeat("x", 1<<20), "is larger than 65536 bytes"},
		"1; DROP.yml":   {"seconds_to_convert: 60\nsteps:\n" + step("a", "/"), "must start with a letter"},
		"Дорога.yml":    {"seconds_to_convert: 60\nsteps:\n" + step("a", "/"), "gives no funnel name"},
		"repeated.yaml": {"seconds_to_convert: 60\nsteps:\n" + step("a", "/") + step("b", "/"), "step 2's target is step 1's"},
	}
	for name, h := range hostile {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(h.data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A link to project 1's definition is not project 2's.
	if err := os.Symlink(filepath.Join(funnelsDir, "1", "install.yml"), filepath.Join(dir, "linked.yml")); err != nil {
		t.Fatal(err)
	}
	odd := []string{"/install/../pricing", "/a.b-c_d/./e"}
	valid := "seconds_to_convert: 600\nsteps:\n" + step("odd", odd[0]) + step("odder", odd[1])
	if err := os.WriteFile(filepath.Join(dir, "odd paths.yml"), []byte(valid), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name string
		s    *stack.Stack
		log  interface{ String() string }
	}{{"DuckDB", duck, duckLog}, {"ClickHouse", click, clickLog}} {
		t.Run(s.name, func(t *testing.T) {
			var cubes []string
			deadline, stop := context.WithTimeout(ctx, 60*time.Second)
			defer stop()
			err := wait.For(deadline, "project 2's meta to list odd_paths", func() bool {
				cubes, _ = metaCubes(ctx, s.s, withoutFunnels)
				return slices.Contains(cubes, "odd_paths")
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cubes {
				if strings.ToLower(c) == c && c != "odd_paths" {
					t.Errorf("project 2's meta lists %s", c)
				}
			}
			refused := map[string]string{}
			for line := range strings.SplitSeq(s.log.String(), "\n") {
				var l struct{ Message, AppID, File, Reason string }
				if json.Unmarshal([]byte(line), &l) == nil && l.Message == "Funnel refused" && l.AppID == "gitlab_project_2" {
					refused[l.File] = l.Reason
				}
			}
			for name, h := range hostile {
				if !strings.Contains(refused[name], h.reason) {
					t.Errorf("Cube's log has no refusal of %s (%s): %q", name, h.reason, refused[name])
				}
			}
			if _, ok := refused["linked.yml"]; ok {
				t.Error("the link was read")
			}
			// The API reads the folder on its own schedule (FUNNELS_TTL):
			// the funnel Cube lists may reach its allow-list a moment later.
			q := seed.Body(funnelQuery("odd_paths", end.AddDate(0, 0, -29), end.Add(24*time.Hour-time.Millisecond)))
			var a answer
			err = wait.For(deadline, "the API to answer the odd funnel", func() bool {
				a, err = call(ctx, apiURL(s.s, withoutFunnels, "request/load"), token(withoutFunnels), q)
				return err == nil && a.status == http.StatusOK
			})
			if err != nil {
				t.Fatalf("the odd funnel: %v %s", err, a)
			}
		})
	}
	// What project 2's user ran on ClickHouse: the funnel's SQL holds its
	// targets as hex only.
	var queries string
	err := wait.For(ctx, "ClickHouse's query log to show the funnel's query", func() bool {
		out, err := server.Admin(ctx, "SELECT query FROM system.query_log WHERE user = 'gitlab_project_2' AND query LIKE '%unhex%' FORMAT TSVRaw")
		queries = out
		return err == nil && strings.Contains(out, hex.EncodeToString([]byte(odd[0])))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range odd {
		if strings.Contains(queries, target) {
			t.Errorf("the target %q reached ClickHouse's SQL as text", target)
		}
	}
}
