package volume

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/stack"
)

// TestRollupReads: the queries whose answer over one of the store's
// rollups (users and pages by day, cube/schema/user_days.sql and
// page_days.sql) is their answer over the events read it, and every other
// query reads the events; either way the answer is the one the events give. The data has sessions at the ranges' first and last
// instants and across midnight (edges_test.go), where a rollup of days
// would first go wrong.
func TestRollupReads(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := startDuckDB(t, ctx)
	s, evs, end := d.stack, d.events, d.end
	last := end.Format(time.DateOnly)
	first := end.AddDate(0, 0, -30).Format(time.DateOnly)
	days := fmt.Sprintf(`[{"member":"TrackedEvents.derivedTstamp","operator":"inDateRange","values":[%q,%q]}]`, first, last)
	// A range that starts at noon: its first day is split.
	noon := fmt.Sprintf(`[{"member":"TrackedEvents.derivedTstamp","operator":"inDateRange","values":[%q,%q]}]`, first+"T12:00:00.000", last+"T23:59:59.999")
	// A range that ends before its last day's last millisecond.
	early := fmt.Sprintf(`[{"member":"TrackedEvents.derivedTstamp","operator":"inDateRange","values":[%q,%q]}]`, first+"T00:00:00.000", last+"T23:59:59.000")
	byDay := `[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}]`
	pageViews := `{"member":"TrackedEvents.event","operator":"equals","values":["page_view"]}`
	tests := []struct {
		name   string
		query  string
		rollup string // the rollup it reads, or "" for the events
		// checked against the events in Go (only UTC and the filters
		// expected() knows)
		checked bool
	}{
		{"users by day over whole days", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":` + byDay + `,"filters":` + days + `,"timezone":"UTC"}`, "user_days", true},
		{"users over whole days", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":` + days + `,"timezone":"UTC"}`, "user_days", true},
		{"users by browser over whole days", `{"measures":["TrackedEvents.uniqueUsersCount"],"dimensions":["TrackedEvents.agentName","TrackedEvents.agentVersion"],"filters":` + days + `,"order":[["TrackedEvents.uniqueUsersCount","desc"],["TrackedEvents.agentName","asc"],["TrackedEvents.agentVersion","asc"]],"timezone":"UTC"}`, "user_days", true},
		{"users by utcTime's day", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":[{"dimension":"TrackedEvents.utcTime","granularity":"day"}],"filters":[{"member":"TrackedEvents.utcTime","operator":"inDateRange","values":["` + first + `","` + last + `"]}],"timezone":"UTC"}`, "user_days", true},
		{"users by month", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"month","dateRange":["` + first + `","` + last + `"]}],"timezone":"UTC"}`, "user_days", false},
		{"users before a day", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":[{"member":"TrackedEvents.derivedTstamp","operator":"beforeDate","values":["` + last + `"]}],"timezone":"UTC"}`, "user_days", false},
		{"users from noon", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":` + byDay + `,"filters":` + noon + `,"timezone":"UTC"}`, "", true},
		{"users to a second before midnight", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":` + early + `,"timezone":"UTC"}`, "", true},
		{"users and events", `{"measures":["TrackedEvents.uniqueUsersCount","TrackedEvents.count"],"filters":` + days + `,"timezone":"UTC"}`, "", true},
		{"users of page views", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":[` + strings.Trim(days, "[]") + `,{"member":"TrackedEvents.event","operator":"equals","values":["page_view"]}],"timezone":"UTC"}`, "", true},
		{"users by hour", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"hour"}],"filters":` + days + `,"timezone":"UTC"}`, "", false},
		{"users by day in another zone", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":` + byDay + `,"filters":` + days + `,"timezone":"Europe/Berlin"}`, "", false},
		{"users after a day", `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":[{"member":"TrackedEvents.derivedTstamp","operator":"afterDate","values":["` + first + `"]}],"timezone":"UTC"}`, "", false},
		{"events by day", `{"measures":["TrackedEvents.count"],"timeDimensions":` + byDay + `,"filters":` + days + `,"timezone":"UTC"}`, "page_days", true},
		{"page views by day", `{"measures":["TrackedEvents.pageViewsCount"],"timeDimensions":` + byDay + `,"filters":[` + strings.Trim(days, "[]") + `,` + pageViews + `],"timezone":"UTC"}`, "page_days", true},
		{"events and page views", `{"measures":["TrackedEvents.count","TrackedEvents.pageViewsCount"],"filters":` + days + `,"timezone":"UTC"}`, "page_days", true},
		{"top pages", `{"measures":["TrackedEvents.pageViewsCount"],"dimensions":["TrackedEvents.pageUrlpath","TrackedEvents.pageUrl"],"filters":[` + strings.Trim(days, "[]") + `,` + pageViews + `],"order":[["TrackedEvents.pageViewsCount","desc"],["TrackedEvents.pageUrlpath","asc"],["TrackedEvents.pageUrl","asc"]],"limit":100,"timezone":"UTC"}`, "page_days", true},
		{"events by type and week", `{"measures":["TrackedEvents.count"],"dimensions":["TrackedEvents.event"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"week"}],"filters":` + days + `,"order":[["TrackedEvents.derivedTstamp","asc"],["TrackedEvents.event","asc"]],"timezone":"UTC"}`, "page_days", false},
		{"events of a path prefix", `{"measures":["TrackedEvents.count"],"filters":[` + strings.Trim(days, "[]") + `,{"member":"TrackedEvents.pageUrlpath","operator":"startsWith","values":["/install"]}],"timezone":"UTC"}`, "page_days", false},
		{"events from noon", `{"measures":["TrackedEvents.count"],"filters":` + noon + `,"timezone":"UTC"}`, "", true},
		{"events by name", `{"measures":["TrackedEvents.count"],"dimensions":["TrackedEvents.eventName"],"filters":` + days + `,"timezone":"UTC"}`, "", false},
		{"link clicks", `{"measures":["TrackedEvents.linkClicksCount"],"filters":` + days + `,"timezone":"UTC"}`, "", false},
		{"users by page", `{"measures":["TrackedEvents.uniqueUsersCount"],"dimensions":["TrackedEvents.pageUrlpath"],"filters":` + days + `,"timezone":"UTC"}`, "", false},
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
			if reads := rollupRead(sql); reads != tt.rollup {
				t.Errorf("reads %q, want %q (\"\": the events); Cube's SQL:\n%s", reads, tt.rollup, sql)
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
				if tt.rollup != "" {
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

// rollupRead is the rollup Cube's SQL reads, or "" for the events.
func rollupRead(sql string) string {
	for _, table := range []string{"user_days", "page_days"} {
		if strings.Contains(sql, fmt.Sprintf("gitlab_project_%d.%s", answersProject, table)) {
			return table
		}
	}
	return ""
}

// checkAgainstEvents compares got, the answer to query read from a
// rollup, with the answer to the same query with a filter that keeps every
// event (its id is set) and that no rollup serves, so that it reads the
// events: the same rows, member by member.
func checkAgainstEvents(t *testing.T, ctx context.Context, s *stack.Stack, query string, got []map[string]any) {
	t.Helper()
	var q map[string]any
	if err := json.Unmarshal([]byte(query), &q); err != nil {
		t.Fatal(err)
	}
	filters, _ := q["filters"].([]any)
	q["filters"] = append(filters, map[string]any{"member": "TrackedEvents.eventId", "operator": "set"})
	twin, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	if sql, _, err := cubeSQL(ctx, s, answersProject, twin); err != nil {
		t.Fatal(err)
	} else if reads := rollupRead(sql); reads != "" {
		t.Fatalf("the query meant to read the events reads %s", reads)
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
		if g, w := fmt.Sprint(got[i]), fmt.Sprint(want[i]); g != w {
			t.Errorf("row %d: %s from the rollup, %s from the events", i, g, w)
		}
	}
}
