// Package dashboards holds the Cube queries GitLab's product analytics
// dashboards send, so that the warm-up can run them ahead of the people who
// open the dashboards, and the tests can check each is served.
package dashboards

import (
	"encoding/json"
	"strings"
	"time"
)

// Query is one dashboard panel's Cube query.
type Query struct {
	// Name identifies the panel, e.g. "daily_active_users".
	Name string
	// Query is the Cube query JSON.
	Query json.RawMessage
}

// panel is a query before its date filter is fixed.
type panel struct {
	name       string
	measure    string
	dimensions []string
	byDay      bool
	pageViews  bool // filter on event = page_view
}

var panels = []panel{
	{name: "daily_active_users", measure: "TrackedEvents.uniqueUsersCount", byDay: true},
	{name: "events_over_time", measure: "TrackedEvents.count", byDay: true},
	{name: "page_views_over_time", measure: "TrackedEvents.pageViewsCount", byDay: true, pageViews: true},
	{name: "total_page_views", measure: "TrackedEvents.pageViewsCount", pageViews: true},
	{name: "total_events", measure: "TrackedEvents.count"},
	{name: "total_unique_users", measure: "TrackedEvents.uniqueUsersCount"},
	{name: "top_pages", measure: "TrackedEvents.pageViewsCount", dimensions: []string{"TrackedEvents.pageUrlpath", "TrackedEvents.pageUrl"}},
	{name: "browsers_per_users", measure: "TrackedEvents.uniqueUsersCount", dimensions: []string{"TrackedEvents.agentName", "TrackedEvents.agentVersion"}},
	{name: "sessions_over_time", measure: "Sessions.count", byDay: true},
	{name: "total_sessions", measure: "Sessions.count"},
	{name: "average_session_duration", measure: "Sessions.averageDurationMinutes"},
	{name: "sessions_per_user", measure: "Sessions.averagePerUser"},
	{name: "returning_users_percent", measure: "Sessions.repeatPercent"},
	{name: "sessions_per_browser", measure: "Sessions.count", dimensions: []string{"Sessions.agentName", "Sessions.agentVersion"}},
}

// timeMember is the member each cube's date filter and daily series use.
var timeMember = map[string]string{
	"TrackedEvents":  "TrackedEvents.derivedTstamp",
	"Sessions":       "Sessions.startAt",
	"ReturningUsers": "ReturningUsers.first_timestamp",
}

// Queries returns the dashboards' queries as sent on the day of now: each
// over the last seven days up to today, in UTC, at most 100 rows.
func Queries(now time.Time) []Query { return QueriesOver(now, 7) }

// QueriesOver returns the dashboards' queries over the last days days up to
// the day of now, in UTC: the date range a viewer of the dashboards picks.
func QueriesOver(now time.Time, days int) []Query {
	now = now.UTC()
	return build(now.AddDate(0, 0, -days).Format(time.DateOnly), now.Format(time.DateOnly))
}

// The placeholders Template leaves in the date filter's values.
const (
	FromPlaceholder = "{{from}}"
	ToPlaceholder   = "{{to}}"
)

// Template returns the dashboards' queries with their date range left open:
// the date filter's values are FromPlaceholder and ToPlaceholder. A client
// that dates queries itself (the dashboards page, in the viewer's browser)
// replaces them with the first and last day, as QueriesOver dates them, and
// so sends the very same queries.
func Template() []Query { return build(FromPlaceholder, ToPlaceholder) }

// build returns the queries filtered on the days from through to.
func build(from, to string) []Query {
	out := make([]Query, 0, len(panels))
	for _, p := range panels {
		cube, _, _ := strings.Cut(p.measure, ".")
		q := map[string]any{
			"measures": []string{p.measure},
			"filters": append([]map[string]any{{
				"member": timeMember[cube], "operator": "inDateRange", "values": []string{from, to},
			}}, pageViewFilter(p)...),
			"limit":    100,
			"timezone": "UTC",
		}
		if len(p.dimensions) > 0 {
			q["dimensions"] = p.dimensions
			q["order"] = tableOrder(p)
		}
		if p.byDay {
			q["timeDimensions"] = []map[string]any{{"dimension": timeMember[cube], "granularity": "day"}}
		}
		b, err := json.Marshal(q)
		if err != nil {
			panic(err) // maps of strings and ints always marshal
		}
		out = append(out, Query{Name: p.name, Query: b})
	}
	return out
}

// tableOrder is a table's order: Cube's own (the measure, descending),
// then each dimension, so that rows of equal measure come in one order on
// every store and the limit cuts a tie the same way.
func tableOrder(p panel) [][2]string {
	order := [][2]string{{p.measure, "desc"}}
	for _, d := range p.dimensions {
		order = append(order, [2]string{d, "asc"})
	}
	return order
}

func pageViewFilter(p panel) []map[string]any {
	if !p.pageViews {
		return nil
	}
	return []map[string]any{{"member": "TrackedEvents.event", "operator": "equals", "values": []string{"page_view"}}}
}
