package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"productanalytics/internal/clickhouse"
	"productanalytics/internal/stack"
	"productanalytics/shared/dashboards"
)

// asTenant runs sql on the ClickHouse server as project's own user, with
// the password Cube derives for it.
func asTenant(t *testing.T, project int64, sql string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app := clickhouse.AppID(project)
	return server.Query(ctx, app, clickhouse.TenantPassword(passwordKey, app), sql)
}

func admin(t *testing.T, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := server.Admin(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// TestTenantUserReadsItsOwnDatabaseOnly runs SQL straight on ClickHouse as
// each project's user: it reads its own events, and nothing of the other
// project's, whichever way it asks; it writes nothing and cannot lift its
// read-only setting.
func TestTenantUserReadsItsOwnDatabaseOnly(t *testing.T) {
	for _, p := range projects {
		own, other := clickhouse.AppID(p), clickhouse.AppID(3-p)
		t.Run(own+" reads its own events", func(t *testing.T) {
			got, err := asTenant(t, p, "SELECT count() FROM "+own+".snowplow_events")
			if want := strconv.FormatInt(events[p], 10); err != nil || strings.TrimSpace(got) != want || events[p] == 0 {
				t.Errorf("got %q, %v; want %s events", got, err, want)
			}
		})
		refused := []struct {
			name string
			sql  string
		}{
			{"the other project's table", "SELECT count() FROM " + other + ".snowplow_events"},
			{"the other project's table in a subquery", "SELECT (SELECT count() FROM " + other + ".snowplow_events)"},
			{"the other project's table in a join", "SELECT count() FROM " + own + ".snowplow_events AS a JOIN " + other + ".snowplow_events AS b USING event_id"},
			{"the other project's columns", "DESCRIBE TABLE " + other + ".snowplow_events"},
			{"a table that does not exist", "SELECT count() FROM gitlab_project_3.snowplow_events"},
			{"the table function remote", "SELECT count() FROM remote('127.0.0.1', " + other + ".snowplow_events)"},
			{"the table function merge", "SELECT count() FROM merge('" + other + "', '^snowplow_events$')"},
			{"the table function url", "SELECT * FROM url('" + server.URL + "/?query=SELECT+1', CSV, 'x String')"},
			{"the table function file", "SELECT * FROM file('/etc/passwd', CSV, 'x String')"},
			{"a write to its own table", "INSERT INTO " + own + ".snowplow_events (event_id) VALUES ('x')"},
			{"a new table", "CREATE TABLE " + own + ".copy (x String) ENGINE = Memory"},
			{"dropping its own table", "DROP TABLE " + own + ".snowplow_events"},
			{"lifting read-only", "SET readonly = 0"},
		}
		for _, tc := range refused {
			t.Run(own+" is refused "+tc.name, func(t *testing.T) {
				got, err := asTenant(t, p, tc.sql)
				var ce *clickhouse.Error
				if !errors.As(err, &ce) {
					t.Fatalf("got %q, %v; want ClickHouse's refusal", got, err)
				}
				if strings.Contains(ce.Message, strconv.FormatInt(events[3-p], 10)) {
					t.Errorf("the refusal holds %s's event count: %s", other, ce.Message)
				}
			})
		}
	}
	// Its own table still holds what was loaded: the writes above did not run.
	for _, p := range projects {
		if got := strings.TrimSpace(admin(t, "SELECT count() FROM "+clickhouse.AppID(p)+".snowplow_events")); got != strconv.FormatInt(events[p], 10) {
			t.Errorf("%s holds %s events after the refused writes, want %d", clickhouse.AppID(p), got, events[p])
		}
	}
}

// TestUnknownUsersAreRefused: a user no project has, or a project's user
// with another project's password, gets nothing.
func TestUnknownUsersAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name, user, password string
	}{
		{"a project without a user", clickhouse.AppID(projectWithoutData), clickhouse.TenantPassword(passwordKey, clickhouse.AppID(projectWithoutData))},
		{"another project's password", clickhouse.AppID(1), clickhouse.TenantPassword(passwordKey, clickhouse.AppID(2))},
		{"a password of another key", clickhouse.AppID(1), clickhouse.TenantPassword(passwordKey+"x", clickhouse.AppID(1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := server.Query(ctx, tc.user, tc.password, "SELECT 1")
			var ce *clickhouse.Error
			if !errors.As(err, &ce) {
				t.Errorf("got %q, %v; want ClickHouse's refusal", got, err)
			}
		})
	}
}

// TestCubeQueriesAsEachProjectsUser checks in ClickHouse's query log that
// the queries Cube ran for each project's dashboards were run by that
// project's user, on that project's database.
func TestCubeQueriesAsEachProjectsUser(t *testing.T) {
	// A filter no other test sends, so that Cube cannot answer from its
	// cache and the query is in the log.
	mark := fmt.Sprintf("/mark-%d", time.Now().UnixNano())
	for _, p := range projects {
		q := `{"measures":["TrackedEvents.count"],"filters":[{"member":"TrackedEvents.pageUrlpath","operator":"notEquals","values":["` + mark + `"]}]}`
		if got := rows(t, "ClickHouse", load(t, click, p, q)); len(got) != 1 {
			t.Fatalf("project %d: %v", p, got)
		}
		for _, q := range dashboards.Queries(time.Now()) {
			rows(t, "ClickHouse", load(t, click, p, string(q.Query)))
		}
	}
	admin(t, "SYSTEM FLUSH LOGS")
	// type 2: QueryFinish. The administrator only loads the events.
	log := admin(t, "SELECT user, replaceAll(query, '\\n', ' ') FROM system.query_log WHERE type = 2 AND user != '"+clickhouse.Admin+"' AND query LIKE '%snowplow_events%'")
	table := regexp.MustCompile(`(gitlab_project_[0-9]+)\.snowplow_events`)
	marked := map[string]int{}
	for line := range strings.Lines(log) {
		user, query, _ := strings.Cut(strings.TrimRight(line, "\n"), "\t")
		for _, m := range table.FindAllStringSubmatch(query, -1) {
			if m[1] != user {
				t.Errorf("%s ran a query on %s: %.300s", user, m[1], query)
			}
		}
		if strings.Contains(query, mark) {
			marked[user]++
		}
	}
	for _, p := range projects {
		if marked[clickhouse.AppID(p)] == 0 {
			t.Errorf("no query of project %d's marked load ran as %s; the log holds:\n%.2000s", p, clickhouse.AppID(p), log)
		}
	}
}

// TestPasswordsAgree: cube/clickhouse.js derives the password the server's
// users were made with.
func TestPasswordsAgree(t *testing.T) {
	for _, p := range append(projects, projectWithoutData) {
		app := clickhouse.AppID(p)
		script := `process.stdout.write(require(process.argv[1]).tenantPassword(process.argv[2], process.argv[3]))`
		out, err := exec.Command("node", "-e", script, filepath.Join(stack.CubeDir(root), "clickhouse.js"), passwordKey, app).Output()
		if err != nil {
			t.Fatalf("node: %v", err)
		}
		if want := clickhouse.TenantPassword(passwordKey, app); string(out) != want || len(want) != 64 {
			t.Errorf("%s: cube/clickhouse.js derives a password of %d characters that differs from the Go one", app, len(out))
		}
	}
}
