package volume

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/stack"
)

// TestRollupReads: the queries whose answer over the store's users by day
// (cube/schema/user_days.sql) is their answer over the events read it, and
// every other query reads the events; either way the answer is the one the
// events give. The data has sessions at the ranges' first and last
// instants and across midnight (edges_test.go), where a rollup of days
// would first go wrong.
func TestRollupReads(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := rootDir()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dataDir, csvDir := filepath.Join(tmp, "events"), filepath.Join(tmp, "csv")
	end := time.Now().UTC().Truncate(time.Second)
	if err := stack.InstallCube(ctx, root, os.Stderr); err != nil {
		t.Fatal(err)
	}
	evs := csvEvents(t, ctx, root, csvDir, end, generatorArgs(end, false))
	if err := loadDuckDB(ctx, root, dataDir, answersProject, filepath.Join(csvDir, fmt.Sprintf("project_%d.csv", answersProject))); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(ctx, stack.Options{Root: root, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	last := end.Format(time.DateOnly)
	first := end.AddDate(0, 0, -30).Format(time.DateOnly)
	days := fmt.Sprintf(`[{"member":"TrackedEvents.derivedTstamp","operator":"inDateRange","values":[%q,%q]}]`, first, last)
	// A range that starts at noon: its first day is split.
	noon := fmt.Sprintf(`[{"member":"TrackedEvents.derivedTstamp","operator":"inDateRange","values":[%q,%q]}]`, first+"T12:00:00.000", last+"T23:59:59.999")
	// A range that ends before its last day's last millisecond.
	early := fmt.Sprintf(`[{"member":"TrackedEvents.derivedTstamp","operator":"inDateRange","values":[%q,%q]}]`, first+"T00:00:00.000", last+"T23:59:59.000")
	byDay := `[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}]`
	tests := []struct {
		name   string
		query  string
		rollup bool
		// checked against the events in Go (only UTC and the filters
		// expected() knows)
		checked bool
	}{
		{"users by day over whole days", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":` + byDay + `,"filters":` + days + `,"timezone":"UTC"}`, true, true},
		{"users over whole days", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":` + days + `,"timezone":"UTC"}`, true, true},
		{"users by browser over whole days", `{"measures":["TrackedEvents.uniqueUsersCount"],"dimensions":["TrackedEvents.agentName","TrackedEvents.agentVersion"],"filters":` + days + `,"order":[["TrackedEvents.uniqueUsersCount","desc"],["TrackedEvents.agentName","asc"],["TrackedEvents.agentVersion","asc"]],"timezone":"UTC"}`, true, true},
		{"users by utcTime's day", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":[{"dimension":"TrackedEvents.utcTime","granularity":"day"}],"filters":[{"member":"TrackedEvents.utcTime","operator":"inDateRange","values":["` + first + `","` + last + `"]}],"timezone":"UTC"}`, true, true},
		{"users by month", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"month","dateRange":["` + first + `","` + last + `"]}],"timezone":"UTC"}`, true, false},
		{"users before a day", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":[{"member":"TrackedEvents.derivedTstamp","operator":"beforeDate","values":["` + last + `"]}],"timezone":"UTC"}`, true, false},
		{"users from noon", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":` + byDay + `,"filters":` + noon + `,"timezone":"UTC"}`, false, true},
		{"users to a second before midnight", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":` + early + `,"timezone":"UTC"}`, false, true},
		{"users and events", `{"measures":["TrackedEvents.uniqueUsersCount","TrackedEvents.count"],"filters":` + days + `,"timezone":"UTC"}`, false, true},
		{"users of page views", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":[` + strings.Trim(days, "[]") + `,{"member":"TrackedEvents.event","operator":"equals","values":["page_view"]}],"timezone":"UTC"}`, false, true},
		{"users by hour", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"hour"}],"filters":` + days + `,"timezone":"UTC"}`, false, false},
		{"users by day in another zone", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":` + byDay + `,"filters":` + days + `,"timezone":"Europe/Berlin"}`, false, false},
		{"users after a day", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":[{"member":"TrackedEvents.derivedTstamp","operator":"afterDate","values":["` + first + `"]}],"timezone":"UTC"}`, false, false},
		{"users by page", `{"measures":["TrackedEvents.uniqueUsersCount"],"dimensions":["TrackedEvents.pageUrlpath"],"filters":` + days + `,"timezone":"UTC"}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.query)) {
				t.Fatalf("not JSON: %s", tt.query)
			}
			sql, _, err := cubeSQL(ctx, s, answersProject, []byte(tt.query))
			if err != nil {
				t.Fatal(err)
			}
			reads := strings.Contains(sql, fmt.Sprintf("gitlab_project_%d.user_days", answersProject))
			if reads != tt.rollup {
				t.Errorf("reads user_days: %v, want %v; Cube's SQL:\n%s", reads, tt.rollup, sql)
			}
			a, err := load(ctx, s, answersProject, []byte(tt.query))
			if err != nil {
				t.Fatal(err)
			}
			got, err := resultRows(a)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.checked {
				if tt.rollup {
					checkAgainstEvents(t, ctx, s, tt.query, got)
				}
				return
			}
			want, err := expected(evs, []byte(tt.query))
			if err != nil {
				t.Fatal(err)
			}
			if !anyFigure(want) {
				t.Fatalf("the computed answer has no figure but 0: %v", want)
			}
			if diffs := differences(got, want); len(diffs) > 0 {
				t.Errorf("the API's answer differs from the events':\n%s", joinLines(diffs))
			}
		})
	}
}

// checkAgainstEvents compares got, the answer to query read from the
// rollup, with the answer to the same query asked with the count of events
// beside it, which reads the events: the users' figures and every other
// member must be the same, row by row.
func checkAgainstEvents(t *testing.T, ctx context.Context, s *stack.Stack, query string, got []map[string]any) {
	t.Helper()
	var q map[string]any
	if err := json.Unmarshal([]byte(query), &q); err != nil {
		t.Fatal(err)
	}
	q["measures"] = append(q["measures"].([]any), "TrackedEvents.count")
	twin, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	a, err := load(ctx, s, answersProject, twin)
	if err != nil {
		t.Fatal(err)
	}
	want, err := resultRows(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("%d rows from the rollup, %d from the events", len(got), len(want))
	}
	for i := range want {
		delete(want[i], "TrackedEvents.count")
		if g, w := fmt.Sprint(got[i]), fmt.Sprint(want[i]); g != w {
			t.Errorf("row %d: %s from the rollup, %s from the events", i, g, w)
		}
	}
}
