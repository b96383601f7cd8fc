// Package web is the dashboards page: GitLab's Audience and Behavior
// product analytics dashboards, drawn in the browser from the API with
// GitLab's own client library (@cubejs-client/core) and charting library
// (ECharts). The local stack serves it beside the API; Export writes it as
// static files for any static host in front of a deployed API.
//
// The page's files are in the web/ folder of the project; the panels'
// queries are shared/dashboards', handed to the page as dashboards.json so
// that the page sends exactly the queries the warm-up runs.
package web

import (
	"encoding/json"
	"fmt"

	"productanalytics/shared/dashboards"
)

// Visualizations the page draws, named as GitLab's dashboards name them.
const (
	SingleStat  = "SingleStat"
	LineChart   = "LineChart"
	ColumnChart = "ColumnChart"
	DataTable   = "DataTable"
)

// Panel is one panel of a dashboard.
type Panel struct {
	// Name is the panel's query in shared/dashboards.
	Name string `json:"name"`
	// Title is what the panel is headed with.
	Title string `json:"title"`
	// Visualization is how the panel draws its query's answer.
	Visualization string `json:"visualization"`
	// Unit follows a single stat's number ("%", "min").
	Unit string `json:"unit,omitempty"`
	// Query is the panel's Cube query with its date range left as
	// dashboards.FromPlaceholder and dashboards.ToPlaceholder.
	Query json.RawMessage `json:"query"`
}

// Dashboard is one dashboard: panels drawn together.
type Dashboard struct {
	// Slug identifies the dashboard in the page ("audience").
	Slug string `json:"slug"`
	// Title and Description head it.
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Panels      []Panel `json:"panels"`
}

// Config is what the page reads from dashboards.json.
type Config struct {
	// Ranges are the date ranges offered, in days; the first is the default.
	Ranges []int `json:"ranges"`
	// From and To are the placeholders of the queries' date range; the page
	// replaces them with the first and last day (YYYY-MM-DD, UTC) of the
	// range, as dashboards.QueriesOver dates the queries.
	From string `json:"from"`
	To   string `json:"to"`
	// Dashboards are drawn in this order.
	Dashboards []Dashboard `json:"dashboards"`
}

// Ranges are the date ranges the page offers, in days.
var Ranges = []int{7, 30, 90}

// gitlabDashboards lay out GitLab's built-in Audience and Behavior
// dashboards over the panels of shared/dashboards; their queries are filled
// in from there by Dashboards, so that no query is written twice.
var gitlabDashboards = []Dashboard{
	{
		Slug: "audience", Title: "Audience",
		Description: "Who uses the application: users, sessions, browsers.",
		Panels: []Panel{
			{Name: "total_unique_users", Title: "Unique users", Visualization: SingleStat},
			{Name: "total_sessions", Title: "Sessions", Visualization: SingleStat},
			{Name: "sessions_per_user", Title: "Sessions per user", Visualization: SingleStat},
			{Name: "returning_users_percent", Title: "Returning users", Visualization: SingleStat, Unit: "%"},
			{Name: "average_session_duration", Title: "Average session duration", Visualization: SingleStat, Unit: "min"},
			{Name: "daily_active_users", Title: "Daily active users", Visualization: LineChart},
			{Name: "sessions_over_time", Title: "Sessions over time", Visualization: ColumnChart},
			{Name: "browsers_per_users", Title: "Users per browser", Visualization: DataTable},
			{Name: "sessions_per_browser", Title: "Sessions per browser", Visualization: DataTable},
		},
	},
	{
		Slug: "behavior", Title: "Behavior",
		Description: "What users do: page views, events, the most viewed pages.",
		Panels: []Panel{
			{Name: "total_page_views", Title: "Page views", Visualization: SingleStat},
			{Name: "total_events", Title: "Events", Visualization: SingleStat},
			{Name: "page_views_over_time", Title: "Page views over time", Visualization: LineChart},
			{Name: "events_over_time", Title: "Events over time", Visualization: ColumnChart},
			{Name: "top_pages", Title: "Top pages", Visualization: DataTable},
		},
	},
}

// Dashboards returns GitLab's Audience and Behavior dashboards with each
// panel's query template from shared/dashboards.
func Dashboards() []Dashboard {
	ds, err := withQueries(gitlabDashboards, dashboards.Template())
	if err != nil {
		panic(err) // the layout is fixed; TestEveryQueryIsDrawnOnce keeps it whole
	}
	return ds
}

// withQueries returns a copy of ds with each panel's query from queries,
// failing on a panel that names no query.
func withQueries(ds []Dashboard, queries []dashboards.Query) ([]Dashboard, error) {
	byName := make(map[string]json.RawMessage, len(queries))
	for _, q := range queries {
		byName[q.Name] = q.Query
	}
	out := make([]Dashboard, len(ds))
	for i, d := range ds {
		d.Panels = append([]Panel(nil), d.Panels...)
		for j, p := range d.Panels {
			if p.Query != nil {
				continue // a panel brought with its own query (tests)
			}
			q, ok := byName[p.Name]
			if !ok {
				return nil, fmt.Errorf("dashboard %s: panel %s has no query in shared/dashboards", d.Slug, p.Name)
			}
			d.Panels[j].Query = q
		}
		out[i] = d
	}
	return out, nil
}

// ConfigJSON returns dashboards.json for the given dashboards.
func ConfigJSON(ds []Dashboard) []byte {
	b, err := json.MarshalIndent(Config{
		Ranges: Ranges, From: dashboards.FromPlaceholder, To: dashboards.ToPlaceholder, Dashboards: ds,
	}, "", "  ")
	if err != nil {
		panic(err) // strings, ints and valid raw JSON always marshal
	}
	return append(b, '\n')
}
