package integration

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/seed"
	"productanalytics/shared/dashboards"
)

const (
	seedTracked  = seed.TrackedEvents
	seedSessions = seed.Sessions
)

func TestSeedExamples(t *testing.T) {
	for name, q := range map[string]string{"tracked events": seedTracked, "sessions": seedSessions} {
		data := rows(t, load(t, 1, q))
		if len(data) == 0 {
			t.Errorf("%s: no rows", name)
		}
	}
}

func TestMeta(t *testing.T) {
	a := call(t, "GET", "/api/v4/projects/1/product_analytics/request/meta", 1, "")
	if a.status != 200 {
		t.Fatalf("meta: %s", a)
	}
	var meta struct {
		Cubes []struct {
			Name       string
			Measures   []struct{ Name string }
			Dimensions []struct{ Name string }
			Segments   []struct{ Name string }
		}
	}
	json.Unmarshal(a.body, &meta)
	members := map[string]bool{}
	for _, c := range meta.Cubes {
		members[c.Name] = true
		for _, m := range c.Measures {
			members[m.Name] = true
		}
		for _, d := range c.Dimensions {
			members[d.Name] = true
		}
		for _, s := range c.Segments {
			members[s.Name] = true
		}
	}
	// The members GitLab's dashboards and clients use.
	want := map[string][]string{
		"TrackedEvents": {"count", "pageViewsCount", "uniqueUsersCount", "linkClicksCount", "pageUrlhosts", "pageUrlpath",
			"event", "eventId", "eventName", "pageTitle", "osFamily", "osName", "osVersion", "osVersionMajor", "agentName",
			"agentVersion", "pageReferrer", "pageUrl", "baseUrl", "useragent", "derivedTstamp", "browserLanguage",
			"documentLanguage", "viewportSize", "targetUrl", "elementId", "customEventName", "customEventProps",
			"customUserProps", "userId", "knownUsers", "docPath", "utcTime"},
		"Sessions": {"count", "averagePerUser", "averageDurationMinutes", "uniqueUsersCount", "usersCount", "repeatPercent",
			"sessionID", "startAt", "endAt", "userId", "agentName", "agentVersion", "osFamily", "osName", "osVersion",
			"osVersionMajor", "browserLanguage", "documentLanguage", "viewportSize"},
		"ReturningUsers": {"allSessionsCount", "returningUserPercentage", "first_timestamp"},
	}
	for cube, ms := range want {
		if !members[cube] {
			t.Errorf("meta lacks cube %s", cube)
		}
		for _, m := range ms {
			if !members[cube+"."+m] {
				t.Errorf("meta lacks %s.%s", cube, m)
			}
		}
	}
}

func TestDashboardQueries(t *testing.T) {
	for _, q := range dashboards.Queries(time.Now()) {
		t.Run(q.Name, func(t *testing.T) {
			for _, project := range []int64{1, 2} {
				if data := rows(t, load(t, project, string(q.Query))); len(data) == 0 {
					t.Errorf("project %d: no rows", project)
				}
				dry := call(t, "POST", fmt.Sprintf("/projects/%d/product_analytics/request/dry-run", project), project, `{"query":`+string(q.Query)+`}`)
				var d struct {
					QueryType         string            `json:"queryType"`
					NormalizedQueries []json.RawMessage `json:"normalizedQueries"`
				}
				if json.Unmarshal(dry.body, &d); dry.status != 200 || len(d.NormalizedQueries) != 1 {
					t.Errorf("project %d dry-run: %s", project, dry)
				}
			}
		})
	}
}

// week is the last seven days up to today, as the dashboards ask, and the
// same bounds in SQL.
func week() (from, to, sqlWhere string) {
	now := time.Now().UTC()
	from, to = now.AddDate(0, 0, -7).Format(time.DateOnly), now.Format(time.DateOnly)
	end := now.AddDate(0, 0, 1).Format(time.DateOnly)
	return from, to, fmt.Sprintf("derived_tstamp >= TIMESTAMP '%s' AND derived_tstamp < TIMESTAMP '%s'", from, end)
}

func dateFilter(member, from, to string) string {
	return fmt.Sprintf(`[{"member":%q,"operator":"inDateRange","values":[%q,%q]}]`, member, from, to)
}

// TestNumbersMatchTheStore compares the API's figures with the same figures
// computed by SQL straight from project 1's events file.
func TestNumbersMatchTheStore(t *testing.T) {
	from, to, where := week()
	sessions := `(SELECT domain_sessionid, domain_userid, MIN(derived_tstamp) AS st, MAX(derived_tstamp) AS en, MIN(domain_sessionidx) AS idx
		FROM gitlab_project_1.snowplow_events GROUP BY 1, 2)`
	sessionsWhere := strings.ReplaceAll(where, "derived_tstamp", "st")

	t.Run("events by day", func(t *testing.T) {
		api := rows(t, load(t, 1, `{"measures":["TrackedEvents.count"],"timeDimensions":[{"dimension":"TrackedEvents.derivedTstamp","granularity":"day","dateRange":["`+from+`","`+to+`"]}],"timezone":"UTC"}`))
		store := sqlRows(t, 1, `SELECT strftime(date_trunc('day', derived_tstamp), '%Y-%m-%d') AS d, COUNT(*) AS n FROM gitlab_project_1.snowplow_events WHERE `+where+` GROUP BY 1 ORDER BY 1`)
		got := map[string]float64{}
		for _, r := range api {
			got[str(r["TrackedEvents.derivedTstamp.day"])[:10]] = num(t, r["TrackedEvents.count"])
		}
		if len(store) < 7 || len(got) != len(store) {
			t.Fatalf("%d days from the API, %d from the store", len(got), len(store))
		}
		for _, r := range store {
			if d := str(r["d"]); got[d] != num(t, r["n"]) {
				t.Errorf("%s: API %v, store %v", d, got[d], r["n"])
			}
		}
	})
	t.Run("unique users", func(t *testing.T) {
		api := rows(t, load(t, 1, `{"measures":["TrackedEvents.uniqueUsersCount"],"filters":`+dateFilter("TrackedEvents.derivedTstamp", from, to)+`}`))
		store := sqlRows(t, 1, `SELECT COUNT(DISTINCT domain_userid) AS n FROM gitlab_project_1.snowplow_events WHERE `+where)
		same(t, num(t, api[0]["TrackedEvents.uniqueUsersCount"]), num(t, store[0]["n"]))
	})
	t.Run("page views by path", func(t *testing.T) {
		api := rows(t, load(t, 1, `{"measures":["TrackedEvents.pageViewsCount"],"dimensions":["TrackedEvents.pageUrlpath"],"filters":`+dateFilter("TrackedEvents.derivedTstamp", from, to)+`,"limit":5000}`))
		store := sqlRows(t, 1, `SELECT page_urlpath AS p, COUNT(*) AS n FROM gitlab_project_1.snowplow_events WHERE event = 'page_view' AND `+where+` GROUP BY 1`)
		got := map[string]float64{}
		for _, r := range api {
			if n := num(t, r["TrackedEvents.pageViewsCount"]); n > 0 {
				got[str(r["TrackedEvents.pageUrlpath"])] = n
			}
		}
		if len(store) < 5 || len(got) != len(store) {
			t.Fatalf("%d paths from the API, %d from the store", len(got), len(store))
		}
		for _, r := range store {
			if p := str(r["p"]); got[p] != num(t, r["n"]) {
				t.Errorf("%s: API %v, store %v", p, got[p], r["n"])
			}
		}
	})
	t.Run("average session duration", func(t *testing.T) {
		api := rows(t, load(t, 1, `{"measures":["Sessions.averageDurationMinutes"],"filters":`+dateFilter("Sessions.startAt", from, to)+`}`))
		store := sqlRows(t, 1, `SELECT AVG((epoch_ms(en) - epoch_ms(st)) / 60000.0) AS m FROM `+sessions+` WHERE `+sessionsWhere)
		same(t, num(t, api[0]["Sessions.averageDurationMinutes"]), num(t, store[0]["m"]))
	})
	t.Run("returning users", func(t *testing.T) {
		api := rows(t, load(t, 1, `{"measures":["ReturningUsers.returningUserPercentage","ReturningUsers.allSessionsCount"]}`))
		store := sqlRows(t, 1, `SELECT 100.0 * SUM(CASE WHEN idx > 1 THEN 1 ELSE 0 END) / COUNT(*) AS pct, COUNT(*) AS n FROM `+sessions)
		same(t, num(t, api[0]["ReturningUsers.returningUserPercentage"]), num(t, store[0]["pct"]))
		same(t, num(t, api[0]["ReturningUsers.allSessionsCount"]), num(t, store[0]["n"]))
		repeat := rows(t, load(t, 1, `{"measures":["Sessions.repeatPercent"],"filters":`+dateFilter("Sessions.startAt", from, to)+`}`))
		storeRepeat := sqlRows(t, 1, `SELECT 100.0 * COUNT(DISTINCT CASE WHEN idx > 1 THEN domain_userid END) / COUNT(DISTINCT domain_userid) AS pct FROM `+sessions+` WHERE `+sessionsWhere)
		same(t, num(t, repeat[0]["Sessions.repeatPercent"]), num(t, storeRepeat[0]["pct"]))
	})
}

// TestProjectsAreIsolated checks each project reads its own events only.
func TestProjectsAreIsolated(t *testing.T) {
	for _, project := range []int64{1, 2} {
		api := rows(t, load(t, project, `{"measures":["TrackedEvents.count"]}`))
		store := sqlRows(t, project, fmt.Sprintf(`SELECT COUNT(*) AS n FROM gitlab_project_%d.snowplow_events`, project))
		same(t, num(t, api[0]["TrackedEvents.count"]), num(t, store[0]["n"]))
	}
	// Project 2's caller asking for project 1 is refused before Cube.
	a := call(t, "POST", "/projects/1/product_analytics/request/load", 2, `{"query":{"measures":["TrackedEvents.count"]}}`)
	if a.status != 404 || string(a.body) != `{"message":"404 Project Not Found","error":"404 Project Not Found"}` {
		t.Fatalf("project 2's token on project 1: %s", a)
	}
	hosts := rows(t, load(t, 2, `{"dimensions":["TrackedEvents.pageUrlhosts"],"limit":50}`))
	store := sqlRows(t, 1, `SELECT DISTINCT page_urlhost AS h FROM gitlab_project_1.snowplow_events WHERE page_urlhost IS NOT NULL`)
	for _, r := range hosts {
		for _, s := range store {
			if r["TrackedEvents.pageUrlhosts"] == s["h"] {
				t.Fatalf("project 2 sees project 1's host %v", s["h"])
			}
		}
	}
}

func TestProjectWithoutData(t *testing.T) {
	a := load(t, 3, `{"measures":["TrackedEvents.count"]}`)
	if a.status != 404 || string(a.body) != `{"message":"404 Clickhouse Database Not Found","error":"404 Clickhouse Database Not Found"}` {
		t.Fatalf("project without data: %s", a)
	}
}

func TestUnknownMember(t *testing.T) {
	a := load(t, 1, `{"measures":["TrackedEvents.nope"]}`)
	if a.status != 400 || string(a.body) != `{"message":"'nope' not found for path 'TrackedEvents.nope'","error":"'nope' not found for path 'TrackedEvents.nope'"}` {
		t.Fatalf("unknown member: %s", a)
	}
	if strings.Contains(string(a.body), "stack") || strings.Contains(string(a.body), "node_modules") {
		t.Fatalf("Cube's stack leaked: %s", a)
	}
}

// TestContinueWaitIsPolled asks the slow test cube for something Cube has not
// cached: Cube answers "Continue wait" after a second, and the API polls
// until the data is there.
func TestContinueWaitIsPolled(t *testing.T) {
	q := fmt.Sprintf(`{"measures":["SlowEvents.count"],"dimensions":["SlowEvents.event"],"filters":[{"member":"SlowEvents.event","operator":"notEquals","values":["%d"]}]}`, time.Now().UnixNano())
	a := load(t, 1, q)
	data := rows(t, a)
	if len(data) == 0 {
		t.Fatalf("no rows: %s", a)
	}
	if a.took < slowQuery {
		t.Fatalf("answered in %s, before the slow query could finish (%s)", a.took, slowQuery)
	}
	n := polls(t, a)
	if n < 1 {
		t.Fatalf("the slow load was not polled (polls %d)", n)
	}
	t.Logf("slow query answered after %s and %d polls", a.took.Round(time.Millisecond), n)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// num reads a figure the way clients do: Cube sends numbers as strings.
func num(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case float64:
		return x
	case string:
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			t.Fatalf("%q is not a number", x)
		}
		return f
	}
	t.Fatalf("%v (%T) is not a number", v, v)
	return 0
}

func same(t *testing.T, api, store float64) {
	t.Helper()
	if math.Abs(api-store) > 1e-9*math.Max(1, math.Abs(store)) {
		t.Errorf("API %v, store %v", api, store)
	}
	if store == 0 {
		t.Errorf("the store's figure is 0: the comparison proves nothing")
	}
}
