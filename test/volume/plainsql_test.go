package volume

import (
	"fmt"
	"strings"
	"time"
)

// The best plain SQL for each panel on DuckDB, written by hand over the
// events table: what the store can do for the same answer, beside which
// the API's time is judged. Times are TIMESTAMP literals (the column's own
// type, no per-row conversion), counts are count(*), and a session is
// selected by its start as the model defines it, which needs every event
// of the sessions that start in the range; events after the range cannot
// move a start into it, so they are left out wherever the session's end
// is not needed.

// sessionsOf is the sessions that start in [from, to) with what the
// panels read of them; withEnd keeps the events after the range, which a
// session's end needs.
func sessionsOf(table string, withEnd bool) string {
	upper := "WHERE derived_tstamp < {to}"
	if withEnd {
		upper = ""
	}
	return `(SELECT min(derived_tstamp) AS start_at, max(derived_tstamp) AS end_at,
  min(domain_userid) AS user_id, min(domain_sessionidx) AS idx,
  min(agent_name) AS agent_name, min(agent_version) AS agent_version
  FROM ` + table + ` ` + upper + ` GROUP BY domain_sessionid
  HAVING min(derived_tstamp) >= {from})`
}

// plainSQL are the statements by panel name, with {table}, {from} and
// {to} (the end, excluded) to fill in. Each selects the panel's figure
// last.
var plainSQL = map[string]string{
	"daily_active_users":   `SELECT date_trunc('day', derived_tstamp) AS day, count(DISTINCT domain_userid) AS n FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to} GROUP BY 1 ORDER BY 1 LIMIT 100`,
	"events_over_time":     `SELECT date_trunc('day', derived_tstamp) AS day, count(*) AS n FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to} GROUP BY 1 ORDER BY 1 LIMIT 100`,
	"page_views_over_time": `SELECT date_trunc('day', derived_tstamp) AS day, count(*) AS n FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to} AND event = 'page_view' GROUP BY 1 ORDER BY 1 LIMIT 100`,
	"total_page_views":     `SELECT count(*) AS n FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to} AND event = 'page_view'`,
	"total_events":         `SELECT count(*) AS n FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to}`,
	"total_unique_users":   `SELECT count(DISTINCT domain_userid) AS n FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to}`,
	"top_pages":            `SELECT page_urlpath, page_url, count(*) AS n FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to} AND event = 'page_view' GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 100`,
	"browsers_per_users":   `SELECT agent_name, agent_version, count(DISTINCT domain_userid) AS n FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to} GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 100`,
	"sessions_over_time":   `SELECT date_trunc('day', start_at) AS day, count(*) AS n FROM ` + sessionsOf("{table}", false) + ` GROUP BY 1 ORDER BY 1 LIMIT 100`,
	"total_sessions":       `SELECT count(*) AS n FROM ` + sessionsOf("{table}", false),
	"average_session_duration": `SELECT avg((epoch_ms(end_at) - epoch_ms(start_at)) / 60000.0) AS n FROM ` + sessionsOf("{table}", true) +
		` WHERE start_at < {to}`,
	"sessions_per_user":       `SELECT 1.0 * count(*) / nullif(count(DISTINCT user_id), 0) AS n FROM ` + sessionsOf("{table}", false),
	"returning_users_percent": `SELECT 100.0 * count(DISTINCT CASE WHEN idx > 1 THEN user_id END) / nullif(count(DISTINCT user_id), 0) AS n FROM ` + sessionsOf("{table}", false),
	"sessions_per_browser":    `SELECT agent_name, agent_version, count(*) AS n FROM ` + sessionsOf("{table}", false) + ` GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 100`,
}

// bestSQL is panel's plain SQL on DuckDB over the days from through to
// (2006-01-02, both included), on project's table.
func bestSQL(panel string, project int64, from, to string) (string, error) {
	tmpl, ok := plainSQL[panel]
	if !ok {
		return "", fmt.Errorf("no plain SQL for the panel %s", panel)
	}
	first, err1 := time.Parse(time.DateOnly, from)
	last, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("the range %s to %s is not two dates", from, to)
	}
	literal := func(t time.Time) string { return "TIMESTAMP '" + t.Format(time.DateTime) + "'" }
	return strings.NewReplacer(
		"{table}", fmt.Sprintf("gitlab_project_%d.snowplow_events", project),
		"{from}", literal(first), "{to}", literal(last.AddDate(0, 0, 1)),
	).Replace(tmpl), nil
}
