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
func sessionsOf(withEnd bool) string {
	upper := "WHERE derived_tstamp < {to}"
	if withEnd {
		upper = ""
	}
	return `(SELECT min(derived_tstamp) AS start_at, max(derived_tstamp) AS end_at,
  min(domain_userid) AS user_id, min(domain_sessionidx) AS idx,
  min(agent_name) AS agent_name, min(agent_version) AS agent_version
  FROM {table} ` + upper + ` GROUP BY domain_sessionid
  HAVING min(derived_tstamp) >= {from})`
}

// inRange is the events of the range.
const inRange = `FROM {table} WHERE derived_tstamp >= {from} AND derived_tstamp < {to}`

// plainSQL are the statements by panel name, with {table}, {from}, {to}
// (the end, excluded), {day(x)} and {ms(x)} to fill in for the store.
// Each selects the panel's figure last. Columns are ordered and grouped
// by name, which both stores take.
var plainSQL = map[string]string{
	"daily_active_users":   `SELECT {day(derived_tstamp)} AS d, count(DISTINCT domain_userid) AS n ` + inRange + ` GROUP BY d ORDER BY d LIMIT 100`,
	"events_over_time":     `SELECT {day(derived_tstamp)} AS d, count(*) AS n ` + inRange + ` GROUP BY d ORDER BY d LIMIT 100`,
	"page_views_over_time": `SELECT {day(derived_tstamp)} AS d, count(*) AS n ` + inRange + ` AND event = 'page_view' GROUP BY d ORDER BY d LIMIT 100`,
	"total_page_views":     `SELECT count(*) AS n ` + inRange + ` AND event = 'page_view'`,
	"total_events":         `SELECT count(*) AS n ` + inRange,
	"total_unique_users":   `SELECT count(DISTINCT domain_userid) AS n ` + inRange,
	"top_pages": `SELECT page_urlpath, page_url, count(*) AS n ` + inRange + ` AND event = 'page_view'
  GROUP BY page_urlpath, page_url ORDER BY n DESC, page_urlpath, page_url LIMIT 100`,
	"browsers_per_users": `SELECT agent_name, agent_version, count(DISTINCT domain_userid) AS n ` + inRange + `
  GROUP BY agent_name, agent_version ORDER BY n DESC, agent_name, agent_version LIMIT 100`,
	"sessions_over_time": `SELECT {day(start_at)} AS d, count(*) AS n FROM ` + sessionsOf(false) + ` GROUP BY d ORDER BY d LIMIT 100`,
	"total_sessions":     `SELECT count(*) AS n FROM ` + sessionsOf(false),
	"average_session_duration": `SELECT avg(({ms(end_at)} - {ms(start_at)}) / 60000.0) AS n FROM ` + sessionsOf(true) +
		` WHERE start_at < {to}`,
	"sessions_per_user":       `SELECT 1.0 * count(*) / nullif(count(DISTINCT user_id), 0) AS n FROM ` + sessionsOf(false),
	"returning_users_percent": `SELECT 100.0 * count(DISTINCT CASE WHEN idx > 1 THEN user_id END) / nullif(count(DISTINCT user_id), 0) AS n FROM ` + sessionsOf(false),
	"sessions_per_browser": `SELECT agent_name, agent_version, count(*) AS n FROM ` + sessionsOf(false) + `
  GROUP BY agent_name, agent_version ORDER BY n DESC, agent_name, agent_version LIMIT 100`,
}

// plainDialects are the expressions that differ between the stores.
var plainDialects = map[string]struct {
	timestamp func(string) string
	day, ms   func(string) string
}{
	"duckdb": {
		timestamp: func(t string) string { return "TIMESTAMP '" + t + "'" },
		day:       func(x string) string { return "date_trunc('day', " + x + ")" },
		ms:        func(x string) string { return "epoch_ms(" + x + ")" },
	},
	"clickhouse": {
		timestamp: func(t string) string { return "toDateTime('" + t + "', 'UTC')" },
		day:       func(x string) string { return "toStartOfDay(" + x + ")" },
		// Whole seconds with DateTime, milliseconds with DateTime64.
		ms: func(x string) string { return "toInt64(round(toFloat64(" + x + ") * 1000))" },
	},
}

// bestSQL is panel's plain SQL on store (duckdb or clickhouse) over the
// days from through to (2006-01-02, both included), on project's table.
func bestSQL(store, panel string, project int64, from, to string) (string, error) {
	tmpl, ok := plainSQL[panel]
	if !ok {
		return "", fmt.Errorf("no plain SQL for the panel %s", panel)
	}
	d, ok := plainDialects[store]
	if !ok {
		return "", fmt.Errorf("no plain SQL for the store %s", store)
	}
	first, err1 := time.Parse(time.DateOnly, from)
	last, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("the range %s to %s is not two dates", from, to)
	}
	sql := strings.NewReplacer(
		"{table}", fmt.Sprintf("gitlab_project_%d.snowplow_events", project),
		"{from}", d.timestamp(first.Format(time.DateTime)),
		"{to}", d.timestamp(last.AddDate(0, 0, 1).Format(time.DateTime)),
	).Replace(tmpl)
	for name, f := range map[string]func(string) string{"day": d.day, "ms": d.ms} {
		for {
			i := strings.Index(sql, "{"+name+"(")
			if i < 0 {
				break
			}
			j := strings.Index(sql[i:], ")}")
			arg := sql[i+len(name)+2 : i+j]
			sql = sql[:i] + f(arg) + sql[i+j+2:]
		}
	}
	return sql, nil
}
