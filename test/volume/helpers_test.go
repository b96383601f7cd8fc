package volume

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"productanalytics/shared/dashboards"
)

// TestExpected holds the independent answer to the model's definitions on
// a few events whose figures are known by hand.
func TestExpected(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	chrome, v1, v2 := text("Chrome"), text("120"), text("119")
	evs := []event{
		// Session s1 of u1 starts the day before the range and goes on inside it.
		{at: at("2025-01-01 23:50:00"), kind: "page_view", user: "u1", session: "s1", sessionIdx: 1, agentName: chrome, agentVersion: v1},
		{at: at("2025-01-02 00:10:00"), kind: "page_ping", user: "u1", session: "s1", sessionIdx: 1, agentName: chrome, agentVersion: v1},
		// s2: u1's second session, two minutes long, its events on two versions.
		{at: at("2025-01-02 10:00:00"), kind: "page_view", user: "u1", session: "s2", sessionIdx: 2, agentName: chrome, agentVersion: v1},
		{at: at("2025-01-02 10:02:00"), kind: "page_view", user: "u1", session: "s2", sessionIdx: 2, agentName: chrome, agentVersion: v2},
		// s3 of u2: one event on the range's last instant.
		{at: at("2025-01-03 23:59:59"), kind: "page_view", user: "u2", session: "s3", sessionIdx: 1},
		// After the range.
		{at: at("2025-01-04 00:00:00"), kind: "page_view", user: "u3", session: "s4", sessionIdx: 1},
	}
	const rng = `"filters":[{"member":"%s","operator":"inDateRange","values":["2025-01-02","2025-01-03"]}]`
	filter := func(member string) string { return strings.Replace(rng, "%s", member, 1) }
	for _, c := range []struct {
		name  string
		query string
		want  []row
	}{
		{"events in the range", `{"measures":["TrackedEvents.count"],` + filter("TrackedEvents.derivedTstamp") + `}`,
			[]row{{"TrackedEvents.count": 4.0}}},
		{"users by day", `{"measures":["TrackedEvents.uniqueUsersCount"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day"}],` + filter("TrackedEvents.derivedTstamp") + `}`,
			[]row{{"TrackedEvents.derivedTstamp.day": "2025-01-02", "TrackedEvents.uniqueUsersCount": 1.0}, {"TrackedEvents.derivedTstamp.day": "2025-01-03", "TrackedEvents.uniqueUsersCount": 1.0}}},
		{"sessions by their start", `{"measures":["Sessions.count"],` + filter("Sessions.startAt") + `}`,
			[]row{{"Sessions.count": 2.0}}},
		{"average duration", `{"measures":["Sessions.averageDurationMinutes"],` + filter("Sessions.startAt") + `}`,
			[]row{{"Sessions.averageDurationMinutes": 1.0}}},
		{"returning users", `{"measures":["Sessions.repeatPercent"],` + filter("Sessions.startAt") + `}`,
			[]row{{"Sessions.repeatPercent": 50.0}}},
		{"a session's browser is the least of its events'", `{"measures":["Sessions.count"],"dimensions":["Sessions.agentName","Sessions.agentVersion"],` + filter("Sessions.startAt") +
			`,"order":[["Sessions.count","desc"],["Sessions.agentName","asc"],["Sessions.agentVersion","asc"]]}`,
			[]row{{"Sessions.agentName": "Chrome", "Sessions.agentVersion": "119", "Sessions.count": 1.0}, {"Sessions.agentName": nil, "Sessions.agentVersion": nil, "Sessions.count": 1.0}}},
		{"nothing selected is one row", `{"measures":["Sessions.averagePerUser"],"filters":[{"member":"Sessions.startAt","operator":"inDateRange","values":["2030-01-01","2030-01-02"]}]}`,
			[]row{{"Sessions.averagePerUser": nil}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := expected(evs, []byte(c.query))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// TestExpectedRefusesWhatItDoesNotKnow: a member, filter or granularity the
// independent answer has no definition of fails the check rather than
// passing unchecked.
func TestExpectedRefusesWhatItDoesNotKnow(t *testing.T) {
	for _, q := range []string{
		`{"measures":["TrackedEvents.linkClicksCount"]}`,
		`{"measures":["Sessions.count"],"dimensions":["Sessions.osName"]}`,
		`{"measures":["Sessions.count"],"timeDimensions":[{"dimension":"Sessions.startAt","granularity":"week"}]}`,
		`{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.event","operator":"contains","values":["page"]}]}`,
		`{"measures":["TrackedEvents.count"],"timezone":"Europe/Paris"}`,
		`{"measures":["TrackedEvents.count"],"dimensions":["Sessions.agentName"]}`,
	} {
		t.Run(q, func(t *testing.T) {
			if _, err := expected(nil, []byte(q)); err == nil {
				t.Errorf("computed an answer to %s", q)
			}
		})
	}
}

func TestBenchSizes(t *testing.T) {
	for _, c := range []struct {
		env  string
		want []int
		ok   bool
	}{
		{"", defaultSizes, true},
		{"100000", []int{100000}, true},
		{"100_000, 100000000", []int{100000, 100000000}, true},
		{"10", nil, false},
		{"1e6", nil, false},
	} {
		t.Run(c.env, func(t *testing.T) {
			got, err := benchSizes(c.env)
			if (err == nil) != c.ok || !reflect.DeepEqual(got, c.want) {
				t.Errorf("benchSizes(%q) = %v, %v; want %v (ok: %v)", c.env, got, err, c.want, c.ok)
			}
		})
	}
}

func TestInlineParams(t *testing.T) {
	for _, c := range []struct {
		sql    string
		params []any
		want   string
		ok     bool
	}{
		{"a >= ? AND a <= ?", []any{"2025-01-01T00:00:00.000", "2025-01-02T23:59:59.999"}, "a >= '2025-01-01T00:00:00.000' AND a <= '2025-01-02T23:59:59.999'", true},
		{"e = ?", []any{`it's \ here`}, `e = 'it\'s \\ here'`, true},
		{"n = ?", []any{100.0}, "n = 100", true},
		{"a = ? AND b = ?", []any{"x"}, "", false},
		{"a = 1", []any{"x"}, "", false},
	} {
		t.Run(c.sql, func(t *testing.T) {
			got, err := inlineParams(c.sql, c.params)
			if (err == nil) != c.ok || got != c.want {
				t.Errorf("got %q, %v; want %q (ok: %v)", got, err, c.want, c.ok)
			}
		})
	}
}

// TestBestSQL: every dashboard panel has plain SQL for both stores, with
// nothing left to fill in.
func TestBestSQL(t *testing.T) {
	for _, store := range []string{"duckdb", "clickhouse"} {
		for _, days := range rangesDays {
			for _, q := range dashboards.QueriesOver(benchEnd, days) {
				t.Run(store+" "+q.Name, func(t *testing.T) {
					from, to := dateRange(q.Query)
					sql, err := bestSQL(store, q.Name, 7, from, to)
					if err != nil {
						t.Fatal(err)
					}
					if strings.ContainsAny(sql, "{}") || !strings.Contains(sql, "gitlab_project_7.snowplow_events") {
						t.Errorf("unfinished SQL: %s", sql)
					}
				})
			}
		}
	}
}
